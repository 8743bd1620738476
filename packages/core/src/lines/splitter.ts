/**
 * Turns the bytes of one output stream into lines, exactly as a terminal would show them.
 *
 * - `\n` and `\r\n` end a line; a `\r\n` split across two chunks is still one terminator.
 * - A bare `\r` (progress bars) does not end a line: the text after it replaces the line being
 *   built, like a terminal overwriting it. Only the final state becomes a line; intermediate states
 *   are reported through `progress` (at most once per chunk, the latest text).
 * - The last line without a newline is emitted by `end()`.
 * - Lines longer than `maxLineBytes` keep their first `maxLineBytes` bytes (cut on a character
 *   boundary) plus a visible marker; the rest is counted and dropped, so memory stays bounded
 *   whatever the child prints.
 * - Splitting happens on bytes and decoding per finished line, so a multi-byte character split
 *   across chunks decodes correctly and invalid UTF-8 becomes U+FFFD instead of throwing.
 */

export interface SplitterSink {
  line(text: string, truncated: boolean): void;
  progress(text: string): void;
}

const LF = 0x0a;
const CR = 0x0d;

export function truncationMarker(totalBytes: number): string {
  return ` … [line truncated: ${totalBytes} bytes in total]`;
}

export class LineSplitter {
  private parts: Buffer[] = [];
  /** Bytes kept in `parts` (never more than maxLineBytes). */
  private kept = 0;
  /** Bytes of the current line dropped past maxLineBytes. */
  private dropped = 0;
  /** The previous chunk ended with `\r`: it is `\r\n` or a bare `\r` depending on the next byte. */
  private pendingCR = false;
  /** A bare `\r` was seen: the next content byte starts replacing the current line. */
  private overwrite = false;
  /** The current line was started after a bare `\r`: it is a progress line. */
  private progressLine = false;

  constructor(
    private readonly maxLineBytes: number,
    private readonly sink: SplitterSink,
  ) {}

  push(chunk: Buffer): void {
    const n = chunk.length;
    let i = 0;
    if (this.pendingCR) {
      this.pendingCR = false;
      if (n > 0 && chunk[0] === LF) {
        this.emitLine();
        i = 1;
      } else if (n > 0) {
        this.overwrite = true;
      } else {
        this.pendingCR = true;
      }
    }
    // The next LF and CR positions are cached and searched again only once passed, so each byte is
    // scanned at most once per terminator kind whatever the mix (plain lines, progress bars).
    let nextCR = n > i ? chunk.indexOf(CR, i) : -1;
    let nextLF = n > i ? chunk.indexOf(LF, i) : -1;
    while (i < n) {
      if (nextLF !== -1 && nextLF < i) nextLF = chunk.indexOf(LF, i);
      const lf = nextLF;
      if (nextCR !== -1 && nextCR < i) nextCR = chunk.indexOf(CR, i);
      if (nextCR !== -1 && (lf === -1 || nextCR < lf)) {
        const cr = nextCR;
        this.append(chunk, i, cr);
        if (cr + 1 >= n) {
          this.pendingCR = true;
          i = n;
        } else if (chunk[cr + 1] === LF) {
          this.emitLine();
          i = cr + 2;
        } else {
          this.overwrite = true;
          i = cr + 1;
        }
        continue;
      }
      if (lf === -1) {
        this.append(chunk, i, n);
        break;
      }
      if (this.kept === 0 && this.dropped === 0 && !this.overwrite && lf - i <= this.maxLineBytes) {
        // Fast path: the whole line lies inside this chunk.
        this.sink.line(chunk.toString('utf8', i, lf), false);
        this.progressLine = false;
      } else {
        this.append(chunk, i, lf);
        this.emitLine();
      }
      i = lf + 1;
    }
    if ((this.progressLine || this.overwrite) && this.kept > 0) {
      this.sink.progress(this.currentText());
    }
  }

  /** The stream ended: emit what is left as the last line. */
  end(): void {
    this.pendingCR = false;
    if (this.kept > 0 || this.dropped > 0) this.emitLine();
    this.overwrite = false;
    this.progressLine = false;
  }

  private append(chunk: Buffer, start: number, end: number): void {
    if (start >= end) return;
    if (this.overwrite) {
      this.reset();
      this.progressLine = true;
    }
    const room = this.maxLineBytes - this.kept;
    const length = end - start;
    if (length <= room) {
      this.parts.push(chunk.subarray(start, end));
      this.kept += length;
    } else {
      if (room > 0) {
        this.parts.push(chunk.subarray(start, start + room));
        this.kept += room;
      }
      this.dropped += length - Math.max(room, 0);
    }
  }

  private currentText(): string {
    const bytes = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.kept);
    if (this.dropped === 0) return bytes.toString('utf8');
    return bytes.toString('utf8', 0, completeUtf8Length(bytes)) + truncationMarker(this.kept + this.dropped);
  }

  private emitLine(): void {
    const truncated = this.dropped > 0;
    const text = this.kept === 0 && !truncated ? '' : this.currentText();
    this.reset();
    this.progressLine = false;
    this.sink.line(text, truncated);
  }

  private reset(): void {
    this.parts = [];
    this.kept = 0;
    this.dropped = 0;
    this.overwrite = false;
  }
}

/** Length of `bytes` without a trailing, incomplete UTF-8 sequence (a cut in mid-character). */
function completeUtf8Length(bytes: Buffer): number {
  const end = bytes.length;
  let k = end - 1;
  while (k >= 0 && k >= end - 4 && (bytes[k]! & 0xc0) === 0x80) k--;
  if (k < 0) return end;
  const lead = bytes[k]!;
  const needed = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
  return k + needed > end ? k : end;
}
