/**
 * persist-print: the pipeline-print workloads (`print()` and `sys.stdout.write`) through the runner
 * into the database stores — sqliteStore, prismaStore on an application's own SQLite client (set
 * up as the README says: applyMigrations), postgresStore on a private PostgreSQL server — each
 * against a bare spawn of the same script, interleaved.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PrismaBetterSqlite3 } from '@prisma/adapter-better-sqlite3';
import { applyMigrations, prismaStore, type PrismaClientLike } from '@scriptrunner/store-prisma';
import { postgresStore } from '@scriptrunner/store-prisma/postgresql';
import { sqliteStore } from '@scriptrunner/store-prisma/sqlite';
import { PrismaClient as SqliteClient } from '../../packages/store-prisma/generated/sqlite/client.js';
import { startPostgres, type PostgresServer } from '../../packages/store-prisma/test/support/postgres.js';
import { fmt, type Row } from '../lib.js';
import { describeResults, measureWorkloads } from './support-process/print-workload.js';
import { resolvePython } from './support-process/python.js';

const TARGETS = { sqliteStore: 1.2, 'sqliteStore off-thread': 1.2, 'own client': 1.3, postgresStore: 1.2 } as const;

export const run: Row = async (ctx) => {
  const sizes = ctx.quick ? { lines: 200_000, reps: 2 } : { lines: 1_000_000, reps: 3 };
  const python = resolvePython();
  const dir = mkdtempSync(join(tmpdir(), 'sr-bench-persist-print-'));
  let pg: PostgresServer | null = null;
  const sqlite = sqliteStore({ file: join(dir, 'embedded.db') });
  const offThread = sqliteStore({ file: join(dir, 'off-thread.db'), writeLogsOffThread: true });
  // The application's client, with Prisma's defaults; applyMigrations is what the README has it call.
  const app = new SqliteClient({ adapter: new PrismaBetterSqlite3({ url: `file:${join(dir, 'app.db')}` }) });
  let postgres: ReturnType<typeof postgresStore> | null = null;
  try {
    ctx.log('starting a private PostgreSQL server');
    pg = await startPostgres();
    postgres = postgresStore({ connectionString: await pg.createDatabase() });
    await Promise.all([sqlite.ready, offThread.ready, postgres.ready, applyMigrations(app as unknown as PrismaClientLike, { provider: 'sqlite' })]);
    const own = prismaStore(app as unknown as PrismaClientLike);
    const pgStore = postgres;
    const { results, bare } = await measureWorkloads(
      ctx,
      'persist-print',
      python,
      [
        { name: 'sqliteStore', target: TARGETS.sqliteStore, store: () => sqlite },
        { name: 'sqliteStore off-thread', target: TARGETS['sqliteStore off-thread'], store: () => offThread },
        { name: 'own client', target: TARGETS['own client'], store: () => own },
        { name: 'postgresStore', target: TARGETS.postgresStore, store: () => pgStore },
      ],
      sizes,
    );
    const missed = results.filter((r) => r.ratio > r.target);
    return {
      row: 'persist-print',
      what:
        `the pipeline-print scripts (${fmt.int(sizes.lines)} lines, \`print()\` and \`sys.stdout.write\`, \`python3 -u\`) through createScriptRunner ` +
        `into sqliteStore (its own client; and with \`writeLogsOffThread: true\`), prismaStore on an application's own SQLite client after applyMigrations, and postgresStore (private ` +
        `PostgreSQL server, fsync=off); run() → waitFor(), every stored line read back and checked; each against a bare spawn of the same script; ` +
        `medians of ${sizes.reps} interleaved repetitions of the per-repetition ratio`,
      measured: describeResults(results, bare),
      target: `≤ ${TARGETS.sqliteStore}× sqliteStore (also with writeLogsOffThread), ≤ ${TARGETS['own client']}× own client, ≤ ${TARGETS.postgresStore}× postgresStore (print and write)`,
      met: missed.length === 0,
      reading:
        missed.length === 0
          ? 'Every store keeps up with Python within its target on both workloads.'
          : `Over target: ${missed.map((r) => `${r.name} ${r.workload} ${fmt.ratio(r.ratio)} (target ${r.target}×)`).join(', ')}. ` +
            'Measured causes (CPU profiles of 1M lines): through Prisma on SQLite the event loop spends ~0.2 ms of Prisma client code per ' +
            'statement (one per batch: a batch that continues the store\'s last write skips the overlap query; two per batch measured ' +
            'write 1.62× sqliteStore, 1.64× own client), re-prepares each statement in the adapter (0.35–0.75 s) and runs the insert ' +
            "synchronously (1.0–1.7 s), so reading the pipes and writing take turns; sqliteStore's `writeLogsOffThread` moves the writes " +
            "to a worker (off by default: +196 MB on the memory row's 1 GiB case). On PostgreSQL the event loop is idle ~70% of the run: " +
            'the three processes (Python, Node, PostgreSQL) share 2 cores and the box is CPU-bound. A raw one-statement insert ' +
            '(INSERT … WHERE NOT EXISTS; write, own client 6.2 → 4.6–5.0 s) was dropped: Prisma keeps the arguments of its last ~100 debug calls — ' +
            "a raw query's values twice — which took the memory row to +350 MB. What would fix it: writing log chunks below Prisma's " +
            "client (the driver adapter's connection, or a worker as sqliteStore does, once its memory is under the bound) and, for " +
            'PostgreSQL, more cores than the three processes need.',
    };
  } finally {
    await sqlite.close();
    await offThread.close();
    await app.$disconnect();
    await postgres?.close();
    await pg?.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
};
