/** Log lines: idempotent appends, ordered filtered reads, a large log read page by page. Part of the store conformance suite (conformance.ts). */
import { describe, expect, it } from 'vitest';
import type { Execution, LogLevel, LogStream } from '../types.js';
import type { StoreSuite } from './conformance.js';
import { sampleExecution, sampleLines } from './samples.js';

export function logTests(suite: StoreSuite): void {
  const { store, createScript, largeLogLines } = suite;
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
}
