/**
 * The built package as users load it: ESM import and CommonJS require of both entry points.
 * (`npm test` builds before it tests.)
 */
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

const require = createRequire(import.meta.url);
const publicNames = [
  'createScriptRunner',
  'memoryStore',
  'encodeCursor',
  'decodeCursor',
  'decodeCursorOrThrow',
  'updatableStatuses',
  'ScriptRunnerError',
  'isScriptRunnerError',
  'isTerminalStatus',
  'TERMINAL_STATUSES',
  'defaultClassifyLine',
  'DEFAULT_RUNTIMES',
  'DEFAULT_FILENAME_PATTERN',
  'DEFAULT_MAX_UPLOAD_BYTES',
  'DEFAULT_LIMITS',
].sort();

describe('@scriptrunner/core package', () => {
  it('exports exactly the public API from ESM and CommonJS', async () => {
    const esm = (await import('@scriptrunner/core')) as Record<string, unknown>;
    const cjs = require('@scriptrunner/core') as Record<string, unknown>;
    expect(Object.keys(esm).sort()).toEqual(publicNames);
    expect(Object.keys(cjs).sort()).toEqual(publicNames);
  });

  it('runs a script through the CommonJS build (nanoid bundled, eventemitter3 external)', async () => {
    const { createScriptRunner } = require('@scriptrunner/core') as typeof import('@scriptrunner/core');
    const runner = createScriptRunner({ logger: { warn() {}, error() {} } });
    const script = await runner.uploadScript({ filename: 'test_cjs.py', content: 'print("from cjs")' });
    const execution = await runner.waitFor((await runner.run(script.id)).id);
    expect(execution.status).toBe('succeeded');
    expect((await runner.readLogs(execution.id)).map((l) => l.text)).toEqual(['from cjs']);
    await runner.close();
  });

  it('exposes the conformance suite on ./testing (ESM only: vitest cannot be required)', async () => {
    const esm = (await import('@scriptrunner/core/testing')) as Record<string, unknown>;
    expect(Object.keys(esm).sort()).toEqual(['runDispatcherConformance', 'runStoreConformance', 'sampleExecution', 'sampleLines', 'sampleScript']);
  });
});
