/**
 * The runner's side of the dispatch seam (`DispatchHost`): runs the executions a dispatcher hands
 * to this runner, stops them, and ends the ones that never start or whose runner died. One map
 * tracks an execution from the moment a dispatcher hands it over until its end is published.
 *
 * Every path ends an execution through a guarded store transition and publishes
 * `execution:finished` only when its own transition applied: whoever ended it first publishes,
 * nobody publishes twice.
 */
import type { DropKind } from './observe.js';
import type { DispatchHost, DispatchRequest } from './dispatch.js';
import { describeError, ScriptRunnerError } from './errors.js';
import { ExecutionRun } from './execution.js';
import { checkId, type Settings } from './options.js';
import { validateEnv } from './process/env.js';
import { removeLeftRunDirectories } from './process/workdir.js';
import { withDeadline, withRetry } from './retry.js';
import type { Store } from './store.js';
import { isTerminalStatus, type Execution, type ExecutionStatus, type RunnerEvent } from './types.js';

export interface ExecutorEvents {
  /** To listeners, transports and the dispatcher; resolves when paced transports took it. Never rejects. */
  publish(event: RunnerEvent): Promise<void>;
  /** To listeners and transports only: an end another node wrote (and published to the others). */
  publishHere(event: RunnerEvent): Promise<void>;
  /** An event from another runner: to this runner's listeners only. */
  emitLocal(event: RunnerEvent): void;
  error(error: unknown): void;
  dropped(what: DropKind, count: number): void;
}

interface Tracked {
  run: ExecutionRun | null;
  /** A stop asked for before the run object existed (between hand-over and start). */
  stopRequest: { reason: 'cancelled' | 'interrupted'; message: string } | null;
  done: Promise<Execution | null>;
  resolve: (execution: Execution | null) => void;
}

/** Final records the store refused, kept for getExecution/waitFor; bounded, oldest go first. */
const MAX_UNSAVED = 1000;

export class Executor implements DispatchHost {
  private readonly tracked = new Map<string, Tracked>();
  private readonly unsaved = new Map<string, Execution>();
  /**
   * Queued records of executions waiting in this runner's own queue: the end of one that cannot
   * start (or is cancelled) while the store is down is still known — and remembered — without
   * reading the store. Bounded by concurrency + maxQueued.
   */
  private readonly waitingHere = new Map<string, Execution>();
  /** Set by runner.close(): nothing starts from then on. */
  closed = false;

  /** Recovery at start (when enabled) is over; executions and the runner's methods wait for it. */
  readonly ready: Promise<void>;

  constructor(
    private readonly settings: Settings,
    private readonly events: ExecutorEvents,
  ) {
    this.ready = settings.recoverOnStart ? this.recover(new Date()) : Promise.resolve();
  }

  // ------------------------------------------------------------ for the runner

  /** Resolves with the final record of an execution handed to this runner; undefined when it is not here. */
  done(executionId: string): Promise<Execution | null> | undefined {
    return this.tracked.get(executionId)?.done;
  }

  /** Executions handed to this runner and not over yet. */
  get runningCount(): number {
    return this.tracked.size;
  }

  /** Lines stored so far of an execution running here. */
  liveLineCount(executionId: string): number | undefined {
    return this.tracked.get(executionId)?.run?.persistedLineCount;
  }

  /** The final record the store refused, if any. */
  unsavedRecord(executionId: string): Execution | undefined {
    return this.unsaved.get(executionId);
  }

  /** An execution just queued in this runner's own (in-process) queue. */
  queuedHere(execution: Execution): void {
    this.waitingHere.set(execution.id, execution);
  }

  stopAll(reason: 'cancelled' | 'interrupted', message: string): void {
    for (const id of this.tracked.keys()) this.stop(id, reason, message);
  }

  /** Resolves when nothing handed to this runner is still going. */
  async settled(): Promise<void> {
    while (this.tracked.size > 0) await Promise.all([...this.tracked.values()].map((t) => t.done));
  }

  /**
   * Ends a stored `queued` execution that will not run (cancelled while waiting, the runner closed,
   * the run could not be recorded or dispatched). Publishes the end when this call made it.
   */
  async endQueued(queued: Execution, status: ExecutionStatus, message: string): Promise<Execution> {
    const patch = { status, finishedAt: new Date(), durationMs: 0, errorMessage: message, exitCode: null, signal: null, lineCount: 0 };
    const stored = await this.retried(() => this.settings.store.updateExecution(queued.id, patch, { expect: ['queued'] })).catch(
      (error: unknown) => {
        this.events.error(new ScriptRunnerError('store', `could not store the end of execution ${queued.id}: ${describeError(error)}`, { cause: error }));
        return undefined;
      },
    );
    if (stored === undefined) {
      const final: Execution = { ...queued, ...patch };
      this.remember(final);
      await this.events.publish({ type: 'execution:finished', data: final });
      return final;
    }
    if (stored === null) return { ...queued, ...patch };
    if (stored.status === status && stored.errorMessage === message) await this.events.publish({ type: 'execution:finished', data: stored });
    return stored;
  }

  /**
   * Ends what a runner that died left `queued`/`running`. Bounded by the store's attempt timeout: a
   * store that never answers must not hang every method and close() — it is reported instead.
   */
  private async recover(startedAt: Date): Promise<void> {
    const bound = this.settings.run.storeRetry.attemptTimeoutMs;
    try {
      const interrupted = await withDeadline(
        this.settings.store.interruptStaleExecutions({
          queuedBefore: startedAt,
          finishedAt: new Date(),
          errorMessage: 'the runner stopped before this execution finished',
        }),
        bound,
      );
      for (const execution of interrupted) await this.events.publish({ type: 'execution:finished', data: execution });
      for (const execution of interrupted) await this.removeLeftovers(execution.id);
    } catch (error) {
      this.events.error(new ScriptRunnerError('store', `could not recover stale executions: ${describeError(error)}`, { cause: error }));
    }
  }

  // ------------------------------------------------------------- DispatchHost

  /**
   * Runs a stored execution here. Only a `queued` one starts: one already `running` was taken by a
   * runner that is gone (its job came back), and running user code twice is worse than not
   * finishing it, so it ends `interrupted` with the lines stored so far. Never rejects.
   */
  async execute(request: DispatchRequest): Promise<Execution | null> {
    let id: string;
    try {
      id = checkId(request.executionId, 'execution', 'executionId');
    } catch (error) {
      this.events.error(error);
      return null;
    }
    const existing = this.tracked.get(id);
    if (existing) return existing.done;
    const tracked = this.track(id);
    let final: Execution | null = null;
    try {
      final = await this.runTracked(id, request, tracked);
    } catch (error) {
      // The store failed past its retries before the run started (or the request was malformed):
      // end it, so nobody waits for an execution that will never run.
      this.events.error(error);
      const queued = this.waitingHere.get(id);
      const message = `could not start the execution: ${describeError(error)}`;
      final = queued ? await this.endQueued(queued, 'failed', message) : await this.endUnstarted(id, 'failed', message);
    } finally {
      // Whatever happened, the execution leaves the maps and its waiters wake.
      this.tracked.delete(id);
      this.waitingHere.delete(id);
      tracked.resolve(final);
    }
    return final;
  }

  stop(executionId: string, reason: 'cancelled' | 'interrupted', message: string): boolean {
    const tracked = this.tracked.get(executionId);
    if (!tracked) return false;
    if (tracked.run) tracked.run.stop(reason, message);
    else tracked.stopRequest ??= { reason, message };
    return true;
  }

  /**
   * Ends an execution that will not run. One running here is stopped instead (its run publishes the
   * end, with its lines); one `running` on a runner that is gone ends as abandoned. Never rejects.
   */
  async endUnstarted(executionId: string, status: ExecutionStatus, message: string): Promise<Execution | null> {
    try {
      const tracked = this.tracked.get(executionId);
      if (tracked) {
        this.stop(executionId, status === 'cancelled' ? 'cancelled' : 'interrupted', message);
        return await tracked.done;
      }
      const queued = this.waitingHere.get(executionId);
      this.waitingHere.delete(executionId);
      const execution = await this.retried(() => this.settings.store.getExecution(executionId)).catch((error: unknown) => {
        // Waiting here: its end is known without the store (and remembered until the store takes it).
        if (queued) return queued;
        throw error;
      });
      if (execution === null || isTerminalStatus(execution.status)) return execution;
      // Started by a runner that is gone (its job came back to the queue): keep what it stored.
      // (The message the caller chose speaks of a run that never started; this one did.)
      if (execution.status === 'running') return await this.finishAbandoned(execution, status);
      return await this.endQueued(execution, status, message);
    } catch (error) {
      // Dispatchers call this from event handlers: a rejection there would end the process.
      this.events.error(new ScriptRunnerError('store', `could not end execution ${executionId}: ${describeError(error)}`, { cause: error }));
      return null;
    }
  }

  /**
   * Ends an execution whose runner died mid-run (its dispatcher knows: e.g. a job lock expired).
   * Only one stored `running` that does not run here; a `queued` one never ran and may be starting
   * on a worker right now. Never rejects.
   */
  async endAbandoned(executionId: string): Promise<Execution | null> {
    try {
      const execution = await this.retried(() => this.settings.store.getExecution(executionId));
      if (execution === null || execution.status !== 'running' || this.tracked.has(executionId)) return execution;
      return await this.finishAbandoned(execution);
    } catch (error) {
      this.events.error(new ScriptRunnerError('store', `could not end execution ${executionId}: ${describeError(error)}`, { cause: error }));
      return null;
    }
  }

  emit(event: RunnerEvent): void {
    this.events.emitLocal(event);
  }

  error(error: Error): void {
    this.events.error(error);
  }

  // ---------------------------------------------------------------- internals

  private track(id: string): Tracked {
    let resolve!: (execution: Execution | null) => void;
    const done = new Promise<Execution | null>((r) => {
      resolve = r;
    });
    const tracked: Tracked = { run: null, stopRequest: null, done, resolve };
    this.tracked.set(id, tracked);
    return tracked;
  }

  private async runTracked(id: string, request: DispatchRequest, tracked: Tracked): Promise<Execution | null> {
    await this.ready;
    const { store, runtimes, environments } = this.settings;
    const execution = await this.retried(() => store.getExecution(id));
    if (execution === null || isTerminalStatus(execution.status)) return execution;
    if (execution.status === 'running') return this.finishAbandoned(execution);
    if (this.closed) return this.endQueued(execution, 'interrupted', 'the runner was closed before it started');
    const script = await this.retried(() => store.getScript(execution.scriptId));
    let runtime = script ? runtimes[script.runtime] : undefined;
    if (!script || !runtime) {
      const why = script ? `the "${script.runtime}" runtime is not configured on this runner` : `script ${execution.scriptId} is missing from the store`;
      return this.endQueued(execution, 'failed', why);
    }
    // Queued elsewhere (a web node of a fleet) for an environment this runner must also have;
    // executions stored before environments existed run in the default.
    const environment = script.runtime === 'python' ? (execution.environment ?? environments.defaultName) : null;
    if (environment !== null) {
      const python = environments.commands.get(environment);
      if (python === undefined) return this.endQueued(execution, 'failed', `the environment "${environment}" is not configured on this runner`);
      runtime = { ...runtime, command: python };
    }
    const run = new ExecutionRun(
      {
        execution,
        script,
        runtime,
        environment,
        env: request.env === undefined ? undefined : validateEnv(request.env, 'env'),
        timeoutMs: request.timeoutMs ?? this.settings.run.defaultTimeoutMs,
      },
      this.settings.run,
      {
        started: (started) => void this.events.publish({ type: 'execution:started', data: started }),
        log: (lines) => this.events.publish({ type: 'execution:log', data: { executionId: id, lines } }),
        progress: (progress) => void this.events.publish({ type: 'execution:progress', data: progress }),
        error: (error) => this.events.error(error),
        dropped: (what, count) => this.events.dropped(what, count),
      },
    );
    tracked.run = run;
    if (tracked.stopRequest) run.stop(tracked.stopRequest.reason, tracked.stopRequest.message);
    const result = await run.run();
    if (!result.saved) this.remember(result.execution);
    const finished: RunnerEvent = { type: 'execution:finished', data: result.execution };
    // Ended elsewhere: that writer told the other nodes; this runner's listeners and transports
    // (a viewer here, the log file) still need the end.
    if (result.endedHere) await this.events.publish(finished);
    else if (isTerminalStatus(result.execution.status)) await this.events.publishHere(finished);
    return result.execution;
  }

  /** Ends an execution whose runner died while running it, with the lines that runner stored. */
  private async finishAbandoned(
    execution: Execution,
    status: ExecutionStatus = 'interrupted',
    errorMessage = 'the worker running this execution stopped before it finished',
  ): Promise<Execution> {
    const finishedAt = new Date();
    const lineCount = await lastStoredSeq(this.settings.store, execution.id);
    const patch = {
      status,
      finishedAt,
      durationMs: execution.startedAt ? Math.max(0, finishedAt.getTime() - execution.startedAt.getTime()) : 0,
      errorMessage,
      lineCount,
    };
    const stored = await this.retried(() => this.settings.store.updateExecution(execution.id, patch, { expect: ['running'] }));
    if (stored === null) return { ...execution, ...patch };
    if (stored.status === status && stored.finishedAt?.getTime() === finishedAt.getTime()) {
      await this.events.publish({ type: 'execution:finished', data: stored });
      await this.removeLeftovers(execution.id);
    }
    return stored;
  }

  /** What a dead runner left of an execution on this machine: cgroups, mounts, run directories. Best effort. */
  private async removeLeftovers(executionId: string): Promise<void> {
    const { workDir, keepWorkDir, sandbox } = this.settings.run;
    try {
      await (await sandbox).caps.removeLeftovers(workDir, executionId, keepWorkDir);
    } catch {
      // no sandbox here (its probe failed): nothing of it to remove
    }
    if (!keepWorkDir) await removeLeftRunDirectories(workDir, executionId);
  }

  private retried<T>(fn: () => Promise<T>): Promise<T> {
    return withRetry(fn, this.settings.run.storeRetry);
  }

  private remember(final: Execution): void {
    this.unsaved.set(final.id, final);
    // Bounded: only a store that is down for long produces these.
    if (this.unsaved.size > MAX_UNSAVED) this.unsaved.delete(this.unsaved.keys().next().value!);
  }
}

/**
 * The highest stored seq of an execution (seqs are gap-free from 1), in O(log n) one-line reads:
 * the count a runner that died never wrote.
 */
async function lastStoredSeq(store: Store, executionId: string): Promise<number> {
  const has = async (seq: number) => (await store.readLogs(executionId, { afterSeq: seq - 1, limit: 1 })).length > 0;
  if (!(await has(1))) return 0;
  let lo = 1;
  let hi = 2;
  while (await has(hi)) {
    lo = hi;
    hi *= 2;
  }
  // has(lo) and !has(hi)
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (await has(mid)) lo = mid;
    else hi = mid;
  }
  return lo;
}
