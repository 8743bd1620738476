/**
 * createScriptRunner: the public methods and events. One path for every execution:
 *
 *   run() ─▶ dispatcher.admit ─▶ store (queued) ─▶ dispatcher.dispatch ─▶ host.execute (here or on
 *   a worker) ─▶ ExecutionRun ─▶ persist ─▶ publish (listeners, transports, dispatcher)
 *
 * The dispatcher is the in-process one (dispatchers/local.ts) unless the caller gives another;
 * the runner's `DispatchHost` side lives in executor.ts.
 */
import type { ScriptRunner } from './api.js';
import { checkArtifactName, listArtifactsOf, readArtifactOf } from './artifacts/read.js';
import type { Dispatcher } from './dispatch.js';
import { LocalDispatcher } from './dispatchers/local.js';
import { describeError, ScriptRunnerError } from './errors.js';
import { EventHub } from './events.js';
import { queueExecution } from './queue-execution.js';
import { notify, RunnerMonitor, type HealthReport, type RunnerObserver, type RunnerStats } from './observe.js';
import { resolveRetention, Sweeper, type RetentionStore, type SweepResult } from './retention.js';
import { DEFAULT_FOLLOW_PAGE, Follower, type FollowOptions, type LogFollow } from './follow.js';
import { Executor } from './executor.js';
import {
  checkId,
  checkList,
  durationMs,
  EXECUTION_STATUSES,
  LOG_LEVELS,
  LOG_STREAMS,
  listScriptsQuery,
  MAX_PAGE,
  positiveInt,
  resolveSettings,
  validateArgs,
  type ListExecutionsOptions,
  type ListScriptsOptions,
  type Logger,
  type ReadLogsOptions,
  type RunOptions,
  type ScriptRunnerOptions,
  type Settings,
} from './options.js';
import { validateEnv } from './process/env.js';
import { chooseEnvironment } from './python/named-environments.js';
import { listScriptsWithLastExecution } from './script-list.js';
import type { ArtifactContent, Store } from './store.js';
import { memoryStore } from './stores/memory.js';
import type { Transport } from './transport.js';
import { logFileTransport } from './transports/log-file.js';
import {
  isTerminalStatus,
  type Artifact,
  type Execution,
  type LogLine,
  type Page,
  type Script,
  type ScriptWithLastExecution,
} from './types.js';
import type { UploadInput } from './upload.js';
import { createScript, findScript, findScriptContent, setScriptStatus, type ScriptContext } from './scripts.js';

export type { ListExecutionsOptions, ListScriptsOptions, Logger, ReadLogsOptions, RunOptions, ScriptRunnerOptions } from './options.js';
export type { ScriptRunner } from './api.js';

const MAX_LOG_PAGE = 10_000;
const WAIT_POLL_MS = 500;
/** Beyond killGraceMs, how long cancel() waits for a remote runner to report the end. */
const REMOTE_CANCEL_SLACK_MS = 5000;

class Runner extends EventHub implements ScriptRunner {
  private readonly settings: Settings;
  private readonly store: Store;
  protected readonly transports: Transport[];
  protected readonly logger: Logger;
  protected readonly dispatcher: Dispatcher;
  private readonly executor: Executor;
  private readonly scripts: ScriptContext;
  private readonly runCalls = new Set<Promise<Execution>>();
  private readonly ready: Promise<void>;
  private closed = false;
  private closing: Promise<void> | null = null;
  private readonly sweeper: Sweeper | null;
  protected readonly observers: readonly RunnerObserver[];
  private readonly monitor: RunnerMonitor;

  constructor(options: ScriptRunnerOptions) {
    super();
    this.logger = options.logger ?? console;
    this.settings = resolveSettings(options, this.logger, memoryStore);
    this.observers = this.settings.observers;
    this.store = this.settings.store;
    this.transports = [...this.settings.transports];
    if (this.settings.logDir !== null) this.transports.push(logFileTransport(this.settings.logDir));
    this.dispatcher =
      options.dispatcher ?? new LocalDispatcher({ concurrency: this.settings.concurrency, maxQueued: this.settings.maxQueued });
    this.executor = new Executor(
      this.settings,
      {
        publish: (event) => this.publish(event),
        publishHere: (event) => this.publishHere(event),
        emitLocal: (event) => this.emitLocal(event),
        error: (error) => this.reportError(error),
        dropped: (what, count) => notify(this.observers, (o) => o.dropped?.(what, count)),
      },
    );
    this.ready = this.executor.ready;
    this.scripts = { settings: this.settings, store: this.store, call: (fn) => this.storeCall(fn), publish: (event) => this.publish(event) };
    this.dispatcher.attach(this.executor);
    const retention = resolveRetention(options.retention, this.store);
    this.sweeper = retention && new Sweeper(retention, this.store as RetentionStore, (error) => this.reportError(error), this.observers);
    this.sweeper?.scheduleWhenReady(this.ready, this.dispatcher);
    this.monitor = new RunnerMonitor({
      store: this.store,
      dispatcher: this.dispatcher,
      running: () => this.executor.runningCount,
      sandbox: this.settings.run.sandbox,
      isOpen: () => !this.closed,
    });
    notify(this.observers, (o) => o.attach?.(this));
  }

  // ------------------------------------------------------------------ scripts

  async uploadScript(input: UploadInput): Promise<Script> {
    await this.open();
    return createScript(this.scripts, input);
  }

  async listScripts(options: ListScriptsOptions = {}): Promise<Page<Script>> {
    await this.ready;
    const query = listScriptsQuery(options);
    return this.storeCall(() => this.store.listScripts(query));
  }

  async listScriptsWithLastExecution(options: ListScriptsOptions = {}): Promise<Page<ScriptWithLastExecution>> {
    await this.ready;
    const query = listScriptsQuery(options);
    return this.storeCall(() => listScriptsWithLastExecution(this.store, query));
  }

  async getScript(id: string): Promise<Script> {
    await this.ready;
    return findScript(this.scripts, id);
  }

  async getScriptContent(id: string): Promise<Uint8Array> {
    await this.ready;
    return findScriptContent(this.scripts, id);
  }

  async archiveScript(id: string): Promise<Script> {
    await this.open();
    return setScriptStatus(this.scripts, id, 'archived');
  }

  async restoreScript(id: string): Promise<Script> {
    await this.open();
    return setScriptStatus(this.scripts, id, 'active');
  }

  // --------------------------------------------------------------- executions

  run(scriptId: string, options: RunOptions = {}): Promise<Execution> {
    // close() waits for calls that are past their first check, so none can start a child after it.
    const call = this.queueRun(scriptId, options);
    this.runCalls.add(call);
    const forget = () => this.runCalls.delete(call);
    call.then(forget, forget);
    return call;
  }

  private async queueRun(scriptId: string, options: RunOptions): Promise<Execution> {
    await this.open();
    checkId(scriptId, 'script');
    const args = validateArgs(options.args);
    const env = validateEnv(options.env, 'env');
    if (options.timeoutMs !== undefined) durationMs(options.timeoutMs, 0, 'timeoutMs');
    const script = await this.getScript(scriptId);
    if (script.status !== 'active') {
      throw new ScriptRunnerError('conflict', `script ${scriptId} (${script.filename}) is archived and cannot be run`, {
        details: { scriptId },
      });
    }
    if (this.settings.runtimes[script.runtime] === undefined) {
      throw new ScriptRunnerError('conflict', `script ${scriptId} needs the "${script.runtime}" runtime, which is not configured`);
    }
    const environment = chooseEnvironment(this.settings.environments, script, options.environment);
    // Runs here cannot start without the sandbox the options ask for: say so before storing anything.
    if (this.dispatcher instanceof LocalDispatcher) await this.settings.run.sandbox;
    return queueExecution(
      {
        store: this.store,
        dispatcher: this.dispatcher,
        executor: this.executor,
        call: (fn) => this.storeCall(fn),
        publish: (event) => this.publish(event),
        isClosed: () => this.closed,
      },
      { scriptId, args, environment, env, timeoutMs: options.timeoutMs },
    );
  }

  async waitFor(executionId: string): Promise<Execution> {
    await this.ready;
    checkId(executionId, 'execution');
    const here = await this.executor.done(executionId);
    // Not here (waiting in a queue, on another runner) or already over: until the store says terminal.
    if (here && isTerminalStatus(here.status)) return here;
    return this.awaitTerminal(executionId, Number.POSITIVE_INFINITY);
  }

  async cancel(executionId: string): Promise<Execution> {
    await this.ready;
    checkId(executionId, 'execution');
    // Running here: stop it here. Otherwise the dispatcher removes it from its queue or reaches the
    // runner running it; a runner that is gone cannot answer, so then the record as it stands
    // after a stop's time (SIGTERM, grace, SIGKILL) plus delivery is the answer.
    let refused: unknown = null;
    if (!this.executor.stop(executionId, 'cancelled', 'cancelled by request')) {
      const execution = await this.getExecution(executionId);
      if (isTerminalStatus(execution.status)) return execution;
      // A conflict may only mean that it left the queue meanwhile (another cancel, a start, close):
      // the record decides below.
      await this.dispatcher.cancel(executionId).catch((error: unknown) => {
        if (!(error instanceof ScriptRunnerError && error.code === 'conflict')) throw error;
        refused = error;
      });
    }
    const here = await this.executor.done(executionId);
    if (here && isTerminalStatus(here.status)) return here;
    const final = await this.awaitTerminal(executionId, Date.now() + this.settings.run.killGraceMs + REMOTE_CANCEL_SLACK_MS);
    if (refused !== null && !isTerminalStatus(final.status)) throw refused;
    return final;
  }

  async getExecution(id: string): Promise<Execution> {
    await this.ready;
    checkId(id, 'execution');
    const execution = await this.storeCall(() => this.store.getExecution(id));
    if (execution === null) throw new ScriptRunnerError('not_found', `no execution with id ${id}`, { details: { id } });
    const unsaved = this.executor.unsavedRecord(id);
    if (unsaved && !isTerminalStatus(execution.status)) return { ...unsaved };
    // The stored lineCount is written at the end; while running, report what is stored so far.
    const live = this.executor.liveLineCount(id);
    if (live !== undefined && !isTerminalStatus(execution.status)) execution.lineCount = live;
    return execution;
  }

  async listExecutions(options: ListExecutionsOptions = {}): Promise<Page<Execution>> {
    await this.ready;
    const limit = positiveInt(options.limit, 50, 'limit', 1, MAX_PAGE);
    const query: Parameters<Store['listExecutions']>[0] = { limit, cursor: options.cursor ?? null };
    if (options.scriptId !== undefined) query.scriptId = checkId(options.scriptId, 'script', 'scriptId');
    if (options.status !== undefined) {
      if (!EXECUTION_STATUSES.includes(options.status)) {
        throw new ScriptRunnerError('validation', `status must be one of ${EXECUTION_STATUSES.join(', ')}`);
      }
      query.status = options.status;
    }
    return this.storeCall(() => this.store.listExecutions(query));
  }

  async listArtifacts(executionId: string): Promise<Artifact[]> {
    await this.getExecution(executionId);
    return listArtifactsOf(this.store, executionId, (fn) => this.storeCall(fn));
  }

  async readArtifact(executionId: string, name: string): Promise<ArtifactContent> {
    checkArtifactName(name);
    await this.getExecution(executionId);
    return readArtifactOf(this.store, executionId, name, (fn) => this.storeCall(fn));
  }

  async readLogs(executionId: string, options: ReadLogsOptions = {}): Promise<LogLine[]> {
    await this.ready;
    checkId(executionId, 'execution');
    const afterSeq = positiveInt(options.afterSeq, 0, 'afterSeq', 0);
    // Rejected rather than capped: a caller that reads a short page as "the end" must not be misled.
    const limit = positiveInt(options.limit, 1000, 'limit', 1, MAX_LOG_PAGE);
    const levels = checkList(options.levels, LOG_LEVELS, 'levels');
    const streams = checkList(options.streams, LOG_STREAMS, 'streams');
    const execution = await this.storeCall(() => this.store.getExecution(executionId));
    if (execution === null) {
      throw new ScriptRunnerError('not_found', `no execution with id ${executionId}`, { details: { id: executionId } });
    }
    const query: Parameters<Store['readLogs']>[1] = { afterSeq, limit };
    if (levels) query.levels = levels;
    if (streams) query.streams = streams;
    return this.storeCall(() => this.store.readLogs(executionId, query));
  }

  async follow(executionId: string, options: FollowOptions = {}): Promise<LogFollow> {
    await this.open();
    checkId(executionId, 'execution');
    const afterSeq = positiveInt(options.afterSeq, 0, 'afterSeq', 0);
    const pageSize = positiveInt(options.pageSize, DEFAULT_FOLLOW_PAGE, 'pageSize', 1, MAX_LOG_PAGE);
    const maxBufferedLines = positiveInt(options.maxBufferedLines, 10 * pageSize, 'maxBufferedLines', 1);
    const read = (after: number, limit: number) => this.storeCall(() => this.store.readLogs(executionId, { afterSeq: after, limit }));
    const follower = new Follower(executionId, read, this.follows.remove, options.signal, { afterSeq, pageSize, maxBufferedLines });
    // Capture first: whatever is published from here on reaches the follower, so no read below can
    // miss it — once the dispatcher delivers this execution's events here (a fleet's web node).
    const watching = this.follows.add(follower);
    try {
      await watching;
      follower.start(await this.getExecution(executionId));
    } catch (error) {
      follower.close();
      throw error;
    }
    return follower;
  }

  async sweep(): Promise<SweepResult> {
    await this.open();
    if (!this.sweeper) throw new ScriptRunnerError('validation', 'sweep() needs the retention option (e.g. { retention: { maxAgeMs } })');
    return this.storeCall(() => this.sweeper!.sweep());
  }

  stats(): Promise<RunnerStats> {
    return this.monitor.stats();
  }

  async health(options: { timeoutMs?: number } = {}): Promise<HealthReport> {
    return this.monitor.health(positiveInt(options.timeoutMs, 2000, 'timeoutMs', 1, 60_000));
  }

  // ---------------------------------------------------------------- lifecycle

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.closed = true;
    this.executor.closed = true;
    await this.ready.catch(() => undefined);
    await this.sweeper?.stop();
    // Nothing starts from here on: the dispatcher takes no new work (the local one ends its
    // waiting executions as interrupted); running ones are stopped. A dispatcher may wait for its
    // running jobs, which end below.
    const dispatcherClosed = this.dispatcher.close?.().catch((error: unknown) => this.reportError(error));
    this.executor.stopAll('interrupted', 'the runner was closed');
    await Promise.allSettled([...this.runCalls]);
    await this.executor.settled();
    await dispatcherClosed;
    for (const transport of this.transports) {
      try {
        await transport.close?.();
      } catch (error) {
        this.reportError(error);
      }
    }
    // Follows of executions that ran here ended with their finish; the rest (running elsewhere) end now.
    this.follows.closeAll();
    notify(this.observers, (o) => o.detach?.(this));
    if (this.settings.ownsStore) await this.store.close?.();
  }

  // ---------------------------------------------------------------- internals

  private async open(): Promise<void> {
    if (this.closed) throw new ScriptRunnerError('closed', 'the runner is closed');
    await this.ready;
    if (this.closed) throw new ScriptRunnerError('closed', 'the runner is closed');
  }

  /**
   * Reads the execution until it is terminal, woken by its `execution:finished` from anywhere (the
   * store every WAIT_POLL_MS as a fallback); at `deadline` the record as it stands is returned.
   */
  private async awaitTerminal(executionId: string, deadline: number): Promise<Execution> {
    for (;;) {
      // Listen before reading: a finish that arrives while the read is in flight must still wake us.
      const finished = this.finishedOrTimeout(executionId, Math.min(WAIT_POLL_MS, Math.max(1, deadline - Date.now())));
      let execution: Execution;
      try {
        execution = await this.getExecution(executionId);
      } catch (error) {
        finished.cancel();
        throw error;
      }
      if (isTerminalStatus(execution.status) || Date.now() >= deadline) {
        finished.cancel();
        return execution;
      }
      const here = this.executor.done(executionId);
      if (here) {
        finished.cancel();
        const final = await here;
        if (final && isTerminalStatus(final.status)) return final;
        continue;
      }
      await finished.promise;
    }
  }

  private async storeCall<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      if (error instanceof ScriptRunnerError) throw error;
      throw new ScriptRunnerError('store', `the store failed: ${describeError(error)}`, { cause: error });
    }
  }
}

/**
 * Creates a runner. With no options it keeps everything in memory and runs `test_*.py` /
 * `experiment_*.py` uploads with `python3 -u`, two at a time.
 */
export function createScriptRunner(options: ScriptRunnerOptions = {}): ScriptRunner {
  return new Runner(options);
}
