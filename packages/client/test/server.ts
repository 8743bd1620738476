import { once } from 'node:events';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createScriptRunnerRouter } from '@scriptrunner/adapter-express';
import { attachScriptRunner } from '@scriptrunner/adapter-socketio';
import { createScriptRunner, type ScriptRunner } from '@scriptrunner/core';
import express from 'express';
import { Server } from 'socket.io';
import { io as connect, type Socket } from 'socket.io-client';

export interface Stack {
  runner: ScriptRunner;
  http: HttpServer;
  origin: string;
  baseUrl: string;
  socket(): Socket;
  close(): Promise<void>;
}

const quiet = { warn: () => {}, error: () => {} };

/** The real thing: runner + Express router + Socket.IO adapter on 127.0.0.1. */
export async function startStack(): Promise<Stack> {
  const runner = createScriptRunner({ logger: quiet, killGraceMs: 500 });
  const app = express();
  app.use('/api/sr', createScriptRunnerRouter(runner, { logger: quiet, heartbeatMs: 1000 }));
  const http = createServer(app);
  const io = new Server(http);
  attachScriptRunner(io, runner, { logger: quiet });
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  const origin = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  const sockets: Socket[] = [];
  return {
    runner,
    http,
    origin,
    baseUrl: `${origin}/api/sr`,
    socket() {
      const socket = connect(`${origin}/scriptrunner`, { transports: ['websocket'], reconnectionDelay: 100, reconnectionDelayMax: 500 });
      sockets.push(socket);
      return socket;
    },
    async close() {
      for (const s of sockets) s.disconnect();
      io.close();
      http.closeAllConnections();
      await new Promise((r) => http.close(r));
      await runner.close();
    },
  };
}

export { STEADY } from '../../core/test/helpers.js';
