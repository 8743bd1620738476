/**
 * @scriptrunner/core/testing — the store and dispatcher conformance suites (need vitest) and
 * fixtures for store authors.
 */
export { runStoreConformance, sampleExecution, sampleLines, sampleScript } from './conformance.js';
export type { ConformanceFixture, ConformanceOptions } from './conformance.js';
export { runDispatcherConformance } from './dispatchers.js';
export type { DispatcherConformanceOptions, DispatcherLimits, DispatcherSetup } from './dispatchers.js';
