import type { NextConfig } from 'next';

const config: NextConfig = {
  // The custom server (server.ts) starts Next; Next does not need to bundle a server of its own.
  // better-sqlite3 is native and @prisma/client is already on Next's built-in external list.
  serverExternalPackages: ['better-sqlite3'],
};

export default config;
