/**
 * Reading the last page of a long log must not scan the log: the query Prisma really sends for
 * readLogs (captured from the client's query log) is planned through the (executionId, lastSeq)
 * index on both databases. Likewise the script list's newest-execution lookup goes through the
 * (scriptId, queuedAt, id) index instead of reading every execution of the listed scripts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PrismaBetterSqlite3 } from '@prisma/adapter-better-sqlite3';
import { PrismaPg } from '@prisma/adapter-pg';
import { sampleExecution, sampleLines, sampleScript } from '@scriptrunner/core/testing';
import { describe, expect, it } from 'vitest';
import { PrismaClient as PgClient } from '../generated/postgresql/client.js';
import { PrismaClient as SqliteClient } from '../generated/sqlite/client.js';
import { applyMigrations, prismaStore, type PrismaClientLike } from '../src/index.js';
import { describePostgres } from './support/databases.js';

interface QueryEvent {
  query: string;
  params: string;
}

/** 1,000,000 lines in 500 chunk rows, then the last page, capturing the SQL of that read. */
async function lastPageQuery(prisma: SqliteClient | PgClient): Promise<{ sql: string; params: unknown[]; lines: number[] }> {
  const captured: QueryEvent[] = [];
  (prisma as unknown as { $on(event: 'query', cb: (e: QueryEvent) => void): void }).$on('query', (e) => captured.push(e));
  const store = prismaStore(prisma);
  const script = await store.createScript(sampleScript());
  const execution = await store.createExecution(sampleExecution(script.id, { status: 'running' }));
  for (let from = 1; from <= 1_000_000; from += 2000) await store.appendLogs(execution.id, sampleLines(execution.id, from, from + 1999));
  captured.length = 0;
  const page = await store.readLogs(execution.id, { afterSeq: 999_990, limit: 100 });
  const read = captured.find((e) => e.query.includes('scriptrunner_log_chunks') && /select/i.test(e.query));
  if (!read) throw new Error(`no chunk query captured: ${JSON.stringify(captured)}`);
  return { sql: read.query, params: JSON.parse(read.params) as unknown[], lines: page.map((l) => l.seq) };
}

/**
 * 50 scripts with 40 executions each, then one page of 50 with their last executions, capturing
 * every statement of that call. The newest-execution lookup is the one raw statement.
 */
async function scriptListQueries(prisma: SqliteClient | PgClient) {
  const captured: QueryEvent[] = [];
  (prisma as unknown as { $on(event: 'query', cb: (e: QueryEvent) => void): void }).$on('query', (e) => captured.push(e));
  const store = prismaStore(prisma);
  const base = Date.now() - 1_000_000;
  const newest = new Map<string, string>();
  for (let i = 0; i < 50; i++) {
    const script = await store.createScript(sampleScript());
    const runs = Array.from({ length: 40 }, (_, run) =>
      sampleExecution(script.id, { id: `${script.id}-${String(run).padStart(2, '0')}`, queuedAt: new Date(base + ((run * 17) % 40) * 1000) }),
    );
    await (prisma as unknown as PrismaClientLike).scriptRunnerExecution.createMany({ data: runs.map((e) => ({ ...e, args: [] })) });
    newest.set(script.id, runs.find((e) => e.queuedAt.getTime() === base + 39_000)!.id);
  }
  captured.length = 0;
  const page = await store.listScriptsWithLastExecution({ status: 'all', limit: 50 });
  expect(page.items).toHaveLength(50);
  for (const item of page.items) expect(item.lastExecution!.id).toBe(newest.get(item.id));
  const raw = captured.find((e) => /LIMIT 1\)/.test(e.query));
  if (!raw) throw new Error(`no newest-execution query captured: ${JSON.stringify(captured)}`);
  return { statements: captured.map((e) => e.query), sql: raw.query, params: JSON.parse(raw.params) as unknown[] };
}

describe('query plan: SQLite', () => {
  it('lists 50 scripts with their last executions in 3 statements, one index lookup per script', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sr-plan-'));
    const prisma = new SqliteClient({
      adapter: new PrismaBetterSqlite3({ url: `file:${join(dir, 'plan.db')}` }),
      log: [{ emit: 'event', level: 'query' }],
    });
    try {
      await applyMigrations(prisma, { provider: 'sqlite' });
      const { statements, sql, params } = await scriptListQueries(prisma);
      // The scripts page (without content), the newest ids, the 50 executions by id: never all 2,000.
      expect(statements).toHaveLength(3);
      expect(statements[0]).not.toMatch(/content/);
      const plan = (await prisma.$queryRawUnsafe(`EXPLAIN QUERY PLAN ${sql}`, ...params)) as Array<{ detail: string }>;
      const details = plan.map((p) => p.detail).join(' / ');
      expect(details).toMatch(/SEARCH e USING (COVERING )?INDEX scriptrunner_executions_scriptId_queuedAt_id_idx \(scriptId=\?\)/);
      expect(details).not.toMatch(/SCAN e\b|TEMP B-TREE/);
    } finally {
      await prisma.$disconnect();
      rmSync(dir, { recursive: true, force: true });
    }
  });


  it('reads the last page of a 1M-line log through the index', { timeout: 120_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sr-plan-'));
    const prisma = new SqliteClient({
      adapter: new PrismaBetterSqlite3({ url: `file:${join(dir, 'plan.db')}` }),
      log: [{ emit: 'event', level: 'query' }],
    });
    try {
      await applyMigrations(prisma, { provider: 'sqlite' });
      const { sql, params, lines } = await lastPageQuery(prisma);
      expect(lines).toEqual(Array.from({ length: 10 }, (_, i) => 999_991 + i));
      const plan = (await prisma.$queryRawUnsafe(`EXPLAIN QUERY PLAN ${sql}`, ...params)) as Array<{ detail: string }>;
      const details = plan.map((p) => p.detail).join(' / ');
      expect(details).toMatch(/USING INDEX scriptrunner_log_chunks_executionId_lastSeq_idx \(executionId=\? AND lastSeq>\?\)/);
      expect(details).not.toMatch(/\bSCAN\b/);
    } finally {
      await prisma.$disconnect();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describePostgres('query plan: PostgreSQL', (suite) => {
  it('lists 50 scripts with their last executions in 3 statements, one index lookup per script', async () => {
    const url = await suite.server().createDatabase();
    const prisma = new PgClient({ adapter: new PrismaPg({ connectionString: url }), log: [{ emit: 'event', level: 'query' }] });
    try {
      await applyMigrations(prisma, { provider: 'postgresql' });
      const { statements, sql, params } = await scriptListQueries(prisma);
      expect(statements).toHaveLength(3);
      expect(statements[0]).not.toMatch(/content/);
      await prisma.$executeRawUnsafe('ANALYZE "scriptrunner_executions"');
      const plan = (await prisma.$queryRawUnsafe(`EXPLAIN ${sql}`, ...params)) as Array<{ 'QUERY PLAN': string }>;
      const text = plan.map((p) => p['QUERY PLAN']).join('\n');
      expect(text).toMatch(/Index (Only )?Scan Backward using "scriptrunner_executions_scriptId_queuedAt_id_idx" on "?scriptrunner_executions"? e/);
      expect(text).not.toMatch(/Seq Scan on "?scriptrunner_executions|Sort/);
    } finally {
      await prisma.$disconnect();
    }
  });


  it('reads the last page of a 1M-line log through the index', { timeout: 120_000 }, async () => {
    const url = await suite.server().createDatabase();
    const prisma = new PgClient({ adapter: new PrismaPg({ connectionString: url }), log: [{ emit: 'event', level: 'query' }] });
    try {
      await applyMigrations(prisma, { provider: 'postgresql' });
      const { sql, params, lines } = await lastPageQuery(prisma);
      expect(lines).toEqual(Array.from({ length: 10 }, (_, i) => 999_991 + i));
      await prisma.$executeRawUnsafe('ANALYZE "scriptrunner_log_chunks"');
      const plan = (await prisma.$queryRawUnsafe(`EXPLAIN ${sql}`, ...params)) as Array<{ 'QUERY PLAN': string }>;
      const text = plan.map((p) => p['QUERY PLAN']).join('\n');
      expect(text).toMatch(/Index Scan using "scriptrunner_log_chunks_executionId_lastSeq_idx"/);
      expect(text).not.toMatch(/Seq Scan/);
    } finally {
      await prisma.$disconnect();
    }
  });
});
