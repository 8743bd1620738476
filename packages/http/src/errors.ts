/**
 * How errors become HTTP responses: `{ error: { code, message } }` with the status that fits.
 * Bad input is always a 4xx; only a failure of the server itself is a 5xx. One mapping for both
 * faces (Express and fetch).
 */
import { isScriptRunnerError } from '@scriptrunner/core';
import type { HttpResponse } from './types.js';

/** An error the routes themselves raise (unparseable input, denied access) with its HTTP status. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message.startsWith('[scriptrunner]') ? message : `[scriptrunner] ${message}`);
  }
}

export const badRequest = (message: string) => new HttpError(400, 'bad_request', message);

/** Where unexpected (5xx) errors are reported. */
export interface ErrorLogger {
  error(message: string): void;
}

const CORE_STATUS: Record<string, number> = {
  validation: 422,
  not_found: 404,
  conflict: 409,
  queue_full: 429,
  closed: 503,
  store: 503,
  // A facility the deployment needs is away (e.g. Redis behind a distributed dispatcher).
  unavailable: 503,
};

export function jsonResponse(status: number, body: unknown, headers: Record<string, string> = {}): HttpResponse {
  return { status, headers: { 'Content-Type': 'application/json; charset=utf-8', ...headers }, body: JSON.stringify(body) };
}

export function errorResponse(status: number, code: string, message: string, headers: Record<string, string> = {}): HttpResponse {
  return jsonResponse(status, { error: { code, message } }, headers);
}

/** The request's stream failed because the client went away (Node reports it as these). */
export function isClientGone(error: unknown): boolean {
  const e = error as { code?: unknown; message?: unknown } | null;
  return (
    e !== null &&
    typeof e === 'object' &&
    (e.code === 'ECONNRESET' || e.code === 'ERR_STREAM_PREMATURE_CLOSE' || e.code === 'ABORT_ERR' || e.message === 'aborted')
  );
}

/**
 * Maps anything a route threw. `aborted`: the client went away (an upload cut off, say), which is
 * not the server's fault and not logged; nobody reads the answer.
 */
export function toErrorResponse(error: unknown, options: { logger: ErrorLogger; retryAfterSeconds: number; aborted: boolean }): HttpResponse {
  if (error instanceof HttpError) return errorResponse(error.status, error.code, error.message, error.headers);
  if (isScriptRunnerError(error)) {
    const status = CORE_STATUS[error.code] ?? 400;
    const headers: Record<string, string> = error.code === 'queue_full' ? { 'Retry-After': String(options.retryAfterSeconds) } : {};
    if (status >= 500) options.logger.error(error.message);
    return errorResponse(status, error.code, error.message, headers);
  }
  if (options.aborted || isClientGone(error)) return errorResponse(400, 'aborted', '[scriptrunner] the client closed the request');
  const message = error instanceof Error ? error.message : String(error);
  options.logger.error(`[scriptrunner] unexpected error in a route: ${message}`);
  return errorResponse(500, 'internal', '[scriptrunner] internal error');
}
