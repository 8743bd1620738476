/**
 * The shared route suite's servers: the same routes through both faces, each on a real HTTP server
 * on 127.0.0.1 — Express for the router, Hono on @hono/node-server for the fetch handler.
 * The faces are imported from their sources (they depend on this package; a package dependency
 * back would be a cycle).
 */
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { createScriptRunner, type LogLine, type ScriptRunner, type ScriptRunnerOptions, type Store } from '@scriptrunner/core';
import express from 'express';
import { Hono } from 'hono';
import { createScriptRunnerRouter } from '../../adapter-express/src/index.js';
import { createScriptRunnerHandler } from '../../adapter-fetch/src/index.js';
import type { RouteOptions } from '../src/index.js';

export { countingStore } from '../../core/test/helpers.js';

export type Face = 'express' | 'fetch';
export const FACES: readonly Face[] = ['express', 'fetch'];
/** Options both faces take; `authorize` gets each face's own request type, unused by the suite. */
export type FaceOptions = RouteOptions<any>;

export const FIXTURES = new URL('../../core/test/fixtures/', import.meta.url);
export const fixture = (name: string) => readFileSync(new URL(name, FIXTURES));
export const quiet = { warn: () => {}, error: () => {} };

export interface TestServer {
  runner: ScriptRunner;
  base: string;
  close(): Promise<void>;
}

const open: TestServer[] = [];

/** Mounts the routes at /api/sr through one face; `extra` adds plain routes (e.g. /ping) to the same server. */
async function listen(face: Face, runner: ScriptRunner, options: FaceOptions): Promise<Server> {
  if (face === 'express') {
    const app = express();
    app.get('/ping', (_req, res) => {
      res.json({ pong: true });
    });
    app.use('/api/sr', createScriptRunnerRouter(runner, options));
    const server: Server = createServer(app);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return server;
  }
  const handler = createScriptRunnerHandler(runner, { basePath: '/api/sr', ...options });
  const app = new Hono();
  app.get('/ping', (c) => c.json({ pong: true }));
  app.all('/api/sr', (c) => handler(c.req.raw));
  app.all('/api/sr/*', (c) => handler(c.req.raw));
  const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }) as Server;
  if (!server.listening) await once(server, 'listening');
  return server;
}

export function serverFor(face: Face) {
  return (runnerOptions: ScriptRunnerOptions = {}, routeOptions: FaceOptions = {}) => startServer(face, runnerOptions, routeOptions);
}

export async function startServer(
  face: Face,
  runnerOptions: ScriptRunnerOptions = {},
  routeOptions: FaceOptions = {},
  /** A runner made elsewhere (e.g. by another copy of core) instead of a new one. */
  existing?: ScriptRunner,
): Promise<TestServer> {
  const runner = existing ?? createScriptRunner({ logger: quiet, killGraceMs: 500, ...runnerOptions });
  const server = await listen(face, runner, { logger: quiet, heartbeatMs: 200, ...routeOptions });
  const { port } = server.address() as AddressInfo;
  const handle: TestServer = {
    runner,
    base: `http://127.0.0.1:${port}/api/sr`,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await runner.close();
    },
  };
  open.push(handle);
  return handle;
}

export async function closeServers(): Promise<void> {
  await Promise.all(open.splice(0).map((s) => s.close()));
}

export async function upload(base: string, filename: string, content: Buffer | string, fields: Record<string, string> = {}) {
  const form = new FormData();
  form.append('file', new Blob([content]), filename);
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  const res = await fetch(`${base}/scripts`, { method: 'POST', body: form });
  return { status: res.status, body: (await res.json()) as any, headers: res.headers };
}

/** The origin a same-origin page of the test server would send. */
export const originOf = (base: string) => new URL(base).origin;

export async function json(url: string, init?: RequestInit) {
  const res = await fetch(url, init);
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? (JSON.parse(text) as any) : null };
}

export async function runScript(base: string, scriptId: string, args: string[] = []) {
  return json(`${base}/scripts/${scriptId}/executions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ args }),
  });
}

export interface SseEvent {
  id?: string;
  event: string;
  data: string;
}

/**
 * A real SSE client over fetch: parses events as they stream in. `stopWhen` may abort the
 * connection mid-stream (a dropped connection). Resolves with the events and the last id.
 */
export async function readSse(
  url: string,
  options: { lastEventId?: string; stopWhen?: (events: SseEvent[]) => boolean; timeoutMs?: number } = {},
): Promise<{ status: number; events: SseEvent[]; lastId: string | undefined; aborted: boolean }> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), options.timeoutMs ?? 60_000);
  const headers: Record<string, string> = { accept: 'text/event-stream' };
  if (options.lastEventId !== undefined) headers['last-event-id'] = options.lastEventId;
  const res = await fetch(url, { headers, signal: controller.signal });
  const events: SseEvent[] = [];
  let lastId: string | undefined = options.lastEventId;
  let aborted = false;
  if (res.status !== 200 || !res.body) {
    clearTimeout(timer);
    return { status: res.status, events, lastId, aborted };
  }
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) !== -1) {
        const raw = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event: SseEvent = { event: 'message', data: '' };
        const data: string[] = [];
        for (const line of raw.split('\n')) {
          if (line.startsWith(':')) continue;
          const colon = line.indexOf(':');
          const field = colon === -1 ? line : line.slice(0, colon);
          const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
          if (field === 'id') event.id = value;
          else if (field === 'event') event.event = value;
          else if (field === 'data') data.push(value);
        }
        if (data.length === 0 && event.id === undefined) continue;
        event.data = data.join('\n');
        if (event.id !== undefined) lastId = event.id;
        events.push(event);
        if (options.stopWhen?.(events)) {
          aborted = true;
          controller.abort();
          break;
        }
      }
      if (aborted) break;
    }
  } catch (error) {
    if (!aborted && (error as Error).name !== 'AbortError') throw error;
  } finally {
    clearTimeout(timer);
  }
  return { status: res.status, events, lastId, aborted };
}

export function linesOf(events: SseEvent[]): LogLine[] {
  return events.filter((e) => e.event === 'log').flatMap((e) => JSON.parse(e.data) as LogLine[]);
}
