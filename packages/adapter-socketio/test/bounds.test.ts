/**
 * What one client may cost the server, and who may connect at all: cross-site handshakes are
 * refused, subscriptions per socket are capped, and neither a subscribe burst nor readers catching
 * up on a huge log keep other requests waiting (checked by the order of answers, not by a timer;
 * the load comes from another process, as it would from other machines).
 */
import { execFile, spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createScriptRunner, memoryStore, type Store } from '@scriptrunner/core';
import { sampleExecution, sampleLines, sampleScript } from '@scriptrunner/core/testing';
import { Server } from 'socket.io';
import { io as connect } from 'socket.io-client';
import { afterEach, describe, expect, it } from 'vitest';
import { attachScriptRunner, type AttachScriptRunnerOptions } from '../src/index.js';
import { closeAll, client, startServer } from './helpers.js';

const LOAD_CLIENT = fileURLToPath(new URL('./support/load-client.mjs', import.meta.url));
const run = promisify(execFile);

afterEach(closeAll);

/** Tries a handshake with these headers: null when it connected, else the error's data. */
async function handshake(url: string, headers: Record<string, string>): Promise<{ code?: string } | null> {
  const socket = connect(url, { transports: ['websocket'], forceNew: true, reconnection: false, extraHeaders: headers });
  try {
    return await new Promise((resolve) => {
      socket.once('connect', () => resolve(null));
      socket.once('connect_error', (error: Error & { data?: { code?: string } }) => resolve(error.data ?? { code: error.message }));
    });
  } finally {
    socket.disconnect();
  }
}

async function storedExecution(store: Store, count: number, status: 'succeeded' | 'running' = 'succeeded') {
  const script = sampleScript();
  await store.createScript(script);
  const execution = sampleExecution(script.id, { status, startedAt: new Date(), lineCount: status === 'running' ? 0 : count });
  await store.createExecution(execution);
  for (let from = 1; from <= count; from += 20_000) await store.appendLogs(execution.id, sampleLines(execution.id, from, Math.min(count, from + 19_999)));
  return execution;
}

/** A server with the adapter and a plain `/ping` route on the same http server. */
async function serverWithPing(store: Store, attach: AttachScriptRunnerOptions = {}) {
  const runner = createScriptRunner({ store, logger: { warn() {}, error() {} }, recoverOnStart: false });
  const http = createServer((req, res) => {
    if (req.url === '/ping') res.end('pong');
  });
  const io = new Server(http);
  const attached = attachScriptRunner(io, runner, { logger: { error() {} }, ...attach });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const { port } = http.address() as AddressInfo;
  return {
    runner,
    url: `http://127.0.0.1:${port}`,
    async close() {
      attached.detach();
      await new Promise<void>((resolve) => void io.close(() => resolve()));
      await runner.close();
    },
  };
}

describe('who may connect', () => {
  it('refuses cross-site handshakes (Origin, Sec-Fetch-Site, Origin: null) and admits same-origin, trusted and non-browser clients', async () => {
    const trusted = 'https://dashboard.example.com';
    const { url, runner } = await startServer({ attach: { trustedOrigins: [trusted] } });
    const origin = new URL(url).origin;
    // A watcher that is let in sees the lifecycle events a refused page would have wanted.
    const watcher = await client(url);
    expect(await watcher.emitWithAck('scripts:subscribe')).toEqual({ ok: true });
    expect(await handshake(url, { origin: 'http://evil.example' })).toMatchObject({ code: 'cross_site' });
    expect(await handshake(url, { origin, 'sec-fetch-site': 'cross-site' })).toMatchObject({ code: 'cross_site' });
    expect(await handshake(url, { origin: 'null' })).toMatchObject({ code: 'cross_site' });
    expect(await handshake(url, { origin: 'http://127.0.0.1:1', 'sec-fetch-site': 'same-site' })).toMatchObject({ code: 'cross_site' });
    expect(await handshake(url, { origin })).toBeNull();
    expect(await handshake(url, { origin: trusted, 'sec-fetch-site': 'cross-site' })).toBeNull();
    expect(await handshake(url, {})).toBeNull();
    // A refused page never had a socket: nothing to deliver to. The watcher got the upload.
    const created = new Promise((resolve) => watcher.once('script:created', resolve));
    await runner.uploadScript({ filename: 'test_seen.py', content: 'print(1)\n' });
    await created;
  });
});

describe('bounded per-connection work', () => {
  it('caps subscriptions per socket; unsubscribing frees a slot; unknown ids take none', async () => {
    const store = memoryStore();
    const running = await Promise.all(Array.from({ length: 4 }, () => storedExecution(store, 0, 'running')));
    const { url, runner, close } = await serverWithPing(store, { maxSubscriptionsPerSocket: 3 });
    try {
      const socket = connect(`${url}/scriptrunner`, { transports: ['websocket'], forceNew: true, reconnection: false });
      const subscribe = (executionId: string) => socket.emitWithAck('execution:subscribe', { executionId, afterSeq: 0 });
      for (const execution of running.slice(0, 3)) expect(await subscribe(execution.id)).toMatchObject({ ok: true });
      expect(await subscribe('made-up')).toMatchObject({ ok: false, error: { code: 'too_many_subscriptions' } });
      const fourth = await subscribe(running[3]!.id);
      expect(fourth).toMatchObject({ ok: false, error: { code: 'too_many_subscriptions' } });
      expect(fourth.error.message).toMatch(/at most 3/);
      // Subscribing again to one it follows replaces it rather than taking a slot.
      expect(await subscribe(running[0]!.id)).toMatchObject({ ok: true });
      expect(await socket.emitWithAck('execution:unsubscribe', { executionId: running[0]!.id })).toEqual({ ok: true });
      expect(await subscribe(running[3]!.id)).toMatchObject({ ok: true });
      const follows = () => (runner as unknown as { follows: { size: number } }).follows.size;
      expect(follows()).toBe(3);
      socket.disconnect();
      for (let i = 0; i < 250 && follows() > 0; i++) await new Promise((r) => setTimeout(r, 20));
      expect(follows()).toBe(0);
    } finally {
      await close();
    }
  });

  it('answers a plain request during a burst of 200 sockets × 50 subscriptions before the burst’s last ack', { timeout: 120_000 }, async () => {
    const store = memoryStore();
    const known = await Promise.all(Array.from({ length: 5 }, () => storedExecution(store, 50)));
    const { url, runner, close } = await serverWithPing(store);
    try {
      const rssBefore = process.memoryUsage().rss;
      const order: string[] = [];
      let output = '';
      const child = spawn(process.execPath, [LOAD_CLIENT, 'burst', `${url}/scriptrunner`, '200', '50', known.map((e) => e.id).join(',')], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let pinged: Promise<void> | null = null;
      const started = performance.now();
      const times: Record<string, number> = {};
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (pinged === null && output.includes('sent\n')) {
          times.sent = performance.now() - started;
          // Sent after the burst went out: must not wait for the burst to be served.
          pinged = fetch(`${url}/ping`)
            .then((res) => res.text())
            .then(() => {
              times.ping = performance.now() - started;
              order.push('ping');
            });
        }
        if (output.includes('{')) {
          if (!order.includes('last-ack')) {
            times.lastAck = performance.now() - started;
            order.push('last-ack');
          }
        }
      });
      await new Promise((resolve) => child.once('exit', resolve));
      await pinged;
      const stdout = output.slice(output.indexOf('{'));
      console.log(`[bounds] burst: subscriptions sent at ${times.sent?.toFixed(0)} ms, ping answered at ${times.ping?.toFixed(0)} ms, last ack at ${times.lastAck?.toFixed(0)} ms`);
      const { codes } = JSON.parse(stdout) as { codes: Record<string, number> };
      expect(order).toEqual(['ping', 'last-ack']);
      // Every request was answered: 5 real subscriptions per socket (they end after their 50 lines),
      // unknown ids not_found, and what was over the cap refused — no timeouts.
      expect(codes.timeout ?? 0).toBe(0);
      expect((codes.ok ?? 0) + (codes.not_found ?? 0) + (codes.too_many_subscriptions ?? 0)).toBe(200 * 50);
      expect(codes.ok).toBe(200 * 5);
      const follows = () => (runner as unknown as { follows: { size: number } }).follows.size;
      for (let i = 0; i < 250 && follows() > 0; i++) await new Promise((r) => setTimeout(r, 20));
      expect(follows()).toBe(0);
      expect(process.memoryUsage().rss - rssBefore).toBeLessThan(400 * 1024 * 1024);
    } finally {
      await close();
    }
  });

  it('answers a plain request while five sockets catch up on a 300,000-line log, and each gets every line once', { timeout: 120_000 }, async () => {
    const store = memoryStore();
    const execution = await storedExecution(store, 300_000);
    const { url, close } = await serverWithPing(store);
    try {
      const { stdout } = await run(process.execPath, [LOAD_CLIENT, 'readers', `${url}/scriptrunner`, '5', execution.id, `${url}/ping`], {
        maxBuffer: 10 * 1024 * 1024,
      });
      const { order, results } = JSON.parse(stdout) as { order: string[]; results: Array<{ lines: number; bad: number }> };
      expect(order[0]).toBe('ping');
      expect(order.filter((o) => o === 'reader-finished')).toHaveLength(5);
      expect(results).toEqual(Array.from({ length: 5 }, () => ({ lines: 300_000, bad: 0 })));
    } finally {
      await close();
    }
  });
});
