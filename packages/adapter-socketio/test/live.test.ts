/**
 * Exactly once, in order, across the hand-over from catch-up to live: late subscribers, a store that
 * lags, reconnects.
 */
import { afterEach, describe, expect, it } from 'vitest';
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
  type Client,
} from './helpers.js';
import type { SubscribeAck } from '../src/index.js';

afterEach(closeAll);

describe('catch-up to live hand-over', () => {
  it('a subscriber joining a 100,000-line run half way gets seq 1..100000 once, in order, then one execution:finished', { timeout: 120_000 }, async () => {
    const { runner, url } = await startServer();
    const script = await runner.uploadScript({ filename: 'test_slow_lines.py', content: fixture('test_slow_lines.py') });
    let executionId: string | null = null;
    const halfway = storedUpTo(runner, () => executionId, 50_000);
    const execution = await runner.run(script.id, { args: ['100000', '2.5', '1000'] });
    executionId = execution.id;
    const socket = await client(url);
    const recorder = new Recorder(socket);
    await halfway;

    const ack = await subscribe(socket, execution.id);
    if (!ack.ok) throw new Error(`subscribe refused: ${ack.error.message}`);
    // The subscription really started mid-run: part of the output was still to come.
    expect(ack.execution.status).toBe('running');
    expect(ack.execution.lineCount).toBeGreaterThanOrEqual(50_000);
    expect(ack.execution.lineCount).toBeLessThan(100_000);

    await waitUntil(() => recorder.finishedOf(execution.id).length > 0, 'execution:finished');
    await roundTrip(socket);
    const { duplicates, problems } = checkSequence(recorder.linesOf(execution.id), 100_000);
    expect(duplicates).toBe(0);
    expect(problems).toEqual([]);
    const finished = recorder.finishedOf(execution.id);
    expect(finished).toHaveLength(1);
    expect(finished[0]!.lineCount).toBe(100_000);
    expect(finished[0]!.status).toBe('succeeded');
    expect(finishedAfterLastLine(recorder, execution.id)).toBe(true);
  });

  it('with a store that lags, subscribers joining at any point each get every line exactly once', { timeout: 120_000 }, async () => {
    const { runner, url } = await startServer({ runner: { store: laggyStore() }, attach: { replayPageSize: 500 } });
    const script = await runner.uploadScript({ filename: 'test_slow_lines.py', content: fixture('test_slow_lines.py') });
    const total = 30_000;
    let executionId: string | null = null;
    const marks = [2_000, 8_000, 15_000, 22_000, 28_000].map((seq) => ({ seq, reached: storedUpTo(runner, () => executionId, seq) }));
    const execution = await runner.run(script.id, { args: [String(total), '3', '20'] });
    executionId = execution.id;
    const joiners = await Promise.all(marks.map(() => client(url)));
    const joinerRecords = joiners.map((s) => new Recorder(s));
    const churners = await Promise.all([client(url), client(url)]);
    const churnerRecords = churners.map((s) => new Recorder(s));

    // Churners hand over from catch-up to live again and again: subscribe from the last seq they
    // have, stay a few milliseconds, unsubscribe, repeat until the run is over.
    const churn = async (socket: Client, recorder: Recorder) => {
      let cycles = 0;
      while (recorder.finishedOf(execution.id).length === 0) {
        const ack = await subscribe(socket, execution.id, recorder.lastSeq(execution.id));
        if (!ack.ok) throw new Error(`subscribe refused: ${ack.error.message}`);
        await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 15)));
        if (recorder.finishedOf(execution.id).length > 0) break;
        await socket.emitWithAck('execution:unsubscribe', { executionId: execution.id });
        cycles++;
      }
      return cycles;
    };
    const churning = Promise.all(churners.map((s, i) => churn(s, churnerRecords[i]!)));

    const acks: SubscribeAck[] = [];
    for (const [i, mark] of marks.entries()) {
      await mark.reached;
      // Resume from different points: from the start, and from a seq the client already has.
      acks.push(await subscribe(joiners[i]!, execution.id, i % 2 === 0 ? 0 : 1_000));
    }
    expect(acks.every((a) => a.ok)).toBe(true);
    expect(acks.filter((a) => a.ok && a.execution.status === 'running').length).toBeGreaterThanOrEqual(3);
    const cycles = await churning;
    expect(Math.min(...cycles)).toBeGreaterThan(20);

    const everyone = [...joiners.map((s, i) => ({ socket: s, recorder: joinerRecords[i]!, from: i % 2 === 0 ? 0 : 1_000 })), ...churners.map((s, i) => ({ socket: s, recorder: churnerRecords[i]!, from: 0 }))];
    for (const [i, { socket, recorder, from }] of everyone.entries()) {
      await waitUntil(() => recorder.finishedOf(execution.id).length > 0, `execution:finished on client ${i}`);
      await roundTrip(socket);
      const shifted = recorder.linesOf(execution.id).map((l) => ({ seq: l.seq - from, text: l.text.replace(`line ${l.seq} `, `line ${l.seq - from} `) }));
      const { duplicates, problems } = checkSequence(shifted, total - from);
      expect({ client: i, duplicates, problems }).toEqual({ client: i, duplicates: 0, problems: [] });
      expect(recorder.finishedOf(execution.id)).toHaveLength(1);
      expect(recorder.finishedOf(execution.id)[0]!.lineCount).toBe(total);
      expect(finishedAfterLastLine(recorder, execution.id)).toBe(true);
    }
  });

  it('a client that disconnects mid-run and resubscribes with its last seq ends with 1..N exactly once', { timeout: 120_000 }, async () => {
    const { runner, url } = await startServer();
    const script = await runner.uploadScript({ filename: 'test_slow_lines.py', content: fixture('test_slow_lines.py') });
    const total = 30_000;
    let executionId: string | null = null;
    const execution = await runner.run(script.id, { args: [String(total), '3', '300'] });
    executionId = execution.id;

    const socket = await client(url, { reconnection: true });
    const recorder = new Recorder(socket);
    const acks: SubscribeAck[] = [];
    // The usual client: (re)subscribe on every connect with the last seq it has.
    const resubscribe = () => {
      void subscribe(socket, execution.id, recorder.lastSeq(execution.id)).then((ack) => acks.push(ack));
    };
    socket.on('connect', resubscribe);
    resubscribe();

    // 1. The transport drops (network loss): Socket.IO reconnects by itself.
    await waitUntil(() => recorder.linesOf(execution.id).length >= 6_000, '6,000 lines');
    let later = storedUpTo(runner, () => executionId, recorder.lastSeq(execution.id) + 3_000);
    socket.io.engine.close();
    await later;
    await waitUntil(() => acks.length >= 2, 'the resubscribe after the reconnect');

    // 2. The client disconnects on purpose and connects again later.
    await waitUntil(() => recorder.linesOf(execution.id).length >= 15_000, '15,000 lines');
    later = storedUpTo(runner, () => executionId, recorder.lastSeq(execution.id) + 3_000);
    socket.disconnect();
    await later;
    socket.connect();

    await waitUntil(() => recorder.finishedOf(execution.id).length > 0, 'execution:finished');
    await roundTrip(socket);
    expect(acks.length).toBe(3);
    expect(acks.every((a) => a.ok)).toBe(true);
    // Both resubscribes happened while the run was still going.
    expect(acks.slice(1).map((a) => (a.ok ? a.execution.status : 'refused'))).toEqual(['running', 'running']);

    const { duplicates, problems } = checkSequence(recorder.linesOf(execution.id), total);
    expect(duplicates).toBe(0);
    expect(problems).toEqual([]);
    expect(recorder.finishedOf(execution.id)).toHaveLength(1);
    expect(finishedAfterLastLine(recorder, execution.id)).toBe(true);
  });
});
