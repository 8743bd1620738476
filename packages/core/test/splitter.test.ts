import { describe, expect, it } from 'vitest';
import { LineSplitter, truncationMarker } from '../src/lines/splitter.js';
import { reference, split } from './reference-split.js';

const b = (s: string) => Buffer.from(s, 'utf8');

/** Small deterministic PRNG so a failure can be replayed from its seed. */
function prng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('LineSplitter', () => {
  it('splits on \\n and \\r\\n and keeps empty lines', () => {
    expect(split([b('a\nb\r\n\nc\n')]).lines).toEqual(['a', 'b', '', 'c']);
  });

  it('joins a line written across many chunks', () => {
    expect(split(['al', 'pha-', 'be', 'ta\n', 'x'].map(b)).lines).toEqual(['alpha-beta', 'x']);
  });

  it('treats \\r\\n split across two chunks as one terminator', () => {
    expect(split([b('one\r'), b('\ntwo\r'), b('\n')]).lines).toEqual(['one', 'two']);
  });

  it('keeps the last line without a newline, and a line ending in a bare \\r at EOF', () => {
    expect(split([b('a\nlast')]).lines).toEqual(['a', 'last']);
    expect(split([b('a\nlast\r')]).lines).toEqual(['a', 'last']);
  });

  it('collapses bare \\r progress updates into their final state and reports progress', () => {
    const chunks: Buffer[] = [];
    for (let i = 1; i <= 2000; i++) chunks.push(b(`\rprogress ${i}/2000`));
    chunks.push(b('\ndone\n'));
    const result = split(chunks);
    expect(result.lines).toEqual(['progress 2000/2000', 'done']);
    expect(result.progress.length).toBeGreaterThan(0);
    expect(result.progress.at(-1)).toBe('progress 2000/2000');
  });

  it('reports only the latest progress text of a chunk', () => {
    const result = split([b('\r10%\r20%\r30%'), b('\r40%'), b('\n')]);
    expect(result.progress).toEqual(['30%', '40%']);
    expect(result.lines).toEqual(['40%']);
  });

  it('decodes a multi-byte character split across chunks', () => {
    const bytes = b('prix: 42 € ✓\n');
    const result = split([bytes.subarray(0, 11), bytes.subarray(11, 12), bytes.subarray(12)]);
    expect(result.lines).toEqual(['prix: 42 € ✓']);
  });

  it('replaces invalid UTF-8 instead of throwing', () => {
    const result = split([Buffer.from([0x62, 0x61, 0x64, 0x20, 0xff, 0xfe, 0x20, 0xc3, 0x28, 0x0a])]);
    expect(result.lines).toEqual(['bad \uFFFD\uFFFD \uFFFD(']);
  });

  it('keeps ANSI colour codes', () => {
    expect(split([b('\u001b[31mred\u001b[0m\n')]).lines).toEqual(['\u001b[31mred\u001b[0m']);
  });

  it('cuts a line longer than maxLineBytes with a marker, on a character boundary', () => {
    const long = '€'.repeat(100); // 300 bytes
    const result = split([b(long.slice(0, 40)), b(long.slice(40) + '\nnext\n')], 64);
    expect(result.lines[0]).toBe('€'.repeat(21) + truncationMarker(300));
    expect(result.truncated).toEqual([true, false]);
    expect(result.lines[1]).toBe('next');
  });

  it('matches the reference split for random bytes in random chunks', () => {
    const alphabet = [0x61, 0x62, 0x0a, 0x0a, 0x0d, 0x0d, 0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xff, 0x20];
    for (let seed = 1; seed <= 400; seed++) {
      const rand = prng(seed);
      const length = Math.floor(rand() * 300);
      const bytes = Buffer.from(Array.from({ length }, () => alphabet[Math.floor(rand() * alphabet.length)]!));
      const max = 4 + Math.floor(rand() * 40);
      const chunks: Buffer[] = [];
      for (let i = 0; i < bytes.length; ) {
        const size = 1 + Math.floor(rand() * 20);
        chunks.push(bytes.subarray(i, i + size));
        i += size;
      }
      const expected = reference(bytes, max);
      expect({ seed, lines: split(chunks, max).lines }).toEqual({ seed, lines: expected });
      expect({ seed, lines: split([bytes], max).lines }).toEqual({ seed, lines: expected });
    }
  });
});
