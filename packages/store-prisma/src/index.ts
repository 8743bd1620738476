/**
 * @scriptrunner/store-prisma — scriptrunner's Store on Prisma (SQLite and PostgreSQL).
 *
 * - `prismaStore(prisma)`: on your own PrismaClient, generated from a schema that includes
 *   `prisma/scriptrunner.prisma`.
 * - `applyMigrations(prisma, { provider })`: creates the tables without Prisma's schema engine.
 * - Ready-made stores with their own client: `@scriptrunner/store-prisma/sqlite` (`sqliteStore`,
 *   the embedded default) and `@scriptrunner/store-prisma/postgresql` (`postgresStore`).
 */
export { prismaStore } from './store.js';
export type { PrismaStoreOptions } from './store.js';
export { applyMigrations } from './migrate.js';
export type { ApplyMigrationsOptions, MigrationStatus, Provider } from './migrate.js';
export type { PrismaClientLike, ModelDelegateLike } from './client.js';
