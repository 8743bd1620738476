/**
 * createScriptRunner: the public methods and events, wiring store, dispatch, process control and
 * the line pipeline together.
 */
import { tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { EventEmitter } from 'eventemitter3';
import { nanoid } from 'nanoid';
import { describeError, ScriptRunnerError } from './errors.js';
import { ExecutionRun } from './execution.js';
import type { RetryPolicy } from './lines/batcher.js';
import { defaultClassifyLine } from './lines/classify.js';
import { validateEnv } from './process/env.js';
import { validateSandboxOptions, type IsolationMode, type IsolationWrapper } from './process/isolation.js';
import { limitsWrapper, resolveLimits, type ResourceLimits } from './process/limits.js';
import { resolveRunCaps } from './process/run-caps.js';
import { resolveSandboxUser } from './process/run-as.js';
import { findExecutable } from './process/which.js';
import { resolveRuntimes } from './process/runtimes.js';
import { removeLeftRunDirectories } from './process/workdir.js';
import type { DispatchHost, Dispatcher, DispatchRequest } from './dispatch.js';
import { InProcessQueue } from './queue.js';
import type { Store } from './store.js';
import { memoryStore } from './stores/memory.js';
import type { Transport } from './transport.js';
import {
  isTerminalStatus,
  type Execution,
  type ExecutionStatus,
  type LineClassifier,
  type LogLevel,
  type LogLine,
  type LogStream,
  type Page,
  type RunnerEvent,
  type RuntimeConfig,
  type Script,
  type ScriptRunnerEvents,
  type ScriptStatus,
} from './types.js';
import {
  DEFAULT_FILENAME_PATTERN,
  DEFAULT_MAX_UPLOAD_BYTES,
  validateUpload,
  type UploadInput,
  type UploadOptions,
} from './upload.js';
import { MAX_TIMER_MS, sleep, withRetry } from './util.js';

export interface Logger {
  warn(message: string): void;
  error(message: string): void;
  /** When present, the runner says at start which limits bind the whole run and which each process. */
  info?(message: string): void;
}

export interface ScriptRunnerOptions {
  /** Where scripts, executions and lines live. Default: `memoryStore()`. */
  store?: Store;
  /** Receive every published event after the store has it (e.g. the Socket.IO adapter). */
  transports?: Transport[];
  /** Executions running at once. Default 2. */
  concurrency?: number;
  /** Executions waiting beyond `concurrency`; more makes `run` reject with `queue_full`. Default 100. */
  maxQueued?: number;
  /** Default per-run timeout in ms; 0 disables it. Default 3,600,000 (one hour). */
  timeoutMs?: number;
  /** Between SIGTERM and SIGKILL when a run is stopped. Default 5,000. */
  killGraceMs?: number;
  /** After the main process exits, how long a background process may keep the pipes open. Default 1,000. */
  drainTimeoutMs?: number;
  /** Longer lines are cut with a marker and the execution is marked `truncated`. Default 65,536. */
  maxLineBytes?: number;
  /**
   * Upper bound on how long a buffered line waits before its write starts when no write is in
   * flight. Lines are normally written at the end of the read that produced them. Default 10.
   */
  flushIntervalMs?: number;
  /** Most lines in one `appendLogs` call. Default 2,000. */
  maxBatchLines?: number;
  /** At most one `execution:progress` event per stream per this many ms. Default 100. */
  progressIntervalMs?: number;
  /** Retries of log and status writes while a run is active. Default 8 attempts, 100 ms doubling to 5 s. */
  storeRetry?: Partial<RetryPolicy>;
  upload?: UploadOptions;
  /** Merged field by field over the built-in `python` runtime; new names add runtimes. */
  runtimes?: Record<string, Partial<RuntimeConfig>>;
  /** Variables every script gets, on top of the host allowlist (PATH, LANG, LC_*, TZ, TERM). */
  env?: Record<string, string>;
  /** Root of the per-execution run directories. Default `<os tmpdir>/scriptrunner`. */
  workDir?: string;
  /** Keep each run directory after the run (for debugging). Default false. */
  keepWorkDir?: boolean;
  /** Decides the level of each stdout/stderr line. */
  classifyLine?: LineClassifier;
  /** When set, each execution also writes `<logDir>/<executionId>.log` as plain text. */
  logDir?: string;
  /**
   * Mark executions left `queued`/`running` by a runner that died as `interrupted` at start.
   * Default true without a `dispatcher`, false with one (several runners share the store).
   */
  recoverOnStart?: boolean;
  /**
   * Where queued executions run. Default: here, `concurrency` at a time. A dispatcher such as
   * @scriptrunner/queue-bullmq runs them on workers elsewhere and brings their events back.
   */
  dispatcher?: Dispatcher;
  /** Where warnings and unhandled errors go. Default `console`. */
  logger?: Logger;
  /**
   * How scripts are confined. `auto` (default): bubblewrap when it works on this host, otherwise
   * none, with one warning through `logger`. `bwrap`: bubblewrap or a `unavailable` error here.
   * `none`: the script can do what this process can. A function wraps the command yourself.
   * See the README's Security section for what each mode does and does not protect against.
   */
  isolation?: IsolationMode | IsolationWrapper;
  /** With bubblewrap: keep the host's network. Default false (a private loopback only). */
  allowNetwork?: boolean;
  /** With bubblewrap: absolute host paths mounted read-only at the same place (models, a venv). */
  readPaths?: string[];
  /**
   * Resource limits in every isolation mode; `null` lifts one. Whole-run caps (a cgroup per run for
   * `maxProcesses` and `memoryBytes`, a size-capped run directory) where the host allows them,
   * per-process limits (prlimit) always. The runner says at start which bind what.
   */
  limits?: ResourceLimits;
  /**
   * When the host runs as root: run scripts as this user and group instead. Default when scripts
   * are sandboxed (isolation resolves to bubblewrap): 65534 (nobody). `null`: no switch.
   */
  runAs?: { uid: number; gid: number } | null;
  /** An execution printing more lines is stopped and ends `failed`, `truncated`. Default 10,000,000. */
  maxLogLines?: number;
  /** The same for the bytes of its output lines. Default 4 GiB. */
  maxLogBytes?: number;
}

export interface RunOptions {
  args?: string[];
  env?: Record<string, string>;
  /** Overrides the runner's `timeoutMs` for this run; 0 disables the timeout. */
  timeoutMs?: number;
}

export interface ListScriptsOptions {
  status?: ScriptStatus | 'all';
  limit?: number;
  cursor?: string | null;
}

export interface ListExecutionsOptions {
  scriptId?: string;
  status?: ExecutionStatus;
  limit?: number;
  cursor?: string | null;
}

export interface ReadLogsOptions {
  afterSeq?: number;
  /** 1..10,000; default 1,000. A page shorter than the limit means no more lines are stored yet. */
  limit?: number;
  levels?: LogLevel[];
  streams?: LogStream[];
}

/** What `createScriptRunner` returns. Events are typed by `ScriptRunnerEvents` (eventemitter3). */
export interface ScriptRunner
  extends Pick<EventEmitter<ScriptRunnerEvents>, 'on' | 'once' | 'off' | 'listenerCount'> {
  uploadScript(input: UploadInput): Promise<Script>;
  listScripts(options?: ListScriptsOptions): Promise<Page<Script>>;
  getScript(id: string): Promise<Script>;
  getScriptContent(id: string): Promise<Uint8Array>;
  archiveScript(id: string): Promise<Script>;
  /** Resolves once the execution is queued, not when it ends. */
  run(scriptId: string, options?: RunOptions): Promise<Execution>;
  /** Resolves when the execution is terminal. */
  waitFor(executionId: string): Promise<Execution>;
  /**
   * Stops an execution (a queued one never starts) and resolves with its final record. With a
   * dispatcher, an execution running elsewhere is reached there; if its runner does not report
   * the end within killGraceMs + 5 s (it died), the record as it stands is returned.
   */
  cancel(executionId: string): Promise<Execution>;
  getExecution(id: string): Promise<Execution>;
  listExecutions(options?: ListExecutionsOptions): Promise<Page<Execution>>;
  readLogs(executionId: string, options?: ReadLogsOptions): Promise<LogLine[]>;
  /** Stops accepting work, ends queued and running executions as `interrupted`, waits for them. */
  close(): Promise<void>;
}

const MAX_ARGS = 256;
const MAX_ARG_BYTES = 32 * 1024;
const MAX_PAGE = 1000;
const MAX_LOG_PAGE = 10_000;
const WAIT_POLL_MS = 500;
/** Beyond killGraceMs, how long cancel() waits for a remote runner to report the end. */
const REMOTE_CANCEL_SLACK_MS = 5000;

interface Active {
  run: ExecutionRun | null;
  /** A stop asked for before the run object existed (between dequeue and start). */
  stopRequest: { reason: 'cancelled' | 'interrupted'; message: string } | null;
  done: Promise<Execution>;
  resolve: (execution: Execution) => void;
}

function positiveInt(value: number | undefined, fallback: number, name: string, min = 1, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ScriptRunnerError('validation', `${name} must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}

/** A duration that feeds a timer: setTimeout fires at once for anything above MAX_TIMER_MS. */
function durationMs(value: number | undefined, fallback: number, name: string): number {
  return positiveInt(value, fallback, name, 0, MAX_TIMER_MS);
}

function statelessPattern(pattern: RegExp): RegExp {
  if (!(pattern instanceof RegExp)) throw new ScriptRunnerError('validation', 'upload.pattern must be a RegExp');
  return new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, ''));
}

function checkId(id: unknown, what: string): string {
  if (typeof id !== 'string' || id.length === 0 || id.length > 200) {
    throw new ScriptRunnerError('validation', `${what} id must be a non-empty string`);
  }
  return id;
}

class Runner extends EventEmitter<ScriptRunnerEvents> implements ScriptRunner {
  private readonly store: Store;
  private readonly ownsStore: boolean;
  private readonly transports: Transport[];
  private readonly runtimes: Record<string, RuntimeConfig>;
  private readonly upload: Required<UploadOptions>;
  private readonly queue: InProcessQueue;
  private readonly active = new Map<string, Active>();
  private readonly pendingRuns = new Map<string, { options: RunOptions; script: Script; execution: Execution }>();
  private readonly logger: Logger;
  private readonly runCalls = new Set<Promise<Execution>>();
  /** Final records the store refused (after retries): still the truth for waitFor/getExecution. */
  private readonly unsaved = new Map<string, Execution>();
  private readonly ready: Promise<void>;
  private readonly settings: ExecutionRunSettings;
  private readonly defaultTimeoutMs: number;
  private readonly dispatcher: Dispatcher | null;
  /** waitFor() calls on executions that run elsewhere, woken by their `execution:finished`. */
  private readonly finishWaiters = new Map<string, Set<() => void>>();
  private closed = false;
  private closing: Promise<void> | null = null;

  constructor(options: ScriptRunnerOptions) {
    super();
    this.logger = options.logger ?? console;
    this.store = options.store ?? memoryStore();
    this.ownsStore = options.store === undefined;
    this.transports = [...(options.transports ?? [])];
    this.runtimes = resolveRuntimes(options.runtimes);
    this.upload = {
      // A global or sticky RegExp keeps state between test() calls; the rule must not.
      pattern: statelessPattern(options.upload?.pattern ?? DEFAULT_FILENAME_PATTERN),
      maxBytes: positiveInt(options.upload?.maxBytes, DEFAULT_MAX_UPLOAD_BYTES, 'upload.maxBytes'),
    };
    this.defaultTimeoutMs = durationMs(options.timeoutMs, 3_600_000, 'timeoutMs');
    const retry = options.storeRetry ?? {};
    const limits = resolveLimits(options.limits);
    // tmpfs needs a size; "no limit" is the kernel's default of half the RAM.
    const sandbox = validateSandboxOptions(options.allowNetwork, options.readPaths, limits.tmpBytes ?? Math.floor(totalmem() / 2));
    const prlimit = findExecutable('prlimit');
    const { tmpBytes: _tmpBytes, runDirBytes: _runDirBytes, ...processLimits } = limits;
    const limited = Object.values(processLimits).some((v) => v !== null);
    if (limited && prlimit === null) {
      if (options.limits !== undefined) {
        throw new ScriptRunnerError('unavailable', 'limits need prlimit (util-linux), which is not on PATH');
      }
      this.logger.warn('[scriptrunner] prlimit (util-linux) is not on PATH: scripts run without resource limits.');
    }
    const workDir = resolve(options.workDir ?? join(tmpdir(), 'scriptrunner'));
    const { isolation, runAs } = resolveSandboxUser({
      isolation: options.isolation,
      runAs: options.runAs,
      sandbox,
      workDir,
      ownsWorkDir: options.workDir === undefined,
      warn: (message) => this.logger.warn(message),
      runtimeCommands: Object.values(this.runtimes).map((runtime) => runtime.command),
    });
    // Already that user: nothing to switch (and a non-root process may not call setgroups).
    const switchTo = runAs !== undefined && runAs.uid !== process.getuid?.() ? runAs : undefined;
    const caps = resolveRunCaps({ limits, given: options.limits, runAs: switchTo, prlimit: prlimit !== null, warn: (message) => this.logger.warn(message) });
    this.logger.info?.(caps.summary);
    this.settings = {
      store: this.store,
      killGraceMs: durationMs(options.killGraceMs, 5_000, 'killGraceMs'),
      drainTimeoutMs: durationMs(options.drainTimeoutMs, 1_000, 'drainTimeoutMs'),
      maxLineBytes: positiveInt(options.maxLineBytes, 65_536, 'maxLineBytes', 16),
      flushIntervalMs: durationMs(options.flushIntervalMs, 10, 'flushIntervalMs'),
      maxBatchLines: positiveInt(options.maxBatchLines, 2_000, 'maxBatchLines'),
      progressIntervalMs: durationMs(options.progressIntervalMs, 100, 'progressIntervalMs'),
      storeRetry: {
        attempts: positiveInt(retry.attempts, 8, 'storeRetry.attempts'),
        minDelayMs: durationMs(retry.minDelayMs, 100, 'storeRetry.minDelayMs'),
        maxDelayMs: durationMs(retry.maxDelayMs, 5_000, 'storeRetry.maxDelayMs'),
        attemptTimeoutMs: positiveInt(retry.attemptTimeoutMs, 30_000, 'storeRetry.attemptTimeoutMs', 1, MAX_TIMER_MS),
      },
      workDir,
      ownsWorkDir: options.workDir === undefined,
      keepWorkDir: options.keepWorkDir ?? false,
      logDir: options.logDir === undefined ? null : resolve(options.logDir),
      classifyLine: options.classifyLine ?? defaultClassifyLine,
      env: validateEnv(options.env, 'env'),
      isolation,
      applyLimits: limited && prlimit !== null ? limitsWrapper(caps.processLimits, prlimit) : (spec) => spec,
      limits,
      runAs: switchTo,
      caps,
      maxLogLines: positiveInt(options.maxLogLines, 10_000_000, 'maxLogLines'),
      maxLogBytes: positiveInt(options.maxLogBytes, 4 * 1024 ** 3, 'maxLogBytes'),
    };
    this.queue = new InProcessQueue(
      positiveInt(options.concurrency, 2, 'concurrency'),
      positiveInt(options.maxQueued, 100, 'maxQueued', 0),
      (id) => this.execute(id),
    );
    this.dispatcher = options.dispatcher ?? null;
    const startedAt = new Date();
    const recover = options.recoverOnStart ?? this.dispatcher === null;
    this.ready = recover ? this.recover(startedAt) : Promise.resolve();
    this.dispatcher?.attach(this.dispatchHost());
  }

  // ------------------------------------------------------------------ scripts

  async uploadScript(input: UploadInput): Promise<Script> {
    await this.open();
    const upload = validateUpload(input, this.upload, this.runtimes);
    const now = new Date();
    const script = await this.storeCall(() =>
      this.store.createScript({
        id: nanoid(),
        filename: upload.filename,
        runtime: upload.runtime,
        sizeBytes: upload.content.byteLength,
        sha256: upload.sha256,
        description: upload.description,
        metadata: upload.metadata,
        status: 'active',
        createdAt: now,
        updatedAt: now,
        lastRunAt: null,
        totalRuns: 0,
        content: upload.content,
      }),
    );
    this.publish({ type: 'script:created', data: script });
    return script;
  }

  async listScripts(options: ListScriptsOptions = {}): Promise<Page<Script>> {
    await this.ready;
    const status = options.status ?? 'active';
    if (!['active', 'archived', 'all'].includes(status)) {
      throw new ScriptRunnerError('validation', `status must be active, archived or all, got ${String(status)}`);
    }
    const limit = positiveInt(options.limit, 50, 'limit', 1, MAX_PAGE);
    return this.storeCall(() => this.store.listScripts({ status, limit, cursor: options.cursor ?? null }));
  }

  async getScript(id: string): Promise<Script> {
    await this.ready;
    checkId(id, 'script');
    const script = await this.storeCall(() => this.store.getScript(id));
    if (script === null) throw new ScriptRunnerError('not_found', `no script with id ${id}`, { details: { id } });
    return script;
  }

  async getScriptContent(id: string): Promise<Uint8Array> {
    await this.ready;
    checkId(id, 'script');
    const content = await this.storeCall(() => this.store.getScriptContent(id));
    if (content === null) throw new ScriptRunnerError('not_found', `no script with id ${id}`, { details: { id } });
    return content;
  }

  async archiveScript(id: string): Promise<Script> {
    await this.open();
    const script = await this.getScript(id);
    if (script.status === 'archived') return script;
    const updated = await this.storeCall(() =>
      this.store.updateScript(id, { status: 'archived', updatedAt: new Date() }),
    );
    if (updated === null) throw new ScriptRunnerError('not_found', `no script with id ${id}`, { details: { id } });
    this.publish({ type: 'script:archived', data: updated });
    return updated;
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
    const args = this.validateArgs(options.args);
    const env = validateEnv(options.env, 'env');
    if (options.timeoutMs !== undefined) durationMs(options.timeoutMs, 0, 'timeoutMs');
    const script = await this.getScript(scriptId);
    if (script.status !== 'active') {
      throw new ScriptRunnerError('conflict', `script ${scriptId} (${script.filename}) is archived and cannot be run`, {
        details: { scriptId },
      });
    }
    if (this.runtimes[script.runtime] === undefined) {
      throw new ScriptRunnerError('conflict', `script ${scriptId} needs the "${script.runtime}" runtime, which is not configured`);
    }
    // Claim the waiting place before anything is stored, so a full queue leaves no trace.
    if (this.dispatcher) await this.dispatcher.admit?.();
    else this.queue.reserve();
    const release = () => {
      if (this.dispatcher) this.dispatcher.release?.();
      else this.queue.release();
    };
    let execution: Execution;
    const queuedAt = new Date();
    try {
      execution = await this.storeCall(() =>
        this.store.createExecution({
          id: nanoid(),
          scriptId,
          status: 'queued',
          args,
          exitCode: null,
          signal: null,
          queuedAt,
          startedAt: null,
          finishedAt: null,
          durationMs: null,
          lineCount: 0,
          errorMessage: null,
          truncated: false,
        }),
      );
    } catch (error) {
      release();
      throw error;
    }
    try {
      await this.storeCall(() => this.store.recordRun(scriptId, queuedAt));
      if (this.closed) throw new ScriptRunnerError('closed', 'the runner was closed before the execution was queued');
    } catch (error) {
      // The row exists but will never run: end it so nobody waits on it.
      release();
      const message = error instanceof ScriptRunnerError && error.code === 'closed' ? 'the runner was closed before it started' : `could not record the run: ${describeError(error)}`;
      await this.endUnstarted(execution, error instanceof ScriptRunnerError && error.code === 'closed' ? 'interrupted' : 'failed', message);
      throw error;
    }
    if (this.dispatcher) return this.dispatchRun(execution, env, options.timeoutMs);
    const runOptions: RunOptions = { args };
    if (env !== undefined) runOptions.env = env;
    if (options.timeoutMs !== undefined) runOptions.timeoutMs = options.timeoutMs;
    this.pendingRuns.set(execution.id, { options: runOptions, script, execution });
    this.track(execution.id);
    this.publish({ type: 'execution:queued', data: execution });
    this.queue.enqueue(execution.id);
    return execution;
  }

  /** Hands a stored queued execution to the dispatcher; one it cannot take ends `failed`. */
  private async dispatchRun(execution: Execution, env: Record<string, string> | undefined, timeoutMs: number | undefined): Promise<Execution> {
    this.publish({ type: 'execution:queued', data: execution });
    const request: DispatchRequest = { executionId: execution.id };
    // Only a timeout the caller chose travels: otherwise the runner that runs it applies its own.
    if (timeoutMs !== undefined) request.timeoutMs = timeoutMs;
    if (env !== undefined) request.env = env;
    try {
      await this.dispatcher!.dispatch(request);
    } catch (error) {
      await this.endUnstarted(execution, 'failed', `could not dispatch the execution: ${describeError(error)}`);
      if (error instanceof ScriptRunnerError) throw error;
      throw new ScriptRunnerError('unavailable', `could not dispatch execution ${execution.id}: ${describeError(error)}`, { cause: error });
    }
    return execution;
  }

  async waitFor(executionId: string): Promise<Execution> {
    await this.ready;
    checkId(executionId, 'execution');
    const active = this.active.get(executionId);
    if (active) return active.done;
    // Not ours (another runner on the same store) or already over: read the store until terminal.
    return this.awaitTerminal(executionId, Number.POSITIVE_INFINITY);
  }

  /**
   * Reads the execution until it is terminal, woken by its `execution:finished` from anywhere (the
   * store every WAIT_POLL_MS as a fallback); at `deadline` the record as it stands is returned.
   * getExecution also answers from the results this runner could not store.
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
      const local = this.active.get(executionId);
      if (local) {
        finished.cancel();
        return local.done;
      }
      await finished.promise;
    }
  }

  /** Resolves on the next `execution:finished` of that execution (from anywhere) or after `ms`. */
  private finishedOrTimeout(executionId: string, ms: number): { promise: Promise<void>; cancel: () => void } {
    let waiters = this.finishWaiters.get(executionId);
    if (!waiters) this.finishWaiters.set(executionId, (waiters = new Set()));
    const set = waiters;
    let resolve!: () => void;
    const promise = new Promise<void>((r) => {
      resolve = r;
    });
    const done = () => {
      clearTimeout(timer);
      set.delete(done);
      if (set.size === 0 && this.finishWaiters.get(executionId) === set) this.finishWaiters.delete(executionId);
      resolve();
    };
    const timer = setTimeout(done, ms);
    set.add(done);
    return { promise, cancel: done };
  }

  private wakeWaiters(event: RunnerEvent): void {
    if (event.type !== 'execution:finished') return;
    const waiters = this.finishWaiters.get(event.data.id);
    if (waiters) for (const wake of [...waiters]) wake();
  }

  async cancel(executionId: string): Promise<Execution> {
    await this.ready;
    checkId(executionId, 'execution');
    const active = this.active.get(executionId);
    if (!active) {
      const execution = await this.getExecution(executionId);
      if (isTerminalStatus(execution.status)) return execution;
      if (this.dispatcher) {
        // It runs (or waits) elsewhere: the dispatcher removes it or reaches the runner running it.
        // Wait for the end as long as a stop takes there (SIGTERM, grace, SIGKILL) plus delivery;
        // a runner that is gone cannot answer, so then the record as it stands is the answer.
        await this.dispatcher.cancel(executionId);
        return this.awaitTerminal(executionId, Date.now() + this.settings.killGraceMs + REMOTE_CANCEL_SLACK_MS);
      }
      throw new ScriptRunnerError('conflict', `execution ${executionId} is ${execution.status} in another runner`, {
        details: { executionId },
      });
    }
    const pending = this.pendingRuns.get(executionId);
    if (pending && this.queue.remove(executionId)) {
      // It never started and never will.
      await this.endUnstarted(pending.execution, 'cancelled', 'cancelled before it started');
    } else {
      this.stopActive(active, 'cancelled', 'cancelled by request');
    }
    return active.done;
  }

  async getExecution(id: string): Promise<Execution> {
    await this.ready;
    checkId(id, 'execution');
    const execution = await this.storeCall(() => this.store.getExecution(id));
    if (execution === null) throw new ScriptRunnerError('not_found', `no execution with id ${id}`, { details: { id } });
    const unsaved = this.unsaved.get(id);
    if (unsaved && !isTerminalStatus(execution.status)) return { ...unsaved };
    // The stored lineCount is written at the end; while running, report what is stored so far.
    const run = this.active.get(id)?.run;
    if (run && !isTerminalStatus(execution.status)) execution.lineCount = run.persistedLineCount;
    return execution;
  }

  async listExecutions(options: ListExecutionsOptions = {}): Promise<Page<Execution>> {
    await this.ready;
    const limit = positiveInt(options.limit, 50, 'limit', 1, MAX_PAGE);
    const query: Parameters<Store['listExecutions']>[0] = { limit, cursor: options.cursor ?? null };
    if (options.scriptId !== undefined) query.scriptId = checkId(options.scriptId, 'script');
    if (options.status !== undefined) {
      const statuses: ExecutionStatus[] = ['queued', 'running', 'succeeded', 'failed', 'cancelled', 'timed_out', 'interrupted'];
      if (!statuses.includes(options.status)) {
        throw new ScriptRunnerError('validation', `status must be one of ${statuses.join(', ')}`);
      }
      query.status = options.status;
    }
    return this.storeCall(() => this.store.listExecutions(query));
  }

  async readLogs(executionId: string, options: ReadLogsOptions = {}): Promise<LogLine[]> {
    await this.ready;
    checkId(executionId, 'execution');
    const afterSeq = positiveInt(options.afterSeq, 0, 'afterSeq', 0);
    // Rejected rather than capped: a caller that reads a short page as "the end" must not be misled.
    const limit = positiveInt(options.limit, 1000, 'limit', 1, MAX_LOG_PAGE);
    const levels = this.checkList(options.levels, ['info', 'warn', 'error'], 'levels');
    const streams = this.checkList(options.streams, ['stdout', 'stderr', 'system'], 'streams');
    const execution = await this.storeCall(() => this.store.getExecution(executionId));
    if (execution === null) {
      throw new ScriptRunnerError('not_found', `no execution with id ${executionId}`, { details: { id: executionId } });
    }
    const query: Parameters<Store['readLogs']>[1] = { afterSeq, limit };
    if (levels) query.levels = levels;
    if (streams) query.streams = streams;
    return this.storeCall(() => this.store.readLogs(executionId, query));
  }

  // ---------------------------------------------------------------- lifecycle

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.closed = true;
    await this.ready.catch(() => undefined);
    // Nothing starts from here on: waiting runs end as interrupted, running ones are stopped. A
    // dispatcher stops taking work now; it may wait for its running jobs, which end below.
    const dispatcherClosed = this.dispatcher?.close?.().catch((error: unknown) => this.reportError(error));
    const waiting = this.queue.stop();
    for (const active of this.active.values()) this.stopActive(active, 'interrupted', 'the runner was closed');
    await Promise.all(
      waiting.map((id) => {
        const pending = this.pendingRuns.get(id);
        return pending ? this.endUnstarted(pending.execution, 'interrupted', 'the runner was closed before it started') : undefined;
      }),
    );
    await Promise.allSettled([...this.runCalls]);
    await Promise.all([...this.active.values()].map((a) => a.done));
    await dispatcherClosed;
    for (const transport of this.transports) {
      try {
        await transport.close?.();
      } catch (error) {
        this.reportError(error);
      }
    }
    if (this.ownsStore) await this.store.close?.();
  }

  // ---------------------------------------------------------------- internals

  private async open(): Promise<void> {
    if (this.closed) throw new ScriptRunnerError('closed', 'the runner is closed');
    await this.ready;
    if (this.closed) throw new ScriptRunnerError('closed', 'the runner is closed');
  }

  private async recover(startedAt: Date): Promise<void> {
    try {
      const interrupted = await this.store.interruptStaleExecutions({
        queuedBefore: startedAt,
        finishedAt: new Date(),
        errorMessage: 'the runner stopped before this execution finished',
      });
      for (const execution of interrupted) this.publish({ type: 'execution:finished', data: execution });
      for (const execution of interrupted) await this.settings.caps.removeLeftovers(this.settings.workDir, execution.id, this.settings.keepWorkDir);
    } catch (error) {
      this.reportError(new ScriptRunnerError('store', `could not recover stale executions: ${describeError(error)}`, { cause: error }));
    }
  }

  private track(executionId: string): void {
    let resolveDone!: (execution: Execution) => void;
    const done = new Promise<Execution>((r) => {
      resolveDone = r;
    });
    this.active.set(executionId, { run: null, stopRequest: null, done, resolve: resolveDone });
  }

  private stopActive(active: Active, reason: 'cancelled' | 'interrupted', message: string): void {
    if (active.run) active.run.stop(reason, message);
    else active.stopRequest ??= { reason, message };
  }

  private untrack(execution: Execution): void {
    const active = this.active.get(execution.id);
    this.active.delete(execution.id);
    this.pendingRuns.delete(execution.id);
    active?.resolve(execution);
  }

  /** Called by the queue when a slot is free. Never rejects. */
  private async execute(executionId: string): Promise<void> {
    const pending = this.pendingRuns.get(executionId);
    const active = this.active.get(executionId);
    if (!pending || !active) return;
    const { script, options, execution } = pending;
    const runtime = this.runtimes[script.runtime]!;
    const run = new ExecutionRun(
      {
        execution,
        script,
        runtime,
        env: options.env,
        timeoutMs: options.timeoutMs ?? this.defaultTimeoutMs,
      },
      this.settings,
      {
        started: (execution) => this.publish({ type: 'execution:started', data: execution }),
        log: (lines) => this.publish({ type: 'execution:log', data: { executionId, lines } }),
        progress: (progress) => this.publish({ type: 'execution:progress', data: progress }),
        error: (error) => this.reportError(error),
      },
    );
    active.run = run;
    if (active.stopRequest) run.stop(active.stopRequest.reason, active.stopRequest.message);
    const final = await run.run();
    if (!run.finalSaved) this.remember(final);
    this.publish({ type: 'execution:finished', data: final });
    this.untrack(final);
  }

  /** Ends an execution that never started (cancelled while queued, runner closed, run not recorded). */
  private async endUnstarted(queued: Execution, status: ExecutionStatus, message: string): Promise<void> {
    const patch = { status, finishedAt: new Date(), durationMs: 0, errorMessage: message, exitCode: null, signal: null, lineCount: 0 };
    const stored = await withRetry(() => this.store.updateExecution(queued.id, patch), this.settings.storeRetry).catch(
      (error: unknown) => {
        this.reportError(new ScriptRunnerError('store', `could not store the end of execution ${queued.id}: ${describeError(error)}`, { cause: error }));
        return null;
      },
    );
    const final: Execution = stored ?? { ...queued, ...patch };
    if (stored === null) this.remember(final);
    this.publish({ type: 'execution:finished', data: final });
    this.untrack(final);
  }

  private remember(final: Execution): void {
    this.unsaved.set(final.id, final);
    // Bounded: only a store that is down for long produces these; the oldest go first.
    if (this.unsaved.size > 1000) this.unsaved.delete(this.unsaved.keys().next().value!);
  }

  private publish(event: RunnerEvent): void {
    this.emitLocal(event);
    for (const transport of this.transports) this.deliver(() => transport.publish(event));
    if (this.dispatcher?.publish) this.deliver(() => this.dispatcher!.publish!(event));
  }

  /** To this runner's listeners only. */
  private emitLocal(event: RunnerEvent): void {
    try {
      // The union guarantees data matches the event name; eventemitter3's typing cannot see that.
      (this.emit as (name: string, data: unknown) => boolean)(event.type, event.data);
    } catch (error) {
      // A throwing listener must not break the pipeline of a run.
      this.reportError(error);
    }
    this.wakeWaiters(event);
  }

  /** Hands an event to a transport or the dispatcher; neither may break the run that produced it. */
  private deliver(send: () => void | Promise<void>): void {
    try {
      const result = send();
      if (result && typeof (result as Promise<void>).catch === 'function') {
        (result as Promise<void>).catch((error: unknown) => this.reportError(error));
      }
    } catch (error) {
      this.reportError(error);
    }
  }

  // ------------------------------------------------------------------ dispatch

  private dispatchHost(): DispatchHost {
    return {
      execute: (request) => this.executeDispatched(request),
      stop: (executionId, reason, message) => {
        const active = this.active.get(executionId);
        if (!active) return false;
        this.stopActive(active, reason, message);
        return true;
      },
      endUnstarted: async (executionId, status, message) => {
        const execution = await this.store.getExecution(executionId).catch(() => null);
        if (execution === null || isTerminalStatus(execution.status)) return execution;
        // Started by a runner that is gone (its job came back to the queue): keep what it stored.
        // (The message the caller chose speaks of a run that never started; this one did.)
        if (execution.status === 'running' && !this.active.has(executionId)) return this.endAbandoned(execution, status);
        await this.endUnstarted(execution, status, message);
        return this.store.getExecution(executionId).catch(() => null);
      },
      emit: (event) => this.emitLocal(event),
      error: (error) => this.reportError(error),
    };
  }

  /**
   * Runs a stored execution handed over by the dispatcher, here. Only a `queued` one starts: one
   * already `running` was taken by a runner that is gone (its job came back), and running user code
   * twice is worse than not finishing it, so it ends `interrupted` with the lines stored so far.
   */
  private async executeDispatched(request: DispatchRequest): Promise<Execution | null> {
    try {
      await this.ready;
      const id = checkId(request.executionId, 'execution');
      const execution = await withRetry(() => this.store.getExecution(id), this.settings.storeRetry);
      if (execution === null) return null;
      if (isTerminalStatus(execution.status)) return execution;
      if (this.active.has(id)) return await this.active.get(id)!.done;
      if (execution.status === 'running') return await this.endAbandoned(execution);
      this.track(id);
      const done = this.active.get(id)!.done;
      if (this.closed) {
        await this.endUnstarted(execution, 'interrupted', 'the runner was closed before it started');
        return await done;
      }
      const script = await withRetry(() => this.store.getScript(execution.scriptId), this.settings.storeRetry);
      const runtime = script ? this.runtimes[script.runtime] : undefined;
      if (!script || !runtime) {
        await this.endUnstarted(
          execution,
          'failed',
          script ? `the "${script.runtime}" runtime is not configured on this runner` : `script ${execution.scriptId} is missing from the store`,
        );
        return await done;
      }
      const options: RunOptions = { args: execution.args, timeoutMs: request.timeoutMs ?? this.defaultTimeoutMs };
      if (request.env !== undefined) options.env = validateEnv(request.env, 'env');
      this.pendingRuns.set(id, { options, script, execution });
      await this.execute(id);
      return await done;
    } catch (error) {
      this.reportError(error);
      return null;
    }
  }

  private async endAbandoned(
    execution: Execution,
    status: ExecutionStatus = 'interrupted',
    errorMessage = 'the worker running this execution stopped before it finished',
  ): Promise<Execution> {
    const finishedAt = new Date();
    const lineCount = await lastStoredSeq(this.store, execution.id);
    const patch = {
      status,
      finishedAt,
      durationMs: execution.startedAt ? Math.max(0, finishedAt.getTime() - execution.startedAt.getTime()) : 0,
      errorMessage,
      lineCount,
    };
    const stored = (await withRetry(() => this.store.updateExecution(execution.id, patch), this.settings.storeRetry)) ?? {
      ...execution,
      ...patch,
    };
    this.publish({ type: 'execution:finished', data: stored });
    await this.settings.caps.removeLeftovers(this.settings.workDir, execution.id, this.settings.keepWorkDir);
    if (!this.settings.keepWorkDir) await removeLeftRunDirectories(this.settings.workDir, execution.id);
    return stored;
  }

  private reportError(error: unknown): void {
    const err = error instanceof Error ? error : new Error(String(error));
    if (this.listenerCount('error') > 0) {
      try {
        this.emit('error', err);
        return;
      } catch (listenerError) {
        this.logger.error(`[scriptrunner] an error listener threw: ${describeError(listenerError)}`);
      }
    }
    this.logger.error(err.message.startsWith('[scriptrunner]') ? err.message : `[scriptrunner] ${err.message}`);
  }

  private async storeCall<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      if (error instanceof ScriptRunnerError) throw error;
      throw new ScriptRunnerError('store', `the store failed: ${describeError(error)}`, { cause: error });
    }
  }

  private validateArgs(args: unknown): string[] {
    if (args === undefined || args === null) return [];
    if (!Array.isArray(args)) throw new ScriptRunnerError('validation', 'args must be a list of strings');
    if (args.length > MAX_ARGS) throw new ScriptRunnerError('validation', `at most ${MAX_ARGS} args are accepted`);
    for (const [i, arg] of args.entries()) {
      if (typeof arg !== 'string') throw new ScriptRunnerError('validation', `args[${i}] must be a string`);
      if (arg.includes('\0')) throw new ScriptRunnerError('validation', `args[${i}] must not contain NUL bytes`);
      if (Buffer.byteLength(arg) > MAX_ARG_BYTES) {
        throw new ScriptRunnerError('validation', `args[${i}] is longer than ${MAX_ARG_BYTES} bytes`);
      }
    }
    return [...(args as string[])];
  }

  private checkList<T extends string>(values: T[] | undefined, allowed: T[], name: string): T[] | undefined {
    if (values === undefined) return undefined;
    if (!Array.isArray(values) || values.some((v) => !allowed.includes(v))) {
      throw new ScriptRunnerError('validation', `${name} must be a list of ${allowed.join(', ')}`);
    }
    return values.length > 0 ? [...values] : undefined;
  }
}

type ExecutionRunSettings = ConstructorParameters<typeof ExecutionRun>[1];

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

/**
 * Creates a runner. With no options it keeps everything in memory and runs `test_*.py` /
 * `experiment_*.py` uploads with `python3 -u`, two at a time.
 */
export function createScriptRunner(options: ScriptRunnerOptions = {}): ScriptRunner {
  return new Runner(options);
}
