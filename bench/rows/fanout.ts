/**
 * fan-out: 100 socket.io clients (each its own websocket connection) follow one 100,000-line run,
 * against one client alone on an identical run. Every client must get every line exactly once, in
 * order; the time is run() → the last line at the last client. The clients live in two worker
 * threads (half each), so their decoding does not run on the server's event loop.
 *
 * Two scripts: a paced one (20,000 lines/s, a busy live run: the target is judged on it) and the
 * same lines as fast as python writes them (a stress case, reported beside it). On one 2-core
 * machine the clients' own JSON decoding (100 × 15 MB) competes with the server for the cores, so
 * the event-loop utilisation of the server and of the client threads is reported too.
 */
import { performance } from 'node:perf_hooks';
import { MANY_LINES, fmt, median, type Row } from '../lib.js';
import { calibrateWallClock } from './support-net/clock.js';
import { startClientThread, type ClientThread } from './support-net/threads.js';
import { PACED_LINES, startNetStack, type NetStack } from './support-net/stack.js';

const PACED_RATE = 20_000;

interface Sample {
  /** run() → last line at the last client. */
  last: number;
  /** run() → last line at the first client to complete. */
  first: number;
  /** Event-loop utilisation of the server (main thread) and of the busiest client thread, 0..1. */
  serverElu: number;
  clientElu: number;
}

export const run: Row = async (ctx) => {
  const count = ctx.quick ? 20_000 : 100_000;
  const many = ctx.quick ? 50 : 100;
  const reps = ctx.quick ? 1 : 3;
  const wall = calibrateWallClock();
  let stack: NetStack | null = null;
  const threads: ClientThread[] = [];
  const closeThreads = async () => {
    for (const thread of threads.splice(0)) await thread.close();
  };
  try {
    stack = await startNetStack();
    const pacedId = await stack.upload('fanout_paced', PACED_LINES);
    const fastId = await stack.upload('fanout_fast', MANY_LINES);

    /** One run followed by `clients` sockets (connected beforehand, subscribed right after run()). */
    const measure = async (clients: number, paced: boolean): Promise<Sample> => {
      const split = clients >= 2 ? [Math.ceil(clients / 2), Math.floor(clients / 2)] : [clients];
      for (const sockets of split) {
        threads.push(
          await startClientThread({ task: 'follow', origin: stack!.origin, baseUrl: stack!.baseUrl, sockets, sse: false, expected: count, latency: false, timeoutMs: 120_000 }),
        );
      }
      const elu0 = performance.eventLoopUtilization();
      const threadElu0 = threads.map((t) => t.eventLoopUtilization());
      const start = wall();
      const execution = paced
        ? await stack!.runner.run(pacedId, { args: [String(count), String(PACED_RATE), '0'] })
        : await stack!.runner.run(fastId, { args: [String(count)] });
      for (const thread of threads) thread.send({ type: 'subscribe', executionId: execution.id });
      // Each thread checks each of its clients with assertExactlyOnce before it answers `done`.
      const results = (await Promise.all(threads.map((t) => t.next('done', 150_000)))).flatMap((m) => m.results);
      const serverElu = performance.eventLoopUtilization(elu0).utilization;
      const clientElu = Math.max(...threads.map((t, i) => t.eventLoopUtilization(threadElu0[i]).utilization));
      const final = await stack!.runner.waitFor(execution.id);
      if (final.status !== 'succeeded' || final.lineCount !== count) throw new Error(`the fan-out script ended ${final.status} with ${final.lineCount} lines`);
      await closeThreads();
      if (results.length !== clients) throw new Error(`${results.length} of ${clients} clients reported`);
      const lasts = results.map((r) => r.lastLineAt - start);
      return { last: Math.max(...lasts), first: Math.min(...lasts), serverElu, clientElu };
    };

    const samples = { paced: { many: [] as Sample[], one: [] as Sample[] }, fast: { many: [] as Sample[], one: [] as Sample[] } };
    for (let rep = 0; rep < reps; rep++) {
      for (const paced of [true, false]) {
        // Alternate the order so neither variant always runs on a warmer process.
        const order = rep % 2 === 0 ? [many, 1] : [1, many];
        for (const clients of order) {
          const sample = await measure(clients, paced);
          samples[paced ? 'paced' : 'fast'][clients === 1 ? 'one' : 'many'].push(sample);
          ctx.log(
            `rep ${rep + 1} ${paced ? 'paced' : 'fast '}: ${String(clients).padStart(3)} client${clients === 1 ? ' ' : 's'} last line ${fmt.s(sample.last)} · ` +
              `server loop ${(sample.serverElu * 100).toFixed(0)}%, busiest client thread ${(sample.clientElu * 100).toFixed(0)}%`,
          );
        }
      }
    }
    const summary = (list: Sample[]) => ({
      last: median(list.map((s) => s.last)),
      first: median(list.map((s) => s.first)),
      serverElu: median(list.map((s) => s.serverElu)),
      clientElu: median(list.map((s) => s.clientElu)),
    });
    const paced = { many: summary(samples.paced.many), one: summary(samples.paced.one) };
    const fast = { many: summary(samples.fast.many), one: summary(samples.fast.one) };
    const pacedRatio = paced.many.last / paced.one.last;
    const fastRatio = fast.many.last / fast.one.last;
    const pct = (u: number) => `${(u * 100).toFixed(0)}%`;
    const met = pacedRatio <= 2;
    const seconds = count / PACED_RATE;
    // What the clients decode: one stored line as the wire carries it (JSON, ISO time).
    const [sampleLine] = await stack.runner.readLogs((await stack.runner.listExecutions({ limit: 1 })).items[0]!.id, { afterSeq: 0, limit: 1 });
    const wireBytes = JSON.stringify(sampleLine).length;
    const pacedReading =
      pacedRatio <= 1.25
        ? `Paced, the ${fmt.int(many)} clients keep up with the script (last client ${fmt.s(paced.many.last - paced.one.last)} behind the lone one; server loop ${pct(paced.many.serverElu)} busy, busiest client thread ${pct(paced.many.clientElu)}).`
        : `Paced, the last of the ${fmt.int(many)} clients ends ${fmt.s(paced.many.last - paced.one.last)} after the lone one (server loop ${pct(paced.many.serverElu)} busy, busiest client thread ${pct(paced.many.clientElu)}).`;
    const clientBound = fast.many.clientElu > 0.8 && fast.many.clientElu > fast.many.serverElu + 0.2;
    const fastReading =
      `Unpaced, ${fmt.int(many)} × ${fmt.int(count)} lines is ~${fmt.int((many * count * wireBytes) / 1e6)} MB of JSON for the clients to decode on the same 2 cores ` +
      `(busiest client thread ${pct(fast.many.clientElu)} busy, server loop ${pct(fast.many.serverElu)}; first client complete after ${fmt.s(fast.many.first)})` +
      (clientBound
        ? `: the clients' decoding is the bottleneck, so the ${fmt.ratio(fastRatio)} there measures this machine's clients more than the server.`
        : `; the ${fmt.ratio(fastRatio)} there is the cost of the fan-out itself on this machine.`);
    return {
      row: 'fan-out',
      what:
        `${fmt.int(many)} socket.io clients (own websocket each) following one ${fmt.int(count)}-line run vs 1 client on an identical run: run() → last line at the last client; ` +
        `script paced at ${fmt.int(PACED_RATE)} lines/s (${seconds.toFixed(0)} s) and unpaced; memory store; median of ${reps}`,
      measured:
        `paced: ${fmt.int(many)} clients ${fmt.s(paced.many.last)} · 1 client ${fmt.s(paced.one.last)} · ${fmt.ratio(pacedRatio)} — ` +
        `unpaced: ${fmt.int(many)} clients ${fmt.s(fast.many.last)} · 1 client ${fmt.s(fast.one.last)} · ${fmt.ratio(fastRatio)}`,
      target: 'every client gets every line; last line ≤ 2× one client (judged on the paced run)',
      met,
      reading: `All ${fmt.int(many)} clients got all ${fmt.int(count)} lines exactly once and in order in every run. ${pacedReading} ${fastReading}`,
    };
  } finally {
    await closeThreads();
    await stack?.close();
  }
};
