import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  createScriptRunner,
  memoryStore,
  type Execution,
  type ScriptRunner,
  type ScriptRunnerOptions,
  type Store,
} from '@scriptrunner/core';
import { Server } from 'socket.io';
import { io as connect, type Socket as ClientSocket } from 'socket.io-client';
import {
  attachScriptRunner,
  type AttachScriptRunnerOptions,
  type AttachedScriptRunner,
  type ScriptRunnerClientToServerEvents,
  type ScriptRunnerServerToClientEvents,
  type Serialized,
  type SubscribeAck,
} from '../src/index.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const CORE_FIXTURES = join(HERE, '..', '..', 'core', 'test', 'fixtures');
const OWN_FIXTURES = join(HERE, 'fixtures');

/** core's fixtures (test_many_lines.py, ...) or ours (test_slow_lines.py). */
export function fixture(name: string): Buffer {
  try {
    return readFileSync(join(OWN_FIXTURES, name));
  } catch {
    return readFileSync(join(CORE_FIXTURES, name));
  }
}

export const LINE_TEXT = (seq: number) => `line ${seq} price forecast iteration ok`;

export type Client = ClientSocket<ScriptRunnerServerToClientEvents, ScriptRunnerClientToServerEvents>;
/** For sending what the protocol does not allow. */
export type RawClient = { emit(event: string, ...args: unknown[]): unknown; emitWithAck(event: string, ...args: unknown[]): Promise<unknown> };

export interface Harness {
  runner: ScriptRunner;
  io: Server;
  attached: AttachedScriptRunner;
  url: string;
  errors: string[];
}

const cleanups: Array<() => Promise<void> | void> = [];

export async function closeAll(): Promise<void> {
  // Clients first, then servers, then runners (which kill their children).
  for (const cleanup of cleanups.splice(0).reverse()) {
    try {
      await cleanup();
    } catch {
      // keep closing the rest
    }
  }
}

export async function startServer(
  options: { runner?: ScriptRunnerOptions; attach?: AttachScriptRunnerOptions } = {},
): Promise<Harness> {
  const runner = createScriptRunner({
    logger: { warn: () => {}, error: () => {} },
    killGraceMs: 1000,
    concurrency: 4,
    ...options.runner,
  });
  cleanups.push(() => runner.close());
  const http = createServer();
  const io = new Server(http);
  const errors: string[] = [];
  const attached = attachScriptRunner(io, runner, { logger: { error: (m) => errors.push(m) }, ...options.attach });
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        attached.detach();
        void io.close(() => resolve());
      }),
  );
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const { port } = http.address() as AddressInfo;
  return { runner, io, attached, url: `http://127.0.0.1:${port}/scriptrunner`, errors };
}

export async function client(
  url: string,
  options: { auth?: Record<string, unknown>; reconnection?: boolean } = {},
): Promise<Client> {
  const socket: Client = connect(url, {
    transports: ['websocket'],
    forceNew: true,
    reconnection: options.reconnection ?? false,
    reconnectionDelay: 50,
    reconnectionDelayMax: 200,
    auth: options.auth ?? {},
  });
  cleanups.push(() => {
    socket.disconnect();
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('connect_error', reject);
  });
  return socket;
}

export function raw(socket: Client): RawClient {
  return socket as unknown as RawClient;
}

/** Everything one client received, in arrival order. */
export class Recorder {
  readonly events: Array<{ event: string; executionId: string | null; seqs?: number[] }> = [];
  readonly lines = new Map<string, Array<{ seq: number; text: string }>>();
  readonly finished = new Map<string, Array<Serialized<Execution>>>();
  readonly lifecycle: Array<{ event: string; id: string }> = [];
  progress = 0;

  constructor(socket: Client) {
    socket.on('execution:log', (batch) => {
      const list = this.lines.get(batch.executionId) ?? [];
      for (const line of batch.lines) list.push({ seq: line.seq, text: line.text });
      this.lines.set(batch.executionId, list);
      this.events.push({ event: 'execution:log', executionId: batch.executionId, seqs: batch.lines.map((l) => l.seq) });
    });
    socket.on('execution:finished', (execution) => {
      const list = this.finished.get(execution.id) ?? [];
      list.push(execution);
      this.finished.set(execution.id, list);
      this.events.push({ event: 'execution:finished', executionId: execution.id });
      this.lifecycle.push({ event: 'execution:finished', id: execution.id });
    });
    socket.on('execution:progress', (progress) => {
      this.progress++;
      this.events.push({ event: 'execution:progress', executionId: progress.executionId });
    });
    socket.on('execution:error', (failure) => this.events.push({ event: 'execution:error', executionId: failure.executionId }));
    for (const event of ['execution:queued', 'execution:started', 'script:created', 'script:archived'] as const) {
      socket.on(event, (item: { id: string }) => {
        this.events.push({ event, executionId: null });
        this.lifecycle.push({ event, id: item.id });
      });
    }
  }

  linesOf(executionId: string): Array<{ seq: number; text: string }> {
    return this.lines.get(executionId) ?? [];
  }

  finishedOf(executionId: string): Array<Serialized<Execution>> {
    return this.finished.get(executionId) ?? [];
  }

  lastSeq(executionId: string): number {
    const list = this.linesOf(executionId);
    return list[list.length - 1]?.seq ?? 0;
  }
}

/** Subscribes and returns the ack. */
export async function subscribe(socket: Client, executionId: string, afterSeq = 0): Promise<SubscribeAck> {
  return socket.emitWithAck('execution:subscribe', { executionId, afterSeq });
}

/** The execution's events on this client end with exactly one execution:finished, after every line. */
export function finishedAfterLastLine(recorder: Recorder, executionId: string): boolean {
  const events = recorder.events.filter((e) => e.executionId === executionId);
  const lastLog = events.map((e) => e.event).lastIndexOf('execution:log');
  const finished = events.findIndex((e) => e.event === 'execution:finished');
  return finished > lastLog && finished === events.length - 1;
}

export async function waitUntil(check: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Resolves after everything the server emitted to this socket before now has arrived: the ack of a
 * later request cannot overtake packets queued before it on the same connection.
 */
export async function roundTrip(socket: Client): Promise<void> {
  await raw(socket).emitWithAck('execution:unsubscribe', { executionId: 'round-trip-marker' });
}

/** Resolves when the runner has published lines up to `seq` of `executionId`. */
export function storedUpTo(runner: ScriptRunner, executionId: () => string | null, seq: number): Promise<void> {
  return new Promise((resolve) => {
    const listener = (batch: { executionId: string; lines: Array<{ seq: number }> }) => {
      const last = batch.lines[batch.lines.length - 1];
      if (batch.executionId === executionId() && last !== undefined && last.seq >= seq) {
        runner.off('execution:log', listener);
        resolve();
      }
    };
    runner.on('execution:log', listener);
  });
}

/** Asserts the lines are exactly 1..n, in order, once each, with the fixture's text. */
export function checkSequence(lines: Array<{ seq: number; text: string }>, n: number): { duplicates: number; problems: string[] } {
  const counts = new Map<number, number>();
  for (const line of lines) counts.set(line.seq, (counts.get(line.seq) ?? 0) + 1);
  let duplicates = 0;
  for (const count of counts.values()) duplicates += count - 1;
  const problems: string[] = [];
  for (let i = 0; i < lines.length && problems.length < 5; i++) {
    const line = lines[i]!;
    if (line.seq !== i + 1) problems.push(`position ${i} has seq ${line.seq}`);
    else if (line.text !== LINE_TEXT(line.seq)) problems.push(`seq ${line.seq} has text ${JSON.stringify(line.text)}`);
  }
  if (lines.length !== n) problems.push(`${lines.length} lines, expected ${n}`);
  return { duplicates, problems };
}

/**
 * A memory store that answers like a remote database: a read's answer arrives a moment after the
 * read, and a write's acknowledgement arrives some time after the lines became readable. That widens both windows the
 * hand-over must handle: batches published during catch-up, and lines stored but not yet published.
 */
export function laggyStore(lag: { appendMs?: () => number; readMs?: () => number } = {}): Store {
  const inner = memoryStore();
  const appendMs = lag.appendMs ?? (() => Math.floor(Math.random() * 12));
  const readMs = lag.readMs ?? (() => 1 + Math.floor(Math.random() * 6));
  const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
  return {
    ...inner,
    async appendLogs(executionId, lines) {
      await inner.appendLogs(executionId, lines);
      await pause(appendMs());
    },
    async readLogs(executionId, query) {
      // The answer reflects the moment of the read, and arrives a little later.
      const lines = await inner.readLogs(executionId, query);
      await pause(readMs());
      return lines;
    },
  };
}
