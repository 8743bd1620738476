import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { ScriptRunnerError } from '../src/index.js';
import { closeRunners, makeRunner } from './helpers.js';

afterEach(closeRunners);

async function rejection(promise: Promise<unknown>): Promise<ScriptRunnerError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(ScriptRunnerError);
    return error as ScriptRunnerError;
  }
  throw new Error('expected a rejection');
}

describe('upload validation', () => {
  it('accepts test_ and experiment_ Python files and stores their sha256 and bytes', async () => {
    const runner = makeRunner();
    const content = Buffer.from('print("é")\n', 'utf8');
    const script = await runner.uploadScript({ filename: 'experiment_wind-2.py', content, description: 'wind', metadata: { owner: 'ana' } });
    expect(script).toMatchObject({
      filename: 'experiment_wind-2.py',
      runtime: 'python',
      sizeBytes: content.byteLength,
      sha256: createHash('sha256').update(content).digest('hex'),
      description: 'wind',
      metadata: { owner: 'ana' },
      status: 'active',
      totalRuns: 0,
      lastRunAt: null,
    });
    expect(Buffer.from(await runner.getScriptContent(script.id)).equals(content)).toBe(true);
  });

  const badNames: Array<[string, string, RegExp]> = [
    ['not matching the pattern', 'sample.py', /must match/],
    ['wrong extension', 'test_sample.sh', /must match/],
    ['a path', '../test_x.py', /without "\/"/],
    ['a nested path', 'dir/test_x.py', /without "\/"/],
    ['a backslash', 'dir\\test_x.py', /without "\/" or "\\"/],
    ['a NUL byte', 'test_x\0.py', /NUL/],
    ['empty', '', /required/],
    ['spaces', 'test x.py', /must match/],
    ['too long', `test_${'a'.repeat(260)}.py`, /255 bytes/],
  ];
  for (const [what, filename, message] of badNames) {
    it(`rejects a filename with ${what}`, async () => {
      const runner = makeRunner();
      const error = await rejection(runner.uploadScript({ filename, content: 'print(1)\n' }));
      expect(error.code).toBe('validation');
      expect(error.message).toMatch(message);
      expect(error.message.startsWith('[scriptrunner] ')).toBe(true);
      expect((await runner.listScripts({ status: 'all' })).items).toEqual([]);
    });
  }

  const badContent: Array<[string, Buffer | string, RegExp]> = [
    ['empty content', Buffer.alloc(0), /empty/],
    ['NUL bytes', Buffer.from('print(1)\0\n'), /NUL/],
    ['invalid UTF-8', Buffer.from([0x70, 0x72, 0xff, 0x0a]), /UTF-8/],
    ['more than 5 MiB', Buffer.alloc(5 * 1024 * 1024 + 1, 0x61), /limit is 5242880 bytes/],
  ];
  for (const [what, content, message] of badContent) {
    it(`rejects ${what}`, async () => {
      const runner = makeRunner();
      const error = await rejection(runner.uploadScript({ filename: 'test_x.py', content }));
      expect(error.code).toBe('validation');
      expect(error.message).toMatch(message);
    });
  }

  it('accepts exactly 5 MiB', async () => {
    const runner = makeRunner();
    const script = await runner.uploadScript({ filename: 'test_big.py', content: Buffer.alloc(5 * 1024 * 1024, 0x23) });
    expect(script.sizeBytes).toBe(5 * 1024 * 1024);
  });

  it('rejects metadata that is not a JSON object and descriptions that are not strings', async () => {
    const runner = makeRunner();
    const m = await rejection(runner.uploadScript({ filename: 'test_x.py', content: 'x', metadata: [1] as never }));
    expect(m.code).toBe('validation');
    const d = await rejection(runner.uploadScript({ filename: 'test_x.py', content: 'x', description: 5 as never }));
    expect(d.code).toBe('validation');
  });

  it('takes its rules from the options', async () => {
    const runner = makeRunner({
      upload: { pattern: /^[a-z]+\.(py|sh)$/, maxBytes: 10 },
      runtimes: { bash: { extensions: ['.sh'], command: 'bash', args: [] } },
    });
    const sh = await runner.uploadScript({ filename: 'job.sh', content: 'echo hi' });
    expect(sh.runtime).toBe('bash');
    expect((await rejection(runner.uploadScript({ filename: 'test_x.py', content: 'x' }))).code).toBe('validation');
    expect((await rejection(runner.uploadScript({ filename: 'job.py', content: 'print(12345)' }))).message).toMatch(/limit is 10/);
  });

  it('copies the content so later changes to the caller buffer do not reach the store', async () => {
    const runner = makeRunner();
    const content = Buffer.from('print(1)\n');
    const script = await runner.uploadScript({ filename: 'test_x.py', content });
    content.fill(0x41);
    expect(Buffer.from(await runner.getScriptContent(script.id)).toString()).toBe('print(1)\n');
  });
});
