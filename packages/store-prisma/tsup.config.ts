import { defineConfig } from 'tsup';

export default defineConfig({
  // The log writer's worker is loaded by file name (new Worker(new URL(...))): an entry of its own.
  entry: { index: 'src/index.ts', sqlite: 'src/sqlite.ts', postgresql: 'src/postgresql.ts', 'sqlite-log-writer-worker': 'src/sqlite-log-writer-worker.ts' },
  // ESM only: Prisma 7's generated client is ESM (import.meta, dynamic imports of its query
  // compiler); Node >= 20.19 can still require() this package.
  format: ['esm'],
  dts: true,
  sourcemap: true,
  target: 'node20',
  // The generated clients are bundled; Prisma's runtime and the drivers stay dependencies.
  external: ['@prisma/client', '@prisma/adapter-better-sqlite3', '@prisma/adapter-pg', 'better-sqlite3', 'pg', '@scriptrunner/core'],
});
