/**
 * The Next.js example as the dashboard runs it: the production build (`next build`, done by
 * `npm test`'s build step) served by the custom server (server.ts: Next + Socket.IO on one http
 * server) on a free port with a fresh SQLite file, driven by real HTTP, Socket.IO and Chromium.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { io, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM_MISSING, chromiumAvailable, freePort, launchChromium } from '../../server/test/support/browser.js';
import { reapWithParent } from '../../../scripts/test-support/reaper.js';

const APP_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BASE = '/api/sandbox/test-scripts';
const EVIL = 'http://evil.example';

interface App {
  url: string;
  child: ChildProcess;
  dataDir: string;
  output: () => string;
}

async function startApp(): Promise<App> {
  if (!existsSync(join(APP_DIR, '.next', 'BUILD_ID'))) {
    throw new Error('examples/nextjs is not built: run `npx turbo run build` at the repository root (`npm test` builds first)');
  }
  const port = await freePort();
  const dataDir = await mkdtemp(join(tmpdir(), 'scriptrunner-nextjs-'));
  let output = '';
  const child = reapWithParent(spawn(process.execPath, ['--import', 'tsx', join(APP_DIR, 'server.ts')], {
    cwd: APP_DIR,
    env: { ...process.env, NODE_ENV: 'production', PORT: String(port), SCRIPTRUNNER_DATA_DIR: dataDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  }));
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  await new Promise<void>((resolveReady, reject) => {
    const timer = setTimeout(() => reject(new Error(`the app did not start within 60 s:\n${output}`)), 60_000);
    const check = () => {
      if (output.includes('dashboard on http://')) {
        clearTimeout(timer);
        resolveReady();
      }
    };
    child.stdout!.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the app exited with ${code}:\n${output}`));
    });
  });
  return { url: `http://127.0.0.1:${port}`, child, dataDir, output: () => output };
}

async function signIn(app: App, role: 'analyst' | 'viewer'): Promise<string> {
  const res = await fetch(`${app.url}/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: role, role }) });
  expect(res.status).toBe(200);
  return res.headers.get('set-cookie')!.split(';')[0]!;
}

async function call(app: App, path: string, init: RequestInit & { cookie?: string } = {}) {
  const headers = new Headers(init.headers);
  if (init.cookie) headers.set('cookie', init.cookie);
  const res = await fetch(`${app.url}${BASE}${path}`, { ...init, headers });
  const text = await res.text();
  let body: any = null;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: res.status, body };
}

function uploadForm(filename: string, content: string): FormData {
  const form = new FormData();
  form.append('file', new Blob([content]), filename);
  return form;
}

describe('examples/nextjs: the dashboard shape', () => {
  let app: App;

  beforeAll(async () => {
    app = await startApp();
  }, 90_000);

  afterAll(async () => {
    if (app) {
      app.child.kill('SIGTERM');
      await new Promise((r) => app.child.once('exit', r));
      await rm(app.dataDir, { recursive: true, force: true });
    }
  });

  it('refuses every API route and sub-path without a session (401), and lets viewers read but not write (403)', async () => {
    const routes: Array<[string, string]> = [
      ['GET', '/scripts'],
      ['POST', '/scripts'],
      ['GET', '/scripts/x'],
      ['GET', '/scripts/x/content'],
      ['DELETE', '/scripts/x'],
      ['POST', '/scripts/x/executions'],
      ['GET', '/executions'],
      ['GET', '/executions/x'],
      ['POST', '/executions/x/cancel'],
      ['GET', '/executions/x/logs'],
      ['GET', '/executions/x/logs/stream'],
      ['GET', '/executions/x/logs.txt'],
      ['GET', '/no/such/route'],
      ['GET', ''],
    ];
    for (const [method, path] of routes) {
      const res = await call(app, path, { method });
      expect({ method, path, status: res.status, code: res.body?.error?.code }).toEqual({ method, path, status: 401, code: 'unauthenticated' });
    }
    const page = await fetch(`${app.url}/sandbox`, { redirect: 'manual' });
    expect([303, 307, 308]).toContain(page.status);
    expect(page.headers.get('location')).toMatch(/\/login$/);

    const viewer = await signIn(app, 'viewer');
    expect((await call(app, '/scripts', { cookie: viewer })).status).toBe(200);
    const denied = await call(app, '/scripts', { method: 'POST', cookie: viewer, body: uploadForm('test_v.py', 'print(1)') });
    expect({ status: denied.status, code: denied.body.error.code }).toEqual({ status: 403, code: 'forbidden' });
  });

  it('uploads and runs for an analyst, refuses the same writes cross-site, and serves the log', { timeout: 60_000 }, async () => {
    const analyst = await signIn(app, 'analyst');
    const evil = { origin: EVIL, 'sec-fetch-site': 'cross-site' };
    const crossUpload = await call(app, '/scripts', { method: 'POST', cookie: analyst, headers: evil, body: uploadForm('test_evil.py', 'print("pwned")') });
    expect({ status: crossUpload.status, code: crossUpload.body.error.code }).toEqual({ status: 403, code: 'cross_site' });

    const up = await call(app, '/scripts', { method: 'POST', cookie: analyst, headers: { origin: app.url }, body: uploadForm('test_next.py', 'for i in range(3):\n    print(f"next {i}")\n') });
    expect(up.status).toBe(201);
    const scriptId = up.body.script.id as string;
    for (const [method, path, init] of [
      ['POST', `/scripts/${scriptId}/executions`, { headers: { ...evil, 'content-type': 'application/x-www-form-urlencoded' }, body: '' }],
      ['POST', `/scripts/${scriptId}/executions`, { headers: { ...evil, 'content-type': 'text/plain' }, body: '{}' }],
      ['DELETE', `/scripts/${scriptId}`, { headers: evil }],
    ] as const) {
      const res = await call(app, path, { method, cookie: analyst, ...init });
      expect({ method, path, status: res.status, code: res.body?.error?.code }).toEqual({ method, path, status: 403, code: 'cross_site' });
    }
    const listed = await call(app, '/scripts', { cookie: analyst });
    expect(listed.body.items.map((s: { filename: string }) => s.filename)).toEqual(['test_next.py']);
    expect(listed.body.items[0].totalRuns).toBe(0);

    const run = await call(app, `/scripts/${scriptId}/executions`, { method: 'POST', cookie: analyst, headers: { origin: app.url, 'content-type': 'application/json' }, body: '{"args":[]}' });
    expect(run.status).toBe(202);
    const executionId = run.body.execution.id as string;
    // The SSE stream ends with the final execution: the run is over and its log complete.
    const stream = await fetch(`${app.url}${BASE}/executions/${executionId}/logs/stream`, { headers: { cookie: analyst } });
    const text = await stream.text();
    expect(text).toContain('event: end');
    const log = await fetch(`${app.url}${BASE}/executions/${executionId}/logs.txt`, { headers: { cookie: analyst } });
    expect(await log.text()).toBe('next 0\nnext 1\nnext 2\n');
  });

  it('serves live logs over the app’s Socket.IO server only to signed-in, same-origin sockets', { timeout: 60_000 }, async () => {
    const analyst = await signIn(app, 'analyst');
    const connect = (headers: Record<string, string>) =>
      new Promise<{ socket: Socket; error: { message: string; data?: { code?: string } } | null }>((resolveConnect) => {
        const socket = io(`${app.url}/scriptrunner`, { transports: ['websocket'], extraHeaders: headers, reconnection: false });
        socket.once('connect', () => resolveConnect({ socket, error: null }));
        socket.once('connect_error', (error: Error & { data?: { code?: string } }) => resolveConnect({ socket, error }));
      });
    const anonymous = await connect({});
    expect(anonymous.error?.data?.code).toBe('unauthenticated');
    anonymous.socket.close();
    const crossSite = await connect({ cookie: analyst, origin: EVIL });
    expect(crossSite.error?.data?.code).toBe('cross_site');
    crossSite.socket.close();

    const { socket, error } = await connect({ cookie: analyst, origin: app.url });
    expect(error).toBeNull();
    try {
      const up = await call(app, '/scripts', { method: 'POST', cookie: analyst, body: uploadForm('test_socket.py', 'print("one")\nprint("two")\n') });
      const run = await call(app, `/scripts/${up.body.script.id}/executions`, { method: 'POST', cookie: analyst, headers: { 'content-type': 'application/json' }, body: '{}' });
      const lines: string[] = [];
      const finished = new Promise<void>((resolveFinished) => socket.on('execution:finished', () => resolveFinished()));
      socket.on('execution:log', (batch: { lines: Array<{ text: string }> }) => lines.push(...batch.lines.map((l) => l.text)));
      const ack = await socket.emitWithAck('execution:subscribe', { executionId: run.body.execution.id, afterSeq: 0 });
      expect(ack.ok).toBe(true);
      await finished;
      expect(lines).toEqual(['one', 'two']);
    } finally {
      socket.close();
    }
  });

  const browserSuite = chromiumAvailable() || process.env.CI === 'true' ? describe : describe.skip;
  browserSuite('in Chromium', () => {
    let browser: Browser;
    beforeAll(async () => {
      if (!chromiumAvailable()) throw new Error(CHROMIUM_MISSING);
      browser = await launchChromium();
    }, 90_000);
    afterAll(async () => {
      await browser?.close();
    });

    for (const viewport of [
      { width: 1280, height: 860 },
      { width: 380, height: 800 },
      { width: 360, height: 740 },
    ]) {
      it(`signs in, uploads, runs and watches a script live at ${viewport.width} px`, { timeout: 90_000 }, async () => {
        const context = await browser.newContext({ viewport });
        context.setDefaultTimeout(30_000);
        const page: Page = await context.newPage();
        const errors: string[] = [];
        page.on('pageerror', (e) => errors.push(e.message));
        try {
          await page.goto(`${app.url}/sandbox`);
          await page.waitForURL(/\/login$/);
          await page.getByRole('button', { name: 'Sign in' }).click();
          await page.waitForURL(/\/sandbox$/);

          const filename = `test_next_live_${viewport.width}.py`;
          const file = join(app.dataDir, filename);
          await writeFile(file, 'import time\nfor i in range(1, 6):\n    print(f"tick {i}", flush=True)\n    time.sleep(0.2)\n');
          await page.getByLabel('Script file', { exact: true }).setInputFiles(file);
          await page.getByRole('button', { name: 'Upload', exact: true }).click();
          await page.locator(`tr[data-script="${filename}"]`).waitFor();
          // Record how many log rows the page shows over time, to see them arrive one by one.
          await page.evaluate(() => {
            const w = window as unknown as { __counts: number[] };
            w.__counts = [];
            new MutationObserver(() => {
              const n = document.querySelectorAll('.sr-loglines__scroll .sr-line').length;
              if (w.__counts.at(-1) !== n) w.__counts.push(n);
            }).observe(document.body, { subtree: true, childList: true });
          });
          await page.getByRole('button', { name: `Run ${filename}`, exact: true }).click();
          await page.locator('.sr-logview__title', { hasText: filename }).waitFor();
          // Live: the first line shows while the run is still going, then all five.
          await page.locator('.sr-line__text', { hasText: 'tick 1' }).waitFor();
          await page.getByTestId('execution-status').filter({ hasText: 'succeeded' }).waitFor();
          await page.locator('.sr-line__text', { hasText: 'tick 5' }).waitFor();
          const texts = await page.locator('.sr-loglines__scroll .sr-line__text').allTextContents();
          expect(texts).toEqual(['tick 1', 'tick 2', 'tick 3', 'tick 4', 'tick 5']);
          const counts = await page.evaluate(() => (window as unknown as { __counts: number[] }).__counts);
          expect(counts.some((n) => n > 0 && n < 5), `row counts over time: ${counts.join(',')}`).toBe(true);
          // Nothing wider than the window.
          expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(viewport.width);
          expect(errors).toEqual([]);
        } finally {
          await context.close();
        }
      });
    }
  });
});
