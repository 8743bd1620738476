/**
 * Faults that must not end the host or leave a lie in the store: a store that never answers at
 * start, a stop for a run that is running here, an abandoned store attempt landing late, a slow
 * paced transport, a slow log file, a slow sandbox probe.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, createReadStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { logFileTransport } from '../src/transports/log-file.js';
import {
  createScriptRunner,
  memoryStore,
  type DispatchHost,
  type Dispatcher,
  type DispatchRequest,
  type Execution,
  type RunnerEvent,
  type Store,
  type Transport,
} from '../src/index.js';
import { closeRunners, FLOOD_60K, makeRunner, runFixture, silentLogger, waitUntil } from './helpers.js';

afterEach(closeRunners);
const root = mkdtempSync(join(tmpdir(), 'sr-faults-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Runs each execution as soon as it is dispatched, and lets the test reach the host. */
class DirectDispatcher implements Dispatcher {
  host!: DispatchHost;
  attach(host: DispatchHost): void {
    this.host = host;
  }
  async dispatch(request: DispatchRequest): Promise<void> {
    void this.host.execute(request);
  }
  async cancel(executionId: string): Promise<void> {
    this.host.stop(executionId, 'cancelled', 'cancelled by request');
  }
}

/** Starts a script that prints "ready" and then waits `seconds`; resolves once "ready" is stored. */
async function startWaiting(runner: ReturnType<typeof makeRunner>, seconds: number): Promise<Execution> {
  const script = await runner.uploadScript({
    filename: 'test_wait.py',
    content: Buffer.from(`import time\nprint("ready", flush=True)\ntime.sleep(${seconds})\nprint("bye")\n`),
  });
  const queued = await runner.run(script.id);
  expect(await waitUntil(async () => (await runner.readLogs(queued.id)).some((l) => l.text === 'ready'), 20_000)).toBe(true);
  return queued;
}

function finishedEvents(runner: ReturnType<typeof makeRunner>): Execution[] {
  const seen: Execution[] = [];
  runner.on('execution:finished', (e) => seen.push(e));
  return seen;
}

describe('start-up recovery', () => {
  it('a store that never answers the recovery query delays nothing past the bound, and says so', async () => {
    const inner = memoryStore();
    const store: Store = { ...inner, interruptStaleExecutions: () => new Promise<never>(() => {}) };
    const errors: string[] = [];
    const startedAt = Date.now();
    const runner = makeRunner({
      store,
      isolation: 'none',
      storeRetry: { attemptTimeoutMs: 300 },
      logger: { warn: () => {}, error: (m) => errors.push(m) },
    });
    expect((await runner.listScripts()).items).toEqual([]);
    expect(Date.now() - startedAt).toBeLessThan(10_000);
    expect(errors).toEqual([expect.stringContaining('could not recover stale executions: the store did not answer within 300 ms')]);
    const { execution } = await runFixture(runner, 'test_exit_code.py', { args: ['0'] });
    expect(execution.status).toBe('succeeded');
    await runner.close();
  });
});

describe('ending an execution that runs here', () => {
  it("endUnstarted on a running execution stops it: one finished event, with its lines, and nothing tracked after", async () => {
    const dispatcher = new DirectDispatcher();
    const runner = makeRunner({ isolation: 'none', dispatcher });
    const finished = finishedEvents(runner);
    const queued = await startWaiting(runner, 600);
    const ended = await dispatcher.host.endUnstarted(queued.id, 'interrupted', 'the job was removed');
    expect(ended).toMatchObject({ status: 'interrupted', errorMessage: 'the job was removed' });
    expect(ended!.lineCount).toBeGreaterThanOrEqual(1);
    expect(finished.filter((e) => e.id === queued.id)).toHaveLength(1);
    expect(await runner.getExecution(queued.id)).toEqual(ended);
    // Nothing of it is left on this runner: stop() no longer finds it, a second end changes nothing.
    expect(dispatcher.host.stop(queued.id, 'cancelled', 'again')).toBe(false);
    expect(await dispatcher.host.endUnstarted(queued.id, 'cancelled', 'again')).toEqual(ended);
    expect(finished.filter((e) => e.id === queued.id)).toHaveLength(1);
  });
});

describe('guarded state', () => {
  it('a status write abandoned after attemptTimeoutMs that lands after the end does not overwrite it', async () => {
    const inner = memoryStore();
    let late: Promise<unknown> | null = null;
    let finalWritten!: () => void;
    const afterFinal = new Promise<void>((resolve) => {
      finalWritten = resolve;
    });
    const store: Store = {
      ...inner,
      async updateExecution(id, patch, options) {
        // The first `running` write hangs past the attempt timeout and lands after the final record.
        if (patch.status === 'running' && late === null) {
          late = afterFinal.then(() => inner.updateExecution(id, patch, options));
          return late as Promise<Execution | null>;
        }
        const result = await inner.updateExecution(id, patch, options);
        if (patch.status !== undefined && patch.status !== 'running') finalWritten();
        return result;
      },
    };
    const runner = makeRunner({ store, isolation: 'none', storeRetry: { attemptTimeoutMs: 200, minDelayMs: 10 } });
    const { execution } = await runFixture(runner, 'test_exit_code.py', { args: ['0'] });
    expect(execution.status).toBe('succeeded');
    expect(late).not.toBeNull();
    await late;
    expect(await inner.getExecution(execution.id)).toMatchObject({ status: 'succeeded', lineCount: execution.lineCount });
  });
});

describe('paced transports', () => {
  it('a slow paced transport holds the script back instead of buffering', async () => {
    const seen: number[] = [];
    const slow: Transport = {
      paced: true,
      async publish(event: RunnerEvent) {
        if (event.type !== 'execution:log') return;
        seen.push(...event.data.lines.map((l) => l.seq));
        await new Promise((r) => setTimeout(r, 25));
      },
    };
    const runner = makeRunner({ transports: [slow], maxBatchLines: 500, isolation: 'none' });
    const { execution, texts } = await runFixture(runner, 'test_paced.py', { code: FLOOD_60K });
    expect(execution).toMatchObject({ status: 'succeeded', lineCount: 60_001 });
    expect(seen).toEqual(Array.from({ length: 60_001 }, (_, i) => i + 1));
    // Unpaced, python writes these lines in well under a second; 25 ms per batch of at most 500
    // lines can only be kept up with if the child was held back (blocked on a full pipe).
    expect(Number(texts.at(-1)!.split(' ')[1])).toBeGreaterThan(1.5);
  });

  it('the log file transport waits for a file that does not take its writes (a FIFO nobody reads yet)', async () => {
    const dir = join(root, 'fifo-logs');
    mkdirSync(dir, { recursive: true });
    const fifo = join(dir, 'exec-1.log');
    execFileSync('mkfifo', [fifo]);
    const transport = logFileTransport(dir);
    const execution = { id: 'exec-1' } as Execution;
    await transport.publish({ type: 'execution:started', data: execution });
    const lines = Array.from({ length: 5000 }, (_, i) => ({
      executionId: 'exec-1',
      seq: i + 1,
      stream: 'stdout' as const,
      level: 'info' as const,
      text: `line ${i + 1} ${'z'.repeat(60)}`,
      time: new Date(),
    }));
    const held = transport.publish({ type: 'execution:log', data: { executionId: 'exec-1', lines } });
    expect(held).toBeInstanceOf(Promise);
    let settled = false;
    void (held as Promise<void>).then(() => {
      settled = true;
    });
    await new Promise((r) => setTimeout(r, 100));
    expect(settled).toBe(false);
    // A reader arrives: the batch drains, then the end closes the file.
    const chunks: Buffer[] = [];
    const reader = createReadStream(fifo);
    reader.on('data', (c) => chunks.push(c as Buffer));
    const readAll = new Promise<void>((r) => reader.on('end', () => r()));
    await held;
    await transport.publish({ type: 'execution:finished', data: execution });
    await readAll;
    const text = Buffer.concat(chunks).toString('utf8');
    expect(text).toBe(lines.map((l) => `${l.text}\n`).join(''));
  });
});

describe('sandbox probe', () => {
  it('does not block the event loop: createScriptRunner returns at once, the first run waits for the probe', async () => {
    // A PATH whose bwrap takes 2 s to answer each probe, then runs the command unconfined.
    const bin = join(root, 'slow-bwrap-bin');
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, 'bwrap'), '#!/bin/sh\nsleep 2\nwhile [ "$1" != "--" ]; do shift; done\nshift\nexec "$@"\n');
    chmodSync(join(bin, 'bwrap'), 0o755);
    const tools = {
      prlimit: spawnSync('sh', ['-c', 'command -v prlimit'], { encoding: 'utf8' }).stdout.trim(),
      python3: spawnSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).stdout.trim(),
      sh: '/bin/sh',
      sleep: spawnSync('sh', ['-c', 'command -v sleep'], { encoding: 'utf8' }).stdout.trim(),
    };
    for (const [tool, found] of Object.entries(tools)) {
      if (!existsSync(join(bin, tool))) symlinkSync(found, join(bin, tool));
    }
    const savedPath = process.env.PATH;
    process.env.PATH = bin;
    try {
      const before = Date.now();
      const runner = createScriptRunner({ isolation: 'bwrap', logger: silentLogger, workDir: join(root, 'runs') });
      expect(Date.now() - before).toBeLessThan(1000);
      const { execution, texts } = await runFixture(runner, 'test_probe.py', { code: 'print("after the probe")\n' });
      expect(execution.status).toBe('succeeded');
      expect(texts).toEqual(['after the probe']);
      expect(Date.now() - before).toBeGreaterThanOrEqual(2000);
      await runner.close();
    } finally {
      process.env.PATH = savedPath;
    }
  });
});

describe('a run whose execution another node ended meanwhile', () => {
  it('does not overwrite the end (its final write is refused); its own listeners get the stored end once', async () => {
    const store = memoryStore();
    const dispatcher = new DirectDispatcher();
    const runner = makeRunner({ store, isolation: 'none', dispatcher });
    const finished = finishedEvents(runner);
    const queued = await startWaiting(runner, 600);
    // Another node decided this worker was dead (its lock lapsed) and ended the execution.
    const elsewhere = await store.updateExecution(
      queued.id,
      { status: 'interrupted', finishedAt: new Date(), errorMessage: 'the worker running this execution stopped before it finished' },
      { expect: ['running'] },
    );
    expect(elsewhere!.status).toBe('interrupted');
    const final = await runner.cancel(queued.id);
    expect(final).toEqual(elsewhere);
    expect(await store.getExecution(queued.id)).toEqual(elsewhere);
    // Only here (the node that ended it told the others): the stored record, once.
    expect(finished.filter((e) => e.id === queued.id)).toEqual([elsewhere]);
  });
});

describe('store outages around the in-process queue (found in review)', () => {
  it('a store that fails the read when a queued execution starts: it ends failed (remembered), waitFor resolves', async () => {
    const inner = memoryStore();
    let failGet = false;
    const store: Store = {
      ...inner,
      async getExecution(id) {
        if (failGet) throw new Error('db down');
        return inner.getExecution(id);
      },
    };
    const runner = makeRunner({ store, isolation: 'none', storeRetry: { attempts: 1 } });
    const errors: string[] = [];
    runner.on('error', (e) => errors.push(e.message));
    const script = await runner.uploadScript({ filename: 'test_ok.py', content: Buffer.from('print("hi")\n') });
    failGet = true;
    const queued = await runner.run(script.id);
    const final = await runner.waitFor(queued.id).finally(() => {
      failGet = false;
    });
    expect(final).toMatchObject({ id: queued.id, status: 'failed' });
    expect(final.errorMessage).toContain('could not start the execution');
    expect(errors.some((m) => m.includes('db down'))).toBe(true);
  });

  it('two cancels of one queued execution both answer cancelled (no conflict)', async () => {
    const runner = makeRunner({ isolation: 'none', concurrency: 1 });
    const script = await runner.uploadScript({ filename: 'test_sleep.py', content: Buffer.from('import time\ntime.sleep(30)\n') });
    const first = await runner.run(script.id);
    const second = await runner.run(script.id);
    const results = await Promise.all([runner.cancel(second.id), runner.cancel(second.id)]);
    expect(results.map((r) => r.status)).toEqual(['cancelled', 'cancelled']);
    await runner.cancel(first.id);
  });

  it('cancel of a queued execution while the store read fails: cancelled (remembered), never started', async () => {
    const inner = memoryStore();
    const store: Store = { ...inner };
    const runner = makeRunner({ store, isolation: 'none', concurrency: 1, killGraceMs: 100, storeRetry: { attempts: 1 } });
    runner.on('error', () => {});
    const script = await runner.uploadScript({ filename: 'test_sleep.py', content: Buffer.from('import time\ntime.sleep(3)\n') });
    const first = await runner.run(script.id);
    const second = await runner.run(script.id);
    // The runner's own read in cancel() succeeds; the one when ending it fails.
    let calls = 0;
    store.getExecution = async (id) => {
      calls++;
      if (calls === 2) throw new Error('db down');
      return inner.getExecution(id);
    };
    const cancelled = await runner.cancel(second.id);
    expect(cancelled).toMatchObject({ status: 'cancelled', startedAt: null });
    await runner.waitFor(first.id);
    expect(await runner.getExecution(second.id)).toMatchObject({ status: 'cancelled', startedAt: null });
    expect(await inner.readLogs(second.id, { limit: 10 })).toEqual([]);
  });
});

describe('a run ended elsewhere (found in review)', () => {
  it('still closes its log file and tells its own listeners the end', async () => {
    const store = memoryStore();
    const logDir = join(root, 'logs-ended-elsewhere');
    const runner = makeRunner({ store, isolation: 'none', logDir });
    const finished = finishedEvents(runner);
    const queued = await startWaiting(runner, 1.5);
    // e.g. a second runner started on the same database ran its start-up recovery
    await store.updateExecution(queued.id, { status: 'interrupted', finishedAt: new Date(), errorMessage: 'the runner stopped before this execution finished' }, { expect: ['running'] });
    const final = await runner.waitFor(queued.id);
    expect(final.status).toBe('interrupted');
    expect(finished.filter((e) => e.id === queued.id)).toEqual([final]);
    const logPath = join(logDir, `${queued.id}.log`);
    const open = () =>
      readdirSync('/proc/self/fd').filter((fd) => {
        try {
          return readlinkSync(`/proc/self/fd/${fd}`) === logPath;
        } catch {
          return false;
        }
      }).length;
    expect(await waitUntil(() => open() === 0, 5000)).toBe(true);
    expect(readFileSync(logPath, 'utf8')).toContain('ready\n');
  });
});
