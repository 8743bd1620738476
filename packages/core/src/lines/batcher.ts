/**
 * Numbers lines, gathers them into batches, persists each batch, and only then publishes it.
 *
 * - One `appendLogs` in flight per execution. With the store idle, lines are flushed at the end of
 *   the read that produced them (`kick()`), so latency at low rates is one store write; while a
 *   write is in flight, new lines gather into the next batch (up to `maxBatchLines`), so throughput
 *   at high rates grows with the batch size instead of the number of writes. A batch that follows
 *   another (or starts within COALESCE_MS of the last write's end) waits up to COALESCE_MS to fill
 *   while it is small (in lines and characters; the wait ends once it is not): with a fast store a
 *   stream otherwise became one tiny write per pipe read
 *   (1M printed lines: 26,000 writes → 3,000 with sqliteStore's off-thread writer, 8.7 s → 7.8 s;
 *   300,000 → 3,000 writes and `execution:log` events with the memory store).
 * - Persist, then publish: `onPersisted` sees a batch only after the store accepted it.
 * - Backpressure: past a high-water mark of buffered lines or bytes `onBackpressure(true)` asks the
 *   caller to stop reading the child's pipes; below the low-water mark it is released again.
 * - A failed write is retried with exponential backoff; when every attempt failed, `onFatal` is
 *   called once and later lines are counted but dropped (they cannot be stored).
 */
import type { Store } from '../store.js';
import type { LogLevel, LogLine, LogStream } from '../types.js';
import { withRetry, type RetryPolicy } from '../retry.js';

export interface BatcherOptions {
  executionId: string;
  store: Store;
  maxBatchLines: number;
  flushIntervalMs: number;
  retry: RetryPolicy;
  /** A persisted batch, to publish. A promise holds the next batch back until it settles (pacing). */
  onPersisted(lines: LogLine[]): void | Promise<void>;
  onBackpressure(paused: boolean): void;
  onRetry(error: unknown, attempt: number): void;
  onFatal(error: unknown): void;
}

const HIGH_WATER_BYTES = 16 * 1024 * 1024;
/** Below this many waiting lines, a batch that follows another waits COALESCE_MS to fill. */
const COALESCE_LINES = 500;
const COALESCE_MS = 2;
/**
 * …and below this many characters. Long lines are written as read: batches of big strings made the
 * host's heap grow (Prisma keeps its last ~100 debug arguments, queries included, and strings over
 * 128 KiB live until a full GC): 1 GiB of 1 KiB lines, +111 MB with this cap, +234 MB without.
 */
const COALESCE_CHARS = 16_384;

export class LogBatcher {
  private nextSeq = 1;
  private pending: LogLine[] = [];
  private pendingChars = 0;
  private flushing: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private paused = false;
  /** Ends the wait for a batch to fill early, once it is no longer small. */
  private filled: (() => void) | null = null;
  /** When the last write ended (performance.now()): one that ended just now means a stream. */
  private lastWriteEnd = Number.NEGATIVE_INFINITY;
  private failed = false;
  private readonly highWaterLines: number;

  /** Highest seq the store has accepted. */
  persistedSeq = 0;

  constructor(private readonly options: BatcherOptions) {
    this.highWaterLines = Math.max(options.maxBatchLines * 4, 1000);
  }

  /** The seq of the last line handed to `add` (the final lineCount once drained). */
  get lastSeq(): number {
    return this.nextSeq - 1;
  }

  get hasFailed(): boolean {
    return this.failed;
  }

  add(stream: LogStream, level: LogLevel, text: string, time: Date): void {
    const line: LogLine = { executionId: this.options.executionId, seq: this.nextSeq++, stream, level, text, time };
    if (this.failed) return;
    this.pending.push(line);
    this.pendingChars += text.length;
    if (this.filled !== null && !this.isSmall()) this.filled();
    if (!this.paused && (this.pending.length >= this.highWaterLines || this.pendingChars >= HIGH_WATER_BYTES)) {
      this.paused = true;
      this.options.onBackpressure(true);
    }
    // A safety net in case no kick() follows (lines added outside a read): bounded wait.
    if (this.timer === null && this.flushing === null) {
      this.timer = setTimeout(() => this.kick(), this.options.flushIntervalMs);
    }
  }

  /** Start a write now if none is in flight. Called after each read from the child. */
  kick(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.flushing !== null || this.pending.length === 0) return;
    this.flushing = this.flushLoop().finally(() => {
      this.flushing = null;
    });
  }

  /** Resolves when every line added so far was persisted (or dropped after a fatal failure). */
  async drain(): Promise<void> {
    this.kick();
    while (this.flushing !== null) {
      await this.flushing;
      this.kick();
    }
  }

  private async flushLoop(): Promise<void> {
    let first = true;
    while (this.pending.length > 0 && !this.failed) {
      // Lines that arrived while the last batch was written mean a stream, not a lone line: give
      // the next batch a moment to fill (fewer, larger writes; each costs a round trip and a
      // wake-up whatever its size). A lone line (the store idle) is still written at once.
      // A store whose write ends before the next read (the memory store; better-sqlite3 on the event
      // loop) leaves nothing pending after each batch, so every read began a new flush and was
      // written alone: a write that ended just now tells a stream from a lone line there too.
      const streaming = !first || performance.now() - this.lastWriteEnd < COALESCE_MS;
      if (streaming && this.isSmall()) await this.waitToFill();
      first = false;
      let batch: LogLine[];
      if (this.pending.length <= this.options.maxBatchLines) {
        batch = this.pending;
        this.pending = [];
        this.pendingChars = 0;
      } else {
        batch = this.pending.splice(0, this.options.maxBatchLines);
        for (const line of batch) this.pendingChars -= line.text.length;
      }
      const ok = await this.persist(batch);
      this.lastWriteEnd = performance.now();
      if (!ok) {
        this.failed = true;
        this.pending = [];
        this.pendingChars = 0;
        this.release();
        return;
      }
      this.persistedSeq = batch[batch.length - 1]!.seq;
      const paced = this.options.onPersisted(batch);
      if (paced) await paced;
      if (this.paused && this.pending.length < this.highWaterLines / 2 && this.pendingChars < HIGH_WATER_BYTES / 2) {
        this.release();
      }
    }
  }

  private isSmall(): boolean {
    return this.pending.length < COALESCE_LINES && this.pendingChars < COALESCE_CHARS;
  }

  /** Up to COALESCE_MS, ended early by `add` once the batch is no longer small (so it stays small). */
  private waitToFill(): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.filled = null;
        resolve();
      };
      const timer = setTimeout(done, COALESCE_MS);
      this.filled = done;
    });
  }

  private release(): void {
    if (!this.paused) return;
    this.paused = false;
    this.options.onBackpressure(false);
  }

  private async persist(batch: LogLine[]): Promise<boolean> {
    try {
      await withRetry(() => this.options.store.appendLogs(this.options.executionId, batch), this.options.retry, this.options.onRetry);
      return true;
    } catch (error) {
      this.options.onFatal(error);
      return false;
    }
  }
}
