/**
 * One worker, as its own OS process. Env: REDIS_URL, DATABASE_URL, CONCURRENCY, LOCK_MS; optional
 * ISOLATION (`none` | `bwrap` | `auto`, default the runner's), PYTHON (the interpreter to run) and
 * WORK_DIR (where run directories go).
 * Prints `{"ready":true}` and then one JSON line per execution it starts and finishes, so tests
 * can see where each run went and how many ran at once.
 */
import type { IsolationMode } from '@scriptrunner/core';
import { createScriptWorker } from '@scriptrunner/queue-bullmq';
import { postgresStore } from '@scriptrunner/store-prisma/postgresql';

const store = postgresStore({ connectionString: process.env.DATABASE_URL! });
const lockMs = Number(process.env.LOCK_MS ?? 10_000);
const isolation = process.env.ISOLATION ? (process.env.ISOLATION as IsolationMode) : undefined;
const python = process.env.PYTHON;
const workDir = process.env.WORK_DIR;
const worker = createScriptWorker({
  store,
  connection: process.env.REDIS_URL!,
  concurrency: Number(process.env.CONCURRENCY ?? 2),
  lockDurationMs: lockMs,
  stalledIntervalMs: Math.max(500, Math.floor(lockMs / 2)),
  killGraceMs: 1000,
  ...(isolation ? { isolation } : {}),
  ...(python ? { runtimes: { python: { command: python } } } : {}),
  ...(workDir ? { workDir } : {}),
  logger: { warn: (m) => console.error(m), error: (m) => console.error(m) },
});
const running = new Set<string>();
worker.runner.on('execution:started', (execution) => {
  running.add(execution.id);
  console.log(JSON.stringify({ started: execution.id, running: running.size }));
});
worker.runner.on('execution:finished', (execution) => {
  running.delete(execution.id);
  console.log(JSON.stringify({ finished: execution.id, status: execution.status, lineCount: execution.lineCount, running: running.size }));
});
worker.runner.on('error', (error) => console.error(`[worker] ${error.message}`));
console.log(JSON.stringify({ ready: true, pid: process.pid }));
const stop = async () => {
  await worker.close();
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
