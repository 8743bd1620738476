/**
 * What a hostile or careless client can do to the routes, through both faces on real servers:
 * cross-site writes (refused, nothing stored or run), bodies that trickle or stop, ids and cursors
 * that are garbage, paths that do not exist, and readers of a huge log that must not starve others.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import { memoryStore, type ScriptRunner, type Store } from '@scriptrunner/core';
import { sampleExecution, sampleLines, sampleScript } from '@scriptrunner/core/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { createScriptRunnerHandler } from '../../adapter-fetch/src/index.js';
import { closeServers, FACES, json, originOf, runScript, serverFor, startServer, upload } from './helpers.js';

afterEach(closeServers);

const EVIL = 'http://evil.example';

/** What is stored, to compare before and after a refused request. */
async function stored(runner: ScriptRunner) {
  const scripts = await runner.listScripts({ status: 'all', limit: 1000 });
  const executions = await runner.listExecutions({ limit: 1000 });
  return JSON.stringify({ scripts: scripts.items, executions: executions.items });
}

/** A finished execution with `count` stored lines, written straight into the store. */
async function storedExecution(store: Store, count: number) {
  const script = sampleScript();
  await store.createScript(script);
  const execution = sampleExecution(script.id, { status: 'succeeded', exitCode: 0, startedAt: new Date(), finishedAt: new Date(), lineCount: count });
  await store.createExecution(execution);
  for (let from = 1; from <= count; from += 20_000) await store.appendLogs(execution.id, sampleLines(execution.id, from, Math.min(count, from + 19_999)));
  return execution;
}

/**
 * A reader in its own process (so that its work does not share the server's event loop): prints
 * "first" after the first chunk and "done <bytes>" at the end of the body.
 */
function reader(url: string): { child: ChildProcess; first: Promise<void>; done: Promise<number> } {
  const code = `
    const res = await fetch(process.argv[1]);
    let bytes = 0, first = true;
    for await (const chunk of res.body) { bytes += chunk.length; if (first) { first = false; console.log('first'); } }
    console.log('done ' + bytes);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code, url], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  let onFirst!: () => void;
  let onDone!: (bytes: number) => void;
  const first = new Promise<void>((resolve) => (onFirst = resolve));
  const done = new Promise<number>((resolve) => (onDone = resolve));
  child.stdout!.on('data', (chunk: Buffer) => {
    out += chunk.toString();
    if (out.includes('first')) onFirst();
    const match = /done (\d+)/.exec(out);
    if (match) onDone(Number(match[1]));
  });
  return { child, first, done };
}

describe.each(FACES)('%s face', (face) => {
  const startServer = serverFor(face);

  it('refuses cross-site writes on every write route with 403 cross_site, storing and running nothing', async () => {
    const { base, runner } = await startServer();
    const scriptId = (await upload(base, 'test_x.py', 'import time\ntime.sleep(30)\n')).body.script.id as string;
    const executionId = (await runScript(base, scriptId)).body.execution.id as string;
    const before = await stored(runner);
    const form = () => {
      const data = new FormData();
      data.append('file', new Blob(['print("pwned")']), 'test_evil.py');
      return data;
    };
    // What a page on another site can send without a preflight, and then some.
    const attempts: Array<[string, string, RequestInit]> = [
      ['upload (multipart)', '/scripts', { method: 'POST', body: form() }],
      ['run (empty form)', `/scripts/${scriptId}/executions`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '' }],
      ['run (text/plain)', `/scripts/${scriptId}/executions`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{"args":[]}' }],
      ['run (JSON)', `/scripts/${scriptId}/executions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"args":[]}' }],
      ['cancel', `/executions/${executionId}/cancel`, { method: 'POST' }],
      ['archive', `/scripts/${scriptId}`, { method: 'DELETE' }],
    ];
    const signals: Array<[string, Record<string, string>]> = [
      ['Origin of another site', { origin: EVIL }],
      ['Sec-Fetch-Site: cross-site', { origin: EVIL, 'sec-fetch-site': 'cross-site' }],
      ['Sec-Fetch-Site: same-site (another port)', { origin: 'http://127.0.0.1:1', 'sec-fetch-site': 'same-site' }],
      ['an opaque origin', { origin: 'null' }],
    ];
    for (const [what, path, init] of attempts) {
      for (const [how, headers] of signals) {
        const res = await json(`${base}${path}`, { ...init, headers: { ...(init.headers as Record<string, string>), ...headers } });
        expect({ what, how, status: res.status, code: res.body?.error?.code }).toEqual({ what, how, status: 403, code: 'cross_site' });
      }
    }
    expect(await stored(runner)).toBe(before);
    expect((await runner.getExecution(executionId)).status).not.toBe('cancelled');

    // The same requests from the page's own origin (or without any browser signal) go through.
    const same = { origin: originOf(base), 'sec-fetch-site': 'same-origin' };
    expect((await json(`${base}/scripts/${scriptId}/executions`, { method: 'POST', headers: { ...same, 'content-type': 'application/json' }, body: '{}' })).status).toBe(202);
    expect((await json(`${base}/executions/${executionId}/cancel`, { method: 'POST', headers: { origin: originOf(base) } })).status).toBe(200);
    expect((await json(`${base}/scripts/${scriptId}`, { method: 'DELETE' })).status).toBe(200);
  });

  it('lets trusted origins write, and only those', async () => {
    const trusted = 'https://dashboard.example.com';
    const { base, runner } = await startServer({}, { trustedOrigins: [trusted] });
    const post = (origin: string) => {
      const data = new FormData();
      data.append('file', new Blob(['print(1)']), 'test_t.py');
      return fetch(`${base}/scripts`, { method: 'POST', body: data, headers: { origin, 'sec-fetch-site': 'cross-site' } });
    };
    expect((await post(trusted)).status).toBe(201);
    expect((await post('https://dashboard.example.com.evil.example')).status).toBe(403);
    expect((await runner.listScripts()).items).toHaveLength(1);
    // A function decides too.
    const fn = await startServer({}, { trustedOrigins: (origin: string) => origin.endsWith('.corp.example') });
    const data = new FormData();
    data.append('file', new Blob(['print(1)']), 'test_t.py');
    expect((await fetch(`${fn.base}/scripts`, { method: 'POST', body: data, headers: { origin: 'https://a.corp.example' } })).status).toBe(201);
  });

  it('answers unknown paths under the mount, wrong methods, over-long ids and garbage cursors with clear 4xx JSON', async () => {
    const { base } = await startServer();
    for (const path of ['/nope', '/scripts/a/b/c', '/executions/x/logs/other', '/']) {
      const res = await json(`${base}${path}`);
      expect({ path, status: res.status, code: res.body?.error?.code }).toEqual({ path, status: 404, code: 'not_found' });
    }
    const wrong = await json(`${base}/scripts`, { method: 'DELETE' });
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get('allow')).toBe('POST, GET');
    const long = 'x'.repeat(5000);
    for (const path of [`/scripts/${long}`, `/executions/${long}/logs`, `/executions?scriptId=${long}`]) {
      const res = await json(`${base}${path}`);
      expect(res.status).toBe(400);
      expect(res.body.error.message).toMatch(/5000 characters long; ids are at most 200/);
    }
    for (const path of ['/scripts?cursor=garbage', '/executions?cursor=garbage']) {
      const res = await json(`${base}${path}`);
      expect({ path, status: res.status }).toEqual({ path, status: 400 });
      expect(res.body.error.message).toMatch(/cursor/);
    }
  });

  it('ends a body that trickles in with 408 and closes the connection', async () => {
    const { base } = await startServer({}, { bodyTimeoutMs: 500 });
    const { hostname, port, pathname } = new URL(base);
    const socket = connect(Number(port), hostname);
    let response = '';
    socket.on('data', (chunk) => (response += chunk.toString()));
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.write(`POST ${pathname}/scripts/abc/executions HTTP/1.1\r\nHost: ${hostname}:${port}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{`);
    // One byte every 100 ms, until the server gives up on the body and closes.
    const drip = setInterval(() => {
      if (!socket.destroyed) socket.write(' ');
    }, 100);
    await closed;
    clearInterval(drip);
    expect(response).toMatch(/^HTTP\/1\.1 408/);
    expect(response).toContain('request_timeout');
  });

  it('answers 413 to an upload over the cap while it is still streaming in (nothing past the cap is buffered)', async () => {
    const { base, runner } = await startServer({}, { upload: { maxBytes: 1024 * 1024 } });
    const { hostname, port, pathname } = new URL(base);
    const socket = connect(Number(port), hostname);
    let response = '';
    const answered = new Promise<void>((resolve) => {
      socket.on('data', (chunk) => {
        response += chunk.toString();
        if (response.includes('\r\n\r\n')) resolve();
      });
      socket.on('close', () => resolve());
    });
    socket.on('error', () => undefined);
    // Announces 64 MiB, sends 2 MiB, then waits: the answer must come without the rest.
    socket.write(
      `POST ${pathname}/scripts HTTP/1.1\r\nHost: ${hostname}:${port}\r\nContent-Type: multipart/form-data; boundary=B\r\nContent-Length: ${64 * 1024 * 1024}\r\n\r\n` +
        `--B\r\nContent-Disposition: form-data; name="file"; filename="test_big.py"\r\n\r\n`,
    );
    socket.write(Buffer.alloc(2 * 1024 * 1024, 0x61));
    await answered;
    socket.destroy();
    expect(response).toMatch(/^HTTP\/1\.1 413/);
    expect((await runner.listScripts({ status: 'all' })).items).toEqual([]);
  });

  it('sends SSE heartbeats while a run is quiet', async () => {
    const { base } = await startServer({}, { heartbeatMs: 100 });
    const scriptId = (await upload(base, 'test_quiet.py', 'import time\nprint("up", flush=True)\ntime.sleep(30)\n')).body.script.id as string;
    const executionId = (await runScript(base, scriptId)).body.execution.id as string;
    const controller = new AbortController();
    const res = await fetch(`${base}/executions/${executionId}/logs/stream`, { signal: controller.signal });
    let text = '';
    const decoder = new TextDecoder();
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        text += decoder.decode(chunk, { stream: true });
        // Two heartbeats after the line: the stream stays alive while nothing is printed.
        if ((text.split('event: log')[1] ?? '').split(': keepalive').length > 2) break;
      }
    } finally {
      controller.abort();
    }
    expect(text).toMatch(/event: log\n[\s\S]*: keepalive \d+\n\n[\s\S]*: keepalive \d+\n\n/);
    await json(`${base}/executions/${executionId}/cancel`, { method: 'POST' });
  });

  it('does not report an upload the client aborted as an unexpected error, and stores nothing', async () => {
    const errors: string[] = [];
    let reachedRoute!: () => void;
    const reached = new Promise<void>((resolve) => (reachedRoute = resolve));
    const { base, runner } = await startServer(
      {},
      {
        logger: { error: (message: string) => errors.push(message) },
        authorize: () => {
          reachedRoute();
          return true;
        },
      },
    );
    const { hostname, port, pathname } = new URL(base);
    const socket = connect(Number(port), hostname);
    const boundary = 'XYZ';
    socket.write(
      `POST ${pathname}/scripts HTTP/1.1\r\nHost: ${hostname}:${port}\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: 100000\r\n\r\n` +
        `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="test_cut.py"\r\n\r\nprint("half`,
    );
    await reached;
    socket.destroy();
    // A later request on a fresh connection is answered; the aborted one left no error behind.
    for (let i = 0; i < 50 && errors.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    expect((await json(`${base}/scripts`)).status).toBe(200);
    expect(errors).toEqual([]);
    expect((await runner.listScripts({ status: 'all' })).items).toEqual([]);
  });

  it('answers GET /scripts while readers download a 1,000,000-line log (by order, not by timer)', { timeout: 120_000 }, async () => {
    const store = memoryStore();
    const execution = await storedExecution(store, 1_000_000);
    const { base } = await startServer({ store });
    const readers = [
      reader(`${base}/executions/${execution.id}/logs.txt`),
      reader(`${base}/executions/${execution.id}/logs/stream?after=0`),
      reader(`${base}/executions/${execution.id}/logs.txt`),
    ];
    try {
      await Promise.all(readers.map((r) => r.first));
      let finishedReaders = 0;
      for (const r of readers) void r.done.then(() => finishedReaders++);
      const res = await json(`${base}/scripts`);
      expect(res.status).toBe(200);
      expect(finishedReaders).toBe(0);
      // And the downloads are complete: logs.txt has every line.
      const bytes = await readers[0]!.done;
      expect(bytes).toBeGreaterThan(1_000_000 * 10);
    } finally {
      for (const r of readers) r.child.kill();
    }
  });
});

describe('errors across module copies', () => {
  it('maps a validation error from a runner of the CommonJS build of core to 422 in both faces', async () => {
    // The faces load core's ESM build; the runner comes from the CommonJS build: two copies of core,
    // as with a custom server next to a bundler. The error brand must still be recognised.
    const cjs = createRequire(import.meta.url)('@scriptrunner/core') as typeof import('@scriptrunner/core');
    const esm = await import('@scriptrunner/core');
    expect(cjs.ScriptRunnerError).not.toBe(esm.ScriptRunnerError);
    for (const face of FACES) {
      const runner = cjs.createScriptRunner({ logger: { warn() {}, error() {} } });
      const { base } = await startServer(face, {}, {}, runner);
      const res = await upload(base, '../test_escape.py', 'print(1)');
      expect({ face, status: res.status, code: res.body.error.code }).toEqual({ face, status: 422, code: 'validation' });
    }
  });
});

describe('the fetch handler with plain Request objects', () => {
  it('serves the routes without any server, and answers 404 outside its basePath', async () => {
    const { createScriptRunner } = await import('@scriptrunner/core');
    const runner = createScriptRunner({ logger: { warn() {}, error() {} } });
    try {
      const handler = createScriptRunnerHandler(runner, { basePath: '/api/sandbox/test-scripts' });
      const form = new FormData();
      form.append('file', new Blob(['print(1)']), 'test_plain.py');
      const created = await handler(new Request('http://app.local/api/sandbox/test-scripts/scripts', { method: 'POST', body: form }));
      expect(created.status).toBe(201);
      const list = await handler(new Request('http://app.local/api/sandbox/test-scripts/scripts'));
      expect(list.headers.get('content-type')).toBe('application/json; charset=utf-8');
      expect(((await list.json()) as { items: unknown[] }).items).toHaveLength(1);
      const outside = await handler(new Request('http://app.local/api/other/scripts'));
      expect(outside.status).toBe(404);
      expect(((await outside.json()) as { error: { code: string } }).error.code).toBe('not_found');
    } finally {
      await runner.close();
    }
  });
});
