/**
 * Log chunks: a contiguous run of lines stored as one row. The payload is a JSON array with one
 * `[stream, level, text, timeMs]` entry per line, stream and level as one letter, in seq order
 * starting at firstSeq.
 */
import type { LogLevel, LogLine, LogStream } from '@scriptrunner/core';
import type { LogChunkRow } from './client.js';

const STREAM_CODE: Record<LogStream, string> = { stdout: 'o', stderr: 'e', system: 's' };
const STREAM_NAME: Record<string, LogStream> = { o: 'stdout', e: 'stderr', s: 'system' };
const LEVEL_CODE: Record<LogLevel, string> = { info: 'i', warn: 'w', error: 'e' };
const LEVEL_NAME: Record<string, LogLevel> = { i: 'info', w: 'warn', e: 'error' };

type Entry = [string, string, string, number];

export interface ChunkLimits {
  maxLines: number;
  maxChars: number;
}

/**
 * Splits lines (ascending seq, possibly with holes) into rows: a new row starts at every hole in
 * the sequence and whenever a row would exceed the line or size limit.
 */
export function encodeChunks(executionId: string, lines: readonly LogLine[], limits: ChunkLimits): LogChunkRow[] {
  const rows: LogChunkRow[] = [];
  let entries: Entry[] = [];
  let first = 0;
  let last = 0;
  let chars = 0;
  let counts = { info: 0, warn: 0, error: 0 };
  const flush = () => {
    if (entries.length === 0) return;
    rows.push({
      executionId,
      firstSeq: first,
      lastSeq: last,
      infoCount: counts.info,
      warnCount: counts.warn,
      errorCount: counts.error,
      lines: JSON.stringify(entries),
    });
    entries = [];
    chars = 0;
    counts = { info: 0, warn: 0, error: 0 };
  };
  for (const line of lines) {
    if (
      entries.length > 0 &&
      (line.seq !== last + 1 || entries.length >= limits.maxLines || chars + line.text.length > limits.maxChars)
    ) {
      flush();
    }
    if (entries.length === 0) first = line.seq;
    last = line.seq;
    entries.push([STREAM_CODE[line.stream], LEVEL_CODE[line.level], line.text, line.time.getTime()]);
    chars += line.text.length + 16;
    counts[line.level]++;
  }
  flush();
  return rows;
}

/** The lines of one chunk, optionally only those after a seq and matching level/stream filters. */
export function decodeChunk(
  executionId: string,
  row: Pick<LogChunkRow, 'firstSeq' | 'lines'>,
  afterSeq: number,
  levels: ReadonlySet<LogLevel> | null,
  streams: ReadonlySet<LogStream> | null,
  limit: number,
  out: LogLine[],
): void {
  const entries = JSON.parse(row.lines) as Entry[];
  for (let i = Math.max(0, afterSeq - row.firstSeq + 1); i < entries.length && out.length < limit; i++) {
    const [s, l, text, time] = entries[i]!;
    const stream = STREAM_NAME[s]!;
    const level = LEVEL_NAME[l]!;
    if (levels && !levels.has(level)) continue;
    if (streams && !streams.has(stream)) continue;
    out.push({ executionId, seq: row.firstSeq + i, stream, level, text, time: new Date(time) });
  }
}
