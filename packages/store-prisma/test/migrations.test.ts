/**
 * applyMigrations, the shipped migration files, the ready-made stores, and prismaStore on a client
 * generated from an application's own schema.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { PrismaBetterSqlite3 } from '@prisma/adapter-better-sqlite3';
import { createScriptRunner } from '@scriptrunner/core';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MIGRATIONS } from '../generated/migrations.js';
import { PrismaClient as AppClient } from '../generated/test-app/client.js';
import { applyMigrations, prismaStore } from '../src/index.js';
import { splitStatements } from '../src/migrate.js';
import { postgresStore } from '../src/postgresql.js';
import { sqliteStore } from '../src/sqlite.js';
import { describePostgres, pgDatabase, sqliteDatabase } from './support/databases.js';

const migrationsDir = fileURLToPath(new URL('../prisma/migrations/', import.meta.url));
const quiet = { warn: () => {}, error: () => {} };

describe('migration files', () => {
  for (const provider of ['sqlite', 'postgresql'] as const) {
    it(`${provider}: the embedded SQL is exactly the shipped migration.sql files, in Prisma's layout`, () => {
      const dirs = readdirSync(join(migrationsDir, provider)).sort();
      expect(dirs.length).toBeGreaterThan(0);
      for (const dir of dirs) expect(dir).toMatch(/^\d{14}_[a-z0-9_]+$/);
      expect(MIGRATIONS[provider].map((m) => m.name)).toEqual(dirs);
      for (const migration of MIGRATIONS[provider]) {
        expect(migration.sql).toBe(readFileSync(join(migrationsDir, provider, migration.name, 'migration.sql'), 'utf8'));
      }
    });
  }

  it('splits a migration into statements without comments', () => {
    expect(splitStatements('-- one\nCREATE TABLE "a" ("x" TEXT);\n\n-- two\nCREATE INDEX "i" ON "a"("x");\n')).toEqual([
      'CREATE TABLE "a" ("x" TEXT)',
      'CREATE INDEX "i" ON "a"("x")',
    ]);
  });
});

describe('applyMigrations on SQLite', () => {
  it('applies once, records it, and skips it afterwards', async () => {
    const db = await sqliteDatabase({ migrate: false });
    try {
      const names = MIGRATIONS.sqlite.map((m) => m.name);
      expect(await applyMigrations(db.prisma, { provider: 'sqlite' })).toEqual(names.map((name) => ({ name, state: 'applied' })));
      expect(await applyMigrations(db.prisma, { provider: 'sqlite' })).toEqual(names.map((name) => ({ name, state: 'skipped' })));
      const recorded = (await db.prisma.$queryRawUnsafe(`SELECT "name", "checksum" FROM "_scriptrunner_migrations"`)) as unknown[];
      expect(recorded).toHaveLength(names.length);
    } finally {
      await db.cleanup();
    }
  });

  it('skips a migration that Prisma Migrate already applied', async () => {
    const db = await sqliteDatabase({ migrate: false });
    try {
      // What `prisma migrate deploy` leaves behind: the tables and a finished row in _prisma_migrations.
      for (const statement of splitStatements(MIGRATIONS.sqlite[0]!.sql)) await db.prisma.$executeRawUnsafe(statement);
      await db.prisma.$executeRawUnsafe(
        `CREATE TABLE "_prisma_migrations" ("id" TEXT PRIMARY KEY, "checksum" TEXT NOT NULL, "finished_at" DATETIME, "migration_name" TEXT NOT NULL, "logs" TEXT, "rolled_back_at" DATETIME, "started_at" DATETIME NOT NULL DEFAULT current_timestamp, "applied_steps_count" INTEGER NOT NULL DEFAULT 0)`,
      );
      await db.prisma.$executeRawUnsafe(
        `INSERT INTO "_prisma_migrations" ("id", "checksum", "finished_at", "migration_name") VALUES ('x', 'y', current_timestamp, ?)`,
        MIGRATIONS.sqlite[0]!.name,
      );
      // The ones after it are still applied here.
      expect(await applyMigrations(db.prisma, { provider: 'sqlite' })).toEqual(
        MIGRATIONS.sqlite.map((m, i) => ({ name: m.name, state: i === 0 ? 'skipped' : 'applied' })),
      );
    } finally {
      await db.cleanup();
    }
  });

  it('a database of the first release gains the later columns and keeps its rows (old runs read as no environment)', async () => {
    const db = await sqliteDatabase({ migrate: false });
    try {
      // The first release's database: its migration alone, as applyMigrations recorded it then.
      const [first] = MIGRATIONS.sqlite;
      for (const statement of splitStatements(first!.sql)) await db.prisma.$executeRawUnsafe(statement);
      await db.prisma.$executeRawUnsafe(`CREATE TABLE "_scriptrunner_migrations" ("name" TEXT NOT NULL PRIMARY KEY, "checksum" TEXT NOT NULL, "appliedAt" DATETIME NOT NULL)`);
      await db.prisma.$executeRawUnsafe(
        `INSERT INTO "_scriptrunner_migrations" VALUES (?, ?, ?)`,
        first!.name,
        createHash('sha256').update(first!.sql).digest('hex'),
        new Date(),
      );
      await db.prisma.$executeRawUnsafe(
        `INSERT INTO "scriptrunner_scripts" ("id", "filename", "runtime", "sizeBytes", "sha256", "metadata", "status", "createdAt", "updatedAt", "content") VALUES ('old', 'test_old.py', 'python', 1, 'x', '{}', 'active', 0, 0, X'41')`,
      );
      await db.prisma.$executeRawUnsafe(
        `INSERT INTO "scriptrunner_executions" ("id", "scriptId", "status", "args", "queuedAt") VALUES ('old-run', 'old', 'succeeded', '[]', 0)`,
      );
      const applied = await applyMigrations(db.prisma, { provider: 'sqlite' });
      expect(applied[0]).toEqual({ name: first!.name, state: 'skipped' });
      expect(applied.slice(1).every((m) => m.state === 'applied')).toBe(true);
      const store = prismaStore(db.prisma);
      expect(await store.getScript('old')).toMatchObject({ filename: 'test_old.py', environment: null });
      expect(await store.getExecution('old-run')).toMatchObject({ status: 'succeeded', environment: null });
    } finally {
      await db.cleanup();
    }
  });

  it('refuses to continue when an applied migration was changed', async () => {
    const db = await sqliteDatabase();
    try {
      await db.prisma.$executeRawUnsafe(`UPDATE "_scriptrunner_migrations" SET "checksum" = 'tampered'`);
      await expect(applyMigrations(db.prisma, { provider: 'sqlite' })).rejects.toThrow(/was applied with different SQL/);
    } finally {
      await db.cleanup();
    }
  });

  it('rejects an unknown provider with a clear message', async () => {
    const db = await sqliteDatabase({ migrate: false });
    try {
      await expect(applyMigrations(db.prisma, { provider: 'mysql' as never })).rejects.toThrow(/unknown provider "mysql"/);
    } finally {
      await db.cleanup();
    }
  });
});

describePostgres('applyMigrations on PostgreSQL', (suite) => {
  it('applies once and is idempotent, also when two appliers race', async () => {
    const db = await pgDatabase(suite.server(), { migrate: false });
    try {
      const results = await Promise.all([
        applyMigrations(db.prisma, { provider: 'postgresql' }),
        applyMigrations(db.prisma, { provider: 'postgresql' }),
      ]);
      expect(results.map((r) => r[0]!.state).sort()).toEqual(['applied', 'skipped']);
      expect((await applyMigrations(db.prisma, { provider: 'postgresql' }))[0]!.state).toBe('skipped');
    } finally {
      await db.cleanup();
    }
  });

  it('postgresStore() migrates on first use and runs scripts', async () => {
    const url = await suite.server().createDatabase();
    const store = postgresStore({ connectionString: url });
    const runner = createScriptRunner({ store, logger: quiet });
    try {
      const script = await runner.uploadScript({ filename: 'test_pg.py', content: 'print("on postgres")' });
      const execution = await runner.waitFor((await runner.run(script.id)).id);
      expect(execution.status).toBe('succeeded');
      expect((await runner.readLogs(execution.id)).map((l) => l.text)).toEqual(['on postgres']);
    } finally {
      await runner.close();
      await store.close();
    }
  });
});

describe('ready-made and application clients', () => {
  it('sqliteStore() creates its file, migrates, persists across restarts', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sr-embedded-'));
    const file = join(dir, 'nested', 'scriptrunner.db');
    try {
      const store = sqliteStore({ file });
      const runner = createScriptRunner({ store, logger: quiet });
      // Every method of the Prisma store, gated on the migration: none left out (artifacts once were).
      const methods = (o: object) => Object.entries(o).filter(([, v]) => typeof v === 'function').map(([k]) => k).sort();
      expect(methods(store)).toEqual([...methods(prismaStore(store.prisma)), 'close'].sort());
      const code = 'import os, pathlib\nprint("kept")\npathlib.Path(os.environ["SCRIPTRUNNER_OUTPUT_DIR"], "kept.txt").write_text("kept too")\n';
      const script = await runner.uploadScript({ filename: 'test_embedded.py', content: code });
      const execution = await runner.waitFor((await runner.run(script.id)).id);
      expect(execution.artifactCount).toBe(1);
      await runner.close();
      await store.close();

      const reopened = sqliteStore({ file });
      const runner2 = createScriptRunner({ store: reopened, logger: quiet });
      expect((await runner2.getScript(script.id)).totalRuns).toBe(1);
      expect((await runner2.getExecution(execution.id)).status).toBe('succeeded');
      expect((await runner2.readLogs(execution.id)).map((l) => l.text)).toEqual(['kept', '[scriptrunner] artifact "kept.txt" kept (8 B)']);
      const { content } = await runner2.readArtifact(execution.id, 'kept.txt');
      const bytes: Uint8Array[] = [];
      for await (const chunk of content) bytes.push(chunk);
      expect(Buffer.concat(bytes).toString()).toBe('kept too');
      const mode = (await reopened.prisma.$queryRawUnsafe('PRAGMA journal_mode')) as Array<{ journal_mode: string }>;
      expect(mode[0]!.journal_mode).toBe('wal');
      await runner2.close();
      await reopened.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a store whose database file is not a database fails its calls with the reason, without crashing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sr-corrupt-'));
    const file = join(dir, 'corrupt.db');
    writeFileSync(file, 'this is not an SQLite database, it is a text file that someone put here'.repeat(100));
    try {
      const store = sqliteStore({ file });
      await expect(store.ready).rejects.toThrow(/not a database/);
      const runner = createScriptRunner({ store, logger: quiet });
      await expect(runner.listScripts()).rejects.toMatchObject({ code: 'store' });
      await expect(runner.uploadScript({ filename: 'test_x.py', content: 'x' })).rejects.toMatchObject({ code: 'store' });
      await runner.close();
      await store.close();
      // Nothing was written over the file.
      expect(readFileSync(file, 'utf8').startsWith('this is not an SQLite database')).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("prismaStore works on an application's own client, beside the application's models", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sr-app-'));
    // The application's client: its own AppUser model plus scriptrunner's, one schema, one client.
    const prisma = new AppClient({ adapter: new PrismaBetterSqlite3({ url: `file:${join(dir, 'app.db')}` }) });
    try {
      await prisma.$executeRawUnsafe(`CREATE TABLE "AppUser" ("id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, "email" TEXT NOT NULL)`);
      await applyMigrations(prisma, { provider: 'sqlite' });
      await prisma.appUser.create({ data: { email: 'analyst@example.com' } });
      const runner = createScriptRunner({ store: prismaStore(prisma), logger: quiet });
      const script = await runner.uploadScript({ filename: 'test_app.py', content: 'print("inside the app")' });
      const execution = await runner.waitFor((await runner.run(script.id)).id);
      expect(execution.status).toBe('succeeded');
      expect(await prisma.scriptRunnerExecution.count()).toBe(1);
      expect(await prisma.appUser.count()).toBe(1);
      await runner.close();
    } finally {
      await prisma.$disconnect();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('SQLite settings the store needs', () => {
  const pragma = async (prisma: { $queryRawUnsafe(q: string): Promise<unknown> }, name: string) =>
    String(Object.values(((await prisma.$queryRawUnsafe(`PRAGMA ${name}`)) as Array<Record<string, unknown>>)[0]!)[0]);

  async function appClient() {
    const dir = mkdtempSync(join(tmpdir(), 'sr-pragma-'));
    const prisma = new AppClient({ adapter: new PrismaBetterSqlite3({ url: `file:${join(dir, 'app.db')}` }) });
    return { prisma, async cleanup() { await prisma.$disconnect(); rmSync(dir, { recursive: true, force: true }); } };
  }

  it('applyMigrations sets WAL, synchronous=NORMAL and busy_timeout on the application client (unless told not to)', async () => {
    const untouched = await appClient();
    const tuned = await appClient();
    try {
      await applyMigrations(untouched.prisma, { provider: 'sqlite', sqliteSettings: false });
      // Prisma's defaults: a rollback journal and a sync per commit.
      expect([await pragma(untouched.prisma, 'journal_mode'), await pragma(untouched.prisma, 'synchronous')]).toEqual(['delete', '2']);
      await applyMigrations(tuned.prisma, { provider: 'sqlite' });
      expect(await pragma(tuned.prisma, 'journal_mode')).toBe('wal');
      expect(await pragma(tuned.prisma, 'synchronous')).toBe('1');
      expect(await pragma(tuned.prisma, 'busy_timeout')).toBe('5000');
    } finally {
      await untouched.cleanup();
      await tuned.cleanup();
    }
  });

  it('prismaStore on a client without them says once how to fix it; with them it says nothing', async () => {
    for (const tuned of [false, true]) {
      const app = await appClient();
      const warnings: string[] = [];
      try {
        await applyMigrations(app.prisma, { provider: 'sqlite', sqliteSettings: tuned });
        const runner = createScriptRunner({ store: prismaStore(app.prisma, { logger: { warn: (m) => warnings.push(m) } }), logger: quiet });
        const script = await runner.uploadScript({ filename: 'test_pragma.py', content: 'print(1)\nprint(2)' });
        for (let i = 0; i < 2; i++) expect((await runner.waitFor((await runner.run(script.id)).id)).status).toBe('succeeded');
        await runner.close();
        if (tuned) expect(warnings).toEqual([]);
        else {
          await expect.poll(() => warnings.length).toBe(1);
          expect(warnings[0]).toMatch(/journal_mode=delete, synchronous=FULL/);
          expect(warnings[0]).toContain("applyMigrations(prisma, { provider: 'sqlite' })");
          expect(warnings[0]).toContain('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;');
        }
      } finally {
        await app.cleanup();
      }
    }
  });
});
