/**
 * The memory store's log of one execution, kept column by column: the text of each appended batch
 * joined into one string, and stream/level, time, batch, offset and length in typed arrays. A
 * million lines are then a few hundred objects instead of two million, which keeps the garbage
 * collector out of the way of a fast-printing child (measured on the pipeline bench: 1.27x the bare
 * spawn with one object per line, 1.16x with the text encoded into one byte buffer, less with no
 * encoding at all).
 */
import type { LogLevel, LogLine, LogStream } from '../types.js';

const STREAMS: readonly LogStream[] = ['stdout', 'stderr', 'system'];
const LEVELS: readonly LogLevel[] = ['info', 'warn', 'error'];

/** 0 = no line at this seq (a hole); otherwise 1 + stream * 3 + level. */
function code(stream: LogStream, level: LogLevel): number {
  return 1 + STREAMS.indexOf(stream) * 3 + LEVELS.indexOf(level);
}

export class LogColumns {
  private codes = new Uint8Array(1024);
  private times = new Float64Array(1024);
  private batches = new Uint32Array(1024);
  private starts = new Uint32Array(1024);
  private lengths = new Uint32Array(1024);
  private readonly texts: string[] = [];
  /** The highest stored seq. */
  private count = 0;

  /** Stores the lines whose seq is not stored yet (the first version of a line wins). */
  addBatch(lines: readonly LogLine[]): void {
    const batch = this.texts.length;
    const parts: string[] = [];
    let offset = 0;
    for (const line of lines) {
      const index = line.seq - 1;
      if (index < 0 || !Number.isInteger(index)) continue;
      if (index < this.count && this.codes[index] !== 0) continue;
      this.reserveLines(index + 1);
      this.batches[index] = batch;
      this.starts[index] = offset;
      this.lengths[index] = line.text.length;
      this.codes[index] = code(line.stream, line.level);
      this.times[index] = line.time.getTime();
      parts.push(line.text);
      offset += line.text.length;
      if (line.seq > this.count) this.count = line.seq;
    }
    if (parts.length > 0) this.texts.push(parts.join(''));
  }

  read(
    executionId: string,
    afterSeq: number,
    limit: number,
    levels: ReadonlySet<LogLevel> | null,
    streams: ReadonlySet<LogStream> | null,
  ): LogLine[] {
    const out: LogLine[] = [];
    for (let i = Math.max(0, afterSeq); i < this.count && out.length < limit; i++) {
      const c = this.codes[i]!;
      if (c === 0) continue;
      const stream = STREAMS[Math.floor((c - 1) / 3)]!;
      const level = LEVELS[(c - 1) % 3]!;
      if (levels && !levels.has(level)) continue;
      if (streams && !streams.has(stream)) continue;
      const start = this.starts[i]!;
      out.push({
        executionId,
        seq: i + 1,
        stream,
        level,
        text: this.texts[this.batches[i]!]!.slice(start, start + this.lengths[i]!),
        time: new Date(this.times[i]!),
      });
    }
    return out;
  }

  private reserveLines(needed: number): void {
    if (needed <= this.codes.length) return;
    let size = this.codes.length;
    while (size < needed) size *= 2;
    const grow = <T extends Uint8Array | Uint32Array | Float64Array>(old: T, make: (n: number) => T): T => {
      const next = make(size);
      next.set(old);
      return next;
    };
    this.codes = grow(this.codes, (n) => new Uint8Array(n));
    this.times = grow(this.times, (n) => new Float64Array(n));
    this.batches = grow(this.batches, (n) => new Uint32Array(n));
    this.starts = grow(this.starts, (n) => new Uint32Array(n));
    this.lengths = grow(this.lengths, (n) => new Uint32Array(n));
  }
}
