/**
 * The built package as users load it: ESM import and CommonJS require of both entry points.
 * (`npm test` builds before it tests.)
 */
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

const require = createRequire(import.meta.url);
const publicNames = [
  'createScriptRunner',
  'sharedScriptRunner',
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
  'parseInlineMetadata',
  // For store authors: cut an artifact's stream into the pieces a store keeps.
  'artifactChunks',
  'ARTIFACT_CHUNK_BYTES',
  // The variable a script reads to find where to leave its artifacts.
  'OUTPUT_DIR_ENV',
].sort();

describe('@scriptrunner/core package', () => {
  it('exports exactly the public API from ESM and CommonJS', async () => {
    const esm = (await import('@scriptrunner/core')) as Record<string, unknown>;
    const cjs = require('@scriptrunner/core') as Record<string, unknown>;
    expect(Object.keys(esm).sort()).toEqual(publicNames);
    expect(Object.keys(cjs).sort()).toEqual(publicNames);
  });

  it('shares one runner per key across the ESM and CommonJS builds (two module graphs, one process)', async () => {
    const esm = await import('@scriptrunner/core');
    const cjs = require('@scriptrunner/core') as typeof import('@scriptrunner/core');
    let created = 0;
    const make = () => {
      created++;
      return esm.createScriptRunner({ logger: { warn() {}, error() {} } });
    };
    const first = esm.sharedScriptRunner('package-test', make);
    expect(cjs.sharedScriptRunner('package-test', make)).toBe(first);
    expect(created).toBe(1);
    await first.close();
    const second = cjs.sharedScriptRunner('package-test', make);
    expect(second).not.toBe(first);
    expect(created).toBe(2);
    await second.close();
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

  it('recognises a ScriptRunnerError made by the other build: the brand decides, not the class or duck typing', async () => {
    const cjs = require('@scriptrunner/core') as typeof import('@scriptrunner/core');
    const esm = await import('@scriptrunner/core');
    // Two copies of the class, as a bundler or a dual-package host can load them side by side.
    expect(cjs.ScriptRunnerError).not.toBe(esm.ScriptRunnerError);
    expect(cjs.isScriptRunnerError).not.toBe(esm.isScriptRunnerError);

    const cjsRunner = cjs.createScriptRunner({ logger: { warn() {}, error() {} } });
    let fromCjs: unknown;
    try {
      fromCjs = await cjsRunner.uploadScript({ filename: '../x.py', content: '' }).then(
        () => expect.fail('the CommonJS runner accepted ../x.py'),
        (error: unknown) => error,
      );
    } finally {
      await cjsRunner.close();
    }
    const fromEsm = new esm.ScriptRunnerError('not_found', 'x');
    // Each error really comes from its own copy, so recognition below cannot ride on a shared prototype.
    expect(Object.getPrototypeOf(fromCjs)).toBe(cjs.ScriptRunnerError.prototype);
    expect(Object.getPrototypeOf(fromEsm)).toBe(esm.ScriptRunnerError.prototype);

    for (const [error, code] of [[fromCjs, 'validation'], [fromEsm, 'not_found']] as const) {
      for (const build of [cjs, esm]) {
        expect(build.isScriptRunnerError(error)).toBe(true);
        expect(error instanceof build.ScriptRunnerError).toBe(true);
      }
      expect((error as { code: unknown }).code).toBe(code);
    }
    expect(fromCjs).toBeInstanceOf(Error);
    expect((fromCjs as Error).message).toMatch(/^\[scriptrunner\] /);

    // Looking like one is not enough: only the brand the constructor sets counts.
    const lookalike = Object.assign(new Error('[scriptrunner] x'), { name: 'ScriptRunnerError', code: 'validation', details: {} });
    for (const build of [cjs, esm]) {
      expect(build.isScriptRunnerError(lookalike)).toBe(false);
      expect(lookalike instanceof build.ScriptRunnerError).toBe(false);
      expect(build.isScriptRunnerError({ code: 'not_found', message: 'x' })).toBe(false);
    }
  });

  it('exposes the conformance suite on ./testing (ESM only: vitest cannot be required)', async () => {
    const esm = (await import('@scriptrunner/core/testing')) as Record<string, unknown>;
    expect(Object.keys(esm).sort()).toEqual(['runDispatcherConformance', 'runStoreConformance', 'sampleExecution', 'sampleLines', 'sampleScript']);
  });
});
