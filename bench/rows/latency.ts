/**
 * latency: a python script prints "<seq> <wall clock µs>" lines at 1,000 lines/s; a socket.io
 * client and an SSE client, both subscribed before the first print and both in a worker thread,
 * record receipt − print for every line. Same machine, same clock: python's time.time_ns() and the
 * worker's performance.now() calibrated against Date.now() (CLOCK_REALTIME both), microsecond
 * resolution.
 */
import { fmt, percentile, type Row } from '../lib.js';
import { startClientThread, type ClientThread } from './support-net/threads.js';
import { startNetStack, TIMESTAMPED_LINES, type NetStack } from './support-net/stack.js';

const RATE = 1000;
/** The script waits this long before its first line, so both clients are subscribed by then. */
const PAUSE_S = 1.5;

export const run: Row = async (ctx) => {
  const seconds = ctx.quick ? 3 : 10;
  const count = seconds * RATE;
  let stack: NetStack | null = null;
  let thread: ClientThread | null = null;
  try {
    stack = await startNetStack();
    thread = await startClientThread({
      task: 'follow',
      origin: stack.origin,
      baseUrl: stack.baseUrl,
      sockets: 1,
      sse: true,
      expected: count,
      latency: true,
      timeoutMs: (seconds + PAUSE_S + 30) * 1000,
    });
    const scriptId = await stack.upload('latency', TIMESTAMPED_LINES);
    ctx.log(`${fmt.int(count)} lines at ${fmt.int(RATE)} lines/s to a socket.io client and an SSE client`);
    const execution = await stack.runner.run(scriptId, { args: [String(count), String(RATE), String(PAUSE_S)] });
    thread.send({ type: 'subscribe', executionId: execution.id });
    const { at: subscribedAt } = await thread.next('subscribed', 10_000);
    const { results } = await thread.next('done', (seconds + PAUSE_S + 30) * 1000);
    const final = await stack.runner.waitFor(execution.id);
    if (final.status !== 'succeeded') throw new Error(`the latency script ended ${final.status}: ${final.errorMessage ?? ''}`);

    // The prints' own timestamps, from the store: were both clients subscribed before the first?
    const [first] = await stack.runner.readLogs(execution.id, { afterSeq: 0, limit: 1 });
    const [last] = await stack.runner.readLogs(execution.id, { afterSeq: count - 1, limit: 1 });
    const printedMs = (text: string) => Number(text.slice(text.indexOf(' ') + 1)) / 1000;
    const firstPrint = printedMs(first!.text);
    if (!(subscribedAt < firstPrint)) {
      throw new Error(`the clients were subscribed ${fmt.ms(subscribedAt - firstPrint)} after the first print: raise PAUSE_S`);
    }
    const achievedRate = ((count - 1) / (printedMs(last!.text) - firstPrint)) * 1000;

    const stats = results.map((r) => {
      const values = Array.from(r.latencies!);
      return { kind: r.kind, p50: percentile(values, 50), p99: percentile(values, 99), min: Math.min(...values), max: Math.max(...values) };
    });
    // A negative latency would mean the two clocks disagree; the calibration is good to a few µs.
    const earliest = Math.min(...stats.map((s) => s.min));
    if (earliest < -0.05) throw new Error(`a line arrived ${fmt.ms(-earliest)} before it was printed: the clock calibration is off`);
    const socket = stats.find((s) => s.kind === 'socket')!;
    const sse = stats.find((s) => s.kind === 'sse')!;
    const met = stats.every((s) => s.p50 <= 10 && s.p99 <= 50);
    const slowest = stats.reduce((a, b) => (b.p99 > a.p99 ? b : a));
    return {
      row: 'latency',
      what: `a script printing ${fmt.int(count)} timestamped lines at ${fmt.int(RATE)} lines/s (memory store); print → receipt by a socket.io client and an SSE client following the run at once (µs wall clock)`,
      measured: `socket p50 ${fmt.ms(socket.p50)}, p99 ${fmt.ms(socket.p99)} · SSE p50 ${fmt.ms(sse.p50)}, p99 ${fmt.ms(sse.p99)}`,
      target: 'p50 ≤ 10 ms, p99 ≤ 50 ms (both clients)',
      met,
      reading:
        `Every line reached both clients exactly once and in order (${fmt.int(count)} each, script paced at ${fmt.int(achievedRate)} lines/s); ` +
        `the median line takes ${fmt.ms(socket.p50)} (socket) / ${fmt.ms(sse.p50)} (SSE) from print through pipe, runner read, memory-store write and publish to the client thread; ` +
        `fastest line ${fmt.ms(earliest)}, slowest ${fmt.ms(Math.max(socket.max, sse.max))}` +
        (met ? '.' : `; the ${slowest.kind} client's p99 is over target.`),
    };
  } finally {
    await thread?.close();
    await stack?.close();
  }
};
