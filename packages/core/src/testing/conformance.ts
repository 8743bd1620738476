/**
 * The store conformance suite. Every `Store` runs it; it checks the contract written in `store.ts`
 * against what the store really returns afterwards.
 *
 * ```ts
 * import { runStoreConformance } from '@scriptrunner/core/testing';
 * runStoreConformance('my store', async () => ({ store: await makeStore(), cleanup: () => drop() }));
 * ```
 */
import { afterEach, beforeEach, describe } from 'vitest';
import type { CreateScriptInput, Store } from '../store.js';
import type { Script } from '../types.js';
import { sampleScript } from './samples.js';
import { artifactTests } from './store-artifacts.js';
import { executionTests } from './store-executions.js';
import { logTests } from './store-logs.js';
import { retentionTests } from './store-retention.js';
import { scriptTests } from './store-scripts.js';

export { sampleExecution, sampleLines, sampleScript } from './samples.js';

export interface ConformanceFixture {
  store: Store;
  /** Called after each test: drop tables, close clients, remove files. */
  cleanup?: () => Promise<void> | void;
}

export interface ConformanceOptions {
  /** Lines in the large-log test. Default 20,000. */
  largeLogLines?: number;
  /** Per-test timeout in ms. Default 30,000. */
  timeoutMs?: number;
  /**
   * The store keeps artifacts (`putArtifact`, `listArtifacts`, `readArtifact`). Default true;
   * false for a store without them, whose runs then keep no files.
   */
  artifacts?: boolean;
  /**
   * The store has the retention methods (`listExpiredExecutions`, `deleteExecution`,
   * `deleteScript`). Default true; false for a store without them (a runner refuses `retention`).
   */
  retention?: boolean;
}

/** What each part of the suite works with; `store` always reaches the current test's store. */
export interface StoreSuite {
  store: Store;
  createScript(overrides?: Partial<CreateScriptInput>): Promise<Script>;
  largeLogLines: number;
}

/** A stand-in that forwards every call to the store of the test running now (set in beforeEach). */
function currentStore(get: () => Store): Store {
  return new Proxy({} as Store, {
    get(_, key) {
      const store = get() as unknown as Record<PropertyKey, unknown>;
      const value = store[key];
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(store) : value;
    },
    has(_, key) {
      return key in (get() as object);
    },
  });
}

export function runStoreConformance(
  name: string,
  makeStore: () => Promise<ConformanceFixture> | ConformanceFixture,
  options: ConformanceOptions = {},
): void {
  const largeLogLines = options.largeLogLines ?? 20_000;
  const timeout = options.timeoutMs ?? 30_000;

  describe(`Store conformance: ${name}`, { timeout }, () => {
    let fixture: ConformanceFixture;
    const store = currentStore(() => fixture.store);

    beforeEach(async () => {
      fixture = await makeStore();
    });
    afterEach(async () => {
      await fixture.cleanup?.();
    });

    const suite: StoreSuite = {
      store,
      createScript: (overrides = {}) => store.createScript(sampleScript(overrides)),
      largeLogLines,
    };
    scriptTests(suite);
    executionTests(suite);
    logTests(suite);
    if (options.artifacts ?? true) artifactTests(suite);
    if (options.retention ?? true) retentionTests(suite);
  });
}
