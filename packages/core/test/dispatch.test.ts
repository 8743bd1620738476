/**
 * The dispatch seam, driven by a real in-process dispatcher: a "web" runner that never runs
 * anything and a "worker" runner that runs what the web side queues, sharing one store. The bus
 * between them stands in for Redis: a FIFO of requests taken by workers up to their concurrency,
 * events copied to the other side in order on a later tick, and cancel commands to the workers.
 */
import { mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  memoryStore,
  ScriptRunnerError,
  type DispatchHost,
  type Dispatcher,
  type DispatchRequest,
  type Execution,
  type LogLine,
  type RunnerEvent,
  type ScriptRunner,
  type ScriptRunnerOptions,
  type Store,
} from '../src/index.js';
import { sampleExecution, sampleLines, sampleScript } from '../src/testing/index.js';
import { closeRunners, fixture, isAlive, makeRunner, waitUntil } from './helpers.js';

afterEach(closeRunners);

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** What the nodes share: the waiting requests and who is listening. */
class Bus {
  readonly waiting: DispatchRequest[] = [];
  readonly nodes: LoopbackDispatcher[] = [];
  constructor(readonly maxQueued: number) {}

  /** Hands waiting requests, oldest first, to workers with a free slot. */
  pump(): void {
    for (const node of this.nodes) {
      while (node.hasFreeSlot() && this.waiting.length > 0) node.take(this.waiting.shift()!);
    }
  }
}

class LoopbackDispatcher implements Dispatcher {
  host!: DispatchHost;
  /** Every request this node took from the bus, in order. */
  readonly taken: DispatchRequest[] = [];
  /** What `execute` resolved with, as each ended. */
  readonly results: (Execution | null)[] = [];
  readonly calls = { dispatch: 0, cancel: 0, close: 0 };
  /** Taken from the bus, `execute` not resolved yet. */
  private readonly processing = new Set<string>();
  private readonly cancelled = new Set<string>();
  private readonly jobs = new Set<Promise<void>>();
  private closed = false;

  /** concurrency 0: a web node, it takes no work. */
  constructor(
    private readonly bus: Bus,
    private readonly concurrency: number,
    readonly faults: { dispatch?: Error } = {},
  ) {
    bus.nodes.push(this);
  }

  attach(host: DispatchHost): void {
    this.host = host;
  }

  async admit(): Promise<void> {
    if (this.bus.waiting.length >= this.bus.maxQueued) {
      throw new ScriptRunnerError('queue_full', `${this.bus.waiting.length} executions are already waiting`);
    }
  }

  async dispatch(request: DispatchRequest): Promise<void> {
    this.calls.dispatch++;
    if (this.faults.dispatch) throw this.faults.dispatch;
    this.bus.waiting.push(structuredClone(request));
    this.bus.pump();
  }

  async cancel(executionId: string): Promise<void> {
    this.calls.cancel++;
    const index = this.bus.waiting.findIndex((r) => r.executionId === executionId);
    if (index >= 0) {
      this.bus.waiting.splice(index, 1);
      await this.host.endUnstarted(executionId, 'cancelled', 'cancelled before it started');
      return;
    }
    for (const node of this.bus.nodes) if (node !== this) setImmediate(() => node.command(executionId));
  }

  publish(event: RunnerEvent): void {
    // A copy, as if through the wire (structuredClone keeps Dates), delivered on a later tick.
    const copy = structuredClone(event);
    for (const node of this.bus.nodes) if (node !== this) setImmediate(() => node.host.emit(copy));
  }

  async close(): Promise<void> {
    this.calls.close++;
    this.closed = true;
    // Like a queue worker: take nothing new, wait for the jobs that run (the runner ends them).
    await Promise.all([...this.jobs]);
  }

  hasFreeSlot(): boolean {
    return !this.closed && this.processing.size < this.concurrency;
  }

  take(request: DispatchRequest): void {
    this.taken.push(request);
    this.processing.add(request.executionId);
    const job = (async () => {
      await tick();
      const result = this.cancelled.has(request.executionId)
        ? await this.host.endUnstarted(request.executionId, 'cancelled', 'cancelled before it started')
        : await this.host.execute(request);
      this.results.push(result);
    })().finally(() => {
      this.processing.delete(request.executionId);
      this.jobs.delete(job);
      this.bus.pump();
    });
    this.jobs.add(job);
  }

  /** A cancel command from another node. */
  command(executionId: string): void {
    if (this.concurrency === 0) return;
    this.cancelled.add(executionId);
    // Between taking a request and the runner knowing the execution, stop() answers false: retry.
    const tryStop = () => {
      if (this.host.stop(executionId, 'cancelled', 'cancelled by request')) return;
      if (this.processing.has(executionId)) setTimeout(tryStop, 2);
    };
    tryStop();
  }
}

interface Pair {
  store: Store;
  bus: Bus;
  web: ScriptRunner;
  worker: ScriptRunner;
  webSide: LoopbackDispatcher;
  workerSide: LoopbackDispatcher;
}

function pair(
  options: {
    concurrency?: number;
    maxQueued?: number;
    store?: Store;
    webStore?: Store;
    webFaults?: { dispatch?: Error };
    web?: Partial<ScriptRunnerOptions>;
    worker?: Partial<ScriptRunnerOptions>;
  } = {},
): Pair {
  const store = options.store ?? memoryStore();
  const bus = new Bus(options.maxQueued ?? 100);
  const webSide = new LoopbackDispatcher(bus, 0, options.webFaults);
  const workerSide = new LoopbackDispatcher(bus, options.concurrency ?? 2);
  // Each side's own variable shows where a script really ran.
  const web = makeRunner({ store: options.webStore ?? store, dispatcher: webSide, isolation: 'none', env: { SR_NODE: 'web' }, ...options.web });
  const worker = makeRunner({ store, dispatcher: workerSide, isolation: 'none', env: { SR_NODE: 'worker' }, ...options.worker });
  return { store, bus, web, worker, webSide, workerSide };
}

/** Everything a runner's listeners receive, by execution. */
function record(runner: ScriptRunner) {
  const events: { type: string; id: string; data: unknown; at: number }[] = [];
  const lines = new Map<string, LogLine[]>();
  for (const type of ['execution:queued', 'execution:started', 'execution:finished'] as const) {
    runner.on(type, (execution) => events.push({ type, id: execution.id, data: execution, at: performance.now() }));
  }
  runner.on('execution:log', (batch) => {
    events.push({ type: 'execution:log', id: batch.executionId, data: batch, at: performance.now() });
    lines.set(batch.executionId, [...(lines.get(batch.executionId) ?? []), ...batch.lines]);
  });
  return {
    events,
    lines: (id: string) => lines.get(id) ?? [],
    of: (id: string) => events.filter((e) => e.id === id),
    finished: (id: string) => events.find((e) => e.id === id && e.type === 'execution:finished')?.data as Execution | undefined,
  };
}

const LINES = 1500;
const PRINT_LINES = `
import os, sys, time
print("node", os.environ.get("SR_NODE"), os.environ.get("RUN_VAR"), flush=True)
for i in range(2, ${LINES} + 1):
    (sys.stderr if i % 100 == 0 else sys.stdout).write(f"line {i}\\n")
    if i == 700:
        sys.stdout.flush(); sys.stderr.flush(); time.sleep(0.15)
`;
const PID_THEN_SLEEP = 'import os, time\nprint("pid", os.getpid(), flush=True)\nwhile True:\n    time.sleep(1)\n';

describe('dispatch: a web runner and a worker runner sharing a store', () => {
  it('runs on the worker; the web runner sees every event once, in order, and waitFor wakes on the finish', async () => {
    const { web, worker, webSide, workerSide } = pair();
    const seen = record(web);
    const seenOnWorker = record(worker);
    const script = await web.uploadScript({ filename: 'test_lines.py', content: PRINT_LINES });
    const execution = await web.run(script.id, { env: { RUN_VAR: 'from-run' } });
    expect(execution.status).toBe('queued');
    const final = await web.waitFor(execution.id);
    const resolvedAt = performance.now();

    expect(final).toMatchObject({ status: 'succeeded', exitCode: 0, lineCount: LINES });
    expect(webSide.taken).toEqual([]);
    expect(workerSide.taken.map((r) => r.executionId)).toEqual([execution.id]);
    expect(workerSide.taken[0]!.env).toEqual({ RUN_VAR: 'from-run' });

    // The store may say terminal a moment before the finish event arrives here (waitFor's poll).
    expect(await waitUntil(() => seen.finished(execution.id) !== undefined, 5000)).toBe(true);
    const events = seen.of(execution.id);
    const types = events.map((e) => e.type).filter((t, i, all) => t !== 'execution:log' || all[i - 1] !== t);
    expect(types).toEqual(['execution:queued', 'execution:started', 'execution:log', 'execution:finished']);
    const lines = seen.lines(execution.id);
    expect(lines.map((l) => l.seq)).toEqual(Array.from({ length: LINES }, (_, i) => i + 1));
    expect(lines[0]!.text).toBe('node worker from-run');
    // stdout and stderr are separate pipes: their relative order is the order they were read in.
    expect(lines.find((l) => l.text === 'line 100')!.stream).toBe('stderr');
    expect(new Set(lines.slice(1).map((l) => l.text))).toEqual(new Set(Array.from({ length: LINES - 1 }, (_, i) => `line ${i + 2}`)));
    expect(lines[0]!.time).toBeInstanceOf(Date);
    expect(seen.finished(execution.id)).toMatchObject({ status: 'succeeded', lineCount: LINES });
    // The worker's own listeners saw the same lines, and the queued event from the web side.
    expect(seenOnWorker.lines(execution.id).map((l) => l.text)).toEqual(lines.map((l) => l.text));
    expect(seenOnWorker.of(execution.id)[0]!.type).toBe('execution:queued');

    // Woken by the finish event, not by its 500 ms poll.
    const finishedAt = seen.of(execution.id).at(-1)!.at;
    expect(resolvedAt - finishedAt).toBeLessThan(100);

    const stored = await web.readLogs(execution.id, { limit: 10_000 });
    expect(stored.map((l) => [l.seq, l.text])).toEqual(lines.map((l) => [l.seq, l.text]));
    expect(await web.getExecution(execution.id)).toEqual(final);
  });

  it('waitFor on the web runner is not delayed by a finish that lands while it reads the store', async () => {
    // Reads that take a while (a database): the snapshot is taken when the read starts.
    const store = memoryStore();
    const slowStore: Store = {
      ...store,
      getExecution: async (id) => {
        const snapshot = await store.getExecution(id);
        await sleep(60);
        return snapshot;
      },
    };
    const { web } = pair({ store, webStore: slowStore });
    const script = await web.uploadScript({
      filename: 'test_bye.py',
      content: 'import time\nprint("bye", flush=True)\ntime.sleep(0.02)\n',
    });
    let waiting: Promise<Execution> | null = null;
    // waitFor starts just before the end: its first read sees `running`, the finish comes meanwhile.
    web.on('execution:log', (batch) => {
      waiting ??= web.waitFor(batch.executionId);
    });
    let finishedAt = 0;
    web.on('execution:finished', () => {
      finishedAt = performance.now();
    });
    const execution = await web.run(script.id);
    expect(await waitUntil(() => waiting !== null, 5000)).toBe(true);
    const final = await waiting!;
    const resolvedAt = performance.now();
    expect(final).toMatchObject({ id: execution.id, status: 'succeeded' });
    expect(finishedAt).toBeGreaterThan(0);
    // One more read after the wake-up (60 ms), not the rest of a 500 ms poll.
    expect(resolvedAt - finishedAt).toBeLessThan(250);
  });

  it('cancel through the web runner stops a running remote execution and its process', async () => {
    const { web, worker } = pair();
    const seen = record(web);
    const script = await web.uploadScript({ filename: 'test_pid.py', content: PID_THEN_SLEEP });
    const execution = await web.run(script.id);
    // Bounds for states to be reached, generous for a loaded machine (a busy CI failed at 5 s).
    expect(await waitUntil(() => seen.lines(execution.id).length > 0, 20_000)).toBe(true);
    const pid = Number(seen.lines(execution.id)[0]!.text.split(' ')[1]);
    expect(isAlive(pid)).toBe(true);

    const cancelled = await web.cancel(execution.id);
    expect(cancelled).toMatchObject({ id: execution.id, status: 'cancelled' });
    expect(cancelled.startedAt).toBeInstanceOf(Date);
    expect(await waitUntil(() => !isAlive(pid), 10_000)).toBe(true);
    expect(await worker.getExecution(execution.id)).toMatchObject({ status: 'cancelled' });
    expect(seen.finished(execution.id)).toMatchObject({ status: 'cancelled' });
  });

  it('cancel of an execution still waiting for a worker slot ends it without ever starting it', async () => {
    const { web, worker, bus, workerSide } = pair({ concurrency: 1 });
    const seen = record(web);
    const seenOnWorker = record(worker);
    const blocker = await web.uploadScript({ filename: 'test_sleep_forever.py', content: fixture('test_sleep_forever.py') });
    const other = await web.uploadScript({ filename: 'test_sample.py', content: fixture('test_sample.py') });
    const first = await web.run(blocker.id);
    expect(await waitUntil(() => seen.of(first.id).some((e) => e.type === 'execution:started'), 5000)).toBe(true);
    const second = await web.run(other.id);
    expect(bus.waiting.map((r) => r.executionId)).toEqual([second.id]);

    const cancelled = await web.cancel(second.id);
    expect(cancelled).toMatchObject({ status: 'cancelled', startedAt: null, exitCode: null, lineCount: 0 });
    expect(bus.waiting).toEqual([]);

    // The slot frees up: the cancelled one must not start in it.
    expect(await web.cancel(first.id)).toMatchObject({ status: 'cancelled' });
    await sleep(200);
    expect(workerSide.taken.map((r) => r.executionId)).toEqual([first.id]);
    for (const events of [seen.of(second.id), seenOnWorker.of(second.id)]) {
      expect(events.map((e) => e.type)).toEqual(['execution:queued', 'execution:finished']);
    }
    expect(await worker.getExecution(second.id)).toMatchObject({ status: 'cancelled', startedAt: null });
    expect(await web.readLogs(second.id)).toEqual([]);
  });

  it('the run timeout travels with the request', async () => {
    const { web } = pair();
    const script = await web.uploadScript({ filename: 'test_sleep_forever.py', content: fixture('test_sleep_forever.py') });
    const execution = await web.run(script.id, { timeoutMs: 300 });
    const final = await web.waitFor(execution.id);
    expect(final.status).toBe('timed_out');
    expect(final.durationMs!).toBeLessThan(3000);
  });

  it("without a run timeout, the worker's own timeoutMs applies (not the web node's default)", async () => {
    const { web } = pair({ worker: { timeoutMs: 300 } });
    const script = await web.uploadScript({ filename: 'test_sleep_forever.py', content: fixture('test_sleep_forever.py') });
    const final = await web.waitFor((await web.run(script.id)).id);
    expect(final).toMatchObject({ status: 'timed_out', errorMessage: 'timed out after 300 ms' });
  });

  it("the environment travels on the record: the worker runs its own interpreter of that name, or fails saying it has none", async () => {
    // Both sides name the same environment; the worker's is what runs (its own path, its own host).
    const sys = 'import sys\nprint(sys.executable)\n';
    const { web } = pair({
      web: { environments: { forecast: { python: 'python3' }, webonly: { python: 'python3' } } },
      worker: { environments: { forecast: { python: '/usr/bin/python3' } } },
    });
    const script = await web.uploadScript({ filename: 'test_env.py', content: sys, environment: 'forecast' });
    const ran = await web.waitFor((await web.run(script.id)).id);
    expect(ran).toMatchObject({ status: 'succeeded', environment: 'forecast' });
    // The interpreter as the worker resolves it (a link to the real program followed).
    expect((await web.readLogs(ran.id)).map((l) => l.text)).toEqual([realpathSync('/usr/bin/python3')]);
    const missing = await web.waitFor((await web.run(script.id, { environment: 'webonly' })).id);
    expect(missing).toMatchObject({ status: 'failed', environment: 'webonly', errorMessage: 'the environment "webonly" is not configured on this runner' });
  });
});

describe('dispatch: failures', () => {
  it('a dispatch that throws a plain error: run() rejects with unavailable, the execution ends failed', async () => {
    const { web, webSide } = pair({ webFaults: { dispatch: new Error('redis is down') } });
    const seen = record(web);
    const script = await web.uploadScript({ filename: 'test_sample.py', content: fixture('test_sample.py') });
    const error = await web.run(script.id).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ScriptRunnerError);
    expect(error).toMatchObject({ code: 'unavailable' });
    expect((error as Error).message).toContain('redis is down');
    expect(webSide.calls.dispatch).toBe(1);

    const { items } = await web.listExecutions({ scriptId: script.id });
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({ status: 'failed', startedAt: null, lineCount: 0 });
    expect(items[0]!.errorMessage).toContain('could not dispatch');
    expect(items[0]!.errorMessage).toContain('redis is down');
    expect(seen.of(items[0]!.id).map((e) => e.type)).toEqual(['execution:queued', 'execution:finished']);
    expect(await web.waitFor(items[0]!.id)).toMatchObject({ status: 'failed' });
  });

  it('a dispatch that throws a ScriptRunnerError: run() rejects with that error and its code', async () => {
    const thrown = new ScriptRunnerError('closed', 'the dispatcher is closing');
    const { web } = pair({ webFaults: { dispatch: thrown } });
    const script = await web.uploadScript({ filename: 'test_sample.py', content: fixture('test_sample.py') });
    const error = await web.run(script.id).catch((e: unknown) => e);
    expect(error).toBe(thrown);
    const { items } = await web.listExecutions();
    expect(items).toHaveLength(1);
    expect(items[0]!.status).toBe('failed');
    expect(items[0]!.errorMessage).toContain('could not dispatch');
  });

  it('admit() throwing queue_full: run() rejects with queue_full and nothing is stored', async () => {
    const { web, webSide } = pair({ maxQueued: 0 });
    const seen = record(web);
    const script = await web.uploadScript({ filename: 'test_sample.py', content: fixture('test_sample.py') });
    await expect(web.run(script.id)).rejects.toMatchObject({ code: 'queue_full' });
    expect((await web.listExecutions()).items).toEqual([]);
    expect((await web.getScript(script.id)).totalRuns).toBe(0);
    expect(webSide.calls.dispatch).toBe(0);
    expect(seen.events).toEqual([]);
  });
});

describe('dispatch: an execution whose worker died', () => {
  it('ended through endUnstarted (cancelled after its job came back) keeps the lines it stored', async () => {
    const { store, workerSide } = pair();
    const script = await store.createScript(sampleScript());
    const execution = await store.createExecution(sampleExecution(script.id, { queuedAt: new Date(Date.now() - 2000) }));
    await store.updateExecution(execution.id, { status: 'running', startedAt: new Date(Date.now() - 1000) });
    await store.appendLogs(execution.id, sampleLines(execution.id, 1, 3));
    const ended = await workerSide.host.endUnstarted(execution.id, 'cancelled', 'cancelled before it started');
    expect(ended).toMatchObject({ status: 'cancelled', lineCount: 3, errorMessage: 'the worker running this execution stopped before it finished' });
    expect(ended!.durationMs!).toBeGreaterThanOrEqual(1000);
  });

  it('endAbandoned ends only a running execution that does not run here; queued, over and local ones stay as they are', async () => {
    const { store, web, worker, workerSide } = pair();
    const seen = record(web);
    const script = await store.createScript(sampleScript());
    const abandoned = await store.createExecution(sampleExecution(script.id));
    await store.updateExecution(abandoned.id, { status: 'running', startedAt: new Date(Date.now() - 1000) });
    await store.appendLogs(abandoned.id, sampleLines(abandoned.id, 1, 5));
    const queued = await store.createExecution(sampleExecution(script.id));
    const over = await store.createExecution(sampleExecution(script.id, { status: 'succeeded', exitCode: 0, finishedAt: new Date(), durationMs: 5 }));

    const ended = await workerSide.host.endAbandoned(abandoned.id);
    expect(ended).toMatchObject({ status: 'interrupted', lineCount: 5, errorMessage: 'the worker running this execution stopped before it finished' });
    expect(ended!.durationMs!).toBeGreaterThanOrEqual(1000);
    expect(await store.getExecution(abandoned.id)).toEqual(ended);
    expect(await waitUntil(() => seen.finished(abandoned.id) !== undefined, 2000)).toBe(true);
    // A second node learning of the same death changes nothing.
    expect(await workerSide.host.endAbandoned(abandoned.id)).toEqual(ended);
    // Queued: it never ran, and a worker may be starting it right now.
    expect(await workerSide.host.endAbandoned(queued.id)).toEqual(queued);
    expect(await store.getExecution(queued.id)).toEqual(queued);
    expect(await workerSide.host.endAbandoned(over.id)).toEqual(over);
    expect(await workerSide.host.endAbandoned('no-such-execution')).toBeNull();

    // Running on this very runner: alive, whatever its dispatcher was told.
    const sleeper = await web.uploadScript({ filename: 'test_pid.py', content: PID_THEN_SLEEP });
    const live = await web.run(sleeper.id);
    expect(await waitUntil(() => seen.lines(live.id).length > 0, 5000)).toBe(true);
    expect(await workerSide.host.endAbandoned(live.id)).toMatchObject({ id: live.id, status: 'running' });
    expect((await worker.getExecution(live.id)).status).toBe('running');
    expect(seen.finished(live.id)).toBeUndefined();
  });

  it.each(['readLogs', 'updateExecution'] as const)(
    'endAbandoned and endUnstarted never reject when the store fails (%s): they report it and resolve null',
    async (failing) => {
      const store = memoryStore();
      const broken: Store = {
        ...store,
        [failing]: async () => {
          throw new Error('the database is down');
        },
      };
      const { workerSide, worker } = pair({ store: broken, worker: { storeRetry: { attempts: 2, minDelayMs: 1, maxDelayMs: 1 } } });
      const errors: Error[] = [];
      worker.on('error', (error) => errors.push(error));
      const script = await store.createScript(sampleScript());
      const execution = await store.createExecution(sampleExecution(script.id));
      await store.updateExecution(execution.id, { status: 'running', startedAt: new Date() });
      await store.appendLogs(execution.id, sampleLines(execution.id, 1, 3));

      await expect(workerSide.host.endAbandoned(execution.id)).resolves.toBeNull();
      await expect(workerSide.host.endUnstarted(execution.id, 'interrupted', 'its job stalled too often')).resolves.toBeNull();
      expect(errors).toHaveLength(2);
      for (const error of errors) {
        expect(error).toMatchObject({ code: 'store' });
        expect(error.message).toContain(execution.id);
        expect(error.message).toContain('the database is down');
      }
      expect((await store.getExecution(execution.id))!.status).toBe('running');
    },
  );

  it.each([0, 1, 2, 1024, 2345])('is ended interrupted, not run again, with the %i lines it stored', async (stored) => {
    // The dead worker's run directory, on this machine: removed once the execution is ended.
    const workDir = mkdtempSync(join(tmpdir(), 'sr-dispatch-left-'));
    const { store, web, worker, workerSide } = pair({ worker: { workDir } });
    const seen = record(web);
    const seenOnWorker = record(worker);
    const script = await web.uploadScript({
      filename: 'test_marker.py',
      content: 'print("ran again")\n',
    });
    const startedAt = new Date(Date.now() - 1000);
    const execution = await store.createExecution(sampleExecution(script.id, { queuedAt: new Date(Date.now() - 2000) }));
    await store.updateExecution(execution.id, { status: 'running', startedAt });
    if (stored > 0) await store.appendLogs(execution.id, sampleLines(execution.id, 1, stored));
    mkdirSync(join(workDir, `${execution.id}-left`, '.tmp'), { recursive: true });
    mkdirSync(join(workDir, 'other-execution-kept'));

    // The job came back to a live worker.
    const result = await workerSide.host.execute({ executionId: execution.id, timeoutMs: 0 });
    expect(result).toMatchObject({ id: execution.id, status: 'interrupted', lineCount: stored, exitCode: null });
    expect(result!.errorMessage).toMatch(/worker.*stopped/);
    expect(result!.durationMs!).toBeGreaterThanOrEqual(1000);
    expect(await store.getExecution(execution.id)).toEqual(result);
    expect(await waitUntil(() => seen.finished(execution.id) !== undefined, 2000)).toBe(true);
    expect(seen.finished(execution.id)).toMatchObject({ status: 'interrupted', lineCount: stored });
    expect(seenOnWorker.of(execution.id).map((e) => e.type)).toEqual(['execution:finished']);
    expect(seen.of(execution.id).map((e) => e.type)).toEqual(['execution:finished']);
    const logs = await web.readLogs(execution.id, { limit: 10_000 });
    expect(logs).toHaveLength(stored);
    expect(logs.some((l) => l.text === 'ran again')).toBe(false);
    // A second delivery of the same job changes nothing.
    expect(await workerSide.host.execute({ executionId: execution.id, timeoutMs: 0 })).toEqual(result);
    expect(readdirSync(workDir)).toEqual(['other-execution-kept']);
    rmSync(workDir, { recursive: true, force: true });
  });

  it('a job for an execution that is already over or unknown runs nothing', async () => {
    const { store, web, workerSide } = pair();
    const script = await web.uploadScript({ filename: 'test_sample.py', content: fixture('test_sample.py') });
    const done = await store.createExecution(
      sampleExecution(script.id, { status: 'succeeded', exitCode: 0, finishedAt: new Date(), durationMs: 5 }),
    );
    expect(await workerSide.host.execute({ executionId: done.id, timeoutMs: 0 })).toEqual(done);
    expect(await workerSide.host.execute({ executionId: 'no-such-execution', timeoutMs: 0 })).toBeNull();
    expect(await web.readLogs(done.id)).toEqual([]);
  });
});

describe('dispatch: recovery and close', () => {
  it('a runner started with a dispatcher does not interrupt executions other runners hold', async () => {
    const { store, bus, web } = pair({ concurrency: 1 });
    const seen = record(web);
    const script = await web.uploadScript({ filename: 'test_sleep_forever.py', content: fixture('test_sleep_forever.py') });
    const running = await web.run(script.id);
    expect(await waitUntil(() => seen.of(running.id).some((e) => e.type === 'execution:started'), 5000)).toBe(true);
    const queued = await web.run(script.id);
    await sleep(5);

    const another = makeRunner({ store, dispatcher: new LoopbackDispatcher(bus, 0), isolation: 'none' });
    // Every public read waits for the start-up recovery, if any.
    const listed = await another.listExecutions();
    expect(Object.fromEntries(listed.items.map((e) => [e.id, e.status]))).toEqual({
      [running.id]: 'running',
      [queued.id]: 'queued',
    });
    expect(seen.of(running.id).some((e) => e.type === 'execution:finished')).toBe(false);

    // Without a dispatcher the default is to recover: the same store says otherwise then.
    const lone = makeRunner({ store, isolation: 'none' });
    expect((await lone.getExecution(queued.id)).status).toBe('interrupted');
  });

  it('close() of the worker runner ends its running execution interrupted and closes its dispatcher', async () => {
    const { web, worker, workerSide, webSide } = pair();
    const seen = record(web);
    const script = await web.uploadScript({ filename: 'test_pid.py', content: PID_THEN_SLEEP });
    const execution = await web.run(script.id);
    expect(await waitUntil(() => seen.lines(execution.id).length > 0, 5000)).toBe(true);
    const pid = Number(seen.lines(execution.id)[0]!.text.split(' ')[1]);

    await worker.close();
    expect(workerSide.calls.close).toBe(1);
    expect(webSide.calls.close).toBe(0);
    expect(isAlive(pid)).toBe(false);
    const final = await web.waitFor(execution.id);
    expect(final).toMatchObject({ status: 'interrupted' });
    expect(final.errorMessage).toContain('closed');
    expect(await waitUntil(() => seen.finished(execution.id) !== undefined, 2000)).toBe(true);
    expect(seen.finished(execution.id)).toMatchObject({ status: 'interrupted' });
    // A closed worker takes no more work: a new run waits for another worker.
    const next = await web.run(script.id);
    await sleep(100);
    expect((await web.getExecution(next.id)).status).toBe('queued');
    expect(workerSide.taken.map((r) => r.executionId)).toEqual([execution.id]);
    expect(workerSide.results).toEqual([final]);
  });
});
