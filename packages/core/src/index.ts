/**
 * @scriptrunner/core — run uploaded scripts as child processes, stream every output line live, and
 * keep a complete record of every run.
 */
export { createScriptRunner } from './runner.js';
export { sharedScriptRunner } from './shared.js';
export type {
  ScriptRunner,
  ScriptRunnerOptions,
  RunOptions,
  ListScriptsOptions,
  ListExecutionsOptions,
  ReadLogsOptions,
  Logger,
} from './runner.js';
export type { FollowOptions, FollowItem, LogFollow } from './follow.js';
export type { RetentionOptions, SweepResult } from './retention.js';
export type { RunnerObserver, RunnerStats, HealthReport, HealthCheck, DropKind } from './observe.js';
export { memoryStore } from './stores/memory.js';
/** For store authors: the keyset cursor format the built-in stores use (opaque to callers). */
export { encodeCursor, decodeCursor, decodeCursorOrThrow } from './stores/cursor.js';
export type { CursorKey } from './stores/cursor.js';
/** For store authors: the statuses `Store.updateExecution` may change an execution from. */
export { updatableStatuses } from './stores/transitions.js';
/** For store authors: artifacts' bytes cut into the pieces a store keeps, with their size and sha256. */
export { artifactChunks, ARTIFACT_CHUNK_BYTES } from './stores/artifact-chunks.js';
export type { ArtifactChunks } from './stores/artifact-chunks.js';
export { OUTPUT_DIR_ENV } from './artifacts/collect.js';
export type { ArtifactOptions } from './artifacts/collect.js';
export { ScriptRunnerError, isScriptRunnerError } from './errors.js';
export type { ScriptRunnerErrorCode } from './errors.js';
export { defaultClassifyLine } from './lines/classify.js';
export { DEFAULT_RUNTIMES } from './process/runtimes.js';
export { DEFAULT_LIMITS } from './process/limits.js';
export type { ResourceLimits } from './process/limits.js';
export type { IsolationMode, IsolationWrapper, IsolationContext, SpawnSpec } from './process/isolation.js';
export type { DependencyOptions } from './python/environments.js';
export type { PythonEnvironment } from './python/named-environments.js';
/** PEP 723 inline script metadata, as the runner reads it (e.g. to show a script's dependencies). */
export { parseInlineMetadata } from './python/inline-metadata.js';
export type { InlineMetadata } from './python/inline-metadata.js';
export { DEFAULT_FILENAME_PATTERN, DEFAULT_MAX_UPLOAD_BYTES } from './upload.js';
export type { UploadInput, UploadOptions } from './upload.js';
export type { RetryPolicy } from './retry.js';
export type {
  Store,
  CreateScriptInput,
  ScriptPatch,
  ExecutionPatch,
  UpdateExecutionOptions,
  ListScriptsQuery,
  ListExecutionsQuery,
  ReadLogsQuery,
  InterruptQuery,
  ArtifactContent,
  ExpiredExecutionsQuery,
  DeleteProgress,
} from './store.js';
export type { Transport } from './transport.js';
export type { Dispatcher, DispatchHost, DispatchRequest } from './dispatch.js';
export { isTerminalStatus, TERMINAL_STATUSES } from './types.js';
export type {
  Script,
  ScriptStatus,
  ScriptWithLastExecution,
  Execution,
  Artifact,
  ExecutionStatus,
  LogLine,
  LogLevel,
  LogStream,
  Page,
  JsonObject,
  JsonValue,
  LineClassifier,
  RuntimeConfig,
  LogBatchEvent,
  ProgressEvent,
  ScriptRunnerEvents,
  RunnerEvent,
} from './types.js';
