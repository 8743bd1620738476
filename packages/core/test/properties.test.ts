/**
 * Property tests (fast-check): random chunkings of random byte streams split exactly like the
 * reference; random uploads are either accepted within the rules or refused with a validation
 * error, never anything else.
 */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_FILENAME_PATTERN, DEFAULT_MAX_UPLOAD_BYTES, ScriptRunnerError } from '../src/index.js';
import { DEFAULT_RUNTIMES } from '../src/process/runtimes.js';
import { resolvePythonEnvironments } from '../src/python/named-environments.js';
import { validateUpload } from '../src/upload.js';
import { reference, split } from './reference-split.js';

/** Bytes that exercise every splitter path: text, LF, CR, multi-byte UTF-8, invalid bytes. */
const BYTES = [0x61, 0x62, 0x20, 0x0a, 0x0a, 0x0d, 0x0d, 0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xf0, 0x9f, 0x98, 0x80, 0xff, 0x1b];

describe('splitter properties', () => {
  it('any chunking of any byte stream gives exactly the reference split', () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(...BYTES), { maxLength: 400 }),
        fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 50 }),
        fc.integer({ min: 4, max: 64 }),
        (bytes, sizes, maxLineBytes) => {
          const data = Buffer.from(bytes);
          const chunks: Buffer[] = [];
          for (let i = 0, k = 0; i < data.length; k++) {
            const size = sizes[k % sizes.length]!;
            chunks.push(data.subarray(i, i + size));
            i += size;
          }
          expect(split(chunks, maxLineBytes).lines).toEqual(reference(data, maxLineBytes));
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('upload validation properties', () => {
  const rules = { pattern: DEFAULT_FILENAME_PATTERN, maxBytes: 64 };
  const filenames = fc.oneof(
    fc.string({ maxLength: 40 }),
    fc.stringMatching(/^(test|experiment)_[A-Za-z0-9_-]{1,12}\.py$/),
    fc.constantFrom('../test_x.py', 'test_x.py\0', 'dir/test_x.py', 'test_ü.py', 'TEST_x.py', 'test_x.PY', ''),
  );
  const contents = fc.oneof(fc.uint8Array({ maxLength: 80 }), fc.string({ maxLength: 80 }));

  it('accepts only what the rules allow, refuses the rest with a validation error', () => {
    fc.assert(
      fc.property(filenames, contents, (filename, content) => {
        let accepted;
        try {
          accepted = validateUpload({ filename, content }, rules, DEFAULT_RUNTIMES, resolvePythonEnvironments(undefined, undefined, DEFAULT_RUNTIMES));
        } catch (error) {
          expect(error).toBeInstanceOf(ScriptRunnerError);
          expect((error as ScriptRunnerError).code).toBe('validation');
          expect((error as ScriptRunnerError).message).toMatch(/^\[scriptrunner\] /);
          return;
        }
        const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : Buffer.from(content);
        expect(DEFAULT_FILENAME_PATTERN.test(filename)).toBe(true);
        expect(bytes.length).toBeGreaterThan(0);
        expect(bytes.length).toBeLessThanOrEqual(rules.maxBytes);
        expect(bytes.includes(0)).toBe(false);
        expect(Buffer.from(bytes.toString('utf8'), 'utf8').equals(bytes)).toBe(true);
        expect(accepted.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
        expect(accepted.content.equals(bytes)).toBe(true);
      }),
      { numRuns: 1000 },
    );
    expect(DEFAULT_MAX_UPLOAD_BYTES).toBe(5 * 1024 * 1024);
  });
});
