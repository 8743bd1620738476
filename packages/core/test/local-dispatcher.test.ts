/** The in-process dispatcher (the default) passes the dispatcher conformance suite. */
import { runDispatcherConformance } from '../src/testing/index.js';
import { createScriptRunner, memoryStore } from '../src/index.js';
import { silentLogger } from './helpers.js';

runDispatcherConformance('in-process (default)', async ({ concurrency, maxQueued }) => {
  // One runner is every attached runner; its closing ends waiting executions as interrupted.
  const store = memoryStore();
  const runner = createScriptRunner({ store, concurrency, maxQueued, isolation: 'none', killGraceMs: 1000, logger: silentLogger });
  return { runner, observers: [runner], store, close: () => runner.close() };
});
