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
 * A brand shared by every copy of this package in a process (a bundler's and Node's, the ESM and
 * the CommonJS build, the ./testing bundle): `instanceof` and `isScriptRunnerError` recognise an
 * error made by any of them, so a `validation` error never turns into an HTTP 500 because two
 * copies were loaded.
 */
const BRAND = Symbol.for('@scriptrunner/core:ScriptRunnerError');

/**
 * Every error the runner throws or emits. `code` is stable and meant for programs (HTTP adapters map
 * it to a status); `message` is meant for people and starts with `[scriptrunner]`.
 */
export class ScriptRunnerError extends Error {
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }

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
    Object.defineProperty(this, BRAND, { value: true });
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
