/**
 * @scriptrunner/core/testing — the store conformance suite (needs vitest) and fixtures for store
 * authors.
 */
export { runStoreConformance, sampleExecution, sampleLines, sampleScript } from './conformance.js';
export type { ConformanceFixture, ConformanceOptions } from './conformance.js';
