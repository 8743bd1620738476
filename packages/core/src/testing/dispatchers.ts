/**
 * The dispatcher conformance suite. Every `Dispatcher` runs it — the in-process one and
 * @scriptrunner/queue-bullmq's — with real runners and real scripts (python3): admission and
 * `queue_full`, cancel of a waiting and of a running execution, events on every attached runner,
 * and close.
 *
 * ```ts
 * import { runDispatcherConformance } from '@scriptrunner/core/testing';
 * runDispatcherConformance('my dispatcher', async ({ concurrency, maxQueued }) => {
 *   const store = memoryStore();
 *   const runner = createScriptRunner({ store, dispatcher: myDispatcher({ maxQueued }), isolation: 'none' });
 *   const worker = startWorker({ store, concurrency }); // runs what the dispatcher hands out
 *   return { runner, observers: [runner, worker.runner], store, close: async () => { await runner.close(); await worker.close(); } };
 * });
 * ```
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { ScriptRunner } from '../runner.js';
import type { Store } from '../store.js';
import { isScriptRunnerError } from '../errors.js';
import type { Execution, RunnerEvent } from '../types.js';

export interface DispatcherLimits {
  /** Executions running at once (the worker's concurrency, or the runner's). */
  concurrency: number;
  /** Executions waiting beyond that before `run` rejects with `queue_full`. */
  maxQueued: number;
}

export interface DispatcherSetup {
  /** Where the suite calls upload/run/cancel/waitFor (a web node). */
  runner: ScriptRunner;
  /**
   * Runners that must see every event of every execution, `runner` included: e.g. two web nodes
   * of a shared queue. (A worker that only sees its own runs need not be one.)
   */
  observers: ScriptRunner[];
  /** The store every runner shares; it must stay readable after `close` (until `cleanup`). */
  store: Store;
  /** Closes the runners (and workers). */
  close(): Promise<void>;
  /** After each test, once `close` resolved: drop the store, stop servers. */
  cleanup?(): Promise<void>;
}

export interface DispatcherConformanceOptions {
  /** Per-test timeout in ms. Default 60,000. */
  timeoutMs?: number;
}

const SLEEPER = 'import time\nprint("started", flush=True)\ntime.sleep(600)\n';
const QUICK = 'import sys\nfor i in range(50):\n    print(f"line {i + 1}")\nprint("to stderr", file=sys.stderr)\n';
/** The execution an event is about (null for script events). */
function idOf(event: RunnerEvent): string | null {
  if (event.type === 'execution:log' || event.type === 'execution:progress') return event.data.executionId;
  if (event.type === 'script:created' || event.type === 'script:archived' || event.type === 'script:restored') return null;
  return event.data.id;
}

const LIMITS: DispatcherLimits = { concurrency: 2, maxQueued: 2 };

async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function runDispatcherConformance(
  name: string,
  setUp: (limits: DispatcherLimits) => Promise<DispatcherSetup>,
  options: DispatcherConformanceOptions = {},
): void {
  describe(`Dispatcher conformance: ${name}`, { timeout: options.timeoutMs ?? 60_000 }, () => {
    let setup: DispatcherSetup | null = null;
    let closed = false;
    afterEach(async () => {
      if (setup && !closed) await setup.close();
      await setup?.cleanup?.();
      setup = null;
      closed = false;
    });

    async function start(): Promise<DispatcherSetup> {
      setup = await setUp(LIMITS);
      return setup;
    }

    /** Every event each observer saw, per execution. */
    function record(observers: ScriptRunner[]): Map<ScriptRunner, RunnerEvent[]> {
      const seen = new Map<ScriptRunner, RunnerEvent[]>();
      for (const observer of observers) {
        const events: RunnerEvent[] = [];
        seen.set(observer, events);
        observer.on('execution:queued', (data) => events.push({ type: 'execution:queued', data }));
        observer.on('execution:started', (data) => events.push({ type: 'execution:started', data }));
        observer.on('execution:log', (data) => events.push({ type: 'execution:log', data }));
        observer.on('execution:finished', (data) => events.push({ type: 'execution:finished', data }));
      }
      return seen;
    }

    async function fillSlots(runner: ScriptRunner, scriptId: string): Promise<Execution[]> {
      const running: Execution[] = [];
      for (let i = 0; i < LIMITS.concurrency; i++) running.push(await runner.run(scriptId));
      for (const execution of running) {
        await until(async () => (await runner.readLogs(execution.id)).some((l) => l.text === 'started'), `execution ${execution.id} to start`);
      }
      return running;
    }

    it('runs an execution: every attached runner sees its lifecycle once, in order, and a follow on each its lines once', async () => {
      const { runner, observers } = await start();
      const seen = record(observers);
      const script = await runner.uploadScript({ filename: 'test_quick.py', content: Buffer.from(QUICK) });
      const queued = await runner.run(script.id);
      // A follow on every runner (as a Socket.IO or SSE viewer on that node): lines 1..51 once each.
      const followed = observers.map(async (observer) => {
        const seqs: number[] = [];
        for await (const item of await observer.follow(queued.id)) {
          if (item.type === 'lines') seqs.push(...item.lines.map((l) => l.seq));
        }
        return seqs;
      });
      const final = await runner.waitFor(queued.id);
      expect(final).toMatchObject({ status: 'succeeded', exitCode: 0, lineCount: 51 });
      for (const seqs of await Promise.all(followed)) expect(seqs).toEqual(Array.from({ length: 51 }, (_, i) => i + 1));
      for (const observer of observers) {
        await until(() => seen.get(observer)!.some((e) => e.type === 'execution:finished' && e.data.id === queued.id), 'the finish on every runner');
        const events = seen.get(observer)!.filter((e) => idOf(e) === queued.id && e.type !== 'execution:log');
        expect(events.map((e) => e.type)).toEqual(['execution:queued', 'execution:started', 'execution:finished']);
        // Log batches a runner emits (only to runners that follow it, with a dispatcher that filters) are never repeated or out of order.
        const seqs = seen.get(observer)!.flatMap((e) => (e.type === 'execution:log' && e.data.executionId === queued.id ? e.data.lines.map((l) => l.seq) : []));
        expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => (seqs[0] ?? 1) + i));
      }
      expect((await runner.readLogs(queued.id)).map((l) => l.seq)).toHaveLength(51);
    });

    it(`admits ${LIMITS.concurrency} running + ${LIMITS.maxQueued} waiting, then rejects with queue_full storing nothing`, async () => {
      const { runner } = await start();
      const script = await runner.uploadScript({ filename: 'test_sleeper.py', content: Buffer.from(SLEEPER) });
      await fillSlots(runner, script.id);
      const waiting: Execution[] = [];
      for (let i = 0; i < LIMITS.maxQueued; i++) waiting.push(await runner.run(script.id));
      const before = (await runner.listExecutions({ limit: 100 })).items.length;
      const error = await runner.run(script.id).catch((e: unknown) => e);
      expect(isScriptRunnerError(error) && error.code).toBe('queue_full');
      expect((await runner.listExecutions({ limit: 100 })).items).toHaveLength(before);
      for (const execution of waiting) expect((await runner.getExecution(execution.id)).status).toBe('queued');
    });

    it('cancel of a waiting execution ends it cancelled without ever starting it', async () => {
      const { runner, observers } = await start();
      const seen = record(observers);
      const script = await runner.uploadScript({ filename: 'test_sleeper.py', content: Buffer.from(SLEEPER) });
      const running = await fillSlots(runner, script.id);
      const waiting = await runner.run(script.id);
      const cancelled = await runner.cancel(waiting.id);
      expect(cancelled).toMatchObject({ status: 'cancelled', startedAt: null, lineCount: 0 });
      // Cancel the running ones: a slot frees, and the cancelled execution still never starts.
      for (const execution of running) expect((await runner.cancel(execution.id)).status).toBe('cancelled');
      expect(await runner.getExecution(waiting.id)).toMatchObject({ status: 'cancelled', startedAt: null });
      expect(await runner.readLogs(waiting.id)).toEqual([]);
      for (const events of seen.values()) {
        expect(events.some((e) => e.type === 'execution:started' && e.data.id === waiting.id)).toBe(false);
      }
    });

    it('cancel of a running execution stops it and resolves with its final record', async () => {
      const { runner } = await start();
      const script = await runner.uploadScript({ filename: 'test_sleeper.py', content: Buffer.from(SLEEPER) });
      const [execution] = await fillSlots(runner, script.id);
      const cancelled = await runner.cancel(execution!.id);
      expect(cancelled).toMatchObject({ status: 'cancelled', errorMessage: 'cancelled by request' });
      expect(cancelled.finishedAt).toBeInstanceOf(Date);
      expect(cancelled.lineCount).toBeGreaterThanOrEqual(1);
      expect(await runner.waitFor(execution!.id)).toEqual(cancelled);
    });

    it('close() ends running executions as interrupted, starts no waiting one, and refuses new runs', async () => {
      const current = await start();
      const { runner } = current;
      const script = await runner.uploadScript({ filename: 'test_sleeper.py', content: Buffer.from(SLEEPER) });
      const running = await fillSlots(runner, script.id);
      const waiting = await runner.run(script.id);
      await current.close();
      closed = true;
      for (const execution of running) expect((await current.store.getExecution(execution.id))?.status).toBe('interrupted');
      // A waiting one never starts: the in-process queue ends it interrupted; a shared queue may
      // keep it queued for the workers that are still up.
      const after = await current.store.getExecution(waiting.id);
      expect(['interrupted', 'queued']).toContain(after?.status);
      expect(after?.startedAt).toBeNull();
      expect(await current.store.readLogs(waiting.id, { limit: 10 })).toEqual([]);
      const error = await runner.run(script.id).catch((e: unknown) => e);
      expect(isScriptRunnerError(error) && error.code).toBe('closed');
    });
  });
}
