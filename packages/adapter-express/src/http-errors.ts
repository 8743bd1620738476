/**
 * How errors become HTTP responses: `{ error: { code, message } }` with the status that fits.
 * Bad input is always a 4xx; only a failure of the server itself is a 5xx.
 */
import { isScriptRunnerError } from '@scriptrunner/core';
import type { ErrorRequestHandler, Response } from 'express';

/** An error the adapter itself raises (unparseable input, denied access) with its HTTP status. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
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

const MULTER_STATUS: Record<string, [number, string]> = {
  LIMIT_FILE_SIZE: [413, 'the file is larger than the upload limit'],
  LIMIT_FIELD_VALUE: [413, 'a form field is too large'],
  LIMIT_PART_COUNT: [400, 'too many parts in the form'],
  LIMIT_FILE_COUNT: [400, 'upload exactly one file, in the field "file"'],
  LIMIT_FIELD_KEY: [400, 'a form field name is too long'],
  LIMIT_FIELD_COUNT: [400, 'too many form fields'],
  LIMIT_UNEXPECTED_FILE: [400, 'upload the script in the form field "file"'],
  MISSING_FIELD_NAME: [400, 'a form part has no field name'],
};

export function sendError(res: Response, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  res.status(status).json({ error: { code, message } });
}

export interface ErrorLogger {
  error(message: string): void;
}

/** The router's error handler: maps core, multer, body-parser and adapter errors. */
export function errorHandler(logger: ErrorLogger, retryAfterSeconds: number): ErrorRequestHandler {
  return (error: unknown, _req, res, _next) => {
    if (error instanceof HttpError) return sendError(res, error.status, error.code, error.message, error.headers);
    if (isScriptRunnerError(error)) {
      const status = CORE_STATUS[error.code] ?? 400;
      const headers: Record<string, string> = error.code === 'queue_full' ? { 'Retry-After': String(retryAfterSeconds) } : {};
      if (status >= 500) logger.error(error.message);
      return sendError(res, status, error.code, error.message, headers);
    }
    const e = error as { name?: string; code?: string; type?: string; status?: number; message?: string };
    if (e?.name === 'MulterError' && e.code) {
      const [status, message] = MULTER_STATUS[e.code] ?? [400, e.message ?? 'the upload is malformed'];
      return sendError(res, status, status === 413 ? 'too_large' : 'bad_request', `[scriptrunner] ${message}`);
    }
    // body-parser (express.json) errors carry a `type` and a 4xx status.
    if (e?.type === 'entity.parse.failed') return sendError(res, 400, 'bad_request', '[scriptrunner] the request body is not valid JSON');
    if (e?.type === 'entity.too.large') return sendError(res, 413, 'too_large', '[scriptrunner] the request body is too large');
    if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500) {
      return sendError(res, e.status, 'bad_request', `[scriptrunner] ${e.message ?? 'bad request'}`);
    }
    // busboy reports a broken multipart body as a plain Error.
    if (e?.message && /multipart|boundary|Unexpected end of form|Malformed part header/i.test(e.message)) {
      return sendError(res, 400, 'bad_request', `[scriptrunner] the upload is not a valid multipart form: ${e.message}`);
    }
    logger.error(`[scriptrunner] unexpected error in a route: ${e?.message ?? String(error)}`);
    return sendError(res, 500, 'internal', '[scriptrunner] internal error');
  };
}
