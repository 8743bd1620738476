/**
 * prismaStore's one-statement append: a batch that continues where the store's own last write
 * ended skips the overlap query. When that is wrong — the lines are already stored (a write whose
 * result was lost, or another writer) — the chunk's primary key collides and the store must fall
 * back to the overlap check instead of failing or duplicating. Two stores on one client stand in
 * for the writer that did not know.
 */
import { describe, expect, it } from 'vitest';
import { sampleExecution, sampleLines, sampleScript } from '@scriptrunner/core/testing';
import { prismaStore } from '../src/index.js';
import { describePostgres, pgDatabase, sqliteDatabase } from './support/databases.js';

type Db = { prisma: Parameters<typeof prismaStore>[0]; cleanup(): Promise<void> };

async function continuesOverStoredLines(db: Db): Promise<void> {
  try {
    const a = prismaStore(db.prisma);
    const b = prismaStore(db.prisma);
    const script = await a.createScript(sampleScript());
    const execution = await a.createExecution(sampleExecution(script.id, { status: 'running', startedAt: new Date() }));
    await b.appendLogs(execution.id, sampleLines(execution.id, 1, 5));
    // a does not know b's write: the overlap path stores 6..10 only.
    await a.appendLogs(execution.id, sampleLines(execution.id, 3, 10));
    // b believes it wrote up to 5, so 6..12 takes the one-statement path and meets a's chunk at 6.
    const retry = sampleLines(execution.id, 6, 12).map((l) => ({ ...l, text: `late ${l.seq}` }));
    await b.appendLogs(execution.id, retry);
    // and goes on from 12 without the overlap query again.
    await b.appendLogs(execution.id, sampleLines(execution.id, 13, 14));
    const read = await a.readLogs(execution.id, { limit: 100 });
    expect(read.map((l) => l.seq)).toEqual(Array.from({ length: 14 }, (_, i) => i + 1));
    expect(read[7]!.text).toBe(sampleLines(execution.id, 8, 8)[0]!.text); // the first stored version wins
    expect(read[10]!.text).toBe('late 11');
  } finally {
    await db.cleanup();
  }
}

describe('prismaStore appendLogs on SQLite', () => {
  it('falls back to the overlap check when a continuing batch meets lines already stored', async () => {
    await continuesOverStoredLines(await sqliteDatabase());
  });
});

describePostgres('prismaStore appendLogs on PostgreSQL', (suite) => {
  it('falls back to the overlap check when a continuing batch meets lines already stored', async () => {
    await continuesOverStoredLines(await pgDatabase(suite.server()));
  });
});
