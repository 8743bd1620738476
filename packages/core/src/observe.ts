/**
 * Observers: what monitoring sees of a runner (e.g. @scriptrunner/metrics, on prom-client). Core
 * keeps no metrics library: it hands an observer each store call's duration, each event this
 * runner published (its own runs, after the store has them — never another node's, so counters
 * summed over a fleet count each run once) and each sweep, and lets it read `stats()` and
 * `health()` when it is scraped.
 */
import type { ScriptRunner } from './api.js';
import type { Dispatcher } from './dispatch.js';
import { describeError } from './errors.js';
import type { SweepResult } from './retention.js';
import type { Store } from './store.js';
import type { RunnerEvent } from './types.js';

export interface RunnerObserver {
  /** Called once, when the runner is created: keep it to read `stats()` / `health()` later. */
  attach?(runner: ScriptRunner): void;
  /** The runner closed: forget it. */
  detach?(runner: ScriptRunner): void;
  /** One store call of this runner: the Store method, how long it took, whether it threw. */
  storeCall?(method: string, durationMs: number, failed: boolean): void;
  /** An event this runner published (its own executions), after the store accepted it. */
  published?(event: RunnerEvent): void;
  /** A retention sweep this runner ran. */
  swept?(result: SweepResult): void;
  /** An error the runner reported (its `error` event). */
  error?(error: Error): void;
  /** Output of one of this runner's runs that was not kept whole: `count` lines cut, runs stopped at an output cap, files not kept. */
  dropped?(what: DropKind, count: number): void;
}

/**
 * What a run did not keep whole: `line_cut` a line longer than maxLineBytes (kept, cut, with a
 * marker); `output_over_cap` a run stopped at maxLogLines / maxLogBytes (its further output is not
 * read); `artifact_skipped` a file in the output directory not kept (over an artifacts cap, or a
 * store without artifacts).
 */
export type DropKind = 'line_cut' | 'output_over_cap' | 'artifact_skipped';

/** What a runner holds right now, for gauges. */
export interface RunnerStats {
  /** Executions handed to this runner and not over yet (running here, or starting). */
  running: number;
  /**
   * Executions waiting to start: in this runner's own queue, or, with a dispatcher that can tell
   * (BullMQ), in the fleet's queue. Null when the dispatcher cannot tell (or did not answer).
   */
  queued: number | null;
  /** How this runner's scripts are isolated; null while the sandbox probe runs, or when it failed. */
  isolation: 'none' | 'bwrap' | 'custom' | null;
}

export interface HealthCheck {
  ok: boolean;
  /** How long the check took (up to the timeout). */
  ms: number;
  /** Why it is not ok. */
  error?: string;
}

export interface HealthReport {
  /** Every check is ok (and the runner is open). */
  ok: boolean;
  /** `store` always; `queue` when the dispatcher can be checked (BullMQ: Redis answers). */
  checks: Record<string, HealthCheck>;
}

/** `promise`, or a rejection after `ms`: a store or Redis that hangs fails the probe instead of hanging it. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  promise.catch(() => undefined); // settles after a timeout too: never unhandled
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function check(run: () => Promise<unknown>, timeoutMs: number): Promise<HealthCheck> {
  const started = performance.now();
  try {
    await within(run(), timeoutMs);
    return { ok: true, ms: Math.round(performance.now() - started) };
  } catch (error) {
    return { ok: false, ms: Math.round(performance.now() - started), error: describeError(error) };
  }
}

/** What `runner.stats()` and `runner.health()` read. */
export interface MonitoredParts {
  store: Store;
  dispatcher: Pick<Dispatcher, 'queued' | 'health'>;
  running(): number;
  sandbox: Promise<{ isolation: { kind: 'none' | 'bwrap' | 'custom' } }>;
  isOpen(): boolean;
}

/** Answers `runner.stats()` and `runner.health()`. */
export class RunnerMonitor {
  private isolation: RunnerStats['isolation'] = null;

  constructor(private readonly parts: MonitoredParts) {
    parts.sandbox.then(
      (sandbox) => {
        this.isolation = sandbox.isolation.kind;
      },
      () => undefined, // a failed probe: runs fail with its reason; the gauge says null
    );
  }

  async stats(timeoutMs = 2000): Promise<RunnerStats> {
    const { dispatcher } = this.parts;
    const queued = dispatcher.queued ? await within(dispatcher.queued(), timeoutMs).catch(() => null) : null;
    return { running: this.parts.running(), queued, isolation: this.isolation };
  }

  async health(timeoutMs: number): Promise<HealthReport> {
    const { store, dispatcher } = this.parts;
    const checks: Record<string, HealthCheck> = {};
    const probes = [check(() => (store.ping ? store.ping() : store.getExecution('health-check')), timeoutMs).then((c) => (checks.store = c))];
    if (dispatcher.health) probes.push(check(() => dispatcher.health!(), timeoutMs).then((c) => (checks.queue = c)));
    await Promise.all(probes);
    if (!this.parts.isOpen()) checks.runner = { ok: false, ms: 0, error: 'the runner is closed' };
    return { ok: Object.values(checks).every((c) => c.ok), checks };
  }
}

/**
 * The store with every method call timed for the observers. A Proxy, so `in` checks of optional
 * methods (`putArtifact`, the retention group) see exactly what the store has.
 */
export function observedStore(store: Store, observers: readonly RunnerObserver[]): Store {
  const timed = observers.filter((o) => o.storeCall);
  if (timed.length === 0) return store;
  const report = (method: string, started: number, failed: boolean) => {
    const ms = performance.now() - started;
    for (const observer of timed) {
      try {
        observer.storeCall!(method, ms, failed);
      } catch {
        // an observer must never break a store call
      }
    }
  };
  const wrappers = new Map<PropertyKey, unknown>();
  return new Proxy(store, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver) as unknown;
      if (typeof value !== 'function' || typeof key !== 'string') return value;
      let wrapped = wrappers.get(key);
      if (!wrapped) {
        const method = value as (...args: unknown[]) => unknown;
        wrapped = (...args: unknown[]) => {
          const started = performance.now();
          let result: unknown;
          try {
            result = method.apply(target, args);
          } catch (error) {
            report(key, started, true);
            throw error;
          }
          if (result && typeof (result as Promise<unknown>).then === 'function') {
            (result as Promise<unknown>).then(
              () => report(key, started, false),
              () => report(key, started, true),
            );
          } else {
            report(key, started, false);
          }
          return result;
        };
        wrappers.set(key, wrapped);
      }
      return wrapped;
    },
  });
}

/** Calls `fn` on every observer that has it; an observer that throws is ignored. */
export function notify(observers: readonly RunnerObserver[], fn: (observer: RunnerObserver) => void): void {
  for (const observer of observers) {
    try {
      fn(observer);
    } catch {
      // monitoring must never break the runner
    }
  }
}
