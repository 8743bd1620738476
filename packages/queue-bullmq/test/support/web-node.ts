/**
 * One web node, as its own OS process: Express (REST + SSE) and Socket.IO over a runner whose
 * executions run on BullMQ workers. Env: REDIS_URL, DATABASE_URL; optional MAX_QUEUED, STALLED_MS
 * (how often it looks for executions whose worker died) and LOG_EVENTS (`watched`, the default, or
 * `all`). Prints `{"port":N}` when ready.
 */
import { createServer } from 'node:http';
import { attachScriptRunner } from '@scriptrunner/adapter-socketio';
import { createScriptRunnerRouter } from '@scriptrunner/adapter-express';
import { createScriptRunner } from '@scriptrunner/core';
import { bullmqDispatcher } from '@scriptrunner/queue-bullmq';
import { postgresStore } from '@scriptrunner/store-prisma/postgresql';
import express from 'express';
import { Server } from 'socket.io';

const store = postgresStore({ connectionString: process.env.DATABASE_URL! });
const runner = createScriptRunner({
  store,
  dispatcher: bullmqDispatcher({
    connection: process.env.REDIS_URL!,
    maxQueued: Number(process.env.MAX_QUEUED ?? 1000),
    ...(process.env.STALLED_MS ? { stalledIntervalMs: Number(process.env.STALLED_MS) } : {}),
    ...(process.env.LOG_EVENTS === 'all' ? { logEvents: 'all' as const } : {}),
  }),
  logger: { warn: (m) => console.error(m), error: (m) => console.error(m) },
});
runner.on('error', (error) => console.error(`[web] ${error.message}`));
const app = express();
app.use('/api', createScriptRunnerRouter(runner));
const http = createServer(app);
const io = new Server(http);
attachScriptRunner(io, runner);
http.listen(0, '127.0.0.1', () => {
  console.log(JSON.stringify({ port: (http.address() as { port: number }).port }));
});
const stop = async () => {
  io.close();
  await runner.close();
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
