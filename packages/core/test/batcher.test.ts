/**
 * When the batcher writes: a lone line at once, a stream in batches. The store here resolves at
 * once (as the memory store does), the case where a stream used to become one write per read.
 */
import { describe, expect, it } from 'vitest';
import { LogBatcher } from '../src/lines/batcher.js';
import type { Store } from '../src/index.js';

function recording() {
  const batches: number[][] = [];
  const store = {
    async appendLogs(_executionId: string, lines: ReadonlyArray<{ seq: number }>) {
      batches.push(lines.map((l) => l.seq));
    },
  } as unknown as Store;
  const batcher = new LogBatcher({
    executionId: 'e1',
    store,
    maxBatchLines: 2_000,
    flushIntervalMs: 1_000,
    retry: { attempts: 1, minDelayMs: 1, maxDelayMs: 1, attemptTimeoutMs: 10_000 },
    onPersisted: () => undefined,
    onBackpressure: () => undefined,
    onRetry: () => undefined,
    onFatal: (error) => {
      throw error;
    },
  });
  const read = (count: number, text = 'x') => {
    for (let i = 0; i < count; i++) batcher.add('stdout', 'info', text, new Date());
    batcher.kick();
  };
  return { batches, batcher, read };
}

describe('log batcher', () => {
  it('writes a lone line at once when the store is idle (no wait before the write)', async () => {
    const { batches, read } = recording();
    read(1);
    // Only microtasks and one check phase: no timer of the batcher can have fired for this write.
    await new Promise((resolve) => setImmediate(resolve));
    expect(batches).toEqual([[1]]);
  });

  it('gathers the reads that follow a write that has just ended into one batch, with a store that resolves at once', async () => {
    // Reads right after a write are a stream: they wait (2 ms) for each other. Without that, each
    // read became its own write (300,000 writes for 1M printed lines into the memory store).
    // "Right after" is timing: on a loaded machine a pause between the write's end and the next
    // read can exceed the window, so one trial of five must show it, and every trial is one of
    // the two outcomes.
    const outcomes: string[] = [];
    for (let trial = 0; trial < 5; trial++) {
      const { batches, batcher, read } = recording();
      read(1);
      await batcher.drain();
      read(1);
      read(1);
      read(1);
      await batcher.drain();
      outcomes.push(JSON.stringify(batches));
      if (outcomes.at(-1) === '[[1],[2,3,4]]') break;
    }
    for (const outcome of outcomes) expect(['[[1],[2,3,4]]', '[[1],[2],[3,4]]']).toContain(outcome);
    expect(outcomes).toContain('[[1],[2,3,4]]');
  });

  it('does not hold back a batch of long lines (16 KiB or more waiting) even right after a write', async () => {
    // Big batches of big strings grew the host's heap (the memory bench row): long lines go as read.
    const { batches, batcher, read } = recording();
    read(1);
    await batcher.drain();
    read(1, 'y'.repeat(20_000));
    read(1);
    read(1);
    await batcher.drain();
    expect(batches).toEqual([[1], [2], [3, 4]]);
  });
});
