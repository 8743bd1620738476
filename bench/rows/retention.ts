/**
 * retention: what a sweep costs the runs writing at the same time. On sqliteStore and postgresStore
 * an old execution with a big log (stored in runner-sized batches) is swept while a live execution
 * appends a batch every 2 ms; the append latencies before and during the sweep are compared, and,
 * side by side, during one cascading `DELETE` of an execution with the same log — what the sweep's
 * slices avoid.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createScriptRunner, type Store } from '@scriptrunner/core';
import { sampleExecution, sampleLines, sampleScript } from '@scriptrunner/core/testing';
import { postgresStore } from '@scriptrunner/store-prisma/postgresql';
import { sqliteStore } from '@scriptrunner/store-prisma/sqlite';
import type { OwnedPrismaStore } from '@scriptrunner/store-prisma/sqlite';
import { startPostgres, type PostgresServer } from '../../packages/store-prisma/test/support/postgres.js';
import { CorrectnessError, fmt, median, percentile, type Row } from '../lib.js';

const BATCH = 300; // about what the runner's batcher writes per append under a chatty script
const LIVE_BATCH = 50;
const BASELINE_MS = 1500;
const HOUR = 3_600_000;
const SWEEP_REPS = 5;

interface Measured {
  store: string;
  baseline: { p50: number; p99: number };
  /** Pooled over SWEEP_REPS sweeps of a big log; `ms` is the median sweep's duration. */
  sweep: { p50: number; p99: number; max: number; ms: number };
  /** The slowest append during the process's first (small) sweep. */
  firstSweepMax: number;
  cascade: { p99: number; max: number; ms: number };
  /** SQLite: the database file after the first big log, and after it was swept and another as big stored. */
  fileBytes?: { first: number; reused: number };
}

/** An old finished execution with `lines` log lines, stored as a run would store them. */
async function seedOld(store: Store, scriptId: string, lines: number): Promise<string> {
  const longAgo = new Date(Date.now() - 2 * HOUR);
  const old = await store.createExecution(sampleExecution(scriptId, { status: 'succeeded', queuedAt: longAgo, startedAt: longAgo, finishedAt: longAgo }));
  for (let from = 1; from <= lines; from += BATCH) await store.appendLogs(old.id, sampleLines(old.id, from, Math.min(lines, from + BATCH - 1)));
  return old.id;
}

/** Appends to `executionId` every 2 ms until `done` settles (at least `minMs`); each call's latency. */
async function appendWhile(store: Store, executionId: string, next: { seq: number }, done: Promise<unknown>, minMs = 0): Promise<number[]> {
  let over = false;
  void done.finally(() => {
    over = true;
  });
  const started = Date.now();
  const latencies: number[] = [];
  while (!over || Date.now() - started < minMs) {
    const t = performance.now();
    await store.appendLogs(executionId, sampleLines(executionId, next.seq, next.seq + LIVE_BATCH - 1));
    latencies.push(performance.now() - t);
    next.seq += LIVE_BATCH;
    await new Promise((r) => setTimeout(r, 2));
  }
  return latencies;
}

async function measure(name: string, store: OwnedPrismaStore, lines: number, file?: string): Promise<Measured> {
  await store.ready;
  const script = await store.createScript(sampleScript());
  const live = await store.createExecution(sampleExecution(script.id, { status: 'running', startedAt: new Date() }));
  const next = { seq: 1 };
  const runner = createScriptRunner({ store, logger: { warn: () => {}, error: () => {} }, retention: { maxAgeMs: HOUR, intervalMs: 0 } });
  const sweepWhileAppending = async () => {
    const t = performance.now();
    const sweep = runner.sweep();
    const latencies = await appendWhile(store, live.id, next, sweep);
    return { latencies, ms: performance.now() - t, result: await sweep };
  };
  // A process's first sweep also has Prisma compile the query shapes it has not run yet (once).
  await seedOld(store, script.id, 1000);
  const first = await sweepWhileAppending();

  const baseline = await appendWhile(store, live.id, next, new Promise((r) => setTimeout(r, BASELINE_MS)));
  const during: number[] = [];
  const sweepMs: number[] = [];
  let firstBytes = 0;
  for (let rep = 0; rep < SWEEP_REPS; rep++) {
    const swept = await seedOld(store, script.id, lines);
    if (rep === 0 && file) firstBytes = statSync(file).size;
    const { latencies, ms, result } = await sweepWhileAppending();
    during.push(...latencies);
    sweepMs.push(ms);
    if (result.executionsDeleted !== 1 || (await store.getExecution(swept)) !== null || (await store.getExecution(live.id)) === null) {
      throw new CorrectnessError(`${name}: the sweep did not delete exactly the old execution`);
    }
  }
  await runner.close();

  // Side by side: the same log deleted by one statement (the schema cascades from the execution).
  const cascaded = await seedOld(store, script.id, lines);
  const reusedBytes = file ? statSync(file).size : 0;
  const c = performance.now();
  const cascade = (store.prisma.scriptRunnerExecution.deleteMany({ where: { id: cascaded } }) as Promise<unknown>).then(() => performance.now() - c);
  const duringCascade = await appendWhile(store, live.id, next, cascade);
  const cascadeMs = await cascade;
  const left = (await store.prisma.scriptRunnerLogChunk.findMany({ where: { executionId: cascaded }, take: 1, select: { firstSeq: true } })) as unknown[];
  if (left.length > 0) throw new CorrectnessError(`${name}: the cascading DELETE left log rows behind`);

  // The live log is whole: every appended line once, in order.
  const stored = await store.readLogs(live.id, { afterSeq: next.seq - 1 - LIVE_BATCH, limit: 10_000 });
  if (stored.length !== LIVE_BATCH || stored[stored.length - 1]!.seq !== next.seq - 1) {
    throw new CorrectnessError(`${name}: the live execution's last batch is not stored whole`);
  }
  const measured: Measured = {
    store: name,
    baseline: { p50: percentile(baseline, 50), p99: percentile(baseline, 99) },
    sweep: { p50: percentile(during, 50), p99: percentile(during, 99), max: Math.max(...during), ms: median(sweepMs) },
    firstSweepMax: Math.max(...first.latencies),
    cascade: { p99: percentile(duringCascade, 99), max: Math.max(...duringCascade), ms: cascadeMs },
  };
  if (file) measured.fileBytes = { first: firstBytes, reused: reusedBytes };
  return measured;
}

/** Met when the sweep leaves a writer's p99 within 2× its own p99, or within 10 ms of it. */
const kept = (m: Measured) => m.sweep.p99 <= Math.max(2 * m.baseline.p99, m.baseline.p99 + 10);

export const run: Row = async (ctx) => {
  const lines = ctx.quick ? 200_000 : 1_000_000;
  const dir = mkdtempSync(join(tmpdir(), 'sr-bench-retention-'));
  let pg: PostgresServer | null = null;
  const results: Measured[] = [];
  try {
    const sqlite = sqliteStore({ file: join(dir, 'retention.db') });
    try {
      ctx.log(`sqliteStore: seeding two executions of ${fmt.int(lines)} lines`);
      results.push(await measure('sqliteStore', sqlite, lines, join(dir, 'retention.db')));
    } finally {
      await sqlite.close();
    }
    ctx.log('starting a private PostgreSQL server');
    pg = await startPostgres();
    const postgres = postgresStore({ connectionString: await pg.createDatabase() });
    try {
      ctx.log(`postgresStore: seeding two executions of ${fmt.int(lines)} lines`);
      results.push(await measure('postgresStore', postgres, lines));
    } finally {
      await postgres.close();
    }
  } finally {
    await pg?.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
  const describe = (m: Measured) =>
    `${m.store}: append p50/p99 ${fmt.ms(m.baseline.p50)}/${fmt.ms(m.baseline.p99)} before, ${fmt.ms(m.sweep.p50)}/${fmt.ms(m.sweep.p99)} ` +
    `(max ${fmt.ms(m.sweep.max)}) during ${SWEEP_REPS} sweeps (${fmt.s(m.sweep.ms)} each); the process's first sweep: max ${fmt.ms(m.firstSweepMax)}; one cascading DELETE instead: p99 ${fmt.ms(m.cascade.p99)}, ` +
    `max ${fmt.ms(m.cascade.max)} (${fmt.s(m.cascade.ms)})` +
    (m.fileBytes ? `; database file ${fmt.mb(m.fileBytes.first)} after the first log, ${fmt.mb(m.fileBytes.reused)} after sweeping it and storing another as big` : '');
  const missed = results.filter((m) => !kept(m));
  return {
    row: 'retention',
    what:
      `a retention sweep (runner.sweep(), slices of 500 rows) of a finished execution with ${fmt.int(lines)} log lines stored in batches of ${BATCH}, ` +
      `while a running execution appends ${LIVE_BATCH} lines every 2 ms to the same store (sqliteStore; postgresStore on a private server, fsync=off)`,
    measured: results.map(describe).join(' — '),
    target: 'p99 append latency during the sweep ≤ 2× (or + 10 ms) the p99 before it, on SQLite and PostgreSQL',
    met: missed.length === 0,
    reading:
      (missed.length === 0
        ? 'A sweep is many short statements (500 rows each) with a turn of the event loop between them, so a writer waits for one slice at most. '
        : `Over target: ${missed.map((m) => m.store).join(', ')} — a slice's statement is too long for the writer; a smaller batchRows shortens it. `) +
      `One statement deleting the whole log (the schema cascades from the execution) blocks the writer for all of it: ` +
      `${results.map((m) => `${m.store} max ${fmt.ms(m.cascade.max)}`).join(', ')} for ${fmt.int(lines)} lines, growing with the log. ` +
      "A process's first sweep is slower once (Prisma compiles the query shapes it has not run yet). " +
      'SQLite reuses the freed pages: storing a log as big after the sweep barely grows the file, so VACUUM is only needed to give space back to the file system.',
  };
};
