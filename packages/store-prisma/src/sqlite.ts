/**
 * sqliteStore: the embedded default. One SQLite file, its own PrismaClient, migrated on first use.
 *
 * ```ts
 * import { sqliteStore } from '@scriptrunner/store-prisma/sqlite';
 * const runner = createScriptRunner({ store: sqliteStore({ file: './data/scriptrunner.db' }) });
 * ```
 */
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { PrismaBetterSqlite3 } from '@prisma/adapter-better-sqlite3';
import { PrismaClient } from '../generated/sqlite/client.js';
import type { PrismaClientLike } from './client.js';
import { applySqliteSettings } from './migrate.js';
import { ownedStore, type OwnedPrismaStore, type OwnedStoreOptions } from './owned.js';

export interface SqliteStoreOptions extends OwnedStoreOptions {
  /** The database file, created with its folder when missing. Default `./scriptrunner.db`. */
  file?: string;
}

export type { OwnedPrismaStore } from './owned.js';

export function sqliteStore(options: SqliteStoreOptions = {}): OwnedPrismaStore {
  const file = resolve(options.file ?? 'scriptrunner.db');
  mkdirSync(dirname(file), { recursive: true });
  const prisma = new PrismaClient({ adapter: new PrismaBetterSqlite3({ url: `file:${file}` }) });
  const client = prisma as unknown as PrismaClientLike & { $disconnect(): Promise<void> };
  // Set before migrating too: also with `migrate: false` the store's own connection has them.
  return ownedStore(client, 'sqlite', options, () => applySqliteSettings(client));
}
