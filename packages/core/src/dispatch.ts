/**
 * The dispatch seam: where a queued execution runs. By default the runner's own in-process queue
 * runs it here. A `Dispatcher` (e.g. @scriptrunner/queue-bullmq) sends it elsewhere instead — to
 * workers on other machines that write to the same store — and brings their events back, so every
 * runner sharing the store and the dispatcher sees every execution live.
 *
 * The contract, from the runner's side:
 * - `run()` calls `admit()` before the execution is stored (so a full queue leaves no trace), then
 *   stores it as `queued`, publishes `execution:queued`, and calls `dispatch()` (or `release()`
 *   when it failed in between). If `dispatch` throws, the execution ends `failed` and `run()`
 *   rejects with that error.
 * - Somewhere, a runner attached to the same dispatcher receives the request and calls
 *   `host.execute(request)`: the execution runs there with that runner's process control, line
 *   pipeline, store and events. `execute` never rejects and never runs an execution twice: one
 *   that is no longer `queued` (a worker died while running it and the job came back) is ended as
 *   `interrupted` instead.
 * - A runner that dies mid-run leaves its execution `running`. Whichever attached runner learns of
 *   it first (the dispatcher's own liveness truth, e.g. a job lock that expired) calls
 *   `host.endAbandoned(id)`; several may, and only a `running` execution not running there ends.
 * - `cancel()` of an execution the runner does not run itself calls `dispatcher.cancel(id)`;
 *   the dispatcher removes it from its queue (then calls `host.endUnstarted`) or asks the runner
 *   running it to `host.stop` it.
 * - Every event a runner publishes is also given to `dispatcher.publish` (after the store has it,
 *   as for transports); events published by other runners come back through `host.emit`, which
 *   emits them to this runner's listeners (not to its transports, which carry its own events).
 */
import type { Execution, ExecutionStatus, RunnerEvent } from './types.js';

export interface DispatchRequest {
  executionId: string;
  /** The run's own variables (`run(id, { env })`), on top of the runner's. */
  env?: Record<string, string>;
  /** The timeout `run()` was given (0 = none); absent: the executing runner's own `timeoutMs`. */
  timeoutMs?: number;
}

/** What a runner offers its dispatcher. */
export interface DispatchHost {
  /** Runs a stored `queued` execution here, now; resolves with its final record (null: no such execution). Never rejects. */
  execute(request: DispatchRequest): Promise<Execution | null>;
  /** Stops an execution if it runs here; false when it does not. */
  stop(executionId: string, reason: 'cancelled' | 'interrupted', message: string): boolean;
  /**
   * Ends a stored execution that never started (removed from the queue), and publishes it. One
   * found `running` but not running here (its runner is gone) ends as `endAbandoned` ends it, with
   * `status`. Resolves with the record as stored afterwards; null when there is none or the store
   * failed (reported through `error`). Never rejects.
   */
  endUnstarted(executionId: string, status: ExecutionStatus, message: string): Promise<Execution | null>;
  /**
   * Ends an execution whose runner died mid-run: one stored as `running` that does not run here
   * ends `interrupted`, keeping (and counting) the lines stored so far, and is published. Anything
   * else is left as it is: `queued` (it never ran; a worker may be starting it right now), terminal,
   * or running here. Resolves with the record as stored afterwards; null when there is none or the
   * store failed (reported through `error`). Never rejects. Call it only when the runner is known
   * to be gone (for BullMQ: the job's lock expired): a live run is ended too. Several runners
   * calling it for one execution leave it `interrupted` once: the store's guarded transition lets
   * one of them end it, and only that one publishes `execution:finished`.
   */
  endAbandoned(executionId: string): Promise<Execution | null>;
  /** An event published by another runner: emitted to this runner's listeners. */
  emit(event: RunnerEvent): void;
  /** Reports a failure through the runner's `error` event (or its logger). */
  error(error: Error): void;
}

export interface Dispatcher {
  /** Called once by `createScriptRunner` before anything else. */
  attach(host: DispatchHost): void;
  /**
   * Before an execution is stored: claim a place, or throw a `queue_full` ScriptRunnerError when
   * none is left. The claim ends with `dispatch` (whether it succeeds or throws) or `release`.
   */
  admit?(): Promise<void>;
  /** The run that `admit` let in failed before `dispatch` (the store refused it, the runner closed). */
  release?(): void;
  /** The execution is stored as `queued`: have some attached runner `execute` it. */
  dispatch(request: DispatchRequest): Promise<void>;
  /** Cancel an execution this runner does not run: remove it from the queue or reach its runner. */
  cancel(executionId: string): Promise<void>;
  /** Every event this runner published, after the store has it; may be a promise (not awaited). */
  publish?(event: RunnerEvent): void | Promise<void>;
  /**
   * Optional: someone on this runner follows `executionId` (`runner.follow()`: the Socket.IO
   * adapter, the SSE route), so its log batches and progress must reach this runner. A dispatcher
   * that carries those only to runners that watch (BullMQ: a channel per execution) starts
   * delivering them here and resolves once it does; lifecycle events reach every runner anyway.
   * Called once per follow, paired with one `unwatch`; resolves (never rejects) within the
   * dispatcher's own bound — a follow reads the store after it, and fills any gap from the store.
   */
  watch?(executionId: string): Promise<void>;
  /** The follow that called `watch` ended. */
  unwatch?(executionId: string): void;
  /** Optional: how many executions wait to start in this dispatcher's queue (for `runner.stats()`). */
  queued?(): Promise<number>;
  /** Optional: resolves when what the dispatcher depends on answers (e.g. Redis), rejects with why not. */
  health?(): Promise<void>;
  /**
   * Optional: run `sweep` (the runner's retention sweep) every `intervalMs` somewhere in the fleet,
   * once per interval across all the runners attached to this dispatcher's deployment. Without it
   * each runner with `retention` sweeps on its own timer. Called once, after the runner is ready.
   */
  scheduleSweep?(sweep: () => Promise<unknown>, intervalMs: number): void;
  /**
   * Called by `runner.close()` first: take no new work. The runner ends its running executions
   * meanwhile (as `interrupted`) and awaits this before `close()` resolves, so it may wait for them.
   */
  close?(): Promise<void>;
}
