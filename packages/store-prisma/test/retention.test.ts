/**
 * Retention on the databases: a sweep that deletes a big old log in slices while a run streams
 * loses no line of the run (SQLite and PostgreSQL), deletes every row of what it sweeps and no row
 * of anything else.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createScriptRunner, type ScriptRunner } from '@scriptrunner/core';
import { sampleExecution, sampleLines } from '@scriptrunner/core/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { prismaStore } from '../src/index.js';
import { describePostgres, pgDatabase, sqliteDatabase, type PgClientType, type SqliteClientType } from './support/databases.js';

const quiet = { warn: () => {}, error: () => {} };
const runners: ScriptRunner[] = [];
afterEach(async () => {
  await Promise.all(runners.splice(0).map((r) => r.close()));
});

const OLD_LINES = 200_000;
/** Bound of the streaming run's loop; it stops earlier, when the test creates its stop file. */
const MAX_RUN_LINES = 2_000_000;

async function sweepWhileStreaming(prisma: SqliteClientType | PgClientType): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sr-retention-'));
  const stop = join(dir, 'stop');
  const store = prismaStore(prisma as never);
  // No sandbox: the script must see the stop file this test creates in the host's tmp.
  const runner = createScriptRunner({ store, logger: quiet, isolation: 'none', retention: { maxAgeMs: 60_000, intervalMs: 0, batchRows: 20 } });
  runners.push(runner);
  const script = await runner.uploadScript({
    filename: 'test_stream.py',
    // Streams until the test says stop, i.e. for the whole sweep.
    content: [
      'import os, time',
      `for i in range(${MAX_RUN_LINES}):`,
      '    print(f"line {i}")',
      `    if i % 200 == 0 and os.path.exists(${JSON.stringify(stop)}): break`,
      '    if i % 1000 == 0: time.sleep(0.001)',
    ].join('\n'),
  });
  // An old finished execution with a big log and an artifact, stored the way a run stores them.
  const longAgo = new Date(Date.now() - 3_600_000);
  const old = await store.createExecution(sampleExecution(script.id, { status: 'succeeded', queuedAt: longAgo, startedAt: longAgo, finishedAt: longAgo }));
  for (let from = 1; from <= OLD_LINES; from += 500) await store.appendLogs(old.id, sampleLines(old.id, from, from + 499));
  await store.putArtifact(
    { executionId: old.id, name: 'big.bin', createdAt: longAgo },
    (async function* () {
      for (let i = 0; i < 3; i++) yield new Uint8Array(1024 * 1024).fill(i);
    })(),
  );
  const client = prisma as SqliteClientType;
  const oldChunks = await client.scriptRunnerLogChunk.count({ where: { executionId: old.id } });
  expect(oldChunks).toBeGreaterThan(100); // many slices of 20 rows

  const execution = await runner.run(script.id);
  // Sweep once the run is streaming (its first line is stored).
  for (const deadline = Date.now() + 30_000; (await runner.readLogs(execution.id, { limit: 1 })).length === 0; ) {
    expect(Date.now()).toBeLessThan(deadline);
    await new Promise((r) => setTimeout(r, 20));
  }
  const swept = await runner.sweep();
  expect(swept.executionsDeleted).toBe(1);
  expect((await runner.getExecution(execution.id)).status).toBe('running'); // it streamed all along
  writeFileSync(stop, '');
  const final = await runner.waitFor(execution.id);
  expect(final.status).toBe('succeeded');
  rmSync(dir, { recursive: true, force: true });

  // Nothing of the old execution is left, row by row; the run is whole.
  expect(await client.scriptRunnerExecution.count({ where: { id: old.id } })).toBe(0);
  expect(await client.scriptRunnerLogChunk.count({ where: { executionId: old.id } })).toBe(0);
  expect(await client.scriptRunnerArtifact.count({ where: { executionId: old.id } })).toBe(0);
  expect(await client.scriptRunnerArtifactChunk.count({ where: { executionId: old.id } })).toBe(0);
  let after = 0;
  let expected = 1;
  for (;;) {
    const page = await runner.readLogs(execution.id, { afterSeq: after, limit: 10_000 });
    if (page.length === 0) break;
    for (const line of page) {
      if (line.seq !== expected || line.text !== `line ${expected - 1}`) throw new Error(`seq ${line.seq} "${line.text}" where ${expected} was due`);
      expected++;
    }
    after = page[page.length - 1]!.seq;
  }
  expect(expected - 1).toBe(final.lineCount);
  expect(final.lineCount).toBeLessThan(MAX_RUN_LINES);
  expect((await runner.getScript(script.id)).totalRuns).toBe(1);
}

describe('retention on Prisma + SQLite', () => {
  it('a sweep of a 200,000-line log while a run streams loses no line and leaves no row behind', { timeout: 120_000 }, async () => {
    const db = await sqliteDatabase();
    try {
      await sweepWhileStreaming(db.prisma);
    } finally {
      await Promise.all(runners.splice(0).map((r) => r.close()));
      await db.cleanup();
    }
  });
});

describePostgres('retention on Prisma + PostgreSQL', (suite) => {
  it('a sweep of a 200,000-line log while a run streams loses no line and leaves no row behind', { timeout: 120_000 }, async () => {
    const db = await pgDatabase(suite.server());
    try {
      await sweepWhileStreaming(db.prisma);
    } finally {
      await Promise.all(runners.splice(0).map((r) => r.close()));
      await db.cleanup();
    }
  });
});
