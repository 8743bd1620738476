/**
 * The one ScriptRunner of this process, on the app's own Prisma client. `sharedScriptRunner` makes
 * the custom server (server.ts) and the route handlers (Next's bundle) get the same runner: one
 * queue, one `concurrency`, one set of live followers.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createScriptRunner, sharedScriptRunner, type ScriptRunner } from '@scriptrunner/core';
import { applyMigrations, prismaStore } from '@scriptrunner/store-prisma';
import { dataDir, prisma } from './prisma.ts';

export function scriptRunner(): ScriptRunner {
  return sharedScriptRunner('dashboard', () =>
    createScriptRunner({ store: prismaStore(prisma()), workDir: join(dataDir, 'runs'), concurrency: 2 }),
  );
}

/** At start, before the first request: the app's table and scriptrunner's (no schema engine needed). */
export async function migrate(): Promise<void> {
  const client = prisma();
  for (const statement of readFileSync(join(process.cwd(), 'prisma', 'app.sql'), 'utf8').split(';')) {
    if (statement.trim()) await client.$executeRawUnsafe(statement);
  }
  await applyMigrations(client, { provider: 'sqlite' });
}
