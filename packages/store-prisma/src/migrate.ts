/**
 * applyMigrations: applies the package's SQL migrations through a PrismaClient, for the embedded
 * default and for environments without Prisma's schema engine. Apps that have the engine can apply
 * the same files with `prisma migrate deploy` instead; migrations recorded by Prisma are skipped here.
 */
import { createHash } from 'node:crypto';
import { MIGRATIONS } from '../generated/migrations.js';
import type { PrismaClientLike } from './client.js';

export type Provider = 'sqlite' | 'postgresql';

export interface ApplyMigrationsOptions {
  provider: Provider;
  /**
   * SQLite only: also give the client's connection what the store needs (see `SQLITE_SETTINGS`).
   * Default true; false leaves the database's settings as they are.
   */
  sqliteSettings?: boolean;
}

/**
 * What the store needs from SQLite, and why. WAL: log viewers read while a run writes, and a commit
 * appends to the log instead of rewriting pages. synchronous=NORMAL: a commit waits for no disk
 * sync (still durable across an application crash; the last commits may be lost on a power cut).
 * busy_timeout: a second connection (another process, a migration) waits instead of failing.
 * Without them (Prisma's defaults: rollback journal, synchronous=FULL) every log batch waits for
 * fsync, and a run writing 100,000 lines/s runs at a fraction of that.
 */
export const SQLITE_SETTINGS = { journal_mode: 'wal', synchronous: 1, busy_timeout: 5000 } as const;

/**
 * Applies SQLITE_SETTINGS to the client's connection (journal_mode is kept by the file; the other
 * two hold per connection — Prisma's better-sqlite3 adapter has one).
 */
export async function applySqliteSettings(prisma: PrismaClientLike): Promise<void> {
  await prisma.$queryRawUnsafe(`PRAGMA journal_mode = ${SQLITE_SETTINGS.journal_mode.toUpperCase()}`);
  await prisma.$executeRawUnsafe(`PRAGMA synchronous = ${SQLITE_SETTINGS.synchronous}`);
  await prisma.$queryRawUnsafe(`PRAGMA busy_timeout = ${SQLITE_SETTINGS.busy_timeout}`);
}

/** What differs from SQLITE_SETTINGS on this connection, e.g. `journal_mode=delete, synchronous=2`; null when nothing. */
export async function sqliteSettingsProblem(prisma: PrismaClientLike): Promise<string | null> {
  const value = async (pragma: string) => {
    const rows = (await prisma.$queryRawUnsafe(`PRAGMA ${pragma}`)) as Array<Record<string, unknown>>;
    const row = rows[0] ?? {};
    return String(Object.values(row)[0]).toLowerCase();
  };
  const problems: string[] = [];
  const journal = await value('journal_mode');
  // An in-memory database has no journal file to choose.
  if (journal !== SQLITE_SETTINGS.journal_mode && journal !== 'memory') problems.push(`journal_mode=${journal}`);
  const synchronous = Number(await value('synchronous'));
  if (synchronous > SQLITE_SETTINGS.synchronous) problems.push(`synchronous=${synchronous === 2 ? 'FULL' : synchronous === 3 ? 'EXTRA' : synchronous}`);
  return problems.length > 0 ? problems.join(', ') : null;
}

export interface MigrationStatus {
  name: string;
  /** `applied` now, or `skipped` because it was applied before (by this function or by Prisma Migrate). */
  state: 'applied' | 'skipped';
}

const TRACKING_TABLE = '_scriptrunner_migrations';
// Serialises concurrent appliers on PostgreSQL (two app instances starting at once).
const PG_LOCK_KEY = 727_274_001;

/** Statements of a migration file: our files end every statement with `;` at the end of a line. */
export function splitStatements(sql: string): string[] {
  return sql
    .split(/;\s*$/m)
    .map((statement) =>
      statement
        .split('\n')
        .filter((line) => !line.trim().startsWith('--'))
        .join('\n')
        .trim(),
    )
    .filter((statement) => statement.length > 0);
}

function checksum(sql: string): string {
  return createHash('sha256').update(sql).digest('hex');
}

async function tableExists(tx: PrismaClientLike, provider: Provider, table: string): Promise<boolean> {
  const rows = (await (provider === 'sqlite'
    ? tx.$queryRawUnsafe(`SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?`, table)
    : tx.$queryRawUnsafe(`SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema() AND tablename = $1`, table))) as unknown[];
  return rows.length > 0;
}

/**
 * Applies every migration not applied yet, each in its own transaction, and records it in
 * `_scriptrunner_migrations`. Idempotent: safe to call at every start. Throws when a recorded
 * migration's SQL has changed since it was applied.
 */
export async function applyMigrations(prisma: PrismaClientLike, options: ApplyMigrationsOptions): Promise<MigrationStatus[]> {
  const { provider } = options;
  const migrations = MIGRATIONS[provider];
  if (!migrations) throw new Error(`[scriptrunner] unknown provider "${String(provider)}": use "sqlite" or "postgresql"`);
  const timestamp = provider === 'sqlite' ? 'DATETIME' : 'TIMESTAMP(3)';
  const results: MigrationStatus[] = [];
  for (const migration of migrations) {
    const sum = checksum(migration.sql);
    const state = await prisma.$transaction(
      async (tx: PrismaClientLike) => {
        if (provider === 'postgresql') await tx.$executeRawUnsafe(`SELECT pg_advisory_xact_lock(${PG_LOCK_KEY})`);
        // Inside the lock: concurrent CREATE TABLE IF NOT EXISTS can still collide on PostgreSQL.
        await tx.$executeRawUnsafe(
          `CREATE TABLE IF NOT EXISTS "${TRACKING_TABLE}" ("name" TEXT NOT NULL PRIMARY KEY, "checksum" TEXT NOT NULL, "appliedAt" ${timestamp} NOT NULL)`,
        );
        const param = provider === 'sqlite' ? '?' : '$1';
        const recorded = (await tx.$queryRawUnsafe(`SELECT "checksum" FROM "${TRACKING_TABLE}" WHERE "name" = ${param}`, migration.name)) as Array<{
          checksum: string;
        }>;
        if (recorded.length > 0) {
          if (recorded[0]!.checksum !== sum) {
            throw new Error(
              `[scriptrunner] migration ${migration.name} was applied with different SQL (checksum ${recorded[0]!.checksum}); ` +
                'restore the original file or migrate by hand',
            );
          }
          return 'skipped' as const;
        }
        if (await tableExists(tx, provider, '_prisma_migrations')) {
          const byPrisma = (await tx.$queryRawUnsafe(
            `SELECT 1 AS one FROM "_prisma_migrations" WHERE "migration_name" = ${param} AND "finished_at" IS NOT NULL AND "rolled_back_at" IS NULL`,
            migration.name,
          )) as unknown[];
          if (byPrisma.length > 0) return 'skipped' as const;
        }
        for (const statement of splitStatements(migration.sql)) await tx.$executeRawUnsafe(statement);
        await tx.$executeRawUnsafe(
          `INSERT INTO "${TRACKING_TABLE}" ("name", "checksum", "appliedAt") VALUES (${provider === 'sqlite' ? '?, ?, ?' : '$1, $2, $3'})`,
          migration.name,
          sum,
          new Date(),
        );
        return 'applied' as const;
      },
      { timeout: 60_000, maxWait: 60_000 },
    );
    results.push({ name: migration.name, state });
  }
  if (provider === 'sqlite' && options.sqliteSettings !== false) await applySqliteSettings(prisma);
  return results;
}
