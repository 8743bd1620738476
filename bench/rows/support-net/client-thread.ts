/**
 * Worker-thread consumers of the network rows (started by threads.ts). Every consumer records the
 * seq of every line it receives and is checked with assertExactlyOnce when it is done; a problem
 * comes back to the main thread as an `error` message (a CorrectnessError keeps its name).
 *
 * - `follow`: `sockets` socket.io clients (each its own connection, websocket only) and optionally
 *   one SSE client wait connected; on `subscribe` they all follow the execution from seq 0 until it
 *   finishes, recording when each got its last line and, for timestamped lines, each line's latency.
 * - `catchup`: one consumer reads a finished execution through `mode` (socket, REST pages or SSE).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { io, type Socket } from 'socket.io-client';
import { assertExactlyOnce, CorrectnessError } from '../../lib.js';
import { calibrateWallClock } from './clock.js';
import { readEventStream } from './sse.js';

export type ClientTask =
  | {
      task: 'follow';
      origin: string;
      baseUrl: string;
      sockets: number;
      sse: boolean;
      /** Lines the execution prints: every consumer must get 1..expected. */
      expected: number;
      /** Lines are "<seq> <print time in µs>": record print → receipt per line. */
      latency: boolean;
      timeoutMs: number;
    }
  | {
      task: 'catchup';
      mode: 'socket' | 'rest' | 'sse';
      origin: string;
      baseUrl: string;
      executionId: string;
      expected: number;
      /** REST page size. */
      pageSize: number;
      timeoutMs: number;
    };

export type ToWorker = { type: 'subscribe'; executionId: string } | { type: 'close' };

export interface ConsumerResult {
  kind: 'socket' | 'sse' | 'rest';
  /** Wall clock (ms, sub-ms resolution) when the last line arrived. */
  lastLineAt: number;
  /** Wall clock when the end (execution:finished, SSE `end`, REST `done`) arrived. */
  endAt: number;
  /** Wall clock when the consumer started asking (catch-up). */
  startAt: number;
  /** follow + latency: receipt − print per line, in ms, by seq − 1. */
  latencies: Float64Array | null;
  /** Wall clock when the subscription was confirmed (socket ack, SSE response headers). */
  subscribedAt: number;
}

export type FromWorker =
  | { type: 'ready' }
  | { type: 'subscribed'; at: number }
  | { type: 'done'; results: ConsumerResult[] }
  | { type: 'closed' }
  | { type: 'error'; name: string; message: string };

interface WireLine {
  seq: number;
  text: string;
}

const port = parentPort!;
const task = workerData as ClientTask;
const wall = calibrateWallClock();
const post = (message: FromWorker) => port.postMessage(message);
const sockets: Socket[] = [];
const aborts: AbortController[] = [];
let failed = false;

function fail(error: unknown): void {
  if (failed) return;
  failed = true;
  const e = error instanceof Error ? error : new Error(String(error));
  post({ type: 'error', name: e.name, message: e.message });
}

/** One consumer's record of what it received. */
class Received {
  readonly seqs: Int32Array;
  count = 0;
  lastLineAt = Number.NaN;
  endAt = Number.NaN;
  startAt = Number.NaN;
  subscribedAt = Number.NaN;
  readonly latencies: Float64Array | null;

  constructor(
    readonly kind: ConsumerResult['kind'],
    readonly where: string,
    readonly expected: number,
    latency: boolean,
  ) {
    this.seqs = new Int32Array(expected);
    this.latencies = latency ? new Float64Array(expected) : null;
  }

  add(lines: WireLine[]): void {
    const at = wall();
    for (const line of lines) {
      if (this.count < this.expected) this.seqs[this.count] = line.seq;
      this.count++;
      if (this.latencies && line.seq >= 1 && line.seq <= this.expected) {
        const printedUs = Number(line.text.slice(line.text.indexOf(' ') + 1));
        this.latencies[line.seq - 1] = at - printedUs / 1000;
      }
    }
    if (lines.length > 0) this.lastLineAt = at;
  }

  /** Every line exactly once, in order; throws CorrectnessError otherwise. */
  check(): ConsumerResult {
    if (this.count !== this.expected) throw new CorrectnessError(`${this.where}: received ${this.count} lines, expected ${this.expected}`);
    assertExactlyOnce(this.seqs, this.expected, this.where);
    return {
      kind: this.kind,
      lastLineAt: this.lastLineAt,
      endAt: this.endAt,
      startAt: this.startAt,
      latencies: this.latencies,
      subscribedAt: this.subscribedAt,
    };
  }
}

function connectSocket(origin: string): Promise<Socket> {
  const socket = io(`${origin}/scriptrunner`, { transports: ['websocket'], forceNew: true, reconnection: false, timeout: 20_000 });
  sockets.push(socket);
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', (error) => reject(new Error(`socket.io connect failed: ${error.message}`)));
  });
}

/** Follows `executionId` on `socket` from seq 0; resolves on execution:finished. */
function followSocket(socket: Socket, executionId: string, received: Received, onSubscribed?: () => void): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.on('execution:log', (batch: { executionId: string; lines: WireLine[] }) => {
      if (batch.executionId === executionId) received.add(batch.lines);
    });
    socket.on('execution:error', (e: { error: { message: string } }) => reject(new Error(`${received.where}: execution:error ${e.error.message}`)));
    socket.on('disconnect', (reason) => reject(new Error(`${received.where}: disconnected (${reason}) after ${received.count} lines`)));
    socket.on('execution:finished', (execution: { id: string }) => {
      if (execution.id !== executionId) return;
      received.endAt = wall();
      resolve();
    });
    received.startAt = wall();
    socket.emit('execution:subscribe', { executionId, afterSeq: 0 }, (ack: { ok: boolean; error?: { message: string } }) => {
      if (!ack.ok) reject(new Error(`${received.where}: subscribe refused: ${ack.error?.message}`));
      else {
        received.subscribedAt = wall();
        onSubscribed?.();
      }
    });
  });
}

/** Reads the SSE stream of `executionId` to its `end` event; `onOpen` when the headers arrived. */
async function followSse(baseUrl: string, executionId: string, received: Received, onOpen?: () => void): Promise<void> {
  const abort = new AbortController();
  aborts.push(abort);
  received.startAt = wall();
  const response = await fetch(`${baseUrl}/executions/${encodeURIComponent(executionId)}/logs/stream`, { signal: abort.signal });
  if (!response.ok) throw new Error(`${received.where}: HTTP ${response.status}`);
  received.subscribedAt = wall();
  onOpen?.();
  let ended = false;
  let problem: string | null = null;
  await readEventStream(
    response,
    (message) => {
      if (message.event === 'log') received.add(JSON.parse(message.data) as WireLine[]);
      else if (message.event === 'end') {
        received.endAt = wall();
        ended = true;
        abort.abort();
      } else if (message.event === 'error') {
        problem = message.data;
        abort.abort();
      }
    },
    abort.signal,
  );
  if (problem) throw new Error(`${received.where}: SSE error event ${problem}`);
  if (!ended) throw new Error(`${received.where}: the stream ended without an end event after ${received.count} lines`);
}

/** Pages through `/logs?after=&limit=` until `done`. */
async function readRest(baseUrl: string, executionId: string, pageSize: number, received: Received): Promise<void> {
  const abort = new AbortController();
  aborts.push(abort);
  received.startAt = wall();
  let after = 0;
  // Bounded: a correct server needs expected / pageSize + 1 pages.
  const maxPages = Math.ceil(received.expected / pageSize) + 5;
  for (let page = 0; page < maxPages; page++) {
    const response = await fetch(`${baseUrl}/executions/${encodeURIComponent(executionId)}/logs?after=${after}&limit=${pageSize}`, { signal: abort.signal });
    if (!response.ok) throw new Error(`${received.where}: HTTP ${response.status}`);
    const body = (await response.json()) as { lines: WireLine[]; nextAfter: number; done: boolean };
    received.add(body.lines);
    after = body.nextAfter;
    if (body.done) {
      received.endAt = wall();
      return;
    }
  }
  throw new Error(`${received.where}: not done after ${maxPages} pages (${received.count} lines)`);
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what()}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

async function follow(t: Extract<ClientTask, { task: 'follow' }>): Promise<void> {
  const connected = await Promise.all(Array.from({ length: t.sockets }, () => connectSocket(t.origin)));
  post({ type: 'ready' });
  const executionId = await new Promise<string>((resolve) => {
    const onMessage = (m: ToWorker) => {
      if (m.type !== 'subscribe') return;
      port.off('message', onMessage);
      resolve(m.executionId);
    };
    port.on('message', onMessage);
  });
  const consumers: Received[] = connected.map((_, i) => new Received('socket', `socket client ${i + 1}/${t.sockets}`, t.expected, t.latency));
  const sse = t.sse ? new Received('sse', 'SSE client', t.expected, t.latency) : null;
  const all = sse ? [...consumers, sse] : consumers;
  let pendingSubscriptions = all.length;
  const subscribed = () => {
    if (--pendingSubscriptions === 0) post({ type: 'subscribed', at: wall() });
  };
  const runs: Promise<void>[] = connected.map((socket, i) => followSocket(socket, executionId, consumers[i]!, subscribed));
  if (sse) runs.push(followSse(t.baseUrl, executionId, sse, subscribed));
  await withTimeout(Promise.all(runs), t.timeoutMs, () => all.map((r) => `${r.where} ${r.count}/${r.expected}`).slice(0, 5).join(', '));
  post({ type: 'done', results: all.map((r) => r.check()) });
}

async function catchup(t: Extract<ClientTask, { task: 'catchup' }>): Promise<void> {
  const received = new Received(t.mode, `${t.mode} catch-up`, t.expected, false);
  let run: () => Promise<void>;
  if (t.mode === 'socket') {
    const socket = await connectSocket(t.origin);
    run = () => followSocket(socket, t.executionId, received);
  } else if (t.mode === 'rest') {
    run = () => readRest(t.baseUrl, t.executionId, t.pageSize, received);
  } else {
    run = () => followSse(t.baseUrl, t.executionId, received);
  }
  post({ type: 'ready' });
  await new Promise<void>((resolve) => {
    const onMessage = (m: ToWorker) => {
      if (m.type !== 'subscribe') return;
      port.off('message', onMessage);
      resolve();
    };
    port.on('message', onMessage);
  });
  await withTimeout(run(), t.timeoutMs, () => `${received.where} ${received.count}/${received.expected}`);
  post({ type: 'done', results: [received.check()] });
}

port.on('message', (m: ToWorker) => {
  if (m.type !== 'close') return;
  for (const socket of sockets) socket.disconnect();
  for (const abort of aborts) abort.abort();
  post({ type: 'closed' });
});

(task.task === 'follow' ? follow(task) : catchup(task)).catch(fail);
