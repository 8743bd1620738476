/** The public interface of a runner: what `createScriptRunner` returns. */
import type { EventEmitter } from 'eventemitter3';
import type { FollowOptions, LogFollow } from './follow.js';
import type { SweepResult } from './retention.js';
import type { HealthReport, RunnerStats } from './observe.js';
import type { ListExecutionsOptions, ListScriptsOptions, ReadLogsOptions, RunOptions } from './options.js';
import type { ArtifactContent } from './store.js';
import type { Artifact, Execution, LogLine, Page, Script, ScriptRunnerEvents, ScriptWithLastExecution } from './types.js';
import type { UploadInput } from './upload.js';

/** What `createScriptRunner` returns. Events are typed by `ScriptRunnerEvents` (eventemitter3). */
export interface ScriptRunner
  extends Pick<EventEmitter<ScriptRunnerEvents>, 'on' | 'once' | 'off' | 'listenerCount'> {
  uploadScript(input: UploadInput): Promise<Script>;
  listScripts(options?: ListScriptsOptions): Promise<Page<Script>>;
  /**
   * `listScripts` with each script's newest execution (null when it never ran): one store call
   * when the store implements `listScriptsWithLastExecution`, else one more per listed script.
   */
  listScriptsWithLastExecution(options?: ListScriptsOptions): Promise<Page<ScriptWithLastExecution>>;
  getScript(id: string): Promise<Script>;
  getScriptContent(id: string): Promise<Uint8Array>;
  /** Hides a script from the default list and refuses new runs; its record and runs stay. */
  archiveScript(id: string): Promise<Script>;
  /** Makes an archived script active again (`script:restored`); an active one is returned as is. */
  restoreScript(id: string): Promise<Script>;
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
  /**
   * The files kept from an execution's output directory (`SCRIPTRUNNER_OUTPUT_DIR`), by name;
   * empty while it runs, when it wrote none, or when the store keeps no artifacts. Rejects
   * `not_found` for an unknown execution.
   */
  listArtifacts(executionId: string): Promise<Artifact[]>;
  /**
   * One artifact and its bytes, streamed from the store as they are consumed. Rejects `not_found`
   * when the execution or the artifact does not exist, `validation` for a name no artifact can have.
   */
  readArtifact(executionId: string, name: string): Promise<ArtifactContent>;
  /**
   * Follows one execution's log from `afterSeq`: resolves once the execution was read (rejects
   * `not_found` for an unknown id) with an async iterator of line batches, progress and, last, the
   * final record. Every line exactly once and in order, whether it comes from the store (catch-up)
   * or live; catch-up reads are paced by the consumer and yield to the event loop between slices;
   * memory stays bounded for a slow consumer. Works for executions running anywhere (with a
   * dispatcher, for every event this runner receives). Abort `signal` or call `close()` to stop.
   */
  follow(executionId: string, options?: FollowOptions): Promise<LogFollow>;
  /**
   * Deletes what the `retention` option lets go now, in short store calls: terminal executions
   * past `maxAgeMs` or beyond `keepPerScript` with their log lines and artifacts, and archived
   * scripts past `purgeArchivedScriptsAfterMs` with their executions. Never a queued or running
   * execution. A call while a sweep runs joins it. Rejects `validation` when retention is off.
   */
  sweep(): Promise<SweepResult>;
  /**
   * What this runner holds now, for gauges: executions running here, executions waiting to start
   * (its own queue, or the fleet's with BullMQ; null when the dispatcher cannot tell within 2 s),
   * and how scripts are isolated.
   */
  stats(): Promise<RunnerStats>;
  /**
   * Whether the runner can work: the store answers (and, with BullMQ, Redis), each within
   * `timeoutMs` (1..60,000, default 2,000). Never takes longer than the timeout: a check that
   * fails or hangs is reported in the result (`ok: false` with the reason); rejects only with a
   * `validation` error for a bad `timeoutMs`.
   */
  health(options?: { timeoutMs?: number }): Promise<HealthReport>;
  /** Stops accepting work, ends queued and running executions as `interrupted`, waits for them. */
  close(): Promise<void>;
}

