/**
 * catch-up: a client that arrives after a 1,000,000-line run finished reads it all — through
 * Socket.IO (`execution:subscribe` from seq 0 until `execution:finished`; the adapter replays the
 * store in pages of 2,000, paced by the client's reading), through REST pages
 * (`/logs?after=&limit=10000` until `done`) and through SSE (the stream read to `end`). On the memory
 * store (the row's figures) and on the embedded SQLite store (sqliteStore, a temp file; beside them).
 * Each reader runs alone in a worker thread and is checked line by line; lines/s from its first
 * request to its last line.
 */
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { sqliteStore } from '@scriptrunner/store-prisma/sqlite';
import { MANY_LINES, fmt, median, type BenchContext, type Row } from '../lib.js';
import { startClientThread, type ClientThread } from './support-net/threads.js';
import { startNetStack, type NetStack, type OwnedStore } from './support-net/stack.js';

const MODES = ['socket', 'rest', 'sse'] as const;
type Mode = (typeof MODES)[number];
const LABEL: Record<Mode, string> = { socket: 'socket', rest: 'REST pages', sse: 'SSE' };
const PAGE = 10_000;
const pct = (u: number) => `${(u * 100).toFixed(0)}%`;

interface StoreResult {
  /** Median ms per mode, from the first request to the last line. */
  ms: Record<Mode, number>;
  /** Median event-loop utilisation of the server (main thread) and of the reader's thread, 0..1. */
  server: Record<Mode, number>;
  client: Record<Mode, number>;
  /** How long the run took to write its lines into the store (run() → finished). */
  writeMs: number;
}

/** Writes one `count`-line run into a fresh stack, then times every reader `reps` times. */
async function measure(ctx: BenchContext, label: string, count: number, reps: number, makeStore?: (dir: string) => OwnedStore): Promise<StoreResult> {
  let stack: NetStack | null = null;
  let thread: ClientThread | null = null;
  try {
    stack = await startNetStack(makeStore ? { makeStore } : {});
    const scriptId = await stack.upload('catchup', MANY_LINES);
    const t0 = performance.now();
    const execution = await stack.runner.run(scriptId, { args: [String(count)] });
    const final = await stack.runner.waitFor(execution.id);
    const writeMs = performance.now() - t0;
    if (final.status !== 'succeeded' || final.lineCount !== count) throw new Error(`the catch-up script ended ${final.status} with ${final.lineCount} lines`);
    ctx.log(`${label}: ${fmt.int(count)}-line run written in ${fmt.s(writeMs)}`);

    const times: Record<Mode, number[]> = { socket: [], rest: [], sse: [] };
    const server: Record<Mode, number[]> = { socket: [], rest: [], sse: [] };
    const client: Record<Mode, number[]> = { socket: [], rest: [], sse: [] };
    for (let rep = 0; rep < reps; rep++) {
      for (const mode of rep % 2 === 0 ? MODES : [...MODES].reverse()) {
        thread = await startClientThread({
          task: 'catchup',
          mode,
          origin: stack.origin,
          baseUrl: stack.baseUrl,
          executionId: execution.id,
          expected: count,
          pageSize: PAGE,
          timeoutMs: 120_000,
        });
        const elu0 = performance.eventLoopUtilization();
        const threadElu0 = thread.eventLoopUtilization();
        thread.send({ type: 'subscribe', executionId: execution.id });
        // The thread checks every seq (assertExactlyOnce) before it answers.
        const { results } = await thread.next('done', 150_000);
        server[mode].push(performance.eventLoopUtilization(elu0).utilization);
        client[mode].push(thread.eventLoopUtilization(threadElu0).utilization);
        await thread.close();
        thread = null;
        const r = results[0]!;
        times[mode].push(r.lastLineAt - r.startAt);
        ctx.log(`${label} rep ${rep + 1} ${LABEL[mode]}: ${fmt.s(r.lastLineAt - r.startAt)} · server loop ${pct(server[mode].at(-1)!)}, reader ${pct(client[mode].at(-1)!)}`);
      }
    }
    const med = (by: Record<Mode, number[]>) => ({ socket: median(by.socket), rest: median(by.rest), sse: median(by.sse) });
    return { ms: med(times), server: med(server), client: med(client), writeMs };
  } finally {
    await thread?.close();
    await stack?.close();
  }
}

export const run: Row = async (ctx) => {
  const count = ctx.quick ? 200_000 : 1_000_000;
  const reps = ctx.quick ? 1 : 2;
  const memory = await measure(ctx, 'memory', count, reps);
  const sqlite = await measure(ctx, 'sqlite', count, 1, (dir) => sqliteStore({ file: join(dir, 'catchup.db') }));

  const rate = (r: StoreResult, mode: Mode) => count / (r.ms[mode] / 1000);
  const measured =
    MODES.map((m) => `${LABEL[m]} ${fmt.int(rate(memory, m))} lines/s (${fmt.s(memory.ms[m])})`).join(' · ') +
    ` — SQLite: ` +
    MODES.map((m) => `${LABEL[m]} ${fmt.int(rate(sqlite, m))}/s`).join(' · ');
  const fastest = MODES.reduce((a, b) => (rate(memory, b) > rate(memory, a) ? b : a));
  const slowest = MODES.reduce((a, b) => (rate(memory, b) < rate(memory, a) ? b : a));
  const relative = MODES.map((m) => memory.ms[m] / sqlite.ms[m]);
  const serverBound = MODES.filter((m) => memory.server[m] >= 0.9);
  return {
    row: 'catch-up',
    what:
      `a client arriving after a ${fmt.int(count)}-line run finished reads it all: Socket.IO subscribe from seq 0, REST pages of ${fmt.int(PAGE)}, SSE to \`end\`; ` +
      `memory store (median of ${reps}), then the SQLite store (sqliteStore on a temp file, once)`,
    measured,
    target: 'complete and in order (no numeric target)',
    met: true,
    reading:
      `Every reader got all ${fmt.int(count)} lines exactly once and in order, on both stores. On the memory store ${LABEL[fastest]} is the fastest and ${LABEL[slowest]} the slowest ` +
      `(${fmt.ratio(rate(memory, fastest) / rate(memory, slowest))}); busy time of the server loop / the reader's thread: ` +
      MODES.map((m) => `${LABEL[m]} ${pct(memory.server[m])} / ${pct(memory.client[m])}`).join(', ') +
      (serverBound.length > 0 ? ` — ${serverBound.map((m) => LABEL[m]).join(' and ')} ${serverBound.length > 1 ? 'are' : 'is'} bound by the server's event loop` : '') +
      `. On SQLite the readers reach ${pct(Math.min(...relative))}–${pct(Math.max(...relative))} of the memory store's rate (the run took ${fmt.s(sqlite.writeMs)} to write there, ${fmt.s(memory.writeMs)} into memory).`,
  };
};
