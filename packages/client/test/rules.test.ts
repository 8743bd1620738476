import { DEFAULT_FILENAME_PATTERN, DEFAULT_MAX_UPLOAD_BYTES } from '@scriptrunner/core';
import { describe, expect, it } from 'vitest';
import { checkUpload, UPLOAD_RULES } from '../src/index.js';

describe('UPLOAD_RULES', () => {
  it("are exactly core's defaults, so the browser check and the server never disagree", () => {
    expect(UPLOAD_RULES.pattern.source).toBe(DEFAULT_FILENAME_PATTERN.source);
    expect(UPLOAD_RULES.pattern.flags).toBe(DEFAULT_FILENAME_PATTERN.flags);
    expect(UPLOAD_RULES.maxBytes).toBe(DEFAULT_MAX_UPLOAD_BYTES);
  });

  it('explain what to fix', () => {
    expect(checkUpload({ name: 'test_ok.py', size: 10 })).toBeNull();
    expect(checkUpload({ name: 'x.py', size: 10 })).toMatch(/is not accepted/);
    expect(checkUpload({ name: 'test_ok.py', size: 0 })).toMatch(/empty/);
    expect(checkUpload({ name: 'test_ok.py', size: 6 * 1024 * 1024 })).toMatch(/limit is 5.0 MiB/);
    expect(checkUpload({ name: 'a/test_ok.py', size: 1 })).toMatch(/without folders/);
  });
});
