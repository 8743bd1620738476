/**
 * The queue, cancel of queued runs, recovery of stale executions, close(), store faults, and the
 * public read methods.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createScriptRunner, memoryStore, ScriptRunnerError, type Execution, type Store } from '../src/index.js';
import { sampleExecution, sampleScript } from '../src/testing/index.js';
import { closeRunners, fixture, isAlive, makeRunner, runFixture, silentLogger, waitUntil } from './helpers.js';

afterEach(closeRunners);

const SLEEP = 'import time\nprint("start", flush=True)\ntime.sleep(0.4)\nprint("end")\n';

describe('queue', () => {
  it('never runs more than `concurrency` at once', async () => {
    const runner = makeRunner({ concurrency: 2 });
    const script = await runner.uploadScript({ filename: 'test_sleep.py', content: SLEEP });
    let running = 0;
    let peak = 0;
    runner.on('execution:started', () => {
      running++;
      peak = Math.max(peak, running);
    });
    runner.on('execution:finished', () => {
      running--;
    });
    const executions = await Promise.all(Array.from({ length: 6 }, () => runner.run(script.id)));
    expect(executions.every((e) => e.status === 'queued')).toBe(true);
    const finals = await Promise.all(executions.map((e) => runner.waitFor(e.id)));
    expect(finals.every((e) => e.status === 'succeeded')).toBe(true);
    expect(peak).toBe(2);
    // The stored intervals agree: at no instant were three executions running.
    const intervals = finals.map((e) => [e.startedAt!.getTime(), e.finishedAt!.getTime()] as const);
    for (const [start] of intervals) {
      const overlapping = intervals.filter(([s, f]) => s <= start && start < f).length;
      expect(overlapping).toBeLessThanOrEqual(2);
    }
  });

  it('a queued run that is cancelled never starts', async () => {
    const runner = makeRunner({ concurrency: 1 });
    const blocker = await runner.uploadScript({ filename: 'test_sleep_forever.py', content: fixture('test_sleep_forever.py') });
    const other = await runner.uploadScript({ filename: 'test_sample.py', content: fixture('test_sample.py') });
    const started: string[] = [];
    runner.on('execution:started', (e) => started.push(e.id));
    const first = await runner.run(blocker.id);
    expect(await waitUntil(() => started.length === 1, 5000)).toBe(true);
    const second = await runner.run(other.id);
    expect(second.status).toBe('queued');
    const cancelled = await runner.cancel(second.id);
    expect(cancelled).toMatchObject({ status: 'cancelled', startedAt: null, exitCode: null, lineCount: 0, durationMs: 0 });
    await runner.cancel(first.id);
    await new Promise((r) => setTimeout(r, 300));
    expect(started).toEqual([first.id]);
    expect((await runner.getExecution(second.id)).status).toBe('cancelled');
    expect(await runner.readLogs(second.id)).toEqual([]);
  });

  it('rejects with queue_full beyond maxQueued and stores nothing for the rejected run', async () => {
    const runner = makeRunner({ concurrency: 1, maxQueued: 2 });
    const script = await runner.uploadScript({ filename: 'test_sleep_forever.py', content: fixture('test_sleep_forever.py') });
    const accepted = [await runner.run(script.id), await runner.run(script.id), await runner.run(script.id)];
    const error = await runner.run(script.id).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ScriptRunnerError);
    expect(error).toMatchObject({ code: 'queue_full' });
    expect((await runner.listExecutions({ scriptId: script.id })).items).toHaveLength(3);
    expect((await runner.getScript(script.id)).totalRuns).toBe(3);
    // Room again once one is cancelled.
    await runner.cancel(accepted[2]!.id);
    const again = await runner.run(script.id);
    expect(again.status).toBe('queued');
  });

  it('refuses to run an archived script with conflict, and unknown ids with not_found', async () => {
    const runner = makeRunner();
    const script = await runner.uploadScript({ filename: 'test_x.py', content: 'print(1)' });
    const archived = await runner.archiveScript(script.id);
    expect(archived.status).toBe('archived');
    expect((await runner.archiveScript(script.id)).status).toBe('archived');
    await expect(runner.run(script.id)).rejects.toMatchObject({ code: 'conflict' });
    await expect(runner.run('nope')).rejects.toMatchObject({ code: 'not_found' });
    await expect(runner.getExecution('nope')).rejects.toMatchObject({ code: 'not_found' });
    await expect(runner.readLogs('nope')).rejects.toMatchObject({ code: 'not_found' });
    await expect(runner.cancel('nope')).rejects.toMatchObject({ code: 'not_found' });
    await expect(runner.waitFor('nope')).rejects.toMatchObject({ code: 'not_found' });
    await expect(runner.getScript('nope')).rejects.toMatchObject({ code: 'not_found' });
    expect((await runner.listScripts()).items).toEqual([]);
    expect((await runner.listScripts({ status: 'archived' })).items.map((s) => s.id)).toEqual([script.id]);
  });
});

describe('id validation', () => {
  // Ids reach the runner from URLs; every method that takes one says what is wrong with it.
  const methods = (runner: ReturnType<typeof makeRunner>): Array<[string, (id: unknown) => Promise<unknown>, string, string]> => [
    ['getScript', (id) => runner.getScript(id as string), 'script', 'id'],
    ['getScriptContent', (id) => runner.getScriptContent(id as string), 'script', 'id'],
    ['archiveScript', (id) => runner.archiveScript(id as string), 'script', 'id'],
    ['run', (id) => runner.run(id as string), 'script', 'id'],
    ['getExecution', (id) => runner.getExecution(id as string), 'execution', 'id'],
    ['cancel', (id) => runner.cancel(id as string), 'execution', 'id'],
    ['waitFor', (id) => runner.waitFor(id as string), 'execution', 'id'],
    ['readLogs', (id) => runner.readLogs(id as string), 'execution', 'id'],
    ['listExecutions', (id) => runner.listExecutions({ scriptId: id as string }), 'script', 'scriptId'],
  ];

  it('names an over-long id by its length, not as "non-empty"', async () => {
    const runner = makeRunner();
    for (const [name, call, what, field] of methods(runner)) {
      const error = await call('x'.repeat(5000)).then(
        () => expect.fail(`${name} accepted a 5000-character id`),
        (e: unknown) => e,
      );
      expect(error, name).toBeInstanceOf(ScriptRunnerError);
      expect(error, name).toMatchObject({
        code: 'validation',
        message: `[scriptrunner] ${what} id is 5000 characters long; ids are at most 200`,
        details: { field, length: 5000 },
      });
    }
  });

  it('accepts 200 characters and refuses 201', async () => {
    const runner = makeRunner();
    await expect(runner.getScript('x'.repeat(200))).rejects.toMatchObject({ code: 'not_found' });
    await expect(runner.getExecution('x'.repeat(201))).rejects.toMatchObject({
      code: 'validation',
      message: '[scriptrunner] execution id is 201 characters long; ids are at most 200',
      details: { field: 'id', length: 201 },
    });
  });

  it('calls an empty or non-string id what it is', async () => {
    const runner = makeRunner();
    for (const [name, call, what, field] of methods(runner)) {
      await expect(call(''), name).rejects.toMatchObject({
        code: 'validation',
        message: `[scriptrunner] ${what} id must be a non-empty string`,
        details: { field, length: 0 },
      });
      for (const id of [42, null, { id: 'x' }]) {
        const error = await call(id).then(() => expect.fail(`${name} accepted ${String(id)}`), (e: unknown) => e);
        expect(error, name).toMatchObject({ code: 'validation', message: `[scriptrunner] ${what} id must be a non-empty string` });
        expect((error as ScriptRunnerError).details, name).toEqual({ field });
      }
    }
  });
});

describe('events', () => {
  it('emits script and execution lifecycle events in order', async () => {
    const runner = makeRunner();
    const events: string[] = [];
    for (const name of ['script:created', 'script:archived', 'execution:queued', 'execution:started', 'execution:finished'] as const) {
      runner.on(name, () => events.push(name));
    }
    runner.on('execution:log', () => {
      if (events.at(-1) !== 'execution:log') events.push('execution:log');
    });
    const { script } = await runFixture(runner, 'test_exit_code.py', { args: ['0'] });
    await runner.archiveScript(script.id);
    expect(events).toEqual([
      'script:created',
      'execution:queued',
      'execution:started',
      'execution:log',
      'execution:finished',
      'script:archived',
    ]);
  });

  it('hands every published event to transports, and survives a throwing transport', async () => {
    const seen: string[] = [];
    const errors: Error[] = [];
    const runner = makeRunner({
      transports: [
        {
          publish: (event) => {
            if (seen.at(-1) !== event.type) seen.push(event.type);
          },
        },
        {
          publish: () => {
            throw new Error('transport down');
          },
        },
        { publish: async () => Promise.reject(new Error('async transport down')) },
      ],
    });
    runner.on('error', (e) => errors.push(e));
    const { execution } = await runFixture(runner, 'test_exit_code.py', { args: ['0'] });
    expect(execution.status).toBe('succeeded');
    expect(seen).toEqual(['script:created', 'execution:queued', 'execution:started', 'execution:log', 'execution:finished']);
    await new Promise((r) => setTimeout(r, 10));
    expect(errors.some((e) => e.message === 'transport down')).toBe(true);
    expect(errors.some((e) => e.message === 'async transport down')).toBe(true);
  });

  it('reports getExecution lineCount live while running', async () => {
    const runner = makeRunner();
    const script = await runner.uploadScript({ filename: 'test_print_then_sleep.py', content: fixture('test_print_then_sleep.py') });
    const execution = await runner.run(script.id);
    await new Promise<void>((resolve) => runner.once('execution:log', () => resolve()));
    const live = await runner.getExecution(execution.id);
    expect(live).toMatchObject({ status: 'running', lineCount: 1 });
    await runner.cancel(execution.id);
  });
});

describe('recovery and close', () => {
  it('marks executions left queued or running by a dead runner as interrupted', async () => {
    const store = memoryStore();
    const script = await store.createScript(sampleScript());
    const past = new Date(Date.now() - 10_000);
    const queued = await store.createExecution(sampleExecution(script.id, { queuedAt: past }));
    const running = await store.createExecution(sampleExecution(script.id, { queuedAt: past, status: 'running', startedAt: past }));
    const finished: Execution[] = [];
    const runner = createScriptRunner({ store, logger: silentLogger });
    runner.on('execution:finished', (e) => finished.push(e));
    const q = await runner.getExecution(queued.id);
    const r = await runner.getExecution(running.id);
    expect(q).toMatchObject({ status: 'interrupted', durationMs: 0 });
    expect(r.status).toBe('interrupted');
    expect(r.errorMessage).toMatch(/runner stopped/);
    expect(finished.map((e) => e.id).sort()).toEqual([queued.id, running.id].sort());
    await runner.close();
  });

  it('close() ends running children, interrupts queued runs and refuses new work', async () => {
    // Unisolated so the printed child pid is a host pid (isolation.test.ts covers the sandbox).
    const runner = createScriptRunner({ concurrency: 1, logger: silentLogger, killGraceMs: 500, isolation: 'none' });
    const script = await runner.uploadScript({ filename: 'test_child_tree.py', content: fixture('test_child_tree.py') });
    let childPid = 0;
    runner.on('execution:log', (batch) => {
      for (const line of batch.lines) if (line.text.startsWith('child pid ')) childPid = Number(line.text.slice(10));
    });
    const first = await runner.run(script.id);
    const second = await runner.run(script.id);
    expect(await waitUntil(() => childPid > 0, 5000)).toBe(true);
    const done = [runner.waitFor(first.id), runner.waitFor(second.id)];
    await runner.close();
    const [a, b] = await Promise.all(done);
    expect(a!.status).toBe('interrupted');
    expect(b).toMatchObject({ status: 'interrupted', startedAt: null });
    expect(await waitUntil(() => !isAlive(childPid), 2000)).toBe(true);
    await expect(runner.run(script.id)).rejects.toMatchObject({ code: 'closed' });
    await expect(runner.uploadScript({ filename: 'test_y.py', content: 'x' })).rejects.toMatchObject({ code: 'closed' });
  });
});

describe('close() racing other calls', () => {
  it('a run() still storing its execution when close() is called never starts', async () => {
    const inner = memoryStore();
    const store: Store = {
      ...inner,
      async createExecution(execution) {
        await new Promise((r) => setTimeout(r, 200));
        return inner.createExecution(execution);
      },
    };
    const runner = createScriptRunner({ store, logger: silentLogger });
    const script = await runner.uploadScript({ filename: 'test_x.py', content: 'print("should not run")' });
    const started: string[] = [];
    runner.on('execution:started', (e) => started.push(e.id));
    const pending = runner.run(script.id);
    await new Promise((r) => setTimeout(r, 50));
    await runner.close();
    await expect(pending).rejects.toMatchObject({ code: 'closed' });
    await new Promise((r) => setTimeout(r, 300));
    expect(started).toEqual([]);
    const [execution] = (await inner.listExecutions({ limit: 10 })).items;
    expect(execution).toMatchObject({ status: 'interrupted', startedAt: null });
  });

  it('no waiting run starts while close() is ending the queue', async () => {
    const inner = memoryStore();
    const store: Store = {
      ...inner,
      async updateExecution(id, patch, options) {
        if (patch.status === 'interrupted') await new Promise((r) => setTimeout(r, 300));
        return inner.updateExecution(id, patch, options);
      },
    };
    const runner = createScriptRunner({ store, concurrency: 1, logger: silentLogger });
    const script = await runner.uploadScript({ filename: 'test_x.py', content: 'import time\ntime.sleep(0.2)\n' });
    const started: string[] = [];
    runner.on('execution:started', (e) => started.push(e.id));
    const executions = [];
    for (let i = 0; i < 4; i++) executions.push(await runner.run(script.id));
    // The first may have started while the others were still being queued.
    expect(await waitUntil(() => started.length > 0, 10_000)).toBe(true);
    await runner.close();
    expect(started).toEqual([executions[0]!.id]);
    const finals = await Promise.all(executions.map((e) => inner.getExecution(e.id)));
    expect(finals.map((e) => e!.status)).toEqual(['interrupted', 'interrupted', 'interrupted', 'interrupted']);
  });
});

describe('store faults', () => {
  function flakyStore(failures: { count: number }): Store {
    const inner = memoryStore();
    return {
      ...inner,
      async appendLogs(executionId, lines) {
        if (failures.count > 0) {
          failures.count--;
          // Half the batch lands before the failure, like a connection lost mid-write.
          await inner.appendLogs(executionId, lines.slice(0, Math.ceil(lines.length / 2)));
          throw new Error('connection reset');
        }
        await inner.appendLogs(executionId, lines);
      },
    };
  }

  it('retries a failing appendLogs and loses or duplicates no line', async () => {
    const failures = { count: 3 };
    const errors: Error[] = [];
    const runner = makeRunner({ store: flakyStore(failures), storeRetry: { attempts: 5, minDelayMs: 10, maxDelayMs: 50 } });
    runner.on('error', (e) => errors.push(e));
    const { execution } = await runFixture(runner, 'test_many_lines.py', { args: ['5000'] });
    expect(execution).toMatchObject({ status: 'succeeded', lineCount: 5000 });
    const lines = await runner.readLogs(execution.id, { limit: 10_000 });
    expect(lines.map((l) => l.seq)).toEqual(Array.from({ length: 5000 }, (_, i) => i + 1));
    expect(errors.length).toBe(3);
    expect((errors[0] as ScriptRunnerError).code).toBe('store');
  });

  it('a store that keeps failing ends the execution as failed and does not crash the runner', async () => {
    const failures = { count: Number.POSITIVE_INFINITY };
    const errors: Error[] = [];
    const runner = makeRunner({ store: flakyStore(failures), storeRetry: { attempts: 3, minDelayMs: 10, maxDelayMs: 20 } });
    runner.on('error', (e) => errors.push(e));
    const { execution } = await runFixture(runner, 'test_sleep_forever.py', { timeoutMs: 20_000 });
    expect(execution.status).toBe('failed');
    expect(execution.errorMessage).toMatch(/could not store log lines after 3 attempts: connection reset/);
    expect(errors.some((e) => e.message.includes('stopping it'))).toBe(true);
    // The runner still works once the store recovers.
    failures.count = 0;
    const { execution: next } = await runFixture(runner, 'test_exit_code.py', { args: ['0'] });
    expect(next.status).toBe('succeeded');
  });

  it('a store call that never answers counts as failed: the run ends and cancel returns', async () => {
    const inner = memoryStore();
    const store: Store = { ...inner, appendLogs: () => new Promise<void>(() => {}) };
    const runner = makeRunner({ store, storeRetry: { attempts: 2, minDelayMs: 10, maxDelayMs: 10, attemptTimeoutMs: 200 } });
    const script = await runner.uploadScript({ filename: 'test_sleep_forever.py', content: fixture('test_sleep_forever.py') });
    const execution = await runner.run(script.id);
    const final = await runner.waitFor(execution.id);
    expect(final.status).toBe('failed');
    expect(final.errorMessage).toMatch(/the store did not answer within 200 ms/);
    expect((await runner.cancel(execution.id)).status).toBe('failed');
  });

  it('a run whose recordRun fails is rejected and its execution ends failed, not queued forever', async () => {
    const inner = memoryStore();
    const store: Store = { ...inner, recordRun: async () => Promise.reject(new Error('deadlock detected')) };
    const runner = makeRunner({ store, storeRetry: { attempts: 1 } });
    const script = await runner.uploadScript({ filename: 'test_x.py', content: 'print(1)' });
    await expect(runner.run(script.id)).rejects.toMatchObject({ code: 'store' });
    const [execution] = (await runner.listExecutions()).items;
    expect(execution).toMatchObject({ status: 'failed', startedAt: null });
    expect(execution!.errorMessage).toMatch(/could not record the run: .*deadlock detected/);
    expect((await runner.waitFor(execution!.id)).status).toBe('failed');
  });

  it('keeps the final record it could not store as the answer of waitFor and getExecution', async () => {
    const inner = memoryStore();
    let failFinal = true;
    const store: Store = {
      ...inner,
      async updateExecution(id, patch, options) {
        if (failFinal && patch.finishedAt) throw new Error('disk full');
        return inner.updateExecution(id, patch, options);
      },
    };
    const runner = makeRunner({ store, storeRetry: { attempts: 2, minDelayMs: 5, maxDelayMs: 5 } });
    const { execution } = await runFixture(runner, 'test_exit_code.py', { args: ['0'] });
    expect(execution.status).toBe('succeeded');
    expect((await inner.getExecution(execution.id))!.status).toBe('running');
    expect((await runner.getExecution(execution.id)).status).toBe('succeeded');
    expect((await runner.waitFor(execution.id)).status).toBe('succeeded');
    failFinal = false;
  });

  it('rejects page sizes it would otherwise have to cut short', async () => {
    const runner = makeRunner();
    await expect(runner.readLogs('x', { limit: 10_001 })).rejects.toMatchObject({ code: 'validation' });
    await expect(runner.listScripts({ limit: 1001 })).rejects.toMatchObject({ code: 'validation' });
    await expect(runner.listExecutions({ limit: 0 })).rejects.toMatchObject({ code: 'validation' });
  });

  it('turns store exceptions of read methods into store errors', async () => {
    const broken: Store = { ...memoryStore(), listScripts: async () => Promise.reject(new Error('db gone')) };
    const runner = makeRunner({ store: broken });
    await expect(runner.listScripts()).rejects.toMatchObject({ code: 'store', message: '[scriptrunner] the store failed: db gone' });
  });
});
