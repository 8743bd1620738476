/**
 * The core runner on this store, end to end with real python3 children, on both databases; and
 * the store faults of a database that goes away mid-run.
 */
import { readFileSync } from 'node:fs';
import { PrismaPg } from '@prisma/adapter-pg';
import { createScriptRunner, type Execution, type ScriptRunner } from '@scriptrunner/core';
import { afterEach, describe, expect, it } from 'vitest';
import { PrismaClient as PgClient } from '../generated/postgresql/client.js';
import { applyMigrations, prismaStore } from '../src/index.js';
import { describePostgres, pgDatabase, sqliteDatabase, type PgClientType, type SqliteClientType } from './support/databases.js';

const MANY_LINES = readFileSync(new URL('../../core/test/fixtures/test_many_lines.py', import.meta.url));
const quiet = { warn: () => {}, error: () => {} };

const runners: ScriptRunner[] = [];
afterEach(async () => {
  await Promise.all(runners.splice(0).map((r) => r.close()));
});

/** Every stored line, straight from the chunk rows: in order, each seq exactly once. */
async function storedSeqs(prisma: SqliteClientType | PgClientType, executionId: string): Promise<{ seqs: number[]; texts: string[] }> {
  const rows = (await (prisma as SqliteClientType).scriptRunnerLogChunk.findMany({
    where: { executionId },
    orderBy: { firstSeq: 'asc' },
  })) as Array<{ firstSeq: number; lastSeq: number; lines: string }>;
  const seqs: number[] = [];
  const texts: string[] = [];
  for (const row of rows) {
    const entries = JSON.parse(row.lines) as Array<[string, string, string, number]>;
    expect(entries.length).toBe(row.lastSeq - row.firstSeq + 1);
    entries.forEach((entry, i) => {
      seqs.push(row.firstSeq + i);
      texts.push(entry[2]);
    });
  }
  return { seqs, texts };
}

async function runManyLines(prisma: SqliteClientType | PgClientType, count: number): Promise<Execution> {
  const runner = createScriptRunner({ store: prismaStore(prisma), logger: quiet });
  runners.push(runner);
  const script = await runner.uploadScript({ filename: 'test_many_lines.py', content: MANY_LINES });
  const execution = await runner.waitFor((await runner.run(script.id, { args: [String(count)] })).id);
  expect(execution).toMatchObject({ status: 'succeeded', lineCount: count, exitCode: 0 });
  const { seqs, texts } = await storedSeqs(prisma, execution.id);
  expect(seqs.length).toBe(count);
  for (let i = 0; i < count; i++) {
    if (seqs[i] !== i + 1) throw new Error(`seq ${seqs[i]} at position ${i}`);
    if (texts[i] !== `line ${i + 1} price forecast iteration ok`) throw new Error(`text of seq ${i + 1}: ${texts[i]}`);
  }
  // And through the runner: the last page without scanning the log.
  const last = await runner.readLogs(execution.id, { afterSeq: count - 3, limit: 10 });
  expect(last.map((l) => l.seq)).toEqual([count - 2, count - 1, count]);
  return execution;
}

describe('runner on Prisma + SQLite', () => {
  it('stores all 200,000 lines of test_many_lines.py in order, exactly once', { timeout: 120_000 }, async () => {
    const db = await sqliteDatabase();
    try {
      await runManyLines(db.prisma, 200_000);
    } finally {
      await db.cleanup();
    }
  });

  it('answers a cursor the store did not issue with its validation error, not a store error', async () => {
    const db = await sqliteDatabase();
    try {
      const runner = createScriptRunner({ store: prismaStore(db.prisma), logger: quiet });
      runners.push(runner);
      await runner.uploadScript({ filename: 'test_a.py', content: 'print(1)\n' });
      const refusal = { code: 'validation', details: { field: 'cursor' }, message: expect.stringContaining('is not a cursor this store issued') };
      await expect(runner.listScripts({ cursor: 'garbage' })).rejects.toMatchObject(refusal);
      await expect(runner.listExecutions({ cursor: 'garbage' })).rejects.toMatchObject(refusal);
      await expect(runner.listScriptsWithLastExecution({ cursor: 'garbage' })).rejects.toMatchObject(refusal);
    } finally {
      await db.cleanup();
    }
  });
});

describePostgres('runner on Prisma + PostgreSQL', (suite) => {
  it('stores all 200,000 lines of test_many_lines.py in order, exactly once', { timeout: 120_000 }, async () => {
    const db = await pgDatabase(suite.server());
    try {
      await runManyLines(db.prisma, 200_000);
    } finally {
      await db.cleanup();
    }
  });
});

/** Prints `total` numbered lines at a steady pace, so the database can fail in the middle. */
const STEADY = (total: number) =>
  [
    'import sys, time',
    `for i in range(1, ${total + 1}):`,
    '    sys.stdout.write(f"tick {i}\\n")',
    '    if i % 200 == 0:',
    '        sys.stdout.flush()',
    '        time.sleep(0.02)',
  ].join('\n');

describePostgres(
  'store faults on PostgreSQL',
  (suite) => {
    async function setup(retry: { attempts: number; minDelayMs: number; maxDelayMs: number; attemptTimeoutMs: number }) {
      const server = suite.server();
      const url = await server.createDatabase();
      // A short connection timeout: a database that is down fails fast and the runner retries.
      const prisma = new PgClient({ adapter: new PrismaPg({ connectionString: url, connectionTimeoutMillis: 1000 }) });
      await applyMigrations(prisma, { provider: 'postgresql' });
      const errors: Error[] = [];
      const runner = createScriptRunner({ store: prismaStore(prisma), logger: quiet, storeRetry: retry });
      runners.push(runner);
      runner.on('error', (e) => errors.push(e));
      return { server: server.own!, prisma, runner, errors, url };
    }

    it('loses and duplicates no line when PostgreSQL comes back within the retry window', { timeout: 90_000 }, async () => {
      const { server, prisma, runner, errors } = await setup({ attempts: 20, minDelayMs: 100, maxDelayMs: 500, attemptTimeoutMs: 3000 });
      const total = 20_000;
      const script = await runner.uploadScript({ filename: 'test_steady.py', content: STEADY(total) });
      let seen = 0;
      let stopped: Promise<void> | null = null;
      runner.on('execution:log', ({ lines }) => {
        seen = lines.at(-1)!.seq;
        if (seen >= 3000 && stopped === null) {
          stopped = (async () => {
            await server.stopServer();
            await new Promise((r) => setTimeout(r, 2000));
            await server.startServer();
          })();
        }
      });
      const execution = await runner.waitFor((await runner.run(script.id)).id);
      await stopped;
      expect(stopped).not.toBeNull();
      expect(errors.some((e) => /retrying/.test(e.message))).toBe(true);
      expect(execution).toMatchObject({ status: 'succeeded', lineCount: total });
      const { seqs, texts } = await storedSeqs(prisma, execution.id);
      expect(seqs).toEqual(Array.from({ length: total }, (_, i) => i + 1));
      expect(texts.every((t, i) => t === `tick ${i + 1}`)).toBe(true);
      expect((await prisma.scriptRunnerExecution.findUnique({ where: { id: execution.id } }))!.status).toBe('succeeded');
      await prisma.$disconnect();
    });

    it('ends the run failed with a clear message when PostgreSQL stays away, and the host survives', { timeout: 90_000 }, async () => {
      const { server, prisma, runner, errors, url } = await setup({ attempts: 3, minDelayMs: 100, maxDelayMs: 200, attemptTimeoutMs: 2000 });
      const script = await runner.uploadScript({ filename: 'test_steady.py', content: STEADY(1_000_000) });
      let stopping: Promise<void> | null = null;
      runner.on('execution:log', ({ lines }) => {
        if (lines.at(-1)!.seq >= 2000 && stopping === null) stopping = server.stopServer();
      });
      const started = Date.now();
      const execution = await runner.waitFor((await runner.run(script.id)).id);
      await stopping;
      expect(execution.status).toBe('failed');
      expect(execution.errorMessage).toMatch(/^could not store log lines after 3 attempts: /);
      expect(Date.now() - started).toBeLessThan(60_000);
      expect(errors.some((e) => (e as { code?: string }).code === 'store' && /stopping it/.test(e.message))).toBe(true);

      // When the database is back, a new runner on it marks the orphaned execution interrupted.
      await server.startServer();
      await runner.close();
      const prisma2 = new PgClient({ adapter: new PrismaPg({ connectionString: url }) });
      const runner2 = createScriptRunner({ store: prismaStore(prisma2), logger: quiet });
      runners.push(runner2);
      // The final record could not be written while the database was down: the row still said
      // running, and recovery ends it.
      const recovered = await runner2.getExecution(execution.id);
      expect(recovered.status).toBe('interrupted');
      const { seqs } = await storedSeqs(prisma2, execution.id);
      expect(seqs.length).toBeGreaterThanOrEqual(2000);
      expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
      await prisma.$disconnect();
      await prisma2.$disconnect();
    });
  },
  { ownServer: true },
);
