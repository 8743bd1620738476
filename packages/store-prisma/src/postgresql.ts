/**
 * postgresStore: scriptrunner on PostgreSQL with its own PrismaClient (driver adapter `pg`),
 * migrated on first use. For an app that already has Prisma, use `prismaStore(prisma)` instead.
 *
 * ```ts
 * import { postgresStore } from '@scriptrunner/store-prisma/postgresql';
 * const runner = createScriptRunner({ store: postgresStore({ connectionString: process.env.DATABASE_URL }) });
 * ```
 */
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../generated/postgresql/client.js';
import type { PrismaClientLike } from './client.js';
import { ownedStore, type OwnedPrismaStore, type OwnedStoreOptions } from './owned.js';

export interface PostgresStoreOptions extends OwnedStoreOptions {
  connectionString: string;
  /** Most connections in the pool. Default 10. */
  maxConnections?: number;
  /**
   * How long a new connection may take, in ms. Default 5,000: a database that is down fails the
   * call (and the runner retries) instead of waiting forever.
   */
  connectionTimeoutMs?: number;
}

export type { OwnedPrismaStore } from './owned.js';

export function postgresStore(options: PostgresStoreOptions): OwnedPrismaStore {
  const adapter = new PrismaPg({
    connectionString: options.connectionString,
    max: options.maxConnections ?? 10,
    connectionTimeoutMillis: options.connectionTimeoutMs ?? 5_000,
  });
  const prisma = new PrismaClient({ adapter });
  return ownedStore(prisma as unknown as PrismaClientLike & { $disconnect(): Promise<void> }, 'postgresql', options);
}
