/** Executions: create, read, list with cursors, guarded transitions (concurrent writers), interruptStaleExecutions. Part of the store conformance suite (conformance.ts). */
import { describe, expect, it } from 'vitest';
import { TERMINAL_STATUSES, type Execution, type ExecutionStatus } from '../types.js';
import type { StoreSuite } from './conformance.js';
import { expectCursorRefused, FOREIGN_CURSORS } from './cursors.js';
import { sampleExecution } from './samples.js';

export function executionTests(suite: StoreSuite): void {
  const { store, createScript } = suite;
  describe('executions', () => {
    it('stores an execution and returns it unchanged', async () => {
      const script = await createScript();
      const execution = sampleExecution(script.id, { args: ['$(whoami)', '; rm -rf /', 'ünï'], environment: 'forecast-3.12' });
      expect(await store.createExecution(execution)).toEqual(execution);
      expect(await store.getExecution(execution.id)).toEqual(execution);
      const plain = sampleExecution(script.id);
      await store.createExecution(plain);
      expect((await store.getExecution(plain.id))!.environment).toBeNull();
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

    it('refuses a cursor it did not issue with a validation error, never an empty page', async () => {
      const script = await createScript();
      await store.createExecution(sampleExecution(script.id));
      await store.createExecution(sampleExecution(script.id));
      for (const cursor of FOREIGN_CURSORS) {
        await expectCursorRefused(store.listExecutions({ limit: 10, cursor }), cursor);
        await expectCursorRefused(store.listExecutions({ scriptId: script.id, status: 'queued', limit: 10, cursor }), cursor);
      }
      const first = await store.listExecutions({ scriptId: script.id, limit: 1 });
      const issued = first.nextCursor!;
      expect(issued).toEqual(expect.any(String));
      for (const cursor of [`${issued}x`, issued.slice(0, -1)]) {
        await expectCursorRefused(store.listExecutions({ scriptId: script.id, limit: 10, cursor }), cursor);
      }
      expect((await store.listExecutions({ scriptId: script.id, limit: 10, cursor: issued })).items).toHaveLength(1);
      expect(await store.listExecutions({ scriptId: script.id, limit: 1, cursor: '' })).toEqual(first);
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
}
