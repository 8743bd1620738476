/**
 * Following one execution's log so that the caller sees every line exactly once, in order,
 * whatever the network does: lines at or below the last delivered seq are dropped (duplicates from
 * replays and resubscriptions), a jump past it is filled from the REST logs route first (a gap),
 * and a reconnect resumes from the last delivered seq. The end is reported only once every line up
 * to the final lineCount has been delivered.
 */
import type { Execution, LogLine, ProgressEvent } from '@scriptrunner/core';
import { ScriptRunnerClientError } from './errors.js';
import { readEventStream } from './sse.js';
import { reviveExecution, reviveLine } from './wire.js';

export interface FollowOptions {
  /** Lines with seq <= afterSeq are not delivered (the caller has them). Default 0. */
  afterSeq?: number;
  /** Batches of new lines, in order, each line once. */
  onLines: (lines: LogLine[]) => void;
  /** The latest text of a line being rewritten with `\r` (progress bars). */
  onProgress?: (progress: ProgressEvent) => void;
  /** Once, after the last line. */
  onFinished?: (execution: Execution) => void;
  /** Transient trouble (the follower retries) and fatal refusals (forbidden, not found: it stops). */
  onError?: (error: ScriptRunnerClientError) => void;
}

/** What the follower needs from the REST client. */
export interface LogSource {
  readLogs(executionId: string, query: { after: number; limit: number }): Promise<{ lines: LogLine[] }>;
  getExecution(executionId: string): Promise<Execution>;
}

/** The part of a socket.io-client Socket the follower uses. */
export interface SocketLike {
  connected: boolean;
  on(event: string, listener: (...args: any[]) => void): unknown;
  off(event: string, listener: (...args: any[]) => void): unknown;
  emit(event: string, ...args: unknown[]): unknown;
  timeout(ms: number): { emit(event: string, ...args: unknown[]): unknown };
}

const FILL_PAGE = 5000;
const FATAL_CODES = new Set(['forbidden', 'not_found', 'validation']);

class Follower {
  lastSeq: number;
  stopped = false;
  private chain: Promise<void> = Promise.resolve();
  private finished = false;

  constructor(
    readonly executionId: string,
    private readonly source: LogSource,
    private readonly options: FollowOptions,
    private readonly onStop: () => void,
  ) {
    this.lastSeq = options.afterSeq ?? 0;
  }

  /** Work is serialised: a gap fill completes before later batches are looked at. */
  enqueue(task: () => Promise<void> | void): void {
    this.chain = this.chain.then(async () => {
      if (this.stopped) return;
      try {
        await task();
      } catch (error) {
        this.error(error);
      }
    });
  }

  lines(raw: LogLine[]): void {
    this.enqueue(async () => {
      const first = raw.find((line) => line.seq > this.lastSeq);
      if (!first) return;
      if (first.seq > this.lastSeq + 1) await this.fill(first.seq - 1);
      this.emit(raw);
    });
  }

  finish(execution: Execution): void {
    this.enqueue(async () => {
      if (this.finished) return;
      await this.fill(execution.lineCount);
      if (this.lastSeq < execution.lineCount) {
        // The store does not have them (yet): not the end we can report. The caller may retry.
        throw new ScriptRunnerClientError('incomplete', `execution ended with ${execution.lineCount} lines but only ${this.lastSeq} could be read`, 0);
      }
      this.finished = true;
      this.options.onFinished?.(execution);
      this.stop();
    });
  }

  /** Resolves when everything received so far has been handled. */
  idle(): Promise<void> {
    return this.chain;
  }

  progress(progress: ProgressEvent): void {
    if (!this.stopped && !this.finished) this.options.onProgress?.(progress);
  }

  error(error: unknown): void {
    if (this.stopped) return;
    const clientError =
      error instanceof ScriptRunnerClientError ? error : new ScriptRunnerClientError('network', error instanceof Error ? error.message : String(error), 0);
    this.options.onError?.(clientError);
    if (FATAL_CODES.has(clientError.code)) this.stop();
    else this.retry?.();
  }

  /** Set by the transport: how to try again after a transient failure (resubscribe, reconnect). */
  retry: (() => void) | null = null;

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.onStop();
  }

  /** Reads the store through REST until `upTo` (or the end of what is stored). */
  private async fill(upTo: number): Promise<void> {
    while (!this.stopped && this.lastSeq < upTo) {
      const { lines } = await this.source.readLogs(this.executionId, { after: this.lastSeq, limit: FILL_PAGE });
      if (lines.length === 0) return;
      const before = this.lastSeq;
      this.emit(lines);
      // The store is missing the next line: asking again would return the same page forever.
      if (this.lastSeq === before) {
        throw new ScriptRunnerClientError('incomplete', `line ${before + 1} of execution ${this.executionId} is missing from the store`, 0);
      }
    }
  }

  private emit(raw: LogLine[]): void {
    const fresh: LogLine[] = [];
    for (const line of raw) {
      if (line.seq === this.lastSeq + 1) {
        fresh.push(line);
        this.lastSeq = line.seq;
      }
    }
    if (fresh.length > 0 && !this.stopped) this.options.onLines(fresh);
  }
}

/**
 * Followers per socket and execution: the server keeps one subscription per socket and execution,
 * so only the last follower to stop may unsubscribe.
 */
const followers = new WeakMap<SocketLike, Map<string, number>>();

function countFollowers(socket: SocketLike, key: string, delta: number): number {
  let counts = followers.get(socket);
  if (!counts) {
    counts = new Map();
    followers.set(socket, counts);
  }
  const next = (counts.get(key) ?? 0) + delta;
  if (next <= 0) counts.delete(key);
  else counts.set(key, next);
  return Math.max(next, 0);
}

/** Registers one more lifecycle listener on `socket`; returns how many there are now. */
export function countScriptFollowers(socket: SocketLike, delta: number): number {
  return countFollowers(socket, '\u0000scripts', delta);
}

/** Follows over Socket.IO (namespace /scriptrunner). */
export function followOverSocket(socket: SocketLike, source: LogSource, executionId: string, options: FollowOptions): () => void {
  const onLog = (batch: { executionId: string; lines: unknown[] }) => {
    if (batch?.executionId === executionId) follower.lines(batch.lines.map(reviveLine));
  };
  const onProgress = (progress: Omit<ProgressEvent, 'time'> & { time: string }) => {
    if (progress?.executionId === executionId) follower.progress({ ...progress, time: new Date(progress.time) });
  };
  const onFinished = (execution: unknown) => {
    const revived = reviveExecution(execution);
    if (revived.id === executionId) follower.finish(revived);
  };
  const subscribe = () => {
    if (follower.stopped) return;
    socket.timeout(15_000).emit(
      'execution:subscribe',
      { executionId, afterSeq: follower.lastSeq },
      (timeout: Error | null, ack?: { ok: boolean; error?: { code: string; message: string } }) => {
        if (timeout) return follower.error(new ScriptRunnerClientError('network', 'no answer to execution:subscribe', 0));
        if (ack && !ack.ok) follower.error(new ScriptRunnerClientError(ack.error?.code ?? 'error', ack.error?.message ?? 'subscribe refused', 0));
      },
    );
  };
  const follower = new Follower(executionId, source, options, () => {
    socket.off('execution:log', onLog);
    socket.off('execution:progress', onProgress);
    socket.off('execution:finished', onFinished);
    socket.off('connect', subscribe);
    if (retryTimer) clearTimeout(retryTimer);
    if (countFollowers(socket, executionId, -1) === 0 && socket.connected) socket.emit('execution:unsubscribe', { executionId });
  });
  countFollowers(socket, executionId, 1);
  let retryTimer: ReturnType<typeof setTimeout> | null = null;
  // A lost ack, a refusal that may pass, or an end that could not be completed: subscribe again
  // from the last delivered seq (the server replays, and re-sends the end of a finished run).
  follower.retry = () => {
    retryTimer ??= setTimeout(() => {
      retryTimer = null;
      if (socket.connected) subscribe();
    }, 1000);
  };
  socket.on('execution:log', onLog);
  socket.on('execution:progress', onProgress);
  socket.on('execution:finished', onFinished);
  // Every (re)connection subscribes again from the last delivered seq.
  socket.on('connect', subscribe);
  if (socket.connected) subscribe();
  return () => follower.stop();
}

/** Follows over the Server-Sent Events route, reconnecting from the last delivered seq. */
export function followOverSse(
  streamUrl: (afterSeq: number) => string,
  request: (url: string, signal: AbortSignal) => Promise<Response>,
  source: LogSource,
  executionId: string,
  options: FollowOptions & { retryMs?: number },
): () => void {
  const controller = new AbortController();
  const follower = new Follower(executionId, source, options, () => controller.abort());
  void (async () => {
    let delay = options.retryMs ?? 500;
    while (!follower.stopped) {
      try {
        // Wait for delivered lines to settle so the reconnect starts from the true last seq.
        await follower.idle();
        if (follower.stopped) break;
        const response = await request(streamUrl(follower.lastSeq), controller.signal);
        if (response.status === 204) {
          follower.finish(await source.getExecution(executionId));
          break;
        }
        if (!response.ok) {
          const body = (await response.json().catch(() => null)) as { error?: { code?: string; message?: string } } | null;
          throw new ScriptRunnerClientError(body?.error?.code ?? 'http', body?.error?.message ?? `HTTP ${response.status}`, response.status);
        }
        delay = options.retryMs ?? 500;
        await readEventStream(
          response,
          (message) => {
            if (message.event === 'log') follower.lines((JSON.parse(message.data) as unknown[]).map(reviveLine));
            else if (message.event === 'end') follower.finish(reviveExecution(JSON.parse(message.data)));
            else if (message.event === 'error') follower.error(new ScriptRunnerClientError('store', message.data, 0));
          },
          controller.signal,
        );
      } catch (error) {
        if (follower.stopped) break;
        follower.error(error);
      }
      if (follower.stopped) break;
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 10_000);
    }
  })();
  return () => follower.stop();
}
