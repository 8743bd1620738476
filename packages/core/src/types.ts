/**
 * The data model shared by the runner, every store, every transport and every adapter.
 *
 * Timestamps are `Date` objects in core; adapters serialise them as ISO strings.
 */

export type ScriptStatus = 'active' | 'archived';

/** An uploaded script. Its bytes live in the store (see `Store.getScriptContent`). */
export interface Script {
  id: string;
  /** The validated original file name, e.g. `test_sample.py`. */
  filename: string;
  /** Key into `ScriptRunnerOptions.runtimes`, chosen from the file extension at upload. */
  runtime: string;
  sizeBytes: number;
  /** Lower-case hex sha256 of the content. */
  sha256: string;
  description: string | null;
  /** Caller-defined JSON object; never interpreted by the runner. */
  metadata: JsonObject;
  /**
   * The named Python environment the script asked for (upload option `environment`, or
   * `[tool.scriptrunner] environment` in its inline metadata); null: the runner's default.
   */
  environment: string | null;
  status: ScriptStatus;
  createdAt: Date;
  updatedAt: Date;
  lastRunAt: Date | null;
  totalRuns: number;
}

export type ExecutionStatus =
  | 'queued'
  | 'running'
  | 'succeeded'
  | 'failed'
  | 'cancelled'
  | 'timed_out'
  | 'interrupted';

/** Statuses an execution never leaves. */
export const TERMINAL_STATUSES: readonly ExecutionStatus[] = [
  'succeeded',
  'failed',
  'cancelled',
  'timed_out',
  'interrupted',
];

export function isTerminalStatus(status: ExecutionStatus): boolean {
  return status !== 'queued' && status !== 'running';
}

/** One run of a script. */
export interface Execution {
  id: string;
  scriptId: string;
  status: ExecutionStatus;
  /** Passed literally to the script (no shell). */
  args: string[];
  /** Null while running, when killed by a signal, or when the process never started. */
  exitCode: number | null;
  /** The signal that ended the main process (`SIGKILL`, ...), or null. */
  signal: string | null;
  queuedAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  /** `finishedAt - startedAt`; 0 for an execution that never started. Null until terminal. */
  durationMs: number | null;
  /** Number of log lines stored (= the last seq). */
  lineCount: number;
  /** Why it did not succeed: the spawn error, the timeout, or the last stderr lines. */
  errorMessage: string | null;
  /** True when a line was cut at `maxLineBytes` (or another output cap was hit). */
  truncated: boolean;
  /**
   * The Python environment it runs in (`ScriptRunnerOptions.environments`, `default` when none was
   * named), decided when it was queued; null for other runtimes and for executions stored before
   * environments existed.
   */
  environment: string | null;
  /**
   * Files kept from the run's output directory (`SCRIPTRUNNER_OUTPUT_DIR`) when it ended; 0 until
   * then, and for a store that keeps no artifacts.
   */
  artifactCount: number;
}

/**
 * A file a run wrote to its output directory (`SCRIPTRUNNER_OUTPUT_DIR`), kept through the store
 * after the run ended. Its bytes are read with `ScriptRunner.readArtifact`.
 */
export interface Artifact {
  executionId: string;
  /**
   * Its path under the output directory, `/`-separated (`forecast.csv`, `plots/wind.png`): at most
   * 1,024 bytes, no empty, `.` or `..` segment, no control character.
   */
  name: string;
  sizeBytes: number;
  /** Lower-case hex sha256 of the bytes. */
  sha256: string;
  /** When it was stored. */
  createdAt: Date;
}

/**
 * A script with its newest execution (`queuedAt` descending, then `id` descending: the first item
 * `listExecutions({ scriptId, limit: 1 })` returns), or null when it never ran.
 */
export type ScriptWithLastExecution = Script & { lastExecution: Execution | null };

export type LogStream = 'stdout' | 'stderr' | 'system';
export type LogLevel = 'info' | 'warn' | 'error';

/** One output line. `seq` is 1, 2, 3 … without gaps per execution, in the order the runner read it. */
export interface LogLine {
  executionId: string;
  seq: number;
  stream: LogStream;
  level: LogLevel;
  /** One line without its line terminator; ANSI escape codes are kept. */
  text: string;
  time: Date;
}

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/** A page of a cursor-paginated list. `nextCursor` is null on the last page. */
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/** Decides the level of a stdout/stderr line. System lines carry their own level. */
export type LineClassifier = (text: string, stream: 'stdout' | 'stderr') => LogLevel;

/** How to start a script of one language. */
export interface RuntimeConfig {
  /** File extensions (with the dot) that select this runtime at upload, e.g. `['.py']`. */
  extensions: string[];
  /** Executable to spawn: a name looked up on the child's PATH, or an absolute path. */
  command: string;
  /** Arguments placed before the script file name, e.g. `['-u']`. */
  args: string[];
  /** Environment added for this runtime (after the allowlist, before the caller's env). */
  env: Record<string, string>;
  /**
   * Python only. `'unbuffered'` (default): `-u`, every print reaches the pipe at once and nothing
   * printed is lost however the process dies. `'live'`: block-buffered output flushed every
   * `liveFlushMs` by a thread — several times faster for chatty scripts, lines up to that much
   * later; flushed on exceptions, SIGTERM/SIGHUP/SIGINT and exit, but `os._exit()`, SIGKILL or an
   * interpreter crash lose the last interval's output.
   */
  buffering?: 'unbuffered' | 'live';
  /** Flush interval of `buffering: 'live'`, 1–10000 ms. Default 20. */
  liveFlushMs?: number;
}

/** Payload of `execution:log`: one persisted batch, never one event per line. */
export interface LogBatchEvent {
  executionId: string;
  lines: LogLine[];
}

/** Payload of `execution:progress`: the latest text of a line being rewritten with a bare `\r`. */
export interface ProgressEvent {
  executionId: string;
  stream: 'stdout' | 'stderr';
  text: string;
  time: Date;
}

/** The runner's typed events (eventemitter3). */
export interface ScriptRunnerEvents {
  'script:created': (script: Script) => void;
  'script:archived': (script: Script) => void;
  /** An archived script made active again. */
  'script:restored': (script: Script) => void;
  'execution:queued': (execution: Execution) => void;
  'execution:started': (execution: Execution) => void;
  /** Emitted only after the store accepted the batch (persist, then publish). */
  'execution:log': (batch: LogBatchEvent) => void;
  'execution:progress': (progress: ProgressEvent) => void;
  /** Emitted after the last batch of the execution was published; carries the final lineCount. */
  'execution:finished': (execution: Execution) => void;
  error: (error: Error) => void;
}

/** What transports receive: every runner event except `error`, as one discriminated union. */
export type RunnerEvent = {
  [K in Exclude<keyof ScriptRunnerEvents, 'error'>]: {
    type: K;
    data: Parameters<ScriptRunnerEvents[K]>[0];
  };
}[Exclude<keyof ScriptRunnerEvents, 'error'>];
