/**
 * The core store conformance suite against Prisma on a SQLite file and on a real PostgreSQL server.
 */
import { runStoreConformance } from '@scriptrunner/core/testing';
import { prismaStore } from '../src/index.js';
import { describePostgres, pgDatabase, sqliteDatabase } from './support/databases.js';

runStoreConformance(
  'prisma on SQLite',
  async () => {
    const db = await sqliteDatabase();
    return { store: prismaStore(db.prisma), cleanup: db.cleanup };
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
