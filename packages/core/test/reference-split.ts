import { LineSplitter, truncationMarker } from '../src/lines/splitter.js';

/** Runs the real splitter over the chunks. */
export function split(chunks: Buffer[], maxLineBytes = 1 << 20) {
  const lines: Array<{ text: string; truncated: boolean }> = [];
  const progress: string[] = [];
  const splitter = new LineSplitter(maxLineBytes, {
    line: (text, truncated) => lines.push({ text, truncated }),
    progress: (text) => progress.push(text),
  });
  for (const chunk of chunks) splitter.push(chunk);
  splitter.end();
  return { lines: lines.map((l) => l.text), truncated: lines.map((l) => l.truncated), progress };
}

/** Terminal semantics on the whole input at once: the reference every chunking must match. */
export function reference(bytes: Buffer, max: number): string[] {
  const out: string[] = [];
  let cur: number[] = [];
  let dropped = 0;
  let overwrite = false;
  const emit = () => {
    let text = Buffer.from(cur).toString('utf8');
    if (dropped > 0) {
      let end = cur.length;
      let k = end - 1;
      while (k >= 0 && k >= end - 4 && (cur[k]! & 0xc0) === 0x80) k--;
      if (k >= 0) {
        const lead = cur[k]!;
        const need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
        if (k + need > end) end = k;
      }
      text = Buffer.from(cur.slice(0, end)).toString('utf8') + truncationMarker(cur.length + dropped);
    }
    out.push(text);
    cur = [];
    dropped = 0;
    overwrite = false;
  };
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i]!;
    if (byte === 0x0a) emit();
    else if (byte === 0x0d) {
      if (bytes[i + 1] === 0x0a) {
        emit();
        i++;
      } else if (i + 1 < bytes.length) overwrite = true;
    } else {
      if (overwrite) {
        cur = [];
        dropped = 0;
        overwrite = false;
      }
      if (cur.length < max) cur.push(byte);
      else dropped++;
    }
  }
  if (cur.length > 0 || dropped > 0) emit();
  return out;
}

