/**
 * One worker, as its own OS process. Env: REDIS_URL, DATABASE_URL, CONCURRENCY, LOCK_MS; optional
 * STALLED_MS (default LOCK_MS / 2, at least 500), QUEUE_NAME, ISOLATION (`none` | `bwrap` | `auto`,
 * default the runner's), PYTHON (the interpreter to run), WORK_DIR (where run directories go) and
 * STORE_FAILS (comma-separated Store methods that throw, as if the database were down for them).
 * Prints `{"ready":true}` and then one JSON line per execution it starts and finishes, so tests
 * can see where each run went and how many ran at once.
 */
import type { IsolationMode, Store } from '@scriptrunner/core';
import { createScriptWorker } from '@scriptrunner/queue-bullmq';
import { postgresStore } from '@scriptrunner/store-prisma/postgresql';

const failing = new Set((process.env.STORE_FAILS ?? '').split(',').filter(Boolean));
const store = failingStore(postgresStore({ connectionString: process.env.DATABASE_URL! }), failing);
const lockMs = Number(process.env.LOCK_MS ?? 10_000);
const stalledMs = Number(process.env.STALLED_MS ?? Math.max(500, Math.floor(lockMs / 2)));
const isolation = process.env.ISOLATION ? (process.env.ISOLATION as IsolationMode) : undefined;
const python = process.env.PYTHON;
const workDir = process.env.WORK_DIR;
const queueName = process.env.QUEUE_NAME;
const worker = createScriptWorker({
  store,
  connection: process.env.REDIS_URL!,
  concurrency: Number(process.env.CONCURRENCY ?? 2),
  lockDurationMs: lockMs,
  stalledIntervalMs: stalledMs,
  killGraceMs: 1000,
  ...(isolation ? { isolation } : {}),
  ...(python ? { runtimes: { python: { command: python } } } : {}),
  ...(workDir ? { workDir } : {}),
  ...(queueName ? { queueName } : {}),
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

/** The store, with the `methods` named throwing (a database that fails for those calls). */
function failingStore<S extends Store>(inner: S, methods: Set<string>): S {
  if (methods.size === 0) return inner;
  return new Proxy(inner, {
    get(target, key, receiver) {
      if (typeof key === 'string' && methods.has(key)) {
        return async () => {
          throw new Error(`the database is down (STORE_FAILS: ${key})`);
        };
      }
      const value: unknown = Reflect.get(target, key, receiver);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}
