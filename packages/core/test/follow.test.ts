/**
 * runner.follow(): every line exactly once and in order from any starting seq, whether it comes
 * from the store or live; bounded memory for a consumer that does not read; catch-up that yields to
 * the event loop; clean ends (abort, close, unknown ids).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { memoryStore, type FollowItem, type LogFollow, type LogLine, type Store } from '../src/index.js';
import { sampleExecution, sampleLines, sampleScript } from '../src/testing/samples.js';
import { closeRunners, FLOOD_60K, makeRunner } from './helpers.js';

afterEach(closeRunners);

/** Collects a follow to its end: the lines, the number of items and the final record. */
async function drain(follow: LogFollow, onItem?: (item: FollowItem) => void | Promise<void>) {
  const lines: LogLine[] = [];
  let finished: FollowItem | null = null;
  for await (const item of follow) {
    await onItem?.(item);
    if (item.type === 'lines') lines.push(...item.lines);
    if (item.type === 'finished') finished = item;
  }
  return { seqs: lines.map((l) => l.seq), lines, finished };
}

const range = (from: number, to: number) => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);

/** A finished execution with `count` stored lines, without running anything. */
async function storedExecution(store: Store, count: number) {
  const script = sampleScript();
  await store.createScript(script);
  const execution = sampleExecution(script.id, { status: 'succeeded', exitCode: 0, startedAt: new Date(), finishedAt: new Date(), lineCount: count });
  await store.createExecution(execution);
  for (let from = 1; from <= count; from += 10_000) await store.appendLogs(execution.id, sampleLines(execution.id, from, Math.min(count, from + 9_999)));
  return execution;
}

/** A memory store whose log reads take a few ms, so batches are published while reads are in flight. */
function slowReadStore(): Store {
  const inner = memoryStore();
  let n = 0;
  return new Proxy(inner, {
    get(target, key, receiver) {
      const value: unknown = Reflect.get(target, key, receiver);
      if (key !== 'readLogs' || typeof value !== 'function') return value;
      return async (...args: unknown[]) => {
        const result = await (value as (...a: unknown[]) => Promise<LogLine[]>).apply(target, args);
        await new Promise((resolve) => setTimeout(resolve, 1 + (n++ % 4)));
        return result;
      };
    },
  });
}

describe('runner.follow', () => {
  it('replays a finished execution from any seq, then the final record, and ends', async () => {
    const store = memoryStore();
    const execution = await storedExecution(store, 4_500);
    const runner = makeRunner({ store });
    for (const afterSeq of [0, 1, 1_999, 2_000, 4_499, 4_500]) {
      const follow = await runner.follow(execution.id, { afterSeq });
      expect(follow.execution.id).toBe(execution.id);
      const { seqs, finished } = await drain(follow);
      expect(seqs).toEqual(range(afterSeq + 1, 4_500));
      expect(finished).toMatchObject({ type: 'finished', execution: { id: execution.id, status: 'succeeded' } });
    }
  });

  it('hands over from the store to live exactly once, for followers that start at any moment', { timeout: 60_000 }, async () => {
    const runner = makeRunner({ store: slowReadStore(), maxBatchLines: 50 });
    const script = await runner.uploadScript({
      filename: 'test_bursts.py',
      content: 'import time\nfor i in range(40):\n    for j in range(150):\n        print(f"b{i} l{j}")\n    time.sleep(0.005)\n',
    });
    const started = await runner.run(script.id);
    const followers: Array<Promise<{ afterSeq: number; seqs: number[] }>> = [];
    let seen = 0;
    // A new follower each time a batch is published, starting from a random seq it "already has".
    const onLog = (batch: { executionId: string; lines: LogLine[] }) => {
      if (batch.executionId !== started.id || followers.length >= 30) return;
      seen = batch.lines[batch.lines.length - 1]!.seq;
      const afterSeq = Math.floor(Math.random() * seen);
      followers.push(runner.follow(started.id, { afterSeq, pageSize: 97 }).then(async (f) => ({ afterSeq, seqs: (await drain(f)).seqs })));
    };
    runner.on('execution:log', onLog);
    const first = runner.follow(started.id).then(drain);
    const final = await runner.waitFor(started.id);
    runner.off('execution:log', onLog);
    expect(final.lineCount).toBe(6_000);
    expect((await first).seqs).toEqual(range(1, 6_000));
    expect(followers.length).toBeGreaterThan(5);
    for (const { afterSeq, seqs } of await Promise.all(followers)) expect(seqs).toEqual(range(afterSeq + 1, 6_000));
  });

  it('keeps a bounded buffer for a consumer that does not read, and still delivers every line once', { timeout: 60_000 }, async () => {
    const runner = makeRunner();
    const script = await runner.uploadScript({ filename: 'test_flood.py', content: FLOOD_60K });
    const execution = await runner.run(script.id);
    const follow = await runner.follow(execution.id, { maxBufferedLines: 500 });
    // The follower's own count of lines it holds (internal, read for this test only).
    const held = () => (follow as unknown as { heldLines: number }).heldLines;
    let maxHeld = 0;
    const onLog = () => {
      maxHeld = Math.max(maxHeld, held());
    };
    runner.on('execution:log', onLog);
    await runner.waitFor(execution.id);
    runner.off('execution:log', onLog);
    expect(maxHeld).toBeGreaterThan(0);
    expect(maxHeld).toBeLessThanOrEqual(500);
    const { seqs, finished } = await drain(follow);
    expect(seqs).toEqual(range(1, 60_001));
    expect(finished).not.toBeNull();
  });

  it('yields to the event loop between catch-up slices (a timer set after the start fires before the end)', async () => {
    const store = memoryStore();
    const execution = await storedExecution(store, 200_000);
    const runner = makeRunner({ store });
    const follow = await runner.follow(execution.id, { pageSize: 1_000 });
    let linesAtTimer = -1;
    let count = 0;
    setTimeout(() => {
      linesAtTimer = count;
    }, 0);
    await drain(follow, (item) => {
      if (item.type === 'lines') count += item.lines.length;
    });
    expect(count).toBe(200_000);
    // The memory store resolves reads as microtasks: without a yield the timer would fire after the end.
    expect(linesAtTimer).toBeGreaterThanOrEqual(0);
    expect(linesAtTimer).toBeLessThan(200_000);
  });

  it('rejects an unknown id with not_found and leaves nothing registered; an abort ends a live follow', async () => {
    const runner = makeRunner();
    const registered = () => (runner as unknown as { follows: { size: number } }).follows.size;
    await expect(runner.follow('nope')).rejects.toMatchObject({ code: 'not_found' });
    await expect(runner.follow('x'.repeat(201))).rejects.toMatchObject({ code: 'validation' });
    await expect(runner.follow('nope', { pageSize: 0 })).rejects.toMatchObject({ code: 'validation' });
    expect(registered()).toBe(0);

    const script = await runner.uploadScript({ filename: 'test_wait.py', content: 'import time\nprint("ready", flush=True)\ntime.sleep(30)\n' });
    const execution = await runner.run(script.id);
    const controller = new AbortController();
    const follow = await runner.follow(execution.id, { signal: controller.signal });
    expect(registered()).toBe(1);
    const collected = drain(follow, (item) => {
      if (item.type === 'lines' && item.lines.some((l) => l.text === 'ready')) controller.abort();
    });
    const { seqs, finished } = await collected;
    expect(seqs).toEqual([1]);
    expect(finished).toBeNull();
    expect(registered()).toBe(0);
    await runner.cancel(execution.id);
  });

  it('ends open follows when the runner closes', async () => {
    const runner = makeRunner();
    const script = await runner.uploadScript({ filename: 'test_sleep.py', content: 'import time\nprint("up", flush=True)\ntime.sleep(30)\n' });
    const execution = await runner.run(script.id);
    const follow = await runner.follow(execution.id);
    const result = drain(follow, (item) => {
      if (item.type === 'lines') void runner.close();
    });
    const { seqs, finished } = await result;
    expect(seqs[0]).toBe(1);
    // Closing interrupts the run here, so the follow ends with its final record.
    expect(finished).toMatchObject({ execution: { status: 'interrupted' } });
  });
});
