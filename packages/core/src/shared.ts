/**
 * One runner per process, shared by every copy of this package that asks. A Next.js app has two
 * module graphs in one process — its custom server's (plain Node) and its route handlers' (the
 * bundler's) — so a module-level `const runner = createScriptRunner()` would make two runners, two
 * queues and two `concurrency` limits over one store. The registry lives on `globalThis` under a
 * `Symbol.for` key, which both graphs (and both builds of this package) see.
 */
import type { ScriptRunner } from './api.js';
import { ScriptRunnerError } from './errors.js';

const REGISTRY = Symbol.for('@scriptrunner/core:shared-runners');

function registry(): Map<string, ScriptRunner> {
  const holder = globalThis as { [REGISTRY]?: Map<string, ScriptRunner> };
  holder[REGISTRY] ??= new Map();
  return holder[REGISTRY];
}

/**
 * The process's runner named `key`: the first call creates it with `create()`, every later call —
 * from any module graph or copy of this package — returns the same one. Closing it removes it, so
 * the next call creates a fresh one (tests, hot reload).
 */
export function sharedScriptRunner(key: string, create: () => ScriptRunner): ScriptRunner {
  if (typeof key !== 'string' || key.length === 0) throw new ScriptRunnerError('validation', 'sharedScriptRunner needs a non-empty key');
  const runners = registry();
  const existing = runners.get(key);
  if (existing) return existing;
  const runner = create();
  runners.set(key, runner);
  const close = runner.close.bind(runner);
  runner.close = () => {
    if (runners.get(key) === runner) runners.delete(key);
    return close();
  };
  return runner;
}
