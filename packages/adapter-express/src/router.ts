/**
 * createScriptRunnerRouter: the REST resources of a ScriptRunner as an Express 5 Router.
 * Routing, parsing and status codes only; every behaviour lives in @scriptrunner/core.
 */
import {
  DEFAULT_MAX_UPLOAD_BYTES,
  isTerminalStatus,
  type Execution,
  type ExecutionStatus,
  type JsonObject,
  type LogLevel,
  type LogStream,
  type Script,
  type ScriptRunner,
  type ScriptWithLastExecution,
} from '@scriptrunner/core';
import express, { Router, type NextFunction, type Request, type Response } from 'express';
import multer from 'multer';
import { errorHandler, HttpError, type ErrorLogger } from './http-errors.js';
import { drained, streamLogs } from './sse.js';

export type ScriptRunnerAction =
  | 'script:upload'
  | 'script:list'
  | 'script:read'
  | 'script:download'
  | 'script:archive'
  | 'script:run'
  | 'execution:list'
  | 'execution:read'
  | 'execution:cancel'
  | 'execution:logs';

/** What a route acts on: the ids in its path or query, when it has them. */
export interface ScriptRunnerResource {
  scriptId?: string;
  executionId?: string;
}

export interface ScriptRunnerRouterOptions {
  /**
   * Decides every request (sync or async). Return false to answer 403. Default: allow all — mount
   * the router behind your own authentication, or decide here.
   */
  authorize?: (req: Request, action: ScriptRunnerAction, resource: ScriptRunnerResource) => boolean | Promise<boolean>;
  upload?: {
    /** Largest file accepted, enforced while the upload streams in. Default 5 MiB (core's default). */
    maxBytes?: number;
  };
  /** Comment lines on idle SSE streams keep proxies from closing them. Default 15,000 ms. */
  heartbeatMs?: number;
  /** Seconds in the Retry-After header of a 429 (queue full). Default 5. */
  retryAfterSeconds?: number;
  /** Where unexpected (5xx) errors are reported. Default console. */
  logger?: ErrorLogger;
}

const MAX_LOG_PAGE = 10_000;
const LEVELS: readonly LogLevel[] = ['info', 'warn', 'error'];
const STREAMS: readonly LogStream[] = ['stdout', 'stderr', 'system'];
const STATUSES: readonly ExecutionStatus[] = ['queued', 'running', 'succeeded', 'failed', 'cancelled', 'timed_out', 'interrupted'];

function badRequest(message: string): HttpError {
  return new HttpError(400, 'bad_request', `[scriptrunner] ${message}`);
}

/** A single query value; repeated parameters are rejected rather than guessed at. */
function queryString(req: Request, name: string): string | undefined {
  const value = req.query[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw badRequest(`query parameter "${name}" must be given once`);
  return value;
}

function queryInt(req: Request, name: string, min: number, max: number): number | undefined {
  const value = queryString(req, name);
  if (value === undefined || value === '') return undefined;
  if (!/^\d+$/.test(value)) throw badRequest(`query parameter "${name}" must be a whole number`);
  const number = Number(value);
  if (number < min || number > max) throw badRequest(`query parameter "${name}" must be between ${min} and ${max}`);
  return number;
}

function queryEnum<T extends string>(req: Request, name: string, allowed: readonly T[]): T | undefined {
  const value = queryString(req, name);
  if (value === undefined || value === '') return undefined;
  if (!allowed.includes(value as T)) throw badRequest(`query parameter "${name}" must be one of ${allowed.join(', ')}`);
  return value as T;
}

/** A comma-separated list (`level=warn,error`), also accepted as repeated parameters. */
function queryList<T extends string>(req: Request, name: string, allowed: readonly T[]): T[] | undefined {
  const raw = req.query[name];
  if (raw === undefined) return undefined;
  const parts = (Array.isArray(raw) ? raw : [raw]).flatMap((v) => (typeof v === 'string' ? v.split(',') : [null]));
  if (parts.some((p) => p === null || !allowed.includes(p.trim() as T))) {
    throw badRequest(`query parameter "${name}" must be a list of ${allowed.join(', ')}`);
  }
  return [...new Set(parts.map((p) => p!.trim() as T))];
}

function param(req: Request, name: string): string {
  const value = req.params[name];
  if (typeof value !== 'string' || value.length === 0) throw badRequest(`missing ${name}`);
  return value;
}

export function createScriptRunnerRouter(runner: ScriptRunner, options: ScriptRunnerRouterOptions = {}): Router {
  const router = Router();
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const maxBytes = options.upload?.maxBytes ?? DEFAULT_MAX_UPLOAD_BYTES;
  const multerOptions = {
    storage: multer.memoryStorage(),
    // The size limit is enforced while the body streams in: a huge upload is cut off, not buffered.
    limits: { fileSize: maxBytes, files: 1, fields: 10, fieldSize: 128 * 1024, parts: 12 },
    // Keep "../x.py" as sent so core rejects it, instead of silently storing "x.py".
    preservePath: true,
    // File names are UTF-8 in browsers' form posts (multer's typings do not list this option yet).
    defParamCharset: 'utf8',
  };
  const upload = multer(multerOptions).single('file');
  const json = express.json({ limit: '256kb' });

  async function allow(req: Request, action: ScriptRunnerAction, resource: ScriptRunnerResource): Promise<void> {
    if (!options.authorize) return;
    if (!(await options.authorize(req, action, resource))) {
      throw new HttpError(403, 'forbidden', `[scriptrunner] not allowed: ${action}`);
    }
  }

  async function withLastExecution(script: Script): Promise<ScriptWithLastExecution> {
    const { items } = await runner.listExecutions({ scriptId: script.id, limit: 1 });
    return { ...script, lastExecution: items[0] ?? null };
  }

  // ------------------------------------------------------------------ scripts

  router.post(
    '/scripts',
    async (req: Request, _res: Response, next: NextFunction) => {
      // Decide before reading a byte of the body.
      await allow(req, 'script:upload', {});
      if (!req.is('multipart/form-data')) {
        throw new HttpError(415, 'unsupported_media_type', '[scriptrunner] upload the script as multipart/form-data with the field "file"');
      }
      next();
    },
    upload,
    async (req: Request, res: Response) => {
      const file = req.file;
      if (!file) throw badRequest('no file: upload the script in the form field "file"');
      const body = (req.body ?? {}) as Record<string, unknown>;
      let metadata: JsonObject | undefined;
      if (body.metadata !== undefined && body.metadata !== '') {
        if (typeof body.metadata !== 'string') throw badRequest('metadata must be given once, as JSON');
        try {
          metadata = JSON.parse(body.metadata) as JsonObject;
        } catch {
          throw badRequest('metadata is not valid JSON');
        }
      }
      if (body.description !== undefined && typeof body.description !== 'string') throw badRequest('description must be given once');
      const script = await runner.uploadScript({
        filename: file.originalname,
        content: file.buffer,
        description: body.description === '' ? null : ((body.description as string | undefined) ?? null),
        ...(metadata === undefined ? {} : { metadata }),
      });
      res.status(201).json({ script: { ...script, lastExecution: null } satisfies ScriptWithLastExecution });
    },
  );

  router.get('/scripts', async (req, res) => {
    await allow(req, 'script:list', {});
    const page = await runner.listScriptsWithLastExecution({
      status: queryEnum(req, 'status', ['active', 'archived', 'all'] as const) ?? 'active',
      limit: queryInt(req, 'limit', 1, 1000) ?? 50,
      cursor: queryString(req, 'cursor') ?? null,
    });
    res.json({ items: page.items, nextCursor: page.nextCursor });
  });

  router.get('/scripts/:id', async (req, res) => {
    const scriptId = param(req, 'id');
    await allow(req, 'script:read', { scriptId });
    res.json({ script: await withLastExecution(await runner.getScript(scriptId)) });
  });

  router.get('/scripts/:id/content', async (req, res) => {
    const scriptId = param(req, 'id');
    await allow(req, 'script:download', { scriptId });
    const script = await runner.getScript(scriptId);
    const content = await runner.getScriptContent(scriptId);
    res.attachment(script.filename);
    res.type(script.filename.endsWith('.py') ? 'text/x-python; charset=utf-8' : 'text/plain; charset=utf-8');
    res.send(Buffer.from(content));
  });

  router.delete('/scripts/:id', async (req, res) => {
    const scriptId = param(req, 'id');
    await allow(req, 'script:archive', { scriptId });
    res.json({ script: await withLastExecution(await runner.archiveScript(scriptId)) });
  });

  router.post('/scripts/:id/executions', json, async (req, res) => {
    const scriptId = param(req, 'id');
    await allow(req, 'script:run', { scriptId });
    const body: unknown = req.body ?? {};
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw badRequest('the body must be a JSON object like { "args": ["--day", "2026-11-30"] }');
    const { args } = body as { args?: unknown };
    if (args !== undefined && !Array.isArray(args)) throw badRequest('args must be a list of strings');
    const execution = await runner.run(scriptId, { args: (args as string[] | undefined) ?? [] });
    res.status(202).location(`${req.baseUrl}/executions/${encodeURIComponent(execution.id)}`).json({ execution });
  });

  // --------------------------------------------------------------- executions

  router.get('/executions', async (req, res) => {
    const scriptId = queryString(req, 'scriptId') || undefined;
    await allow(req, 'execution:list', scriptId ? { scriptId } : {});
    const status = queryEnum(req, 'status', STATUSES);
    const page = await runner.listExecutions({
      ...(scriptId ? { scriptId } : {}),
      ...(status ? { status } : {}),
      limit: queryInt(req, 'limit', 1, 1000) ?? 50,
      cursor: queryString(req, 'cursor') ?? null,
    });
    res.json(page);
  });

  router.get('/executions/:id', async (req, res) => {
    const executionId = param(req, 'id');
    await allow(req, 'execution:read', { executionId });
    res.json({ execution: await runner.getExecution(executionId) });
  });

  router.post('/executions/:id/cancel', async (req, res) => {
    const executionId = param(req, 'id');
    await allow(req, 'execution:cancel', { executionId });
    res.json({ execution: await runner.cancel(executionId) });
  });

  router.get('/executions/:id/logs', async (req, res) => {
    const executionId = param(req, 'id');
    await allow(req, 'execution:logs', { executionId });
    const after = queryInt(req, 'after', 0, Number.MAX_SAFE_INTEGER) ?? 0;
    const limit = queryInt(req, 'limit', 1, MAX_LOG_PAGE) ?? 1000;
    const levels = queryList(req, 'level', LEVELS);
    const streams = queryList(req, 'stream', STREAMS);
    // Status first: if it is terminal now, every line is already stored, so a short page is the end.
    const execution = await runner.getExecution(executionId);
    const lines = await runner.readLogs(executionId, {
      afterSeq: after,
      limit,
      ...(levels ? { levels } : {}),
      ...(streams ? { streams } : {}),
    });
    const nextAfter = lines.length > 0 ? lines[lines.length - 1]!.seq : after;
    res.json({ lines, nextAfter, done: isTerminalStatus(execution.status) && lines.length < limit });
  });

  router.get('/executions/:id/logs/stream', async (req, res) => {
    const executionId = param(req, 'id');
    await allow(req, 'execution:logs', { executionId });
    const lastEventId = req.get('Last-Event-ID');
    let afterSeq: number;
    if (lastEventId !== undefined && lastEventId !== '') {
      if (!/^\d+$/.test(lastEventId)) throw badRequest('Last-Event-ID must be the seq of a line');
      afterSeq = Number(lastEventId);
    } else {
      afterSeq = queryInt(req, 'after', 0, Number.MAX_SAFE_INTEGER) ?? 0;
    }
    await streamLogs(runner, executionId, req, res, {
      afterSeq,
      reconnect: lastEventId !== undefined,
      heartbeatMs,
      pageSize: 2000,
    });
  });

  router.get('/executions/:id/logs.txt', async (req, res) => {
    const executionId = param(req, 'id');
    await allow(req, 'execution:logs', { executionId });
    await runner.getExecution(executionId);
    let closed = false;
    res.on('close', () => {
      closed = true;
    });
    // Streamed page by page from the store: a million-line log never sits in memory at once.
    res.status(200).type('text/plain; charset=utf-8');
    res.setHeader('Content-Disposition', `inline; filename="${executionId}.log"`);
    let after = 0;
    while (!closed) {
      const page = await runner.readLogs(executionId, { afterSeq: after, limit: 5000 });
      if (page.length === 0) break;
      after = page[page.length - 1]!.seq;
      let text = '';
      for (const line of page) text += `${line.text}\n`;
      if (!res.write(text) && !closed) await drained(res);
    }
    res.end();
  });

  router.use(errorHandler(options.logger ?? console, options.retryAfterSeconds ?? 5));
  return router;
}
