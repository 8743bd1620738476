/**
 * Test databases: a fresh SQLite file per test, and PostgreSQL databases on a private server the
 * suite starts itself (or on SCRIPTRUNNER_PG_URL when set). In CI a missing PostgreSQL fails the
 * suite; elsewhere the suite is reported as skipped with the command that installs it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PrismaBetterSqlite3 } from '@prisma/adapter-better-sqlite3';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { PrismaClient as PgClient } from '../../generated/postgresql/client.js';
import { PrismaClient as SqliteClient } from '../../generated/sqlite/client.js';
import { applyMigrations } from '../../src/index.js';
import { POSTGRES_MISSING, postgresAvailable, startPostgres, type PostgresServer } from './postgres.js';

export type SqliteClientType = InstanceType<typeof SqliteClient>;
export type PgClientType = InstanceType<typeof PgClient>;

export interface SqliteDatabase {
  prisma: SqliteClientType;
  file: string;
  cleanup(): Promise<void>;
}

export async function sqliteDatabase(options: { migrate?: boolean } = {}): Promise<SqliteDatabase> {
  const dir = mkdtempSync(join(tmpdir(), 'sr-sqlite-'));
  const file = join(dir, 'test.db');
  const prisma = new SqliteClient({ adapter: new PrismaBetterSqlite3({ url: `file:${file}` }) });
  if (options.migrate !== false) await applyMigrations(prisma, { provider: 'sqlite' });
  return {
    prisma,
    file,
    async cleanup() {
      await prisma.$disconnect();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface PgDatabase {
  prisma: PgClientType;
  url: string;
  cleanup(): Promise<void>;
}

/** A server: the suite's own, or the one SCRIPTRUNNER_PG_URL names (no stop/start there). */
export interface PgServerHandle {
  createDatabase(): Promise<string>;
  /** Only on a server this suite started itself. */
  own: PostgresServer | null;
  destroy(): Promise<void>;
}

let counter = 0;

function externalServer(adminUrl: string): PgServerHandle {
  const created: string[] = [];
  const admin = () => new pg.Client({ connectionString: adminUrl });
  return {
    own: null,
    async createDatabase() {
      const name = `scriptrunner_test_${process.pid}_${Date.now()}_${counter++}`;
      const client = admin();
      await client.connect();
      try {
        await client.query(`CREATE DATABASE "${name}"`);
      } finally {
        await client.end();
      }
      created.push(name);
      const url = new URL(adminUrl);
      url.pathname = `/${name}`;
      return url.toString();
    },
    async destroy() {
      const client = admin();
      await client.connect();
      try {
        for (const name of created) await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}

export async function pgDatabase(server: PgServerHandle, options: { migrate?: boolean } = {}): Promise<PgDatabase> {
  const url = await server.createDatabase();
  const prisma = new PgClient({ adapter: new PrismaPg({ connectionString: url, connectionTimeoutMillis: 5000 }) });
  if (options.migrate !== false) await applyMigrations(prisma, { provider: 'postgresql' });
  return { prisma, url, cleanup: () => prisma.$disconnect() };
}

export interface PostgresSuite {
  /** The server, available inside tests (after beforeAll). */
  server(): PgServerHandle;
}

/**
 * A describe block that gets a PostgreSQL server. `ownServer` forces a private server even when
 * SCRIPTRUNNER_PG_URL is set (fault tests stop and start it).
 */
export function describePostgres(name: string, body: (suite: PostgresSuite) => void, options: { ownServer?: boolean } = {}): void {
  const external = options.ownServer ? undefined : process.env.SCRIPTRUNNER_PG_URL;
  const runnable = external !== undefined || postgresAvailable();
  if (!runnable && process.env.CI !== 'true') {
    describe.skip(`${name} [skipped: ${POSTGRES_MISSING}]`, () => {
      it('needs PostgreSQL', () => {});
    });
    return;
  }
  describe(name, () => {
    let handle: PgServerHandle | null = null;
    beforeAll(async () => {
      // In CI a missing server is a failure, never a skip.
      if (!runnable) throw new Error(POSTGRES_MISSING);
      if (external !== undefined) handle = externalServer(external);
      else {
        const own = await startPostgres();
        handle = { own, createDatabase: () => own.createDatabase(), destroy: () => own.destroy() };
      }
    }, 60_000);
    afterAll(async () => {
      await handle?.destroy();
    }, 60_000);
    body({
      server() {
        if (!handle) throw new Error('the PostgreSQL server is not started');
        return handle;
      },
    });
  });
}
