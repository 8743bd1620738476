/**
 * The line pipeline of one execution, as one object: bytes in, persisted batches out.
 *
 *   push(stream, chunk) ─▶ splitter ─▶ caps ─▶ classify ─▶ batcher ─▶ store.appendLogs ─▶ publish
 *
 * The process side only pushes chunks and ends streams; it learns through events when to stop
 * reading (`pause`), when output is over a cap (`overLimit`) and when the store gave up
 * (`storeFailed`). What the run needs for its final record (persisted count, truncation, the
 * stderr tail) is read from here at the end.
 */
import { EventEmitter } from 'eventemitter3';
import type { RetryPolicy } from '../retry.js';
import type { Store } from '../store.js';
import type { LineClassifier, LogLevel, LogLine, ProgressEvent } from '../types.js';
import { LogBatcher } from './batcher.js';
import { defaultClassifyLine } from './classify.js';
import { LineSplitter } from './splitter.js';

export interface PipelineSettings {
  store: Store;
  maxLineBytes: number;
  flushIntervalMs: number;
  maxBatchLines: number;
  progressIntervalMs: number;
  storeRetry: RetryPolicy;
  classifyLine: LineClassifier;
  maxLogLines: number;
  maxLogBytes: number;
}

export interface PipelineEvents {
  /** Past the high-water mark (true): stop reading the child's pipes; below the low mark (false): read again. */
  pause: (paused: boolean) => void;
  /** The latest text of a `\r` progress line, at most once per progressIntervalMs per stream. */
  progress: (progress: ProgressEvent) => void;
  /** maxLogLines or maxLogBytes was reached: nothing more is kept; the run should be stopped. */
  overLimit: (reason: string) => void;
  /** A line longer than maxLineBytes was cut (kept with a marker). */
  cut: () => void;
  /** A log write failed and will be retried. */
  storeRetry: (error: unknown, attempt: number) => void;
  /** Every attempt of a log write failed: nothing more can be stored. */
  storeFailed: (error: unknown) => void;
}

type OutputStream = 'stdout' | 'stderr';

const STDERR_TAIL_LINES = 20;
const STDERR_TAIL_LINE_CHARS = 500;

interface ProgressState {
  text: string | null;
  last: number;
  timer: NodeJS.Timeout | null;
}

export class LinePipeline extends EventEmitter<PipelineEvents> {
  private readonly batcher: LogBatcher;
  private readonly splitters: Record<OutputStream, LineSplitter>;
  private readonly progressState: Record<OutputStream, ProgressState> = {
    stdout: { text: null, last: 0, timer: null },
    stderr: { text: null, last: 0, timer: null },
  };
  /** Lines are stamped with the time of the read that completed them. */
  private readTime = new Date();
  private outputLines = 0;
  private outputBytes = 0;
  private closed = false;
  /** Why output stopped being kept (a cap was hit), or null. */
  outputLimit: string | null = null;
  /** A line was cut at maxLineBytes, or a cap was hit. */
  truncated = false;
  /** The error that made the store give up on log lines, or null. */
  storeError: unknown = null;
  /** The last stderr lines (shortened), for the error message of a failed run. */
  readonly stderrTail: string[] = [];

  constructor(
    private readonly executionId: string,
    private readonly settings: PipelineSettings,
    /** Receives each batch after the store accepted it; a promise paces the next batch. */
    publish: (lines: LogLine[]) => void | Promise<void>,
  ) {
    super();
    this.batcher = new LogBatcher({
      executionId,
      store: settings.store,
      maxBatchLines: settings.maxBatchLines,
      flushIntervalMs: settings.flushIntervalMs,
      retry: settings.storeRetry,
      onPersisted: publish,
      onBackpressure: (paused) => this.emit('pause', paused),
      onRetry: (error, attempt) => this.emit('storeRetry', error, attempt),
      onFatal: (error) => {
        this.storeError = error;
        this.emit('storeFailed', error);
      },
    });
    const splitter = (stream: OutputStream) =>
      new LineSplitter(settings.maxLineBytes, {
        line: (text, truncated) => this.line(stream, text, truncated),
        progress: (text) => this.progressUpdate(stream, text),
      });
    this.splitters = { stdout: splitter('stdout'), stderr: splitter('stderr') };
  }

  /** Lines the store has accepted so far (the execution's lineCount once drained). */
  get persistedSeq(): number {
    return this.batcher.persistedSeq;
  }

  /** Bytes read from one of the child's streams. */
  push(stream: OutputStream, chunk: Buffer): void {
    this.readTime = new Date();
    this.splitters[stream].push(chunk);
    this.batcher.kick();
  }

  /** The stream reached EOF (or was abandoned): its unterminated last line becomes a line. */
  end(stream: OutputStream): void {
    this.readTime = new Date();
    this.splitters[stream].end();
    this.batcher.kick();
  }

  /** A line of the runner's own (`stream: 'system'`), e.g. why a run was stopped. */
  system(level: LogLevel, text: string): void {
    this.batcher.add('system', level, `[scriptrunner] ${text}`, new Date());
    this.batcher.kick();
  }

  /** No more progress events; resolves when every line so far is persisted (or dropped after a fatal store failure). */
  async drain(): Promise<void> {
    this.closed = true;
    for (const state of Object.values(this.progressState)) {
      if (state.timer !== null) clearTimeout(state.timer);
      state.timer = null;
    }
    await this.batcher.drain();
  }

  private line(stream: OutputStream, text: string, truncated: boolean): void {
    if (this.outputLimit !== null) return;
    const bytes = Buffer.byteLength(text);
    if (this.outputLines + 1 > this.settings.maxLogLines) {
      this.overLimit(`the script printed more than ${this.settings.maxLogLines} lines (maxLogLines)`);
      return;
    }
    if (this.outputBytes + bytes > this.settings.maxLogBytes) {
      this.overLimit(`the script printed more than ${this.settings.maxLogBytes} bytes (maxLogBytes)`);
      return;
    }
    this.outputLines++;
    this.outputBytes += bytes;
    if (truncated) {
      this.truncated = true;
      this.emit('cut');
    }
    if (stream === 'stderr') {
      this.stderrTail.push(text.length > STDERR_TAIL_LINE_CHARS ? `${text.slice(0, STDERR_TAIL_LINE_CHARS)}…` : text);
      if (this.stderrTail.length > STDERR_TAIL_LINES) this.stderrTail.shift();
    }
    this.batcher.add(stream, this.classify(text, stream), text, this.readTime);
    // A finished line supersedes the progress text it may have been built from.
    this.progressState[stream].text = null;
  }

  /** A user classifier that throws or answers nonsense must not lose the line. */
  private classify(text: string, stream: OutputStream): LogLevel {
    try {
      const level = this.settings.classifyLine(text, stream);
      if (level === 'info' || level === 'warn' || level === 'error') return level;
    } catch {
      // fall through to the default
    }
    return defaultClassifyLine(text, stream);
  }

  /** A cap was hit: keep nothing more and say why. */
  private overLimit(reason: string): void {
    this.outputLimit = reason;
    this.truncated = true;
    this.system('error', `output limit reached: ${reason}; the rest of the output is not kept`);
    this.emit('overLimit', reason);
  }

  /** Progress events are throttled per stream to one per progressIntervalMs, latest text wins. */
  private progressUpdate(stream: OutputStream, text: string): void {
    const state = this.progressState[stream];
    state.text = text;
    const emit = () => {
      state.timer = null;
      if (state.text === null || this.closed) return;
      state.last = Date.now();
      this.emit('progress', { executionId: this.executionId, stream, text: state.text, time: new Date(state.last) });
      state.text = null;
    };
    const since = Date.now() - state.last;
    if (since >= this.settings.progressIntervalMs) emit();
    else state.timer ??= setTimeout(emit, this.settings.progressIntervalMs - since);
  }
}
