/** Scripts: create, read, list with cursors, update, recordRun; and the list with each script's last execution. Part of the store conformance suite (conformance.ts). */
import { describe, expect, it } from 'vitest';
import type { ListScriptsQuery } from '../store.js';
import type { Page, Script, ScriptWithLastExecution } from '../types.js';
import type { StoreSuite } from './conformance.js';
import { expectCursorRefused, FOREIGN_CURSORS } from './cursors.js';
import { sampleExecution, sampleScript, stripContent } from './samples.js';

export function scriptTests(suite: StoreSuite): void {
  const { store, createScript } = suite;
  describe('scripts', () => {
    it('stores a script and returns it unchanged', async () => {
      const input = sampleScript({ description: 'day-ahead check', metadata: { team: 'power', tags: ['a', 1, true, null] }, environment: 'forecast-3.12' });
      const created = await store.createScript(input);
      expect(created).toEqual(stripContent(input));
      const read = await store.getScript(input.id);
      expect(read).toEqual(stripContent(input));
      expect(read!.createdAt).toBeInstanceOf(Date);
      // No environment named: null, not a default the store made up.
      const plain = sampleScript();
      await store.createScript(plain);
      expect((await store.getScript(plain.id))!.environment).toBeNull();
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

    it('refuses a cursor it did not issue with a validation error, never an empty page', async () => {
      await createScript();
      await createScript();
      for (const cursor of FOREIGN_CURSORS) {
        await expectCursorRefused(store.listScripts({ status: 'all', limit: 10, cursor }), cursor);
      }
      // A cursor it did issue, cut short or with a character added, is no longer one it issued.
      const first = await store.listScripts({ status: 'all', limit: 1 });
      const issued = first.nextCursor!;
      expect(issued).toEqual(expect.any(String));
      for (const cursor of [`${issued}x`, issued.slice(0, -1)]) {
        await expectCursorRefused(store.listScripts({ status: 'all', limit: 10, cursor }), cursor);
      }
      // The refusals left nothing behind: the issued cursor and the first page still work.
      expect((await store.listScripts({ status: 'all', limit: 10, cursor: issued })).items.length).toBeGreaterThan(0);
      expect(await store.listScripts({ status: 'all', limit: 1, cursor: '' })).toEqual(first);
      expect(await store.listScripts({ status: 'all', limit: 1, cursor: null })).toEqual(first);
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
      for (const cursor of FOREIGN_CURSORS) await expectCursorRefused(list({ status: 'all', limit: 10, cursor }), cursor);
    });
  });
}
