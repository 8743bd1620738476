/**
 * The core store conformance suite against Prisma on a SQLite file and on a real PostgreSQL server,
 * and against sqliteStore with `writeLogsOffThread` (log batches written by a worker thread with
 * its own connection).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runStoreConformance } from '@scriptrunner/core/testing';
import { prismaStore } from '../src/index.js';
import { sqliteStore } from '../src/sqlite.js';
import { describePostgres, pgDatabase, sqliteDatabase } from './support/databases.js';

runStoreConformance(
  'prisma on SQLite',
  async () => {
    const db = await sqliteDatabase();
    return { store: prismaStore(db.prisma), cleanup: db.cleanup };
  },
  { largeLogLines: 100_000 },
);

runStoreConformance(
  'sqliteStore, log batches written off the main thread',
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sr-sqlite-store-'));
    const store = sqliteStore({ file: join(dir, 'store.db'), writeLogsOffThread: true });
    await store.ready;
    return {
      store,
      async cleanup() {
        await store.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
  { largeLogLines: 100_000 },
);

describePostgres('prisma on PostgreSQL', (suite) => {
  runStoreConformance(
    'prisma on PostgreSQL',
    async () => {
      const db = await pgDatabase(suite.server());
      return { store: prismaStore(db.prisma), cleanup: db.cleanup };
    },
    { largeLogLines: 100_000 },
  );
});
