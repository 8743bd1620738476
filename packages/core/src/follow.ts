/**
 * Following one execution's log exactly once, from any seq: capture → catch-up from the store →
 * live hand-over. The one implementation behind every live face (SSE in both HTTP adapters,
 * Socket.IO subscriptions); they keep only their framing.
 *
 * Why it is exact. A follower is registered (it *captures*) before anything is read, and the runner
 * stores a batch before it publishes it. So, for any store read:
 * - a batch published before the read started is in the store, hence in the page (or a later one);
 * - a batch published while the read was in flight was captured;
 * - a batch stored but not yet published is in the page, and when it is published later every seq
 *   of it is at or below the cursor, so it is dropped.
 * The follower keeps one cursor (`lastSeq`, the highest seq handed to the consumer or queued for
 * it) and never hands out a line at or below it, nor one that would leave a gap: a gap (a lost
 * event, a consumer too slow to buffer for) sends it back to the store, which has every line.
 *
 * Why it cannot starve the server. Catch-up reads go in bounded slices (`pageSize`), one per
 * `next()` call, so the consumer's pace (a socket's drain) paces the reads; between two reads the
 * follower yields to the event loop (`setImmediate`), because a store that answers synchronously
 * (better-sqlite3) would otherwise resolve every read in the same macrotask and keep I/O waiting.
 * Live batches wait in a bounded buffer; beyond it they are dropped and read back from the store.
 */
import type { Dispatcher } from './dispatch.js';
import type { Execution, LogLine, ProgressEvent, RunnerEvent } from './types.js';

/** Options of `runner.follow()`. */
export interface FollowOptions {
  /** Lines with seq <= afterSeq are not delivered (the last seq the consumer already has). Default 0. */
  afterSeq?: number;
  /** Ends the iteration (`next()` resolves done) when aborted, e.g. a request's signal. */
  signal?: AbortSignal;
  /** Lines per store read while catching up, 1 to 10,000. Default 2,000. */
  pageSize?: number;
  /**
   * Live lines kept for a consumer that has not taken them yet. Beyond this (or 16 MiB of text)
   * they are dropped and read back from the store when the consumer catches up. Default 10 × pageSize.
   */
  maxBufferedLines?: number;
}

/**
 * What a follow yields, in order:
 * - `lines`: ascending, gap-free, each seq exactly once; the first starts at afterSeq + 1;
 * - `progress`: the latest `\r` progress text while live (older ones are coalesced away);
 * - `finished`: the final record, after the last line; the iteration ends after it.
 */
export type FollowItem =
  | { type: 'lines'; lines: LogLine[] }
  | { type: 'progress'; progress: ProgressEvent }
  | { type: 'finished'; execution: Execution };

/** What `runner.follow()` resolves with: an async iterator of `FollowItem`s. */
export interface LogFollow extends AsyncIterableIterator<FollowItem, undefined> {
  /** The execution as it was when the follow started (after capturing began). */
  readonly execution: Execution;
  /** Stops following: pending and later `next()` calls resolve done. Idempotent. */
  close(): void;
}

/** Reads one slice of stored lines after a seq. */
export type ReadSlice = (afterSeq: number, limit: number) => Promise<LogLine[]>;

export const DEFAULT_FOLLOW_PAGE = 2_000;
const MAX_BUFFERED_CHARS = 16 * 1024 * 1024;
/** Per-line overhead (seq, stream, time …) counted against MAX_BUFFERED_CHARS. */
const LINE_OVERHEAD = 100;

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

function charsOf(lines: LogLine[]): number {
  let chars = 0;
  for (const line of lines) chars += line.text.length + LINE_OVERHEAD;
  return chars;
}

/** The lines of a contiguous, ascending batch with seq > after. */
function linesAfter(lines: LogLine[], after: number): LogLine[] {
  const first = lines[0];
  if (first === undefined || first.seq > after) return lines;
  return lines.slice(after + 1 - first.seq);
}

export class Follower implements LogFollow {
  execution!: Execution;
  private lastSeq: number;
  /** `catchup`: the next lines come from the store; `live`: from published batches. */
  private mode: 'catchup' | 'live' = 'catchup';
  /** Items ready for the consumer (live lines and progress), in order. */
  private readonly ready: FollowItem[] = [];
  /** Batches published while catching up, spliced in after the read that catches up. */
  private captured: LogLine[][] = [];
  /** Captured batches were dropped (too many): the next short page is not the end. */
  private overflowed = false;
  private heldLines = 0;
  private heldChars = 0;
  /** Progress seen while catching up, delivered once live. */
  private progress: ProgressEvent | null = null;
  private finished: Execution | null = null;
  /** The store was read to a short page after the final record was known. */
  private finalReadDone = false;
  private reads = 0;
  private closed = false;
  private wake: (() => void) | null = null;
  private readonly pageSize: number;
  private readonly maxLines: number;
  private readonly onAbort = () => this.close();

  constructor(
    readonly executionId: string,
    private readonly read: ReadSlice,
    private readonly detach: (follower: Follower) => void,
    private readonly signal: AbortSignal | undefined,
    options: { afterSeq: number; pageSize: number; maxBufferedLines: number },
  ) {
    this.lastSeq = options.afterSeq;
    this.pageSize = options.pageSize;
    this.maxLines = options.maxBufferedLines;
    signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  /** Called once the execution was read (capturing began before that read). */
  start(execution: Execution): void {
    this.execution = execution;
    if (execution.status !== 'queued' && execution.status !== 'running') this.finished ??= execution;
    if (this.signal?.aborted) this.close();
  }

  // ------------------------------------------------------------ published events

  deliver(event: RunnerEvent): void {
    if (this.closed) return;
    if (event.type === 'execution:log') this.onLines(event.data.lines);
    else if (event.type === 'execution:progress') this.onProgress(event.data);
    else if (event.type === 'execution:finished') {
      this.finished = event.data;
      this.notify();
    }
  }

  private onLines(lines: LogLine[]): void {
    const last = lines[lines.length - 1];
    if (last === undefined || last.seq <= this.lastSeq) return;
    if (this.mode === 'catchup') {
      this.captured.push(lines);
      this.hold(lines);
      if (this.heldLines > this.maxLines || this.heldChars > MAX_BUFFERED_CHARS) {
        // The store has them: read them back instead of holding them.
        this.release(this.captured);
        this.captured = [];
        this.overflowed = true;
      }
      return;
    }
    const fresh = linesAfter(lines, this.lastSeq);
    if (fresh[0]!.seq !== this.lastSeq + 1 || this.heldLines + fresh.length > this.maxLines || this.heldChars > MAX_BUFFERED_CHARS) {
      // A gap (an event lost on the way) or a consumer too slow to buffer for: back to the store.
      this.mode = 'catchup';
      this.notify();
      return;
    }
    this.enqueue(fresh);
    this.notify();
  }

  private onProgress(progress: ProgressEvent): void {
    if (this.finished !== null) return;
    if (this.mode === 'catchup') {
      this.progress = progress;
      return;
    }
    const tail = this.ready[this.ready.length - 1];
    if (tail?.type === 'progress') tail.progress = progress;
    else this.ready.push({ type: 'progress', progress });
    this.notify();
  }

  private enqueue(lines: LogLine[]): void {
    this.ready.push({ type: 'lines', lines });
    this.hold(lines);
    this.lastSeq = lines[lines.length - 1]!.seq;
  }

  private hold(lines: LogLine[]): void {
    this.heldLines += lines.length;
    this.heldChars += charsOf(lines);
  }

  private release(batches: LogLine[][]): void {
    for (const lines of batches) {
      this.heldLines -= lines.length;
      this.heldChars -= charsOf(lines);
    }
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  // ------------------------------------------------------------ the consumer side

  async next(): Promise<IteratorResult<FollowItem, undefined>> {
    for (;;) {
      if (this.closed) return { done: true, value: undefined };
      const item = this.ready.shift();
      if (item !== undefined) {
        if (item.type === 'lines') this.release([item.lines]);
        return { done: false, value: item };
      }
      const finished = this.finished;
      if (finished !== null && this.mode === 'live' && this.lastSeq < finished.lineCount && !this.finalReadDone) {
        // The final record counts lines this follower has not seen: they are in the store.
        this.mode = 'catchup';
      }
      if (this.mode === 'catchup') {
        const lines = await this.catchUp();
        if (lines !== null) return { done: false, value: { type: 'lines', lines } };
        continue;
      }
      if (finished !== null) {
        // finished is published after the last batch, and the cursor is past the store's end.
        this.close();
        return { done: false, value: { type: 'finished', execution: finished } };
      }
      if (this.progress !== null) {
        const progress = this.progress;
        this.progress = null;
        return { done: false, value: { type: 'progress', progress } };
      }
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
  }

  /** One slice from the store; goes live when it is the end and the captured batches continue it. */
  private async catchUp(): Promise<LogLine[] | null> {
    const finishedAtRead = this.finished;
    if (finishedAtRead !== null && this.lastSeq >= finishedAtRead.lineCount) {
      // Nothing can follow the final record's last line: no read needed.
      this.goLive(true);
      return null;
    }
    if (this.reads++ > 0) await yieldToEventLoop();
    if (this.closed) return null;
    this.overflowed = false;
    const page = await this.read(this.lastSeq, this.pageSize);
    if (this.closed) return null;
    const fresh = linesAfter(page, this.lastSeq);
    if (fresh.length > 0) this.lastSeq = fresh[fresh.length - 1]!.seq;
    if (page.length < this.pageSize && !this.overflowed) this.goLive(finishedAtRead !== null);
    return fresh.length > 0 ? fresh : null;
  }

  /** The store had nothing past the cursor: splice in what was captured meanwhile, then go live. */
  private goLive(finalRead: boolean): void {
    const captured = this.captured;
    this.captured = [];
    this.release(captured);
    for (const batch of captured) {
      const last = batch[batch.length - 1];
      if (last === undefined || last.seq <= this.lastSeq) continue;
      const fresh = linesAfter(batch, this.lastSeq);
      if (fresh[0]!.seq !== this.lastSeq + 1) return; // a gap: stay in catch-up, read again
      this.enqueue(fresh);
    }
    if (finalRead) this.finalReadDone = true;
    this.mode = 'live';
  }

  async return(): Promise<IteratorResult<FollowItem, undefined>> {
    this.close();
    return { done: true, value: undefined };
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.ready.length = 0;
    this.captured = [];
    this.heldLines = 0;
    this.heldChars = 0;
    this.signal?.removeEventListener('abort', this.onAbort);
    this.detach(this);
    this.notify();
  }
}

/** The runner's followers by execution: one published event costs a map lookup, not a listener call per follower. */
export class FollowRegistry {
  private readonly byExecution = new Map<string, Set<Follower>>();

  /** `interest`: the dispatcher, told which executions are followed here (see `Dispatcher.watch`). */
  constructor(private readonly interest: () => Pick<Dispatcher, 'watch' | 'unwatch'>) {}

  /** Resolves once the dispatcher delivers the execution's live events here (at once without one that filters). */
  add(follower: Follower): Promise<void> {
    let set = this.byExecution.get(follower.executionId);
    if (!set) this.byExecution.set(follower.executionId, (set = new Set()));
    set.add(follower);
    const watching = this.interest().watch?.(follower.executionId);
    return watching ? watching.catch(() => undefined) : Promise.resolve();
  }

  remove = (follower: Follower): void => {
    const set = this.byExecution.get(follower.executionId);
    if (!set?.delete(follower)) return;
    if (set.size === 0) this.byExecution.delete(follower.executionId);
    this.interest().unwatch?.(follower.executionId);
  };

  deliver(event: RunnerEvent): void {
    let executionId: string;
    if (event.type === 'execution:log' || event.type === 'execution:progress') executionId = event.data.executionId;
    else if (event.type === 'execution:finished') executionId = event.data.id;
    else return;
    const set = this.byExecution.get(executionId);
    if (!set) return;
    for (const follower of [...set]) follower.deliver(event);
  }

  /** How many follows are open (all executions); for tests and metrics. */
  get size(): number {
    let n = 0;
    for (const set of this.byExecution.values()) n += set.size;
    return n;
  }

  closeAll(): void {
    for (const set of [...this.byExecution.values()]) for (const follower of [...set]) follower.close();
  }
}
