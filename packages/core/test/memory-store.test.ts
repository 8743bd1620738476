import { memoryStore } from '../src/index.js';
import { runStoreConformance } from '../src/testing/index.js';

runStoreConformance('memory', () => {
  const store = memoryStore();
  return { store, cleanup: () => store.close?.() };
}, { largeLogLines: 100_000 });
