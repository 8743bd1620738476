/**
 * runner.listScriptsWithLastExecution: one store call on a store that offers the method, the
 * listScripts + listExecutions fallback on one that does not, and listScripts' validation. And the
 * store's refusal of a cursor it did not issue, passed on unchanged by every list method.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { memoryStore, ScriptRunnerError, type Execution, type Store } from '../src/index.js';
import { sampleExecution } from '../src/testing/index.js';
import { closeRunners, countingStore, makeRunner } from './helpers.js';

afterEach(closeRunners);

/** Five scripts (one archived); three with runs, one of them with two runs queued at the same instant. */
async function seed(store: Store, runner: ReturnType<typeof makeRunner>) {
  const scripts = [];
  for (let i = 0; i < 5; i++) scripts.push(await runner.uploadScript({ filename: `test_${i}.py`, content: `print(${i})\n` }));
  await runner.archiveScript(scripts[4]!.id);
  const at = new Date(Date.now() - 60_000);
  const newest = new Map<string, Execution>();
  const add = async (scriptId: string, id: string, queuedAt: Date) => {
    const execution = await store.createExecution(sampleExecution(scriptId, { id, queuedAt }));
    const current = newest.get(scriptId);
    if (!current || queuedAt > current.queuedAt || (queuedAt.getTime() === current.queuedAt.getTime() && id > current.id)) {
      newest.set(scriptId, execution);
    }
  };
  await add(scripts[0]!.id, 'run-0-old', new Date(at.getTime() - 1000));
  await add(scripts[0]!.id, 'run-0-new', at);
  await add(scripts[2]!.id, 'run-2-b', at);
  await add(scripts[2]!.id, 'run-2-a', at);
  await add(scripts[4]!.id, 'run-4', at);
  return { scripts, newest };
}

describe('runner.listScriptsWithLastExecution', () => {
  it('asks a store that has the method once', async () => {
    const inner = memoryStore();
    const { store, calls } = countingStore(inner);
    const runner = makeRunner({ store });
    const { scripts, newest } = await seed(inner, runner);
    calls.length = 0;

    const page = await runner.listScriptsWithLastExecution({ status: 'all' });
    expect(calls).toEqual(['listScriptsWithLastExecution']);
    const listed = await runner.listScripts({ status: 'all' });
    expect(page).toEqual({
      items: listed.items.map((s) => ({ ...s, lastExecution: newest.get(s.id) ?? null })),
      nextCursor: null,
    });
    expect(page.items).toHaveLength(5);
    expect(page.items.find((s) => s.id === scripts[2]!.id)!.lastExecution!.id).toBe('run-2-b');
    expect(page.items.find((s) => s.id === scripts[1]!.id)!.lastExecution).toBeNull();
    // Default status is active, as in listScripts.
    expect((await runner.listScriptsWithLastExecution()).items.map((s) => s.id)).toEqual(
      (await runner.listScripts()).items.map((s) => s.id),
    );
  });

  it('falls back to listScripts and one listExecutions per script for a store without it', async () => {
    const { listScriptsWithLastExecution: _omitted, ...withoutMethod } = memoryStore();
    const { store, calls } = countingStore<Store>(withoutMethod);
    const runner = makeRunner({ store });
    const { newest } = await seed(store, runner);

    calls.length = 0;
    const first = await runner.listScriptsWithLastExecution({ status: 'all', limit: 3 });
    expect(calls.sort()).toEqual(['listExecutions', 'listExecutions', 'listExecutions', 'listScripts']);
    const second = await runner.listScriptsWithLastExecution({ status: 'all', limit: 3, cursor: first.nextCursor });
    expect(second.nextCursor).toBeNull();
    const listed = await runner.listScripts({ status: 'all' });
    expect([...first.items, ...second.items]).toEqual(listed.items.map((s) => ({ ...s, lastExecution: newest.get(s.id) ?? null })));
  });

  it('validates like listScripts before asking the store', async () => {
    const { store, calls } = countingStore(memoryStore());
    const runner = makeRunner({ store });
    await runner.listScripts();
    calls.length = 0;
    await expect(runner.listScriptsWithLastExecution({ limit: 1001 })).rejects.toMatchObject({ code: 'validation' });
    await expect(runner.listScriptsWithLastExecution({ limit: 0 })).rejects.toMatchObject({ code: 'validation' });
    await expect(
      runner.listScriptsWithLastExecution({ status: 'deleted' as unknown as 'all' }),
    ).rejects.toMatchObject({ code: 'validation', message: expect.stringMatching(/status must be active, archived or all/) });
    expect(calls).toEqual([]);
  });

  it('turns a store exception into a store error', async () => {
    const broken: Store = { ...memoryStore(), listScriptsWithLastExecution: async () => Promise.reject(new Error('db gone')) };
    const runner = makeRunner({ store: broken });
    await expect(runner.listScriptsWithLastExecution()).rejects.toMatchObject({
      code: 'store',
      message: '[scriptrunner] the store failed: db gone',
    });
  });
});

describe('a cursor the store did not issue', () => {
  const refusal = {
    code: 'validation',
    details: { field: 'cursor' },
    message: '[scriptrunner] cursor "garbage" is not a cursor this store issued; pass nextCursor from a previous page',
  };

  it('rejects every list method with the store\'s validation error, on both listScriptsWithLastExecution paths', async () => {
    const { listScriptsWithLastExecution: _omitted, ...withoutMethod } = memoryStore();
    for (const store of [memoryStore(), withoutMethod]) {
      const runner = makeRunner({ store });
      await runner.uploadScript({ filename: 'test_a.py', content: 'print(1)\n' });
      await expect(runner.listScripts({ cursor: 'garbage' })).rejects.toMatchObject(refusal);
      await expect(runner.listExecutions({ cursor: 'garbage' })).rejects.toMatchObject(refusal);
      await expect(runner.listScriptsWithLastExecution({ cursor: 'garbage' })).rejects.toMatchObject(refusal);
      const longer = runner.listScripts({ cursor: 'x'.repeat(5000) });
      // The message quotes the start of what was given, not all of it.
      await expect(longer).rejects.toMatchObject({ code: 'validation', message: expect.stringContaining(`"${'x'.repeat(40)}…"`) });
      await expect(longer).rejects.toSatisfy((e: Error) => e.message.length < 200);
    }
  });

  it('passes the very error object on, not a copy or a store error', async () => {
    const thrown = new ScriptRunnerError('validation', 'cursor "x" is not a cursor this store issued; pass nextCursor from a previous page', {
      details: { field: 'cursor' },
    });
    const refuse = async (): Promise<never> => Promise.reject(thrown);
    const inner = memoryStore();
    const { listScriptsWithLastExecution: _omitted, ...withoutMethod } = inner;
    const withMethod: Store = { ...inner, listScripts: refuse, listExecutions: refuse, listScriptsWithLastExecution: refuse };
    const fallback: Store = { ...withoutMethod, listScripts: refuse };
    const runner = makeRunner({ store: withMethod });
    await expect(runner.listScripts({ cursor: 'x' })).rejects.toBe(thrown);
    await expect(runner.listExecutions({ cursor: 'x' })).rejects.toBe(thrown);
    await expect(runner.listScriptsWithLastExecution({ cursor: 'x' })).rejects.toBe(thrown);
    await expect(makeRunner({ store: fallback }).listScriptsWithLastExecution({ cursor: 'x' })).rejects.toBe(thrown);
  });
});
