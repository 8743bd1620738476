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
import { applySqliteSettings, SQLITE_SETTINGS } from './migrate.js';
import { sqliteLogWriter } from './sqlite-log-writer.js';
import { chunkLimits } from './store.js';
import { ownedStore, type OwnedPrismaStore, type OwnedStoreOptions } from './owned.js';

export interface SqliteStoreOptions extends OwnedStoreOptions {
  /** The database file, created with its folder when missing. Default `./scriptrunner.db`. */
  file?: string;
  /**
   * Write log batches from a worker thread with its own connection, so SQLite's synchronous
   * inserts no longer stop the event loop (and the reading of the script's pipes). Faster for
   * chatty scripts (docs/BENCHMARKS.md, persist-print); the host's peak memory under huge outputs
   * is higher (1 GiB of output: about +170 MB instead of +127 MB). Default false.
   */
  writeLogsOffThread?: boolean;
}

export type { OwnedPrismaStore } from './owned.js';

export function sqliteStore(options: SqliteStoreOptions = {}): OwnedPrismaStore {
  const file = resolve(options.file ?? 'scriptrunner.db');
  mkdirSync(dirname(file), { recursive: true });
  const prisma = new PrismaClient({ adapter: new PrismaBetterSqlite3({ url: `file:${file}` }) });
  const client = prisma as unknown as PrismaClientLike & { $disconnect(): Promise<void> };
  // Set before migrating too: also with `migrate: false` the store's own connection has them.
  const store = ownedStore(client, 'sqlite', options, () => applySqliteSettings(client));
  if (!options.writeLogsOffThread) return store;
  // Log batches, the hot path, are written by a worker thread with its own connection.
  const writer = sqliteLogWriter(file, chunkLimits(options), SQLITE_SETTINGS.busy_timeout);
  return {
    ...store,
    async appendLogs(executionId, lines) {
      await store.ready;
      return writer.append(executionId, lines);
    },
    async close() {
      await writer.close();
      await store.close();
    },
  };
}
