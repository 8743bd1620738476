/**
 * The store conformance suite. Every `Store` runs it; it checks the contract written in `store.ts`
 * against what the store really returns afterwards.
 *
 * ```ts
 * import { runStoreConformance } from '@scriptrunner/core/testing';
 * runStoreConformance('my store', async () => ({ store: await makeStore(), cleanup: () => drop() }));
 * ```
 */
import { createHash } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CreateScriptInput, ListScriptsQuery, Store } from '../store.js';
import {
  TERMINAL_STATUSES,
  type Execution,
  type ExecutionStatus,
  type LogLevel,
  type LogLine,
  type LogStream,
  type Page,
  type Script,
  type ScriptWithLastExecution,
} from '../types.js';

export interface ConformanceFixture {
  store: Store;
  /** Called after each test: drop tables, close clients, remove files. */
  cleanup?: () => Promise<void> | void;
}

export interface ConformanceOptions {
  /** Lines in the large-log test. Default 20,000. */
  largeLogLines?: number;
  /** Per-test timeout in ms. Default 30,000. */
  timeoutMs?: number;
}

let counter = 0;
function uniqueId(prefix: string): string {
  counter += 1;
  return `${prefix}${Date.now().toString(36)}${counter.toString(36).padStart(4, '0')}`;
}

/** A script as the runner would create it. */
export function sampleScript(overrides: Partial<CreateScriptInput> = {}): CreateScriptInput {
  const content = overrides.content ?? Buffer.from('print("héllo ✓")\n', 'utf8');
  const now = new Date();
  return {
    id: uniqueId('s'),
    filename: 'test_sample.py',
    runtime: 'python',
    sizeBytes: content.byteLength,
    sha256: createHash('sha256').update(content).digest('hex'),
    description: null,
    metadata: {},
    status: 'active',
    createdAt: now,
    updatedAt: now,
    lastRunAt: null,
    totalRuns: 0,
    ...overrides,
    content,
  };
}

/** A queued execution as the runner would create it. */
export function sampleExecution(scriptId: string, overrides: Partial<Execution> = {}): Execution {
  return {
    id: uniqueId('e'),
    scriptId,
    status: 'queued',
    args: [],
    exitCode: null,
    signal: null,
    queuedAt: new Date(),
    startedAt: null,
    finishedAt: null,
    durationMs: null,
    lineCount: 0,
    errorMessage: null,
    truncated: false,
    ...overrides,
  };
}

/** Lines `from..to` (inclusive) with a deterministic level/stream pattern. */
export function sampleLines(executionId: string, from: number, to: number): LogLine[] {
  const lines: LogLine[] = [];
  const time = new Date();
  for (let seq = from; seq <= to; seq++) {
    const stream: LogStream = seq % 10 === 0 ? 'stderr' : seq % 25 === 0 ? 'system' : 'stdout';
    const level: LogLevel = seq % 10 === 0 ? 'error' : seq % 7 === 0 ? 'warn' : 'info';
    lines.push({ executionId, seq, stream, level, text: `line ${seq} ✓ \u001b[32mok\u001b[0m`, time });
  }
  return lines;
}

function stripContent(input: CreateScriptInput): Script {
  const { content: _content, ...script } = input;
  return script;
}

export function runStoreConformance(
  name: string,
  makeStore: () => Promise<ConformanceFixture> | ConformanceFixture,
  options: ConformanceOptions = {},
): void {
  const largeLogLines = options.largeLogLines ?? 20_000;
  const timeout = options.timeoutMs ?? 30_000;

  describe(`Store conformance: ${name}`, { timeout }, () => {
    let fixture: ConformanceFixture;
    let store: Store;

    beforeEach(async () => {
      fixture = await makeStore();
      store = fixture.store;
    });
    afterEach(async () => {
      await fixture.cleanup?.();
    });

    async function createScript(overrides: Partial<CreateScriptInput> = {}): Promise<Script> {
      return store.createScript(sampleScript(overrides));
    }

    describe('scripts', () => {
      it('stores a script and returns it unchanged', async () => {
        const input = sampleScript({ description: 'day-ahead check', metadata: { team: 'power', tags: ['a', 1, true, null] } });
        const created = await store.createScript(input);
        expect(created).toEqual(stripContent(input));
        const read = await store.getScript(input.id);
        expect(read).toEqual(stripContent(input));
        expect(read!.createdAt).toBeInstanceOf(Date);
      });

      it('stores content bytes exactly', async () => {
        const content = Buffer.from([0x70, 0x72, 0xc3, 0xa9, 0x0a, 0xe2, 0x9c, 0x93, 0x0d, 0x0a, 0x09, 0x7f]);
        const input = sampleScript({ content });
        await store.createScript(input);
        const read = await store.getScriptContent(input.id);
        expect(read).not.toBeNull();
        expect(Buffer.from(read!).equals(content)).toBe(true);
      });

      it('returns null for an unknown script, its content and its update', async () => {
        expect(await store.getScript('missing')).toBeNull();
        expect(await store.getScriptContent('missing')).toBeNull();
        expect(await store.updateScript('missing', { status: 'archived', updatedAt: new Date() })).toBeNull();
        expect(await store.recordRun('missing', new Date())).toBeNull();
      });

      it('does not let callers change stored state through returned objects', async () => {
        const input = sampleScript({ metadata: { a: 1 } });
        const created = await store.createScript(input);
        created.metadata.a = 2;
        created.filename = 'changed.py';
        const read = await store.getScript(input.id);
        expect(read!.metadata).toEqual({ a: 1 });
        expect(read!.filename).toBe('test_sample.py');
      });

      it('updates status, description and metadata', async () => {
        const script = await createScript();
        const later = new Date(script.updatedAt.getTime() + 1000);
        const updated = await store.updateScript(script.id, {
          status: 'archived',
          description: 'retired',
          metadata: { reason: 'old' },
          updatedAt: later,
        });
        expect(updated).toMatchObject({ status: 'archived', description: 'retired', metadata: { reason: 'old' } });
        expect(updated!.updatedAt.getTime()).toBe(later.getTime());
        const read = await store.getScript(script.id);
        expect(read).toEqual(updated);
        // Fields not in the patch are kept.
        expect(read!.filename).toBe(script.filename);
        expect(read!.totalRuns).toBe(0);
      });

      it('lists newest first, filters by status, and pages with cursors without gaps or repeats', async () => {
        const base = Date.now() - 100_000;
        const created: Script[] = [];
        for (let i = 0; i < 7; i++) {
          // Two scripts share each timestamp so the id tie-break is exercised.
          const at = new Date(base + Math.floor(i / 2) * 1000);
          created.push(await createScript({ createdAt: at, updatedAt: at, status: i === 3 ? 'archived' : 'active' }));
        }
        const expectOrder = (scripts: Script[]) =>
          [...scripts]
            .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0))
            .map((s) => s.id);

        const all: string[] = [];
        let cursor: string | null = null;
        let pages = 0;
        do {
          const page = await store.listScripts({ status: 'all', limit: 3, cursor });
          expect(page.items.length).toBeLessThanOrEqual(3);
          all.push(...page.items.map((s) => s.id));
          cursor = page.nextCursor;
          pages++;
        } while (cursor !== null && pages < 10);
        expect(all).toEqual(expectOrder(created));

        const active = await store.listScripts({ status: 'active', limit: 100 });
        expect(active.items.map((s) => s.id)).toEqual(expectOrder(created.filter((s) => s.status === 'active')));
        expect(active.nextCursor).toBeNull();
        const defaultStatus = await store.listScripts({ limit: 100 });
        expect(defaultStatus.items.map((s) => s.id)).toEqual(active.items.map((s) => s.id));
        const archived = await store.listScripts({ status: 'archived', limit: 100 });
        expect(archived.items.map((s) => s.id)).toEqual([created[3]!.id]);
      });

      it('answers a malformed cursor with an empty page', async () => {
        await createScript();
        const page = await store.listScripts({ status: 'all', limit: 10, cursor: 'not-a-cursor!!' });
        expect(page).toEqual({ items: [], nextCursor: null });
      });

      it('counts concurrent runs atomically and keeps the latest lastRunAt', async () => {
        const script = await createScript();
        const base = Date.now();
        const times = Array.from({ length: 40 }, (_, i) => new Date(base + ((i * 7919) % 40) * 10));
        await Promise.all(times.map((at) => store.recordRun(script.id, at)));
        const read = await store.getScript(script.id);
        expect(read!.totalRuns).toBe(40);
        expect(read!.lastRunAt!.getTime()).toBe(Math.max(...times.map((t) => t.getTime())));
      });
    });

    // Optional method: a store without it is reported as skipped here.
    describe('scripts with their last execution', () => {
      function listWithLast(skip: () => void): (query: ListScriptsQuery) => Promise<Page<ScriptWithLastExecution>> {
        const method = store.listScriptsWithLastExecution;
        if (!method) {
          skip();
          throw new Error('unreachable: the test is skipped');
        }
        return (query) => method.call(store, query);
      }

      /** What the store must answer: listScripts' items, each with listExecutions' first item. */
      async function expected(items: Script[]): Promise<ScriptWithLastExecution[]> {
        return Promise.all(
          items.map(async (script) => {
            const newest = await store.listExecutions({ scriptId: script.id, limit: 1 });
            return { ...script, lastExecution: newest.items[0] ?? null };
          }),
        );
      }

      it('pairs each script with its newest execution, or null when it never ran', async (ctx) => {
        const list = listWithLast(() => ctx.skip());
        const base = Date.now() - 100_000;
        const at = (seconds: number) => new Date(base + seconds * 1000);
        const never = await createScript({ createdAt: at(0), updatedAt: at(0) });
        const timed = await createScript({ createdAt: at(1), updatedAt: at(1) });
        const tied = await createScript({ createdAt: at(2), updatedAt: at(2) });
        // Inserted out of time order, so neither insertion order nor the largest id can pass for newest.
        const newestTimed = await store.createExecution(sampleExecution(timed.id, { id: `${timed.id}-b`, queuedAt: at(20), status: 'running', startedAt: at(21) }));
        await store.createExecution(sampleExecution(timed.id, { id: `${timed.id}-z`, queuedAt: at(10), status: 'succeeded' }));
        await store.createExecution(sampleExecution(timed.id, { id: `${timed.id}-a`, queuedAt: at(15), status: 'failed' }));
        // Equal queuedAt: the larger id is the newer one (the order of listExecutions).
        const newestTied = await store.createExecution(sampleExecution(tied.id, { id: `${tied.id}-y`, queuedAt: at(30) }));
        await store.createExecution(sampleExecution(tied.id, { id: `${tied.id}-x`, queuedAt: at(30) }));
        await store.createExecution(sampleExecution(tied.id, { id: `${tied.id}-w`, queuedAt: at(5) }));

        const page = await list({ status: 'all', limit: 10 });
        expect(page.nextCursor).toBeNull();
        expect(page.items).toEqual([
          { ...tied, lastExecution: newestTied },
          { ...timed, lastExecution: newestTimed },
          { ...never, lastExecution: null },
        ]);
        // The same answer as listScripts + listExecutions(limit 1), and no script bytes in it.
        expect(page.items).toEqual(await expected((await store.listScripts({ status: 'all', limit: 10 })).items));
        for (const item of page.items) expect(item).not.toHaveProperty('content');

        // A later change shows: the list is read, not cached.
        const finishedAt = at(40);
        await store.updateExecution(newestTimed.id, { status: 'succeeded', exitCode: 0, finishedAt, durationMs: 19_000 });
        const again = await list({ status: 'all', limit: 10 });
        expect(again.items[1]!.lastExecution).toEqual({ ...newestTimed, status: 'succeeded', exitCode: 0, finishedAt, durationMs: 19_000 });
      });

      it('filters by script status like listScripts', async (ctx) => {
        const list = listWithLast(() => ctx.skip());
        const base = Date.now() - 100_000;
        const active = await createScript({ createdAt: new Date(base), updatedAt: new Date(base) });
        const archived = await createScript({ createdAt: new Date(base + 1000), updatedAt: new Date(base + 1000), status: 'archived' });
        const archivedRun = await store.createExecution(sampleExecution(archived.id, { status: 'succeeded' }));
        const activeRun = await store.createExecution(sampleExecution(active.id));

        expect((await list({ limit: 10 })).items).toEqual([{ ...active, lastExecution: activeRun }]);
        expect((await list({ status: 'active', limit: 10 })).items).toEqual([{ ...active, lastExecution: activeRun }]);
        expect((await list({ status: 'archived', limit: 10 })).items).toEqual([{ ...archived, lastExecution: archivedRun }]);
        expect((await list({ status: 'all', limit: 10 })).items.map((s) => s.id)).toEqual([archived.id, active.id]);
      });

      it('pages with cursors like listScripts, visiting every script once', async (ctx) => {
        const list = listWithLast(() => ctx.skip());
        const base = Date.now() - 100_000;
        const created: Script[] = [];
        for (let i = 0; i < 7; i++) {
          // Two scripts share each timestamp so the id tie-break is exercised.
          const at = new Date(base + Math.floor(i / 2) * 1000);
          const script = await createScript({ createdAt: at, updatedAt: at, status: i === 3 ? 'archived' : 'active' });
          created.push(script);
          for (let run = 0; run < i % 3; run++) {
            await store.createExecution(sampleExecution(script.id, { queuedAt: new Date(base + 10_000 + run * 1000) }));
          }
        }
        for (const status of ['all', 'active'] as const) {
          const seen: ScriptWithLastExecution[] = [];
          let cursor: string | null = null;
          let pages = 0;
          do {
            const page = await list({ status, limit: 3, cursor });
            expect(page.items.length).toBeLessThanOrEqual(3);
            seen.push(...page.items);
            cursor = page.nextCursor;
            pages++;
          } while (cursor !== null && pages < 10);
          const all = await store.listScripts({ status, limit: 100 });
          expect(seen).toEqual(await expected(all.items));
          expect(new Set(seen.map((s) => s.id)).size).toBe(status === 'all' ? 7 : 6);
        }
        expect(await list({ status: 'all', limit: 10, cursor: 'not-a-cursor!!' })).toEqual({ items: [], nextCursor: null });
      });
    });

    describe('executions', () => {
      it('stores an execution and returns it unchanged', async () => {
        const script = await createScript();
        const execution = sampleExecution(script.id, { args: ['$(whoami)', '; rm -rf /', 'ünï'] });
        expect(await store.createExecution(execution)).toEqual(execution);
        expect(await store.getExecution(execution.id)).toEqual(execution);
        expect(await store.getExecution('missing')).toBeNull();
      });

      it('updates only the patched fields', async () => {
        const script = await createScript();
        const execution = await store.createExecution(sampleExecution(script.id, { args: ['x'] }));
        const startedAt = new Date(execution.queuedAt.getTime() + 5);
        await store.updateExecution(execution.id, { status: 'running', startedAt });
        const finishedAt = new Date(startedAt.getTime() + 1234);
        const final = await store.updateExecution(execution.id, {
          status: 'failed',
          exitCode: null,
          signal: 'SIGKILL',
          finishedAt,
          durationMs: 1234,
          lineCount: 42,
          errorMessage: 'killed by signal SIGKILL',
          truncated: true,
        });
        const expected: Execution = {
          ...execution,
          status: 'failed',
          startedAt,
          finishedAt,
          exitCode: null,
          signal: 'SIGKILL',
          durationMs: 1234,
          lineCount: 42,
          errorMessage: 'killed by signal SIGKILL',
          truncated: true,
        };
        expect(final).toEqual(expected);
        expect(await store.getExecution(execution.id)).toEqual(expected);
        expect(await store.updateExecution('missing', { status: 'failed' })).toBeNull();
      });

      it('applies a patch when the current status is expected', async () => {
        const script = await createScript();
        const execution = await store.createExecution(sampleExecution(script.id));
        const startedAt = new Date(execution.queuedAt.getTime() + 5);
        const running = await store.updateExecution(execution.id, { status: 'running', startedAt }, { expect: ['queued'] });
        expect(running).toEqual({ ...execution, status: 'running', startedAt });
        expect(await store.getExecution(execution.id)).toEqual(running);
        // A patch without a status, guarded by the status it keeps.
        const counted = await store.updateExecution(execution.id, { lineCount: 7 }, { expect: ['queued', 'running'] });
        expect(counted).toEqual({ ...running, lineCount: 7 });
        expect(await store.getExecution(execution.id)).toEqual(counted);
      });

      it('changes nothing when the current status is not expected, and returns the stored record', async () => {
        const script = await createScript();
        const execution = await store.createExecution(
          sampleExecution(script.id, { status: 'running', startedAt: new Date(), lineCount: 3 }),
        );
        const finish = { status: 'succeeded' as const, exitCode: 0, finishedAt: new Date(), durationMs: 10, lineCount: 9 };
        expect(await store.updateExecution(execution.id, finish, { expect: ['queued'] })).toEqual(execution);
        expect(await store.updateExecution(execution.id, finish, { expect: [] })).toEqual(execution);
        expect(await store.updateExecution(execution.id, { lineCount: 4 }, { expect: ['queued'] })).toEqual(execution);
        expect(await store.getExecution(execution.id)).toEqual(execution);
        expect(await store.updateExecution('missing', finish, { expect: ['running'] })).toBeNull();
      });

      it('never changes a terminal execution, with or without expect', async () => {
        const script = await createScript();
        const all: ExecutionStatus[] = ['queued', 'running', ...TERMINAL_STATUSES];
        for (const status of TERMINAL_STATUSES) {
          const finishedAt = new Date();
          const execution = await store.createExecution(
            sampleExecution(script.id, { status, finishedAt, durationMs: 0, errorMessage: status === 'succeeded' ? null : 'ended' }),
          );
          const patches = [
            { status: 'running' as const, startedAt: new Date() },
            { status: 'failed' as const, errorMessage: 'overwritten' },
            { status, lineCount: 99 },
            { lineCount: 99, truncated: true },
          ];
          for (const patch of patches) {
            for (const options of [undefined, { expect: [status] }, { expect: all }]) {
              const result = await store.updateExecution(execution.id, patch, options);
              expect({ status, patch, options, result }).toEqual({ status, patch, options, result: execution });
            }
          }
          expect(await store.getExecution(execution.id)).toEqual(execution);
        }

        // Ended through an update, it stays ended too.
        const run = await store.createExecution(sampleExecution(script.id, { status: 'running', startedAt: new Date() }));
        const ended = await store.updateExecution(run.id, { status: 'timed_out', finishedAt: new Date(), durationMs: 5 });
        expect(ended!.status).toBe('timed_out');
        expect(await store.updateExecution(run.id, { status: 'succeeded', exitCode: 0 })).toEqual(ended);
        expect(await store.updateExecution(run.id, { lineCount: 12 })).toEqual(ended);
        expect(await store.getExecution(run.id)).toEqual(ended);
      });

      it('never moves a status back to queued', async () => {
        const script = await createScript();
        const running = await store.createExecution(sampleExecution(script.id, { status: 'running', startedAt: new Date() }));
        expect(await store.updateExecution(running.id, { status: 'queued', startedAt: null })).toEqual(running);
        expect(await store.updateExecution(running.id, { status: 'queued' }, { expect: ['running'] })).toEqual(running);
        expect(await store.getExecution(running.id)).toEqual(running);
        const queued = await store.createExecution(sampleExecution(script.id));
        expect(await store.updateExecution(queued.id, { status: 'queued', lineCount: 1 })).toEqual({ ...queued, lineCount: 1 });
      });

      it('lets exactly one of 20 concurrent writers end a running execution', async () => {
        const script = await createScript();
        const startedAt = new Date();
        const execution = await store.createExecution(sampleExecution(script.id, { status: 'running', startedAt }));
        const writers = Array.from({ length: 20 }, (_, i) => ({
          status: TERMINAL_STATUSES[i % TERMINAL_STATUSES.length]!,
          finishedAt: new Date(startedAt.getTime() + 1000 + i),
          durationMs: 1000 + i,
          lineCount: i,
          errorMessage: `writer ${i}`,
        }));
        const results = await Promise.all(writers.map((patch) => store.updateExecution(execution.id, patch, { expect: ['running'] })));
        const stored = await store.getExecution(execution.id);
        // The stored record is one writer's whole patch, never a mix of several.
        const winner = writers.findIndex((patch) => patch.errorMessage === stored!.errorMessage);
        expect(winner).toBeGreaterThanOrEqual(0);
        expect(stored).toEqual({ ...execution, ...writers[winner]! });
        // Every caller learns that same truth, the winner and the 19 refused alike.
        for (const result of results) expect(result).toEqual(stored);
      });

      it('lets exactly one of queued → running and queued → cancelled win', async () => {
        const script = await createScript();
        const executions = await Promise.all(Array.from({ length: 10 }, () => store.createExecution(sampleExecution(script.id))));
        const outcomes = await Promise.all(
          executions.map(async (execution) => {
            const startedAt = new Date(execution.queuedAt.getTime() + 5);
            const finishedAt = new Date(execution.queuedAt.getTime() + 6);
            const [started, cancelled] = await Promise.all([
              store.updateExecution(execution.id, { status: 'running', startedAt }, { expect: ['queued'] }),
              store.updateExecution(
                execution.id,
                { status: 'cancelled', finishedAt, durationMs: 0, errorMessage: 'cancelled' },
                { expect: ['queued'] },
              ),
            ]);
            const stored = await store.getExecution(execution.id);
            const asWon =
              stored!.status === 'running'
                ? { ...execution, status: 'running', startedAt }
                : { ...execution, status: 'cancelled', finishedAt, durationMs: 0, errorMessage: 'cancelled' };
            // Only the winner's fields landed: a started run has no finishedAt, a cancelled one never started.
            expect(stored).toEqual(asWon);
            // Both callers get the stored record: the winner its own write, the loser the one that refused it.
            expect(cancelled).toEqual(stored);
            expect(started).toEqual(stored);
            return stored!.status;
          }),
        );
        expect(outcomes.every((status) => status === 'running' || status === 'cancelled')).toBe(true);
      });

      it('lists newest first with scriptId/status filters and cursors', async () => {
        const a = await createScript();
        const b = await createScript();
        const base = Date.now() - 50_000;
        const created: Execution[] = [];
        for (let i = 0; i < 9; i++) {
          const at = new Date(base + Math.floor(i / 3) * 1000);
          created.push(
            await store.createExecution(
              sampleExecution(i % 2 === 0 ? a.id : b.id, { queuedAt: at, status: i % 3 === 0 ? 'succeeded' : 'queued' }),
            ),
          );
        }
        const order = (list: Execution[]) =>
          [...list]
            .sort((x, y) => y.queuedAt.getTime() - x.queuedAt.getTime() || (x.id < y.id ? 1 : x.id > y.id ? -1 : 0))
            .map((e) => e.id);

        const seen: string[] = [];
        let cursor: string | null = null;
        let pages = 0;
        do {
          const page = await store.listExecutions({ scriptId: a.id, limit: 2, cursor });
          seen.push(...page.items.map((e) => e.id));
          cursor = page.nextCursor;
          pages++;
        } while (cursor !== null && pages < 10);
        expect(seen).toEqual(order(created.filter((e) => e.scriptId === a.id)));

        const succeeded = await store.listExecutions({ status: 'succeeded', limit: 100 });
        const mine = succeeded.items.filter((e) => e.scriptId === a.id || e.scriptId === b.id);
        expect(mine.map((e) => e.id)).toEqual(order(created.filter((e) => e.status === 'succeeded')));
        const both = await store.listExecutions({ scriptId: b.id, status: 'queued', limit: 100 });
        expect(both.items.map((e) => e.id)).toEqual(
          order(created.filter((e) => e.scriptId === b.id && e.status === 'queued')),
        );
      });

      it('interrupts stale queued and running executions only', async () => {
        const script = await createScript();
        const old = new Date(Date.now() - 60_000);
        const startedAt = new Date(old.getTime() + 1000);
        const queued = await store.createExecution(sampleExecution(script.id, { queuedAt: old }));
        const running = await store.createExecution(
          sampleExecution(script.id, { queuedAt: old, status: 'running', startedAt }),
        );
        const done = await store.createExecution(
          sampleExecution(script.id, { queuedAt: old, status: 'succeeded', exitCode: 0, finishedAt: startedAt, durationMs: 0 }),
        );
        const cutoff = new Date(Date.now() - 1000);
        const fresh = await store.createExecution(sampleExecution(script.id, { queuedAt: new Date() }));
        const finishedAt = new Date();
        const changed = await store.interruptStaleExecutions({ queuedBefore: cutoff, finishedAt, errorMessage: 'runner died' });
        expect(changed.map((e) => e.id).sort()).toEqual([queued.id, running.id].sort());

        const q = await store.getExecution(queued.id);
        expect(q).toMatchObject({ status: 'interrupted', errorMessage: 'runner died', durationMs: 0 });
        expect(q!.finishedAt!.getTime()).toBe(finishedAt.getTime());
        const r = await store.getExecution(running.id);
        expect(r).toMatchObject({ status: 'interrupted', durationMs: finishedAt.getTime() - startedAt.getTime() });
        expect(await store.getExecution(done.id)).toEqual(done);
        expect(await store.getExecution(fresh.id)).toEqual(fresh);
        expect(changed.find((e) => e.id === running.id)).toEqual(r);
      });
    });

    describe('logs', () => {
      async function newExecution(): Promise<Execution> {
        const script = await createScript();
        return store.createExecution(sampleExecution(script.id, { status: 'running', startedAt: new Date() }));
      }

      it('stores lines exactly and reads them back in seq order', async () => {
        const execution = await newExecution();
        const lines = sampleLines(execution.id, 1, 30);
        lines[4] = { ...lines[4]!, text: '' };
        lines[5] = { ...lines[5]!, text: 'tab\there "quotes" \\ back \u{1F600} \uFFFD' };
        await store.appendLogs(execution.id, lines.slice(0, 10));
        await store.appendLogs(execution.id, lines.slice(10));
        const read = await store.readLogs(execution.id, { limit: 100 });
        expect(read).toEqual(lines);
        expect(read[0]!.time).toBeInstanceOf(Date);
      });

      it('is idempotent on seq: a retried or overlapping batch never duplicates a line', async () => {
        const execution = await newExecution();
        await store.appendLogs(execution.id, sampleLines(execution.id, 1, 10));
        await store.appendLogs(execution.id, sampleLines(execution.id, 1, 10));
        const overlap = sampleLines(execution.id, 6, 15).map((l) => ({ ...l, text: `retry ${l.seq}` }));
        await store.appendLogs(execution.id, overlap);
        const read = await store.readLogs(execution.id, { limit: 100 });
        expect(read.map((l) => l.seq)).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
        // The first stored version of a line wins.
        expect(read[6]!.text).toBe(sampleLines(execution.id, 7, 7)[0]!.text);
        expect(read[12]!.text).toBe('retry 13');
      });

      it('pages by afterSeq and limit', async () => {
        const execution = await newExecution();
        await store.appendLogs(execution.id, sampleLines(execution.id, 1, 100));
        const page = await store.readLogs(execution.id, { afterSeq: 40, limit: 25 });
        expect(page.map((l) => l.seq)).toEqual(Array.from({ length: 25 }, (_, i) => 41 + i));
        expect(await store.readLogs(execution.id, { afterSeq: 100, limit: 10 })).toEqual([]);
        expect(await store.readLogs(execution.id, { afterSeq: 95, limit: 10 })).toHaveLength(5);
      });

      it('filters by level and stream, applying the limit after the filter', async () => {
        const execution = await newExecution();
        const lines = sampleLines(execution.id, 1, 200);
        await store.appendLogs(execution.id, lines);
        const errors = await store.readLogs(execution.id, { levels: ['error'], limit: 5 });
        expect(errors.map((l) => l.seq)).toEqual([10, 20, 30, 40, 50]);
        const warnAfter = await store.readLogs(execution.id, { levels: ['warn'], afterSeq: 100, limit: 1000 });
        expect(warnAfter.map((l) => l.seq)).toEqual(lines.filter((l) => l.level === 'warn' && l.seq > 100).map((l) => l.seq));
        const both = await store.readLogs(execution.id, { levels: ['warn', 'error'], streams: ['stdout'], limit: 1000 });
        expect(both.map((l) => l.seq)).toEqual(
          lines.filter((l) => (l.level === 'warn' || l.level === 'error') && l.stream === 'stdout').map((l) => l.seq),
        );
        const system = await store.readLogs(execution.id, { streams: ['system'], limit: 1000 });
        expect(system.map((l) => l.seq)).toEqual(lines.filter((l) => l.stream === 'system').map((l) => l.seq));
        const none = await store.readLogs(execution.id, { levels: [], streams: [], limit: 3 });
        expect(none.map((l) => l.seq)).toEqual([1, 2, 3]);
      });

      it('filters and pages correctly across many small appends (any chunk boundary)', async () => {
        const execution = await newExecution();
        const all = sampleLines(execution.id, 1, 500);
        // Odd-sized batches: whatever a store groups per write, page and filter edges fall everywhere.
        for (let i = 0; i < all.length; i += 7) await store.appendLogs(execution.id, all.slice(i, i + 7));
        const cases: Array<{ afterSeq: number; limit: number; levels?: LogLevel[]; streams?: LogStream[] }> = [
          { afterSeq: 0, limit: 13, levels: ['error'] },
          { afterSeq: 69, limit: 4, levels: ['error', 'warn'] },
          { afterSeq: 333, limit: 1000, levels: ['warn'] },
          { afterSeq: 6, limit: 9, streams: ['stderr', 'system'] },
          { afterSeq: 489, limit: 3, levels: ['info'], streams: ['stdout'] },
          { afterSeq: 7, limit: 7 },
        ];
        for (const query of cases) {
          const expected = all
            .filter((l) => l.seq > query.afterSeq)
            .filter((l) => !query.levels || query.levels.includes(l.level))
            .filter((l) => !query.streams || query.streams.includes(l.stream))
            .slice(0, query.limit)
            .map((l) => l.seq);
          const read = await store.readLogs(execution.id, query);
          expect({ query, seqs: read.map((l) => l.seq) }).toEqual({ query, seqs: expected });
        }
        // Walking the whole log by pages of 11 visits every line once.
        const seen: number[] = [];
        for (let after = 0; ; ) {
          const page = await store.readLogs(execution.id, { afterSeq: after, limit: 11 });
          if (page.length === 0) break;
          seen.push(...page.map((l) => l.seq));
          after = page[page.length - 1]!.seq;
        }
        expect(seen).toEqual(all.map((l) => l.seq));
      });

      it('keeps executions apart and returns nothing for an unknown one', async () => {
        const a = await newExecution();
        const b = await newExecution();
        await store.appendLogs(a.id, sampleLines(a.id, 1, 5));
        await store.appendLogs(b.id, sampleLines(b.id, 1, 3));
        expect((await store.readLogs(a.id, { limit: 100 })).every((l) => l.executionId === a.id)).toBe(true);
        expect(await store.readLogs(b.id, { limit: 100 })).toHaveLength(3);
        expect(await store.readLogs('missing', { limit: 100 })).toEqual([]);
      });

      it(`stores a large log in batches and reads any page of it`, async () => {
        const execution = await newExecution();
        const batch = 2000;
        for (let from = 1; from <= largeLogLines; from += batch) {
          await store.appendLogs(execution.id, sampleLines(execution.id, from, Math.min(from + batch - 1, largeLogLines)));
        }
        const last = await store.readLogs(execution.id, { afterSeq: largeLogLines - 10, limit: 1000 });
        expect(last.map((l) => l.seq)).toEqual(Array.from({ length: 10 }, (_, i) => largeLogLines - 9 + i));
        // Page boundaries that straddle the write batches.
        let after = 0;
        let count = 0;
        for (;;) {
          const page = await store.readLogs(execution.id, { afterSeq: after, limit: 3333 });
          if (page.length === 0) break;
          for (const line of page) {
            count++;
            if (line.seq !== after + 1) throw new Error(`gap or repeat at seq ${line.seq} after ${after}`);
            after = line.seq;
          }
        }
        expect(count).toBe(largeLogLines);
      });
    });
  });
}
