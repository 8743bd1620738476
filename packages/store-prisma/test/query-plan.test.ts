/**
 * Reading the last page of a long log must not scan the log: the query Prisma really sends for
 * readLogs (captured from the client's query log) is planned through the (executionId, lastSeq)
 * index on both databases.
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
import { applyMigrations, prismaStore } from '../src/index.js';
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

describe('query plan: SQLite', () => {
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
