/**
 * The server side of the network rows, as packages/client/test/server.ts builds it: a runner, the
 * Express router on /api/sr and the Socket.IO adapter on one HTTP server on 127.0.0.1, plus the
 * python scripts the rows run. Everything it creates (run directories included) goes on close().
 */
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createScriptRunnerRouter } from '@scriptrunner/adapter-express';
import { attachScriptRunner } from '@scriptrunner/adapter-socketio';
import { createScriptRunner, type ScriptRunner, type ScriptRunnerOptions } from '@scriptrunner/core';
import express from 'express';
import { Server } from 'socket.io';
import { quietLogger } from '../../lib.js';

export interface NetStack {
  runner: ScriptRunner;
  /** http://127.0.0.1:<port> */
  origin: string;
  /** The REST router: `${origin}/api/sr`. */
  baseUrl: string;
  /** A fresh temporary directory, removed on close (for run directories, a SQLite file, ...). */
  dir: string;
  /** Uploads `code` as a python script and returns its id. */
  upload(name: string, code: string): Promise<string>;
  close(): Promise<void>;
}

/** A store the stack owns: closed after the runner, before the directory goes. */
export type OwnedStore = NonNullable<ScriptRunnerOptions['store']> & { ready?: Promise<void>; close?(): Promise<void> };

export async function startNetStack(
  options: Partial<Omit<ScriptRunnerOptions, 'store'>> & { makeStore?: (dir: string) => OwnedStore } = {},
): Promise<NetStack> {
  const dir = await mkdtemp(join(tmpdir(), 'scriptrunner-bench-net-'));
  const { makeStore, ...runnerOptions } = options;
  let store: OwnedStore | null = null;
  let runner: ScriptRunner | null = null;
  let http: HttpServer | null = null;
  let io: Server | null = null;
  const close = async () => {
    io?.close();
    if (http) {
      http.closeAllConnections();
      await new Promise((r) => http!.close(r));
    }
    await runner?.close();
    await store?.close?.();
    await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  };
  try {
    if (makeStore) {
      store = makeStore(dir);
      await store.ready;
    }
    runner = createScriptRunner({
      logger: quietLogger,
      killGraceMs: 500,
      // Delivery is what these rows measure; the sandbox's cost is the isolation row.
      isolation: 'none',
      workDir: join(dir, 'runs'),
      ...(store ? { store } : {}),
      ...runnerOptions,
    });
    const app = express();
    app.use('/api/sr', createScriptRunnerRouter(runner, { logger: quietLogger }));
    http = createServer(app);
    io = new Server(http);
    attachScriptRunner(io, runner, { logger: quietLogger });
    http.listen(0, '127.0.0.1');
    await once(http, 'listening');
  } catch (error) {
    await close();
    throw error;
  }
  const origin = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  const owned = runner;
  return {
    runner: owned,
    origin,
    baseUrl: `${origin}/api/sr`,
    dir,
    async upload(name, code) {
      const script = await owned.uploadScript({ filename: `test_bench_${name}.py`, content: Buffer.from(code) });
      return script.id;
    },
    close,
  };
}

/**
 * `argv[1]` lines "<seq> <time.time_ns() // 1000>" (the print's wall clock in microseconds), one
 * every 1/argv[2] s on an absolute schedule (a late line does not shift the ones after it), after
 * an initial pause of argv[3] s.
 */
export const TIMESTAMPED_LINES = `import sys, time
n = int(sys.argv[1]); interval = 1.0 / float(sys.argv[2]); time.sleep(float(sys.argv[3]))
start = time.monotonic()
for i in range(1, n + 1):
    wait = start + i * interval - time.monotonic()
    if wait > 0:
        time.sleep(wait)
    print(f"{i} {time.time_ns() // 1000}", flush=True)
`;

/**
 * argv[1] lines "line <seq> price forecast iteration ok" at argv[2] lines/s, written in 10 ms slices
 * on an absolute schedule, after an initial pause of argv[3] s.
 */
export const PACED_LINES = `import sys, time
n = int(sys.argv[1]); rate = float(sys.argv[2]); time.sleep(float(sys.argv[3]))
w = sys.stdout.write
step = max(1, int(rate / 100))
start = time.monotonic()
i = 0
while i < n:
    end = min(n, i + step)
    w("".join(f"line {k} price forecast iteration ok\\n" for k in range(i + 1, end + 1)))
    i = end
    wait = start + i / rate - time.monotonic()
    if wait > 0:
        time.sleep(wait)
`;
