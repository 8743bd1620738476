/**
 * Catching up from the store: finished executions, reads overtaken by the run, pacing, failures,
 * unsubscribe, packet size, progress.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { memoryStore, type Store } from '@scriptrunner/core';
import {
  checkSequence,
  client,
  closeAll,
  finishedAfterLastLine,
  fixture,
  laggyStore,
  Recorder,
  roundTrip,
  startServer,
  storedUpTo,
  subscribe,
  waitUntil,
} from './helpers.js';
import type { SubscriptionError } from '../src/index.js';

afterEach(closeAll);

describe('catch-up from the store', () => {
  it('a catch-up slower than the run drops what it captured and reads again, still exactly once', { timeout: 60_000 }, async () => {
    // Pages of 20 lines, each read answering after 3-8 ms: the run outpaces the catch-up, so the
    // batches captured meanwhile exceed 10 pages and are dropped in favour of another read.
    const { runner, url } = await startServer({
      runner: { store: laggyStore({ readMs: () => 3 + Math.floor(Math.random() * 6) }) },
      attach: { replayPageSize: 20 },
    });
    const script = await runner.uploadScript({ filename: 'test_slow_lines.py', content: fixture('test_slow_lines.py') });
    let executionId: string | null = null;
    const started = storedUpTo(runner, () => executionId, 1_000);
    const execution = await runner.run(script.id, { args: ['8000', '1.5', '50'] });
    executionId = execution.id;
    const socket = await client(url);
    const recorder = new Recorder(socket);
    await started;
    const ack = await subscribe(socket, execution.id);
    expect(ack.ok && ack.execution.status).toBe('running');
    await waitUntil(() => recorder.finishedOf(execution.id).length > 0, 'execution:finished');
    await roundTrip(socket);
    expect(checkSequence(recorder.linesOf(execution.id), 8000)).toEqual({ duplicates: 0, problems: [] });
    expect(recorder.finishedOf(execution.id)).toHaveLength(1);
    expect(finishedAfterLastLine(recorder, execution.id)).toBe(true);
  });

  it('a burst bigger than the capture buffer during the last catch-up read is read again from the store', { timeout: 60_000 }, async () => {
    // The first log read answers after 1.5 s; meanwhile 3,000 lines are published, more than the
    // 1,000 (10 pages) a subscription keeps, so they must come from further reads.
    let reads = 0;
    const { runner, url } = await startServer({
      runner: { store: laggyStore({ appendMs: () => 0, readMs: () => (reads++ === 0 ? 1_500 : 1) }) },
      attach: { replayPageSize: 100 },
    });
    const code = [
      'import time',
      'for i in range(1, 51):',
      '    print(f"line {i} price forecast iteration ok")',
      'time.sleep(0.3)',
      'for i in range(51, 3051):',
      '    print(f"line {i} price forecast iteration ok")',
      'time.sleep(2)',
      'print("line 3051 price forecast iteration ok")',
    ].join('\n');
    const script = await runner.uploadScript({ filename: 'test_burst.py', content: code });
    let executionId: string | null = null;
    const firstPart = storedUpTo(runner, () => executionId, 50);
    const execution = await runner.run(script.id);
    executionId = execution.id;
    const socket = await client(url);
    const recorder = new Recorder(socket);
    await firstPart;
    const ack = await subscribe(socket, execution.id);
    expect(ack.ok && ack.execution.status).toBe('running');
    await waitUntil(() => recorder.finishedOf(execution.id).length > 0, 'execution:finished');
    await roundTrip(socket);
    expect(checkSequence(recorder.linesOf(execution.id), 3051)).toEqual({ duplicates: 0, problems: [] });
    expect(recorder.finishedOf(execution.id)).toHaveLength(1);
  });

  it('lines and the end published while a catch-up read is under way follow it, in order', { timeout: 60_000 }, async () => {
    // Every log read takes 2.5 s to answer: the rest of the run happens during the first one.
    const { runner, url } = await startServer({ runner: { store: laggyStore({ appendMs: () => 0, readMs: () => 2_500 }) } });
    const code = [
      'import time',
      'for i in range(1, 51):',
      '    print(f"line {i} price forecast iteration ok")',
      'time.sleep(0.3)',
      'for i in range(51, 101):',
      '    print(f"line {i} price forecast iteration ok")',
    ].join('\n');
    const script = await runner.uploadScript({ filename: 'test_two_parts.py', content: code });
    let executionId: string | null = null;
    const firstPart = storedUpTo(runner, () => executionId, 50);
    const execution = await runner.run(script.id);
    executionId = execution.id;
    const socket = await client(url);
    const recorder = new Recorder(socket);
    // Also following lifecycle events: still one execution:finished, after the last line.
    expect(await socket.emitWithAck('scripts:subscribe')).toEqual({ ok: true });
    await firstPart;
    const ack = await subscribe(socket, execution.id);
    expect(ack.ok && ack.execution.status).toBe('running');
    await waitUntil(() => recorder.finishedOf(execution.id).length > 0, 'execution:finished');
    await roundTrip(socket);
    expect(checkSequence(recorder.linesOf(execution.id), 100)).toEqual({ duplicates: 0, problems: [] });
    expect(recorder.finishedOf(execution.id)).toHaveLength(1);
    expect(finishedAfterLastLine(recorder, execution.id)).toBe(true);
  });

  it('subscribing to a finished execution replays every line, then execution:finished', { timeout: 60_000 }, async () => {
    const { runner, url } = await startServer({ attach: { replayPageSize: 700 } });
    const script = await runner.uploadScript({ filename: 'test_many_lines.py', content: fixture('test_many_lines.py') });
    const run = await runner.run(script.id, { args: ['5000'] });
    const final = await runner.waitFor(run.id);
    expect(final.lineCount).toBe(5000);

    const cases = [
      { afterSeq: 0, expected: 5000 },
      { afterSeq: 4321, expected: 679 },
      { afterSeq: 5000, expected: 0 },
      { afterSeq: 1_000_000_000, expected: 0 },
    ];
    for (const { afterSeq, expected } of cases) {
      const socket = await client(url);
      const recorder = new Recorder(socket);
      const ack = await subscribe(socket, run.id, afterSeq);
      if (!ack.ok) throw new Error(`subscribe refused: ${ack.error.message}`);
      expect(ack.execution.status).toBe('succeeded');
      expect(ack.execution.lineCount).toBe(5000);
      await waitUntil(() => recorder.finishedOf(run.id).length > 0, 'execution:finished');
      await roundTrip(socket);
      const lines = recorder.linesOf(run.id);
      expect(lines.map((l) => l.seq)).toEqual(Array.from({ length: expected }, (_, i) => afterSeq + i + 1));
      expect(lines.every((l) => l.text === `line ${l.seq} price forecast iteration ok`)).toBe(true);
      expect(recorder.finishedOf(run.id)).toHaveLength(1);
      expect(recorder.finishedOf(run.id)[0]!.lineCount).toBe(5000);
      expect(finishedAfterLastLine(recorder, run.id)).toBe(true);
    }
  });

  it('paces a big catch-up by what the connection has taken instead of queueing it all', { timeout: 60_000 }, async () => {
    const { runner, url, io } = await startServer({ attach: { replayPageSize: 200 } });
    const script = await runner.uploadScript({ filename: 'test_many_lines.py', content: fixture('test_many_lines.py') });
    const run = await runner.run(script.id, { args: ['20000'] });
    await runner.waitFor(run.id);
    let largestFlush = 0;
    (io.engine as unknown as { on(event: 'flush', listener: (socket: unknown, buffer: unknown[]) => void): void }).on(
      'flush',
      (_socket, buffer) => {
        largestFlush = Math.max(largestFlush, buffer.length);
      },
    );
    const socket = await client(url);
    const recorder = new Recorder(socket);
    expect((await subscribe(socket, run.id)).ok).toBe(true);
    await waitUntil(() => recorder.finishedOf(run.id).length > 0, 'execution:finished');
    expect(recorder.linesOf(run.id)).toHaveLength(20_000);
    // 100 pages went out; unpaced they would pile up in the engine's buffer and leave as one write.
    expect(largestFlush).toBeGreaterThan(0);
    expect(largestFlush).toBeLessThanOrEqual(3);
  });

  it('an afterSeq beyond what is stored yet waits for the live lines past it', { timeout: 60_000 }, async () => {
    const { runner, url } = await startServer();
    const script = await runner.uploadScript({ filename: 'test_slow_lines.py', content: fixture('test_slow_lines.py') });
    const execution = await runner.run(script.id, { args: ['6000', '1.5', '100'] });
    const socket = await client(url);
    const recorder = new Recorder(socket);
    const ack = await subscribe(socket, execution.id, 2500);
    expect(ack.ok && ack.execution.lineCount).toBeLessThan(2500);
    await waitUntil(() => recorder.finishedOf(execution.id).length > 0, 'execution:finished');
    await roundTrip(socket);
    expect(recorder.linesOf(execution.id).map((l) => l.seq)).toEqual(Array.from({ length: 3500 }, (_, i) => 2501 + i));
    expect(recorder.finishedOf(execution.id)).toHaveLength(1);
  });

  it('unsubscribe stops a catch-up at once, and subscribing again on the same socket resumes it', { timeout: 60_000 }, async () => {
    const { runner, url } = await startServer({ attach: { replayPageSize: 500 } });
    const script = await runner.uploadScript({ filename: 'test_many_lines.py', content: fixture('test_many_lines.py') });
    const run = await runner.run(script.id, { args: ['20000'] });
    await runner.waitFor(run.id);

    const socket = await client(url);
    const recorder = new Recorder(socket);
    const first = subscribe(socket, run.id);
    const unsubscribed = await socket.emitWithAck('execution:unsubscribe', { executionId: run.id });
    expect(unsubscribed).toEqual({ ok: true });
    const ack = await first;
    const atUnsubscribe = recorder.linesOf(run.id).length;
    await roundTrip(socket);
    await roundTrip(socket);
    // Nothing was sent after the unsubscribe was handled.
    expect(recorder.linesOf(run.id).length).toBe(atUnsubscribe);
    expect(recorder.finishedOf(run.id)).toHaveLength(0);
    if (ack.ok) expect(ack.execution.id).toBe(run.id);
    else expect(ack.error.code).toBe('cancelled');

    const again = await subscribe(socket, run.id, recorder.lastSeq(run.id));
    expect(again.ok).toBe(true);
    await waitUntil(() => recorder.finishedOf(run.id).length > 0, 'execution:finished');
    await roundTrip(socket);
    const { duplicates, problems } = checkSequence(recorder.linesOf(run.id), 20_000);
    expect(duplicates).toBe(0);
    expect(problems).toEqual([]);
    expect(recorder.finishedOf(run.id)).toHaveLength(1);
  });

  it('a store failure during catch-up ends the subscription with execution:error, reported to the host only', { timeout: 60_000 }, async () => {
    const inner = memoryStore();
    let failing = false;
    const store: Store = {
      ...inner,
      async readLogs(executionId, query) {
        if (failing) throw new Error('disk on fire at /var/secret/path');
        return inner.readLogs(executionId, query);
      },
    };
    const { runner, url, errors } = await startServer({ runner: { store } });
    const script = await runner.uploadScript({ filename: 'test_many_lines.py', content: fixture('test_many_lines.py') });
    const run = await runner.run(script.id, { args: ['10'] });
    await runner.waitFor(run.id);
    const socket = await client(url);
    const recorder = new Recorder(socket);
    const failures: SubscriptionError[] = [];
    socket.on('execution:error', (failure) => failures.push(failure));

    failing = true;
    expect((await subscribe(socket, run.id)).ok).toBe(true);
    await waitUntil(() => failures.length > 0, 'execution:error');
    expect(failures[0]).toMatchObject({ executionId: run.id, error: { code: 'store' } });
    expect(failures[0]!.error.message).not.toContain('secret');
    expect(errors.some((e) => e.includes('disk on fire'))).toBe(true);

    failing = false;
    expect((await subscribe(socket, run.id)).ok).toBe(true);
    await waitUntil(() => recorder.finishedOf(run.id).length > 0, 'execution:finished');
    expect(recorder.linesOf(run.id).map((l) => l.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('splits huge batches into packets of bounded size', { timeout: 60_000 }, async () => {
    const { runner, url } = await startServer();
    const code = 'import sys\nfor i in range(1, 701):\n    print(f"{i} " + "x" * 20000)\n';
    const script = await runner.uploadScript({ filename: 'test_wide_lines.py', content: code });
    const socket = await client(url);
    const sizes: number[] = [];
    socket.on('execution:log', (batch) => sizes.push(batch.lines.reduce((n, l) => n + l.text.length, 0)));
    const recorder = new Recorder(socket);
    const run = await runner.run(script.id);
    const half = storedUpTo(runner, () => run.id, 300);
    await half;
    await subscribe(socket, run.id);
    await waitUntil(() => recorder.finishedOf(run.id).length > 0, 'execution:finished');
    await roundTrip(socket);
    expect(recorder.linesOf(run.id).map((l) => l.seq)).toEqual(Array.from({ length: 700 }, (_, i) => i + 1));
    expect(Math.max(...sizes)).toBeLessThanOrEqual(1_000_000);
  });

  it('live progress reaches subscribers', { timeout: 60_000 }, async () => {
    const { runner, url } = await startServer({ runner: { progressIntervalMs: 20 } });
    const code = [
      'import sys, time',
      'time.sleep(0.5)',
      'for i in range(1, 201):',
      '    sys.stderr.write(f"\\rprogress {i}/200")',
      '    sys.stderr.flush()',
      '    time.sleep(0.005)',
      'sys.stderr.write("\\n")',
      'print("done")',
    ].join('\n');
    const script = await runner.uploadScript({ filename: 'test_progress_bar.py', content: code });
    const socket = await client(url);
    const recorder = new Recorder(socket);
    const run = await runner.run(script.id);
    expect((await subscribe(socket, run.id)).ok).toBe(true);
    await waitUntil(() => recorder.finishedOf(run.id).length > 0, 'execution:finished');
    expect(recorder.progress).toBeGreaterThan(0);
    expect(recorder.linesOf(run.id).map((l) => l.text).sort()).toEqual(['done', 'progress 200/200']);
  });
});
