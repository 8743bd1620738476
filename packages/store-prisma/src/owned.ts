/**
 * A store that owns its PrismaClient: it migrates the database before the first call and
 * disconnects on close(). Shared by sqliteStore() and postgresStore().
 */
import type { PrismaClientLike } from './client.js';
import { applyMigrations, type Provider } from './migrate.js';
import { prismaStore, type FullStore, type PrismaStoreOptions } from './store.js';

export interface OwnedStoreOptions extends PrismaStoreOptions {
  /** Apply the package's migrations before the first call. Default true. */
  migrate?: boolean;
}


export type OwnedPrismaStore = FullStore & {
  /** Resolves when the database is migrated and ready; rejects with the reason it is not. */
  readonly ready: Promise<void>;
  /** The store's own client, for inspection and tests. */
  readonly prisma: PrismaClientLike;
  close(): Promise<void>;
};

export function ownedStore(
  prisma: PrismaClientLike & { $disconnect(): Promise<void> },
  provider: Provider,
  options: OwnedStoreOptions,
  prepare: () => Promise<void> = async () => {},
): OwnedPrismaStore {
  const ready = (async () => {
    await prepare();
    if (options.migrate !== false) await applyMigrations(prisma, { provider });
  })();
  // Callers that never call a method must not see an unhandled rejection; callers that do get it.
  ready.catch(() => undefined);
  const inner = prismaStore(prisma, options);
  const gate =
    <A extends unknown[], R>(fn: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      await ready;
      return fn(...args);
    };
  return {
    ready,
    prisma,
    createScript: gate(inner.createScript),
    getScript: gate(inner.getScript),
    getScriptContent: gate(inner.getScriptContent),
    listScripts: gate(inner.listScripts),
    listScriptsWithLastExecution: gate(inner.listScriptsWithLastExecution),
    updateScript: gate(inner.updateScript),
    recordRun: gate(inner.recordRun),
    createExecution: gate(inner.createExecution),
    updateExecution: gate(inner.updateExecution),
    getExecution: gate(inner.getExecution),
    listExecutions: gate(inner.listExecutions),
    interruptStaleExecutions: gate(inner.interruptStaleExecutions),
    appendLogs: gate(inner.appendLogs),
    readLogs: gate(inner.readLogs),
    putArtifact: gate(inner.putArtifact),
    listArtifacts: gate(inner.listArtifacts),
    readArtifact: gate(inner.readArtifact),
    listExpiredExecutions: gate(inner.listExpiredExecutions),
    deleteExecution: gate(inner.deleteExecution),
    deleteScript: gate(inner.deleteScript),
    ping: gate(inner.ping),
    async close() {
      await ready.catch(() => undefined);
      await prisma.$disconnect();
    },
  };
}
