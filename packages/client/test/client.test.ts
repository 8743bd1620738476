/**
 * The client against the real stack (runner + Express router + Socket.IO adapter): typed REST
 * calls, and exactly-once log following across a forced disconnect, a lost batch and SSE drops.
 */
import type { Execution, LogLine } from '@scriptrunner/core';
import { afterEach, describe, expect, it } from 'vitest';
import { createScriptRunnerClient, ScriptRunnerClientError, type SocketLike } from '../src/index.js';
import { STEADY, startStack, type Stack } from './server.js';

const stacks: Stack[] = [];
afterEach(async () => {
  await Promise.all(stacks.splice(0).map((s) => s.close()));
});
async function stack() {
  const s = await startStack();
  stacks.push(s);
  return s;
}

/** Follows until finished; returns every delivered seq and the finish count. */
function collect(start: (handlers: { onLines: (l: LogLine[]) => void; onFinished: (e: Execution) => void }) => () => void) {
  const seqs: number[] = [];
  let finished: Execution | null = null;
  let finishes = 0;
  let resolve!: () => void;
  const done = new Promise<void>((r) => (resolve = r));
  const stop = start({
    onLines: (lines) => seqs.push(...lines.map((l) => l.seq)),
    onFinished: (e) => {
      finishes++;
      finished = e;
      resolve();
    },
  });
  return { seqs, done, stop, result: () => ({ finished: finished as Execution | null, finishes }) };
}

function expectExactlyOnce(seqs: number[], total: number) {
  expect(seqs.length).toBe(total);
  for (let i = 0; i < total; i++) if (seqs[i] !== i + 1) throw new Error(`position ${i} has seq ${seqs[i]}`);
}

describe('REST calls', () => {
  it('lists and downloads artifacts, restores an archived script', async () => {
    const s = await stack();
    const client = createScriptRunnerClient({ baseUrl: s.baseUrl, headers: { 'x-test': '1' } });
    const code = 'import os\nopen(os.path.join(os.environ["SCRIPTRUNNER_OUTPUT_DIR"], "wind ü.csv"), "w").write("plant,speed\\nA,9.5\\n")\n';
    const script = await client.uploadScript(new Blob([code]), { filename: 'test_artifact.py' });
    const execution = await client.run(script.id);
    await s.runner.waitFor(execution.id);
    expect((await client.getExecution(execution.id)).artifactCount).toBe(1);
    const artifacts = await client.listArtifacts(execution.id);
    expect(artifacts).toMatchObject([{ executionId: execution.id, name: 'wind ü.csv', sizeBytes: 18 }]);
    expect(artifacts[0]!.createdAt).toBeInstanceOf(Date);
    expect(new TextDecoder().decode(await client.downloadArtifact(execution.id, 'wind ü.csv'))).toBe('plant,speed\nA,9.5\n');
    const link = client.artifactUrl(execution.id, 'wind ü.csv');
    expect(link).toBe(`${s.baseUrl}/executions/${execution.id}/artifacts/wind%20%C3%BC.csv`);
    expect((await fetch(link)).status).toBe(200);
    await expect(client.downloadArtifact(execution.id, 'nope.csv')).rejects.toMatchObject({ code: 'not_found', status: 404 });

    await client.archiveScript(script.id);
    expect((await client.restoreScript(script.id)).status).toBe('active');
  });

  it('uploads, lists, runs, reads logs and cancels with typed results and errors', async () => {
    const s = await stack();
    const client = createScriptRunnerClient({ baseUrl: s.baseUrl });
    const script = await client.uploadScript(new Blob(['print("hello")\nprint("world")\n']), { filename: 'test_client.py', description: 'd', metadata: { a: 1 } });
    expect(script).toMatchObject({ filename: 'test_client.py', description: 'd', metadata: { a: 1 }, lastExecution: null });
    expect(script.createdAt).toBeInstanceOf(Date);
    const execution = await client.run(script.id, { args: ['x'] });
    expect(execution.queuedAt).toBeInstanceOf(Date);
    await s.runner.waitFor(execution.id);
    const page = await client.readLogs(execution.id);
    expect(page.lines.map((l) => l.text)).toEqual(['hello', 'world']);
    expect(page.lines[0]!.time).toBeInstanceOf(Date);
    expect(page.done).toBe(true);
    expect((await client.getExecution(execution.id)).status).toBe('succeeded');
    const list = await client.listScripts();
    expect(list.items[0]!.lastExecution?.id).toBe(execution.id);
    expect((await client.listExecutions({ scriptId: script.id })).items).toHaveLength(1);
    expect(await (await fetch(client.logsTextUrl(execution.id))).text()).toBe('hello\nworld\n');
    expect(await (await fetch(client.scriptContentUrl(script.id))).text()).toBe('print("hello")\nprint("world")\n');

    const bad = await client.uploadScript(new Blob(['x']), { filename: 'nope.py' }).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(ScriptRunnerClientError);
    expect(bad).toMatchObject({ code: 'validation', status: 422 });
    await expect(client.getExecution('missing')).rejects.toMatchObject({ code: 'not_found', status: 404 });
    const archived = await client.archiveScript(script.id);
    expect(archived.status).toBe('archived');
    await expect(client.run(script.id)).rejects.toMatchObject({ code: 'conflict', status: 409 });
  });

  it('reports an unreachable server as a network error', async () => {
    const client = createScriptRunnerClient({ baseUrl: 'http://127.0.0.1:9/api' });
    await expect(client.listScripts()).rejects.toMatchObject({ code: 'network', status: 0 });
  });
});

describe('followExecution over Socket.IO', () => {
  it('delivers every line exactly once across a forced disconnect', { timeout: 60_000 }, async () => {
    const s = await stack();
    const socket = s.socket();
    const client = createScriptRunnerClient({ baseUrl: s.baseUrl, socket });
    const script = await client.uploadScript(new Blob([STEADY(8000)]), { filename: 'test_steady.py' });
    const execution = await client.run(script.id);
    let dropped = false;
    const run = collect((h) =>
      client.followExecution(execution.id, {
        ...h,
        onLines: (lines) => {
          h.onLines(lines);
          if (!dropped && lines.at(-1)!.seq >= 2000) {
            dropped = true;
            // A real transport failure: the engine closes, socket.io-client reconnects by itself.
            (socket.io.engine as unknown as { close(): void }).close();
          }
        },
      }),
    );
    await run.done;
    expect(dropped).toBe(true);
    expectExactlyOnce(run.seqs, 8000);
    expect(run.result()).toMatchObject({ finishes: 1, finished: { status: 'succeeded', lineCount: 8000 } });
  });

  it('fills a gap from the REST route when a batch is lost', { timeout: 60_000 }, async () => {
    const s = await stack();
    const socket = s.socket();
    // Fault injection for what the network cannot be made to do on demand: lose exactly one batch.
    let lost = 0;
    const lossy: SocketLike = {
      get connected() {
        return socket.connected;
      },
      on: (event, listener) =>
        socket.on(event, (...args: unknown[]) => {
          const batch = args[0] as { lines?: Array<{ seq: number }> };
          if (event === 'execution:log' && lost === 0 && (batch.lines?.[0]?.seq ?? 0) > 1000) {
            lost = batch.lines!.length;
            return;
          }
          listener(...args);
        }),
      off: () => socket.off(),
      emit: (event, ...args) => socket.emit(event, ...args),
      timeout: (ms) => socket.timeout(ms),
    };
    let restReads = 0;
    const client = createScriptRunnerClient({
      baseUrl: s.baseUrl,
      socket: lossy,
      fetch: (input, init) => {
        if (String(input).includes('/logs?')) restReads++;
        return fetch(input, init);
      },
    });
    const script = await client.uploadScript(new Blob([STEADY(4000)]), { filename: 'test_steady.py' });
    const execution = await client.run(script.id);
    const run = collect((h) => client.followExecution(execution.id, h));
    await run.done;
    expect(lost).toBeGreaterThan(0);
    expect(restReads).toBeGreaterThan(0);
    expectExactlyOnce(run.seqs, 4000);
  });

  it('joins a finished execution and starts after afterSeq', async () => {
    const s = await stack();
    const client = createScriptRunnerClient({ baseUrl: s.baseUrl, socket: s.socket() });
    const script = await client.uploadScript(new Blob([STEADY(300, 1000)]), { filename: 'test_steady.py' });
    const execution = await client.run(script.id);
    await s.runner.waitFor(execution.id);
    const run = collect((h) => client.followExecution(execution.id, { ...h, afterSeq: 250 }));
    await run.done;
    expect(run.seqs).toEqual(Array.from({ length: 50 }, (_, i) => 251 + i));
  });

  it('two followers of one execution on one socket: stopping one does not starve the other', { timeout: 60_000 }, async () => {
    const s = await stack();
    const client = createScriptRunnerClient({ baseUrl: s.baseUrl, socket: s.socket() });
    const script = await client.uploadScript(new Blob([STEADY(3000)]), { filename: 'test_steady.py' });
    const execution = await client.run(script.id);
    let stopFirst: (() => void) | null = null;
    const first: number[] = [];
    stopFirst = client.followExecution(execution.id, {
      onLines: (lines) => {
        first.push(...lines.map((l) => l.seq));
        if (first.length >= 500) stopFirst?.();
      },
    });
    const second = collect((h) => client.followExecution(execution.id, h));
    await second.done;
    expectExactlyOnce(second.seqs, 3000);
    expect(first.length).toBeLessThan(3000);
  });

  it('reports a refused subscription and stops', async () => {
    const s = await stack();
    const client = createScriptRunnerClient({ baseUrl: s.baseUrl, socket: s.socket() });
    const error = await new Promise<ScriptRunnerClientError>((resolve) => {
      client.followExecution('no-such-execution', { onLines: () => {}, onError: resolve });
    });
    expect(error.code).toBe('not_found');
  });
});

describe('followExecution over SSE (no socket)', () => {
  it('delivers every line exactly once when the server drops the connections', { timeout: 60_000 }, async () => {
    const s = await stack();
    const client = createScriptRunnerClient({ baseUrl: s.baseUrl });
    const script = await client.uploadScript(new Blob([STEADY(6000)]), { filename: 'test_steady.py' });
    const execution = await client.run(script.id);
    let drops = 0;
    const run = collect((h) =>
      client.followExecution(execution.id, {
        ...h,
        onLines: (lines) => {
          h.onLines(lines);
          const last = lines.at(-1)!.seq;
          if ((drops === 0 && last >= 1500) || (drops === 1 && last >= 4000)) {
            drops++;
            // A real drop: the server closes every open connection, the stream among them.
            s.http.closeAllConnections();
          }
        },
        onError: () => {},
      }),
    );
    await run.done;
    expect(drops).toBe(2);
    expectExactlyOnce(run.seqs, 6000);
    expect(run.result()).toMatchObject({ finishes: 1, finished: { status: 'succeeded', lineCount: 6000 } });
  });

  it('stops when the caller unsubscribes', async () => {
    const s = await stack();
    const client = createScriptRunnerClient({ baseUrl: s.baseUrl });
    const script = await client.uploadScript(new Blob(['import time\nprint("a", flush=True)\ntime.sleep(30)\n']), { filename: 'test_wait.py' });
    const execution = await client.run(script.id);
    const seen: number[] = [];
    const stop = await new Promise<() => void>((resolve) => {
      const s2 = client.followExecution(execution.id, {
        onLines: (lines) => {
          seen.push(...lines.map((l) => l.seq));
          resolve(s2);
        },
      });
    });
    // The server's open follows (internal; read for this test only).
    const follows = () => (s.runner as unknown as { follows: { size: number } }).follows.size;
    expect(follows()).toBe(1);
    stop();
    for (let i = 0; i < 250 && follows() > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(follows()).toBe(0);
    expect(seen).toEqual([1]);
    await client.cancel(execution.id);
  });
});
