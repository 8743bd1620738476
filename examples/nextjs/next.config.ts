import type { NextConfig } from 'next';

const config: NextConfig = {
  // Loaded by Node rather than bundled into the route handlers: they spawn processes and touch the
  // filesystem (bundled, Turbopack would trace the whole project into the server output), and the
  // route handlers then share the custom server's copy. Correctness does not depend on it: the
  // runner is shared through sharedScriptRunner and errors are recognised across copies.
  serverExternalPackages: ['@scriptrunner/core', '@scriptrunner/store-prisma', '@scriptrunner/http', '@scriptrunner/adapter-fetch', 'better-sqlite3'],
};

export default config;
