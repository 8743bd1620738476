export type ScriptRunnerErrorCode =
  /** Bad input from the caller: a filename, content, args, options. The message says what to fix. */
  | 'validation'
  /** No script or execution with that id. */
  | 'not_found'
  /** `maxQueued` executions are already waiting. Retry later. */
  | 'queue_full'
  /** The request contradicts the current state, e.g. running an archived script. */
  | 'conflict'
  /** The store failed (after retries where the runner retries). */
  | 'store'
  /** The runner was closed. */
  | 'closed'
  /** Something the options ask for is missing on this host (e.g. bubblewrap for `isolation: 'bwrap'`). */
  | 'unavailable';

/**
 * Every error the runner throws or emits. `code` is stable and meant for programs (HTTP adapters map
 * it to a status); `message` is meant for people and starts with `[scriptrunner]`.
 */
export class ScriptRunnerError extends Error {
  override name = 'ScriptRunnerError';
  readonly code: ScriptRunnerErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(
    code: ScriptRunnerErrorCode,
    message: string,
    options?: { details?: Record<string, unknown>; cause?: unknown },
  ) {
    super(`[scriptrunner] ${message}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options?.details;
  }
}

export function isScriptRunnerError(error: unknown): error is ScriptRunnerError {
  return error instanceof ScriptRunnerError;
}

/** A short, single-line description of anything thrown. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
