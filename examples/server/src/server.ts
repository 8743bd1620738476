/**
 * The demo service: Express + Socket.IO + scriptrunner on an embedded SQLite file (or PostgreSQL
 * when DATABASE_URL says so), serving the React UI from the same process.
 *
 *   PORT                   default 3000
 *   DATABASE_URL           postgresql://… selects PostgreSQL; otherwise SQLite
 *   SCRIPTRUNNER_DATA_DIR  where the SQLite file and run directories live (default examples/server/data)
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createScriptRunnerRouter } from '@scriptrunner/adapter-express';
import { attachScriptRunner } from '@scriptrunner/adapter-socketio';
import { createScriptRunner } from '@scriptrunner/core';
import { scriptRunnerMetrics } from '@scriptrunner/metrics';
import { postgresStore } from '@scriptrunner/store-prisma/postgresql';
import { sqliteStore } from '@scriptrunner/store-prisma/sqlite';
import express from 'express';
import { Server } from 'socket.io';

const here = dirname(fileURLToPath(import.meta.url));
const port = Number(process.env.PORT ?? 3000);
const dataDir = resolve(process.env.SCRIPTRUNNER_DATA_DIR ?? join(here, '..', 'data'));
const webDir = join(here, '..', 'dist', 'web');
const samplesDir = join(here, '..', '..', 'scripts');
const wheelhouse = join(here, '..', '..', 'wheelhouse');
const databaseUrl = process.env.DATABASE_URL;

const store =
  databaseUrl && /^postgres(ql)?:/.test(databaseUrl)
    ? postgresStore({ connectionString: databaseUrl })
    : sqliteStore({ file: join(dataDir, 'scriptrunner.db') });
// Migrations are applied here, at start: a database problem stops the demo with its reason.
await store.ready;

// Prometheus metrics at /api/scripts-runner/metrics; /api/scripts-runner/health answers 200/503.
const metrics = scriptRunnerMetrics();
const runner = createScriptRunner({
  store,
  observers: [metrics],
  workDir: join(dataDir, 'runs'),
  concurrency: 2,
  // Scripts that declare dependencies (experiment_wind_profiles.py) get them from the repository's
  // wheelhouse only: the demo needs no package index.
  dependencies: { cacheDir: join(dataDir, 'environments'), findLinks: [wheelhouse], offline: true },
});

// First start: offer the sample scripts so a newcomer can press Run at once.
const existing = await runner.listScripts({ status: 'all', limit: 1 });
if (existing.items.length === 0 && existsSync(samplesDir)) {
  for (const name of readdirSync(samplesDir).filter((n) => n.endsWith('.py')).sort()) {
    await runner.uploadScript({ filename: name, content: readFileSync(join(samplesDir, name)), description: 'sample script' });
  }
}

const app = express();
app.disable('x-powered-by');
app.use('/api/scripts-runner', createScriptRunnerRouter(runner, { metrics }));
if (!existsSync(join(webDir, 'index.html'))) {
  console.warn(`[demo] the web UI is not built (${webDir}); run \`npm run build\` at the repository root`);
}
app.use(express.static(webDir, { index: 'index.html', maxAge: '1h' }));
app.get('/{*path}', (_req, res) => res.sendFile(join(webDir, 'index.html')));

const httpServer = createServer(app);
const io = new Server(httpServer);
attachScriptRunner(io, runner);

httpServer.listen(port, () => {
  const where = databaseUrl ? 'PostgreSQL' : join(dataDir, 'scriptrunner.db');
  console.log(`scriptrunner demo on http://localhost:${port} (store: ${where})`);
});

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  console.log(`\n[demo] ${signal}: cancelling running scripts and closing`);
  // Running scripts are stopped and recorded as interrupted; nothing is left behind.
  await runner.close();
  io.close();
  httpServer.closeAllConnections();
  await new Promise((r) => httpServer.close(r));
  await store.close();
  process.exit(0);
}
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));
