/**
 * Test fixture: starts a private PostgreSQL server, prints where it lives, and waits to be killed
 * (interrupt.test.ts kills it the way a time limit would).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startPostgres } from './postgres.js';

const server = await startPostgres();
const pid = Number(readFileSync(join(server.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
console.log(JSON.stringify({ pid, dataDir: server.dataDir }));
setInterval(() => undefined, 60_000);
