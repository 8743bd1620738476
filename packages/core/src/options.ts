/**
 * The runner's options: their types (public) and their validation into the settings the parts of
 * a run use (internal). Everything a caller can get wrong is refused here, with a `validation`
 * error naming the option, before anything runs.
 */
import type { RetentionOptions } from './retention.js';
import { observedStore, type RunnerObserver } from './observe.js';
import { tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { resolveArtifactOptions, type ArtifactOptions, type ArtifactSettings } from './artifacts/collect.js';
import type { Dispatcher } from './dispatch.js';
import { ScriptRunnerError } from './errors.js';
import { defaultClassifyLine } from './lines/classify.js';
import type { PipelineSettings } from './lines/pipeline.js';
import { validateEnv } from './process/env.js';
import { validateSandboxOptions, type IsolationMode, type IsolationWrapper, type ResolvedIsolation, type SpawnSpec } from './process/isolation.js';
import { limitsWrapper, resolveLimits, type ResolvedLimits, type ResourceLimits } from './process/limits.js';
import { resolveSandboxUser } from './process/run-as.js';
import { resolveRunCaps, type RunCapsPolicy } from './process/run-caps.js';
import { MIN_RUN_DIR_BYTES } from './process/rundir-cap.js';
import { resolveRuntimes } from './process/runtimes.js';
import { findExecutable } from './process/which.js';
import { EnvironmentCache, resolveDependencyOptions, type DependencyOptions } from './python/environments.js';
import { resolveInterpreter, type ResolvedInterpreter } from './python/interpreter.js';
import { DEFAULT_ENVIRONMENT, resolvePythonEnvironments, type PythonEnvironment, type PythonEnvironments } from './python/named-environments.js';
import type { RetryPolicy } from './retry.js';
import type { ListScriptsQuery, Store } from './store.js';
import type { Transport } from './transport.js';
import type { ExecutionStatus, LineClassifier, LogLevel, LogStream, RuntimeConfig, ScriptStatus } from './types.js';
import { DEFAULT_FILENAME_PATTERN, DEFAULT_MAX_UPLOAD_BYTES, type UploadOptions } from './upload.js';
import { MAX_TIMER_MS } from './util.js';

export interface Logger {
  warn(message: string): void;
  error(message: string): void;
  /** When present, the runner says (once its sandbox is probed) which limits bind the whole run and which each process. */
  info?(message: string): void;
}

export interface ScriptRunnerOptions {
  /** Where scripts, executions and lines live. Default: `memoryStore()`. */
  store?: Store;
  /** Receive every published event after the store has it (e.g. the Socket.IO adapter). */
  transports?: Transport[];
  /**
   * See what the runner does, for monitoring (e.g. `scriptRunnerMetrics()` from @scriptrunner/metrics):
   * store call durations, this runner's own events, sweeps, errors. Never awaited; never break a run.
   */
  observers?: RunnerObserver[];
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
   * Delete old executions (log lines and artifacts with them) and archived scripts: off unless
   * given. Swept every `intervalMs` by this runner, or, when the dispatcher schedules sweeps (a
   * BullMQ fleet), by one node of the fleet at a time. Needs a store with the retention methods.
   */
  retention?: RetentionOptions;
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
  /**
   * Python scripts that declare dependencies (PEP 723 `# /// script` blocks): where their cached
   * environments live, which index or local wheel directories pip may use, and the cache's size.
   * See the README's "Python environments".
   */
  dependencies?: DependencyOptions;
  /**
   * Named Python environments: the interpreter each runs on (a venv's `bin/python`, another
   * version). A script names one at upload (`environment`, or `[tool.scriptrunner] environment` in
   * its inline metadata), a run may override it, and the execution records which one it ran in.
   * Each is resolved on the host and shown read-only to the sandbox, as the default is. `default`
   * is `runtimes.python.command` unless given here.
   */
  environments?: Record<string, PythonEnvironment>;
  /** The environment of scripts that name none. Default `default`. */
  defaultEnvironment?: string;
  /**
   * Files a run writes to `SCRIPTRUNNER_OUTPUT_DIR` are kept through the store (artifacts) within
   * these caps; what is over a cap is named in the run's log and skipped.
   */
  artifacts?: ArtifactOptions;
}

export interface RunOptions {
  args?: string[];
  env?: Record<string, string>;
  /** Overrides the runner's `timeoutMs` for this run; 0 disables the timeout. */
  timeoutMs?: number;
  /** Runs a Python script in this named environment instead of the one it names (or the default). */
  environment?: string;
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

/** What a run needs of the runner's settings (resolved once, shared by every run). */
export interface RunSettings extends PipelineSettings {
  killGraceMs: number;
  drainTimeoutMs: number;
  workDir: string;
  /** workDir is the default `<tmpdir>/scriptrunner`, not the caller's. */
  ownsWorkDir: boolean;
  keepWorkDir: boolean;
  env: Record<string, string> | undefined;
  /** What confines a run, probed in the background (bubblewrap, cgroups, loop mounts); runs wait for it. */
  sandbox: Promise<Sandbox>;
  limits: ResolvedLimits;
  defaultTimeoutMs: number;
  /** Cached environments for scripts that declare dependencies. */
  environments: EnvironmentCache;
  artifacts: ArtifactSettings;
}

/** How runs are confined on this host, once the probes answered. */
export interface Sandbox {
  isolation: ResolvedIsolation;
  /** prlimit around the (wrapped) command, or identity. */
  applyLimits: (spec: SpawnSpec) => SpawnSpec;
  /** The user scripts are switched to, or undefined (this process's user). */
  runAs: { uid: number; gid: number } | undefined;
  /** Whole-run caps (cgroup, size-capped run directory): see process/run-caps.ts. */
  caps: RunCapsPolicy;
  /**
   * Python interpreters resolved on the host, by environment name: what runs, and the installation
   * the sandbox shows read-only; an Error says why the sandbox cannot show it (its runs fail so).
   */
  interpreters: ReadonlyMap<string, ResolvedInterpreter | Error>;
}

export interface Settings {
  run: RunSettings;
  store: Store;
  ownsStore: boolean;
  transports: Transport[];
  observers: RunnerObserver[];
  runtimes: Record<string, RuntimeConfig>;
  environments: PythonEnvironments;
  upload: Required<UploadOptions>;
  concurrency: number;
  maxQueued: number;
  logDir: string | null;
  recoverOnStart: boolean;
}

export function positiveInt(value: number | undefined, fallback: number, name: string, min = 1, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ScriptRunnerError('validation', `${name} must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}

/** A duration that feeds a timer: setTimeout fires at once for anything above MAX_TIMER_MS. */
export function durationMs(value: number | undefined, fallback: number, name: string): number {
  return positiveInt(value, fallback, name, 0, MAX_TIMER_MS);
}

function statelessPattern(pattern: RegExp): RegExp {
  if (!(pattern instanceof RegExp)) throw new ScriptRunnerError('validation', 'upload.pattern must be a RegExp');
  return new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, ''));
}

/** Most items in one page of a list. */
export const MAX_PAGE = 1000;

export function listScriptsQuery(options: ListScriptsOptions): ListScriptsQuery {
  const status = options.status ?? 'active';
  if (!['active', 'archived', 'all'].includes(status)) {
    throw new ScriptRunnerError('validation', `status must be active, archived or all, got ${String(status)}`);
  }
  const limit = positiveInt(options.limit, 50, 'limit', 1, MAX_PAGE);
  return { status, limit, cursor: options.cursor ?? null };
}

/**
 * Longest id the runner accepts. Its own ids are 21-character nanoids; the bound keeps a caller's
 * typo or attack (a megabyte in a URL segment) out of store queries and error messages.
 */
export const MAX_ID_LENGTH = 200;

/** `field` names the input in `details.field`, for an id passed as something other than `id`. */
export function checkId(id: unknown, what: string, field = 'id'): string {
  if (typeof id !== 'string' || id.length === 0) {
    // A non-string has no length worth reporting; an empty string has 0.
    const details = typeof id === 'string' ? { field, length: 0 } : { field };
    throw new ScriptRunnerError('validation', `${what} id must be a non-empty string`, { details });
  }
  if (id.length > MAX_ID_LENGTH) {
    throw new ScriptRunnerError('validation', `${what} id is ${id.length} characters long; ids are at most ${MAX_ID_LENGTH}`, {
      details: { field, length: id.length },
    });
  }
  return id;
}

const MAX_ARGS = 256;
const MAX_ARG_BYTES = 32 * 1024;

export function validateArgs(args: unknown): string[] {
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

export function checkList<T extends string>(values: T[] | undefined, allowed: T[], name: string): T[] | undefined {
  if (values === undefined) return undefined;
  if (!Array.isArray(values) || values.some((v) => !allowed.includes(v))) {
    throw new ScriptRunnerError('validation', `${name} must be a list of ${allowed.join(', ')}`);
  }
  return values.length > 0 ? [...values] : undefined;
}

export const EXECUTION_STATUSES: ExecutionStatus[] = ['queued', 'running', 'succeeded', 'failed', 'cancelled', 'timed_out', 'interrupted'];
export const LOG_LEVELS: LogLevel[] = ['info', 'warn', 'error'];
export const LOG_STREAMS: LogStream[] = ['stdout', 'stderr', 'system'];

/** Validates every option; throws a `validation` (or `unavailable`) error naming the first bad one. */
export function resolveSettings(options: ScriptRunnerOptions, logger: Logger, defaultStore: () => Store): Settings {
  const runtimes = resolveRuntimes(options.runtimes);
  const environments = resolvePythonEnvironments(options.environments, options.defaultEnvironment, runtimes);
  const retry = options.storeRetry ?? {};
  const limits = resolveLimits(options.limits);
  if (limits.runDirBytes !== null && limits.runDirBytes < MIN_RUN_DIR_BYTES) {
    throw new ScriptRunnerError('validation', `limits.runDirBytes must be at least ${MIN_RUN_DIR_BYTES} (1 MiB) or null, got ${limits.runDirBytes}`);
  }
  // tmpfs needs a size; "no limit" is the kernel's default of half the RAM.
  const sandboxOptions = validateSandboxOptions(options.allowNetwork, options.readPaths, limits.tmpBytes ?? Math.floor(totalmem() / 2));
  const prlimit = findExecutable('prlimit');
  const { tmpBytes: _tmpBytes, runDirBytes: _runDirBytes, ...processLimits } = limits;
  const limited = Object.values(processLimits).some((v) => v !== null);
  if (limited && prlimit === null) {
    if (options.limits !== undefined) {
      throw new ScriptRunnerError('unavailable', 'limits need prlimit (util-linux), which is not on PATH');
    }
    logger.warn('[scriptrunner] prlimit (util-linux) is not on PATH: scripts run without resource limits.');
  }
  const observers = [...(options.observers ?? [])];
  // Timed for the observers (a Proxy: the store's own optional methods show as they are).
  const store = observedStore(options.store ?? defaultStore(), observers);
  const workDir = resolve(options.workDir ?? join(tmpdir(), 'scriptrunner'));
  const ownsWorkDir = options.workDir === undefined;
  const sandbox = resolveSandboxUser({
    isolation: options.isolation,
    runAs: options.runAs,
    sandbox: sandboxOptions,
    workDir,
    ownsWorkDir,
    logger,
    // Python is resolved on the host and shown to the sandbox (below); other runtimes are looked up in it.
    runtimeCommands: Object.entries(runtimes)
      .filter(([name]) => name !== 'python')
      .map(([, runtime]) => runtime.command),
  }).then(async ({ isolation, runAs }): Promise<Sandbox> => {
    // Already that user: nothing to switch (and a non-root process may not call setgroups).
    const switchTo = runAs !== undefined && runAs.uid !== process.getuid?.() ? runAs : undefined;
    const caps = await resolveRunCaps({
      limits,
      given: options.limits,
      runAs: switchTo,
      prlimit: prlimit !== null,
      switchedBySandbox: switchTo !== undefined && isolation.switchesUser,
      warn: (m) => logger.warn(m),
    });
    logger.info?.(caps.summary);
    const interpreters = new Map<string, ResolvedInterpreter | Error>();
    // Unsandboxed scripts switched to another user find their interpreter on PATH as that user
    // (the host's may be out of its reach, e.g. under /root).
    if (isolation.kind === 'bwrap' || switchTo === undefined) {
      await Promise.all(
        [...environments.commands].map(async ([name, command]) => {
          const setting = name === DEFAULT_ENVIRONMENT && options.environments?.[name] === undefined ? 'runtimes.python.command' : `environments.${name}.python`;
          const resolved = await resolveInterpreter(command, process.env.PATH ?? '', workDir, setting).catch((error: unknown) =>
            error instanceof Error ? error : new Error(String(error)),
          );
          if (resolved !== null) interpreters.set(name, resolved);
        }),
      );
    }
    return {
      interpreters,
      isolation,
      applyLimits: limited && prlimit !== null ? limitsWrapper(caps.processLimits, prlimit) : (spec) => spec,
      runAs: switchTo,
      caps,
    };
  });
  // Observed by the runs that wait for it; never an unhandled rejection meanwhile.
  sandbox.catch(() => undefined);
  const run: RunSettings = {
    store,
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
    ownsWorkDir,
    keepWorkDir: options.keepWorkDir ?? false,
    classifyLine: options.classifyLine ?? defaultClassifyLine,
    env: validateEnv(options.env, 'env'),
    sandbox,
    limits,
    maxLogLines: positiveInt(options.maxLogLines, 10_000_000, 'maxLogLines'),
    maxLogBytes: positiveInt(options.maxLogBytes, 4 * 1024 ** 3, 'maxLogBytes'),
    defaultTimeoutMs: durationMs(options.timeoutMs, 3_600_000, 'timeoutMs'),
    environments: new EnvironmentCache(resolveDependencyOptions(options.dependencies, workDir)),
    artifacts: resolveArtifactOptions(options.artifacts),
  };
  return {
    run,
    store,
    ownsStore: options.store === undefined,
    transports: [...(options.transports ?? [])],
    observers,
    runtimes,
    environments,
    upload: {
      // A global or sticky RegExp keeps state between test() calls; the rule must not.
      pattern: statelessPattern(options.upload?.pattern ?? DEFAULT_FILENAME_PATTERN),
      maxBytes: positiveInt(options.upload?.maxBytes, DEFAULT_MAX_UPLOAD_BYTES, 'upload.maxBytes'),
    },
    concurrency: positiveInt(options.concurrency, 2, 'concurrency'),
    maxQueued: positiveInt(options.maxQueued, 100, 'maxQueued', 0),
    logDir: options.logDir === undefined ? null : resolve(options.logDir),
    recoverOnStart: options.recoverOnStart ?? options.dispatcher === undefined,
  };
}
