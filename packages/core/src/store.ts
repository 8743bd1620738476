/**
 * The Store: where scripts, executions and log lines live.
 *
 * A store is a plain object (usually returned by a factory such as `memoryStore()` or
 * `prismaStore(prisma)`). The runner is its only writer for the executions it runs; several runners
 * may share one store. Every implementation must pass the conformance suite exported from
 * `@scriptrunner/core/testing`, which checks each rule written here against what really landed.
 *
 * General rules for every method:
 * - Methods never return objects the store keeps using internally: callers may keep or mutate what
 *   they receive without changing stored state.
 * - "Absent" is `null`, never an exception. Exceptions mean the store itself failed; the runner
 *   retries the log and status writes of a running execution and reports other failures as
 *   `ScriptRunnerError` with code `store`. The one exception that is the caller's fault: a list
 *   method given a cursor the store did not issue throws a `ScriptRunnerError` with code
 *   `validation`, which the runner passes on unchanged (see `listScripts`).
 * - Dates go in and come out as `Date` objects with millisecond precision.
 * - Ids are created by the runner (nanoid); the store keeps them as given.
 */
import type {
  Artifact,
  Execution,
  ExecutionStatus,
  JsonObject,
  LogLevel,
  LogLine,
  LogStream,
  Page,
  Script,
  ScriptStatus,
  ScriptWithLastExecution,
} from './types.js';

/** A new script: every field of `Script` plus its bytes. */
export interface CreateScriptInput extends Script {
  content: Uint8Array;
}

/** Fields of a script that may change after creation. */
export interface ScriptPatch {
  status?: ScriptStatus;
  description?: string | null;
  metadata?: JsonObject;
  updatedAt: Date;
}

/** Fields of an execution that may change after creation. */
export type ExecutionPatch = Partial<Omit<Execution, 'id' | 'scriptId' | 'args' | 'queuedAt'>>;

export interface UpdateExecutionOptions {
  /**
   * Apply the patch only when the execution's current status is one of these. Terminal statuses
   * listed here never match (a terminal execution is final); an empty list never matches.
   */
  expect?: readonly ExecutionStatus[];
}

export interface ListScriptsQuery {
  /** Default `active`. `all` returns both. */
  status?: ScriptStatus | 'all';
  /** 1..1000; the runner always passes a value. */
  limit: number;
  /**
   * An opaque `nextCursor` from a previous page of the same query; absent, null or `''` asks for
   * the first page. Anything else this store did not issue is refused (see `Store.listScripts`).
   */
  cursor?: string | null;
}

export interface ListExecutionsQuery {
  scriptId?: string;
  status?: ExecutionStatus;
  limit: number;
  /** As in `ListScriptsQuery`. */
  cursor?: string | null;
}

export interface ReadLogsQuery {
  /** Return lines with `seq > afterSeq`. Default 0 (from the first line). */
  afterSeq?: number;
  /** At most this many lines (the runner always passes 1..10000). */
  limit: number;
  /** Only these levels; absent or empty means all. */
  levels?: LogLevel[];
  /** Only these streams; absent or empty means all. */
  streams?: LogStream[];
}

/** A stored artifact and its bytes, read lazily one stored chunk at a time. */
export interface ArtifactContent {
  artifact: Artifact;
  /** The bytes in order, in chunks of at most `ARTIFACT_CHUNK_BYTES`; read it once. */
  content: AsyncIterable<Uint8Array>;
}

export interface InterruptQuery {
  /** Only executions queued strictly before this instant are touched. */
  queuedBefore: Date;
  /** Written to `finishedAt`. */
  finishedAt: Date;
  /** Written to `errorMessage`. */
  errorMessage: string;
}

/** Which finished executions a retention policy lets go (see `Store.listExpiredExecutions`). */
export interface ExpiredExecutionsQuery {
  /** Expired: finished (`finishedAt`) strictly before this instant. */
  finishedBefore?: Date;
  /**
   * Expired: not among the newest `keepPerScript` executions of its script (`queuedAt`
   * descending, then `id` descending, counting executions of every status). 0 expires every
   * finished execution.
   */
  keepPerScript?: number;
  /** At most this many ids (the runner passes 1..1000). */
  limit: number;
}

/** What one `Store.deleteExecution` call did. */
export type DeleteProgress =
  /** This call deleted the last of the execution: it is gone. */
  | 'deleted'
  /** There was no execution with that id (e.g. another sweep deleted it): nothing to do. */
  | 'absent'
  /** Some rows were deleted and more remain: call again. */
  | 'more'
  /** The execution is queued or running: nothing was touched. */
  | 'active';

export interface Store {
  // ---------------------------------------------------------------- scripts

  /** Stores a new script and its bytes exactly. Returns the stored script. */
  createScript(input: CreateScriptInput): Promise<Script>;

  /** The script, or null when no script has that id (archived scripts are returned). */
  getScript(id: string): Promise<Script | null>;

  /** The exact bytes given to `createScript`, or null when no script has that id. */
  getScriptContent(id: string): Promise<Uint8Array | null>;

  /**
   * Scripts newest first: ordered by `createdAt` descending, then `id` descending for equal times.
   * Following `nextCursor` until it is null visits every matching script exactly once, even when
   * scripts are created meanwhile (new ones appear only on a fresh first page).
   *
   * A cursor this store did not issue (garbage, a truncated or edited cursor, another store's
   * format) rejects with `new ScriptRunnerError('validation', 'cursor … is not a cursor this store
   * issued; pass nextCursor from a previous page', { details: { field: 'cursor' } })` before
   * anything is read; `decodeCursorOrThrow` throws exactly that for the built-in cursor format.
   * Never an empty page: a caller would take that for the end of the list. "Issued" is judged by
   * the store's cursor format, not by a record of past pages: a well-formed cursor is a position
   * in the order and the list continues after it, whether or not a script still sits there.
   */
  listScripts(query: ListScriptsQuery): Promise<Page<Script>>;

  /**
   * Optional: `listScripts` with each script's newest execution (`queuedAt` descending, then `id`
   * descending, as `listExecutions` orders them; null when it never ran), in one call. Same
   * query, filter, ordering and cursor rules as `listScripts`, including the `validation` error
   * for a cursor this store did not issue. Should not read every execution of the listed scripts,
   * nor their content bytes. For a store without it the runner calls `listScripts` and then
   * `listExecutions({ scriptId, limit: 1 })` once per script.
   */
  listScriptsWithLastExecution?(query: ListScriptsQuery): Promise<Page<ScriptWithLastExecution>>;

  /** Applies the patch; returns the updated script, or null when no script has that id. */
  updateScript(id: string, patch: ScriptPatch): Promise<Script | null>;

  /**
   * Atomically increments `totalRuns` by one and sets `lastRunAt` to the later of its current value
   * and `at`. Concurrent calls never lose an increment. Returns the updated script, or null when
   * no script has that id.
   */
  recordRun(scriptId: string, at: Date): Promise<Script | null>;

  // ------------------------------------------------------------- executions

  /** Stores a new execution exactly as given. Returns the stored execution. */
  createExecution(execution: Execution): Promise<Execution>;

  /**
   * Moves an execution forward, guarded by its current status. The patch applies only when all of
   * these hold for the status stored at the moment of the write:
   * - it is not terminal (`succeeded`, `failed`, `cancelled`, `timed_out`, `interrupted`; see
   *   `isTerminalStatus`): a terminal execution is never changed again, with or without `expect`;
   * - it is one of `options.expect`, when `expect` is given;
   * - it is `queued`, when the patch sets `status: 'queued'` (a status never moves back).
   * Otherwise nothing changes: not the status, not any other field of the patch. Fields absent or
   * `undefined` in the patch are kept.
   *
   * Atomic: the check and the write are one conditional write (`UPDATE … WHERE id = ? AND status
   * IN (…)`), never a read followed by a write another writer could slip between. Of concurrent
   * calls that each expect a status the others leave (e.g. several moving one `running` execution
   * to different terminal statuses with `expect: ['running']`), exactly one applies.
   *
   * Returns the execution as stored after the call, whether or not the patch applied, so the
   * caller learns the truth (e.g. compare its `status` with the one asked for); it is read after
   * the write, so a concurrent writer's later change may already show. Null only when no execution
   * has that id. `updatableStatuses` computes the statuses the write may match.
   */
  updateExecution(id: string, patch: ExecutionPatch, options?: UpdateExecutionOptions): Promise<Execution | null>;

  /** The execution, or null. */
  getExecution(id: string): Promise<Execution | null>;

  /**
   * Executions newest first: `queuedAt` descending, then `id` descending. Cursor rules as in
   * `listScripts`, including the `validation` error for a cursor this store did not issue.
   */
  listExecutions(query: ListExecutionsQuery): Promise<Page<Execution>>;

  /**
   * Marks every execution that is still `queued` or `running` and was queued before
   * `query.queuedBefore` as `interrupted`, with `finishedAt`, `errorMessage` and `durationMs`
   * (`finishedAt - startedAt`, or 0 when it never started) set. Other executions are untouched.
   * Returns the executions it changed, as stored afterwards. Used when a runner starts, to end
   * the runs of a runner that died.
   */
  interruptStaleExecutions(query: InterruptQuery): Promise<Execution[]>;

  // ------------------------------------------------------------------- logs

  /**
   * Stores log lines of one execution. Lines are given in ascending `seq` order and all belong to
   * `executionId`. Idempotent on `seq`: a line whose `(executionId, seq)` is already stored is
   * ignored (the stored one is kept), so a batch retried after a partial failure never duplicates
   * a line. The promise resolves only once every line is durably readable through `readLogs`.
   */
  appendLogs(executionId: string, lines: LogLine[]): Promise<void>;

  /**
   * Lines of one execution with `seq > afterSeq`, ascending by `seq`, at most `limit`, filtered by
   * `levels`/`streams` when given (the limit applies after filtering). Fewer than `limit` only when
   * no more matching lines are stored: callers read a short page as "caught up". An unknown
   * execution yields an empty array.
   */
  readLogs(executionId: string, query: ReadLogsQuery): Promise<LogLine[]>;

  // -------------------------------------------------------------- artifacts
  // Optional as a group: a store without them keeps no artifacts (the runner says so in the run's
  // log when a script wrote any). A store that has one has all three.

  /**
   * Stores one file a run wrote, reading `content` as it comes. Never holds the whole file in one
   * allocation: bytes are stored in chunks of at most `ARTIFACT_CHUNK_BYTES` (`artifactChunks`
   * cuts them and counts `sizeBytes` and `sha256`). Replaces an artifact of the same execution and
   * name, so a retried put never leaves two. The artifact is listed (and readable) only once every
   * byte is stored: a put that fails midway leaves no artifact of that name behind that
   * `listArtifacts` shows. Resolves with the stored artifact.
   */
  putArtifact?(input: { executionId: string; name: string; createdAt: Date }, content: AsyncIterable<Uint8Array>): Promise<Artifact>;

  /** The artifacts of one execution, ordered by `name` (code-unit order); empty when it has none or is unknown. */
  listArtifacts?(executionId: string): Promise<Artifact[]>;

  /**
   * One artifact with its bytes, exactly as put, or null when there is none of that name. The
   * content is read from the store chunk by chunk as it is consumed (a download of a 50 MiB file
   * holds about one chunk in memory).
   */
  readArtifact?(executionId: string, name: string): Promise<ArtifactContent | null>;

  // -------------------------------------------------------------- retention
  // Optional as a group: a runner given `retention` needs all three. None of them ever touches a
  // queued or running execution, and each call is short (bounded rows per statement), so a sweep
  // never holds a long lock against the runs writing meanwhile.

  /**
   * Ids of terminal executions that match any given rule of the query (a rule left out matches
   * nothing; no rule, no ids), oldest `queuedAt` first, at most `limit`. Never a queued or running
   * execution, whatever its age or rank.
   */
  listExpiredExecutions?(query: ExpiredExecutionsQuery): Promise<string[]>;

  /**
   * Deletes one terminal execution with its log lines and artifacts, at most about `maxRows`
   * stored rows per call (the log and artifact bytes go in slices; the execution row goes last,
   * so an execution is listed until all of it is gone and a sweep interrupted midway resumes on
   * the next). `active` (nothing touched) when it is queued or running.
   */
  deleteExecution?(id: string, options: { maxRows: number }): Promise<DeleteProgress>;

  /**
   * Deletes an archived script (row and bytes) that has no executions left; returns whether it
   * did. An active script, or one with executions, is kept (`false`); so is an unknown id.
   */
  deleteScript?(id: string): Promise<boolean>;

  /**
   * Optional: resolves when the database answers (e.g. `SELECT 1`), for health checks. Without it
   * `runner.health()` reads an execution that does not exist.
   */
  ping?(): Promise<void>;

  /** Releases connections or files the store opened itself. Optional. */
  close?(): Promise<void>;
}
