/**
 * The app's one Prisma client (its own `User` model and scriptrunner's models, one SQLite file).
 * Kept on globalThis, as Prisma recommends for Next.js: the custom server and the route handlers
 * are two module graphs in one process, and dev reloads re-run this module.
 */
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { PrismaBetterSqlite3 } from '@prisma/adapter-better-sqlite3';
import { PrismaClient } from '../generated/prisma/client.ts';

export const dataDir = process.env.SCRIPTRUNNER_DATA_DIR ?? join(process.cwd(), 'data');
const file = join(dataDir, 'app.db');

const holder = globalThis as { appPrisma?: PrismaClient };

export function prisma(): PrismaClient {
  if (!holder.appPrisma) {
    mkdirSync(dirname(file), { recursive: true });
    holder.appPrisma = new PrismaClient({ adapter: new PrismaBetterSqlite3({ url: `file:${file}` }) });
  }
  return holder.appPrisma;
}
