/**
 * The route table: every REST resource of a ScriptRunner, written once. Parsing, cross-site
 * refusal, authorization, the calls into the runner and the error → status mapping all live here;
 * the Express and fetch faces only translate their framework's request and response.
 */
import {
  DEFAULT_MAX_UPLOAD_BYTES,
  isScriptRunnerError,
  isTerminalStatus,
  type ExecutionStatus,
  type JsonObject,
  type LogLevel,
  type LogStream,
  type Script,
  type RunOptions,
  type ScriptRunner,
  type ScriptWithLastExecution,
} from '@scriptrunner/core';
import { isJsonType, mediaType, readText } from './body.js';
import { badRequest, errorResponse, HttpError, jsonResponse, toErrorResponse } from './errors.js';
import { readUploadForm } from './multipart.js';
import { crossSiteReason } from './origin.js';
import { attachment, checkedId, queryEnum, queryInt, queryList, queryString, withCursor } from './params.js';
import { operationRoutes } from './operations.js';
import { sseEvents } from './sse.js';
import type { HttpRequest, HttpResponse, RouteOptions, ScriptRunnerAction, ScriptRunnerResource } from './types.js';

const MAX_LOG_PAGE = 10_000;
/** Lines per store read of logs.txt; the download yields to the event loop between reads. */
const TEXT_SLICE = 5_000;
const JSON_BODY_BYTES = 256 * 1024;
const LEVELS: readonly LogLevel[] = ['info', 'warn', 'error'];
const STREAMS: readonly LogStream[] = ['stdout', 'stderr', 'system'];
const STATUSES: readonly ExecutionStatus[] = ['queued', 'running', 'succeeded', 'failed', 'cancelled', 'timed_out', 'interrupted'];
const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
/** Downloads are data, never something a browser should sniff into HTML or script. */
const NOSNIFF = { 'X-Content-Type-Options': 'nosniff' };

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/** One request as a route sees it. */
export interface Context<Native> {
  req: HttpRequest<Native>;
  params: string[];
  allow(action: ScriptRunnerAction, resource: ScriptRunnerResource): Promise<void>;
}

type Handler<Native> = (ctx: Context<Native>) => Promise<HttpResponse>;

export interface Route<Native> {
  method: 'GET' | 'POST' | 'DELETE';
  /** Path segments; `:id` captures one. */
  segments: string[];
  handler: Handler<Native>;
}

// ------------------------------------------------------------------ the routes

/** Builds the request handler both faces call. Unknown paths answer a JSON 404. */
export function createRouteHandler<Native>(
  runner: ScriptRunner,
  options: RouteOptions<Native> = {},
): (req: HttpRequest<Native>) => Promise<HttpResponse> {
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const maxBytes = options.upload?.maxBytes ?? DEFAULT_MAX_UPLOAD_BYTES;
  const bodyTimeoutMs = options.bodyTimeoutMs ?? 60_000;
  const logger = options.logger ?? console;
  const retryAfterSeconds = options.retryAfterSeconds ?? 5;

  async function withLastExecution(script: Script): Promise<ScriptWithLastExecution> {
    const { items } = await runner.listExecutions({ scriptId: script.id, limit: 1 });
    return { ...script, lastExecution: items[0] ?? null };
  }

  const routes: Route<Native>[] = [
    // ---------------------------------------------------------------- scripts
    {
      method: 'POST',
      segments: ['scripts'],
      async handler({ req, allow }) {
        // Decide before reading a byte of the body.
        await allow('script:upload', {});
        const contentType = req.headers.get('content-type');
        if (mediaType(contentType) !== 'multipart/form-data') {
          throw new HttpError(415, 'unsupported_media_type', 'upload the script as multipart/form-data with the field "file"');
        }
        const form = await readUploadForm(contentType!, req.body, { maxBytes, deadlineMs: bodyTimeoutMs });
        if (!form.file) throw badRequest('no file: upload the script in the form field "file"');
        const description = form.fields.get('description');
        const metadataField = form.fields.get('metadata');
        const environment = form.fields.get('environment');
        if (description && description.length > 1) throw badRequest('description must be given once');
        if (environment && environment.length > 1) throw badRequest('environment must be given once');
        let metadata: JsonObject | undefined;
        if (metadataField && metadataField[0] !== '') {
          if (metadataField.length > 1) throw badRequest('metadata must be given once, as JSON');
          try {
            metadata = JSON.parse(metadataField[0]!) as JsonObject;
          } catch {
            throw badRequest('metadata is not valid JSON');
          }
        }
        const script = await runner.uploadScript({
          filename: form.file.filename,
          content: form.file.content,
          description: description?.[0] ? description[0] : null,
          ...(metadata === undefined ? {} : { metadata }),
          // An empty field (a form's "use the default" choice) names none.
          ...(environment?.[0] ? { environment: environment[0] } : {}),
        });
        return jsonResponse(201, { script: { ...script, lastExecution: null } satisfies ScriptWithLastExecution });
      },
    },
    {
      method: 'GET',
      segments: ['scripts'],
      async handler({ req, allow }) {
        await allow('script:list', {});
        const page = await withCursor(() =>
          runner.listScriptsWithLastExecution({
            status: queryEnum(req.query, 'status', ['active', 'archived', 'all'] as const) ?? 'active',
            limit: queryInt(req.query, 'limit', 1, 1000) ?? 50,
            cursor: queryString(req.query, 'cursor') || null,
          }),
        );
        return jsonResponse(200, { items: page.items, nextCursor: page.nextCursor });
      },
    },
    {
      method: 'GET',
      segments: ['scripts', ':id'],
      async handler({ params: [scriptId], allow }) {
        await allow('script:read', { scriptId: scriptId! });
        return jsonResponse(200, { script: await withLastExecution(await runner.getScript(scriptId!)) });
      },
    },
    {
      method: 'GET',
      segments: ['scripts', ':id', 'content'],
      async handler({ params: [scriptId], allow }) {
        await allow('script:download', { scriptId: scriptId! });
        const script = await runner.getScript(scriptId!);
        const content = await runner.getScriptContent(scriptId!);
        return {
          status: 200,
          headers: {
            'Content-Type': script.filename.endsWith('.py') ? 'text/x-python; charset=utf-8' : 'text/plain; charset=utf-8',
            'Content-Disposition': attachment(script.filename),
            ...NOSNIFF,
          },
          body: content,
        };
      },
    },
    {
      method: 'DELETE',
      segments: ['scripts', ':id'],
      async handler({ params: [scriptId], allow }) {
        await allow('script:archive', { scriptId: scriptId! });
        return jsonResponse(200, { script: await withLastExecution(await runner.archiveScript(scriptId!)) });
      },
    },
    {
      method: 'POST',
      segments: ['scripts', ':id', 'restore'],
      async handler({ params: [scriptId], allow }) {
        await allow('script:restore', { scriptId: scriptId! });
        return jsonResponse(200, { script: await withLastExecution(await runner.restoreScript(scriptId!)) });
      },
    },
    {
      method: 'POST',
      segments: ['scripts', ':id', 'executions'],
      async handler({ req, params: [scriptId], allow }) {
        await allow('script:run', { scriptId: scriptId! });
        // JSON only: a form or text/plain body is what a cross-site page can send without a preflight.
        if (!isJsonType(req.headers.get('content-type'))) {
          throw new HttpError(415, 'unsupported_media_type', 'send the body as JSON (Content-Type: application/json), e.g. { "args": [] }');
        }
        let body: unknown = req.parsedJson;
        if (body === undefined) {
          const text = await readText(req.body, JSON_BODY_BYTES, bodyTimeoutMs);
          try {
            body = text.trim() === '' ? {} : JSON.parse(text);
          } catch {
            throw badRequest('the request body is not valid JSON');
          }
        }
        if (typeof body !== 'object' || body === null || Array.isArray(body)) {
          throw badRequest('the body must be a JSON object like { "args": ["--day", "2026-11-30"] }');
        }
        const { args, environment } = body as { args?: unknown; environment?: unknown };
        if (args !== undefined && !Array.isArray(args)) throw badRequest('args must be a list of strings');
        // Checked against the runner's environments by core (422 naming the ones it has).
        const options: RunOptions = { args: (args as string[] | undefined) ?? [] };
        if (environment !== undefined && environment !== null) options.environment = environment as string;
        const execution = await runner.run(scriptId!, options);
        return jsonResponse(202, { execution }, { Location: `${req.baseUrl}/executions/${encodeURIComponent(execution.id)}` });
      },
    },

    // ---------------------------------------------------------------- executions
    {
      method: 'GET',
      segments: ['executions'],
      async handler({ req, allow }) {
        const rawScriptId = queryString(req.query, 'scriptId');
        const scriptId = rawScriptId ? checkedId(rawScriptId, 'script') : undefined;
        await allow('execution:list', scriptId ? { scriptId } : {});
        const status = queryEnum(req.query, 'status', STATUSES);
        const page = await withCursor(() =>
          runner.listExecutions({
            ...(scriptId ? { scriptId } : {}),
            ...(status ? { status } : {}),
            limit: queryInt(req.query, 'limit', 1, 1000) ?? 50,
            cursor: queryString(req.query, 'cursor') || null,
          }),
        );
        return jsonResponse(200, page);
      },
    },
    {
      method: 'GET',
      segments: ['executions', ':id'],
      async handler({ params: [executionId], allow }) {
        await allow('execution:read', { executionId: executionId! });
        return jsonResponse(200, { execution: await runner.getExecution(executionId!) });
      },
    },
    {
      method: 'POST',
      segments: ['executions', ':id', 'cancel'],
      async handler({ params: [executionId], allow }) {
        await allow('execution:cancel', { executionId: executionId! });
        return jsonResponse(200, { execution: await runner.cancel(executionId!) });
      },
    },
    {
      method: 'GET',
      segments: ['executions', ':id', 'logs'],
      async handler({ req, params: [executionId], allow }) {
        await allow('execution:logs', { executionId: executionId! });
        const after = queryInt(req.query, 'after', 0, Number.MAX_SAFE_INTEGER) ?? 0;
        const limit = queryInt(req.query, 'limit', 1, MAX_LOG_PAGE) ?? 1000;
        const levels = queryList(req.query, 'level', LEVELS);
        const streams = queryList(req.query, 'stream', STREAMS);
        // Status first: if it is terminal now, every line is already stored, so a short page is the end.
        const execution = await runner.getExecution(executionId!);
        const lines = await runner.readLogs(executionId!, {
          afterSeq: after,
          limit,
          ...(levels ? { levels } : {}),
          ...(streams ? { streams } : {}),
        });
        const nextAfter = lines.length > 0 ? lines[lines.length - 1]!.seq : after;
        return jsonResponse(200, { lines, nextAfter, done: isTerminalStatus(execution.status) && lines.length < limit });
      },
    },
    {
      method: 'GET',
      segments: ['executions', ':id', 'logs', 'stream'],
      async handler({ req, params: [executionId], allow }): Promise<HttpResponse> {
        await allow('execution:logs', { executionId: executionId! });
        const lastEventId = req.headers.get('last-event-id');
        let afterSeq: number;
        if (lastEventId !== null && lastEventId !== '') {
          if (!/^\d+$/.test(lastEventId) || !Number.isSafeInteger(Number(lastEventId))) throw badRequest('Last-Event-ID must be the seq of a line');
          afterSeq = Number(lastEventId);
        } else {
          afterSeq = queryInt(req.query, 'after', 0, Number.MAX_SAFE_INTEGER) ?? 0;
        }
        const follow = await runner.follow(executionId!, { afterSeq, signal: req.signal });
        const execution = follow.execution;
        // An EventSource that reconnects after the end would loop forever; 204 tells it to stop.
        if (lastEventId !== null && isTerminalStatus(execution.status) && afterSeq >= execution.lineCount) {
          follow.close();
          return { status: 204, headers: {}, body: null };
        }
        return {
          status: 200,
          headers: {
            'Content-Type': 'text/event-stream; charset=utf-8',
            'Cache-Control': 'no-cache, no-transform',
            Connection: 'keep-alive',
            // Proxies such as nginx would otherwise buffer the stream and break liveness.
            'X-Accel-Buffering': 'no',
          },
          body: sseEvents(follow, heartbeatMs),
        };
      },
    },
    {
      method: 'GET',
      segments: ['executions', ':id', 'logs.txt'],
      async handler({ req, params: [executionId], allow }) {
        await allow('execution:logs', { executionId: executionId! });
        await runner.getExecution(executionId!);
        return {
          status: 200,
          headers: {
            'Content-Type': 'text/plain; charset=utf-8',
            'Content-Disposition': `inline; filename="${executionId!.replace(/[^\w.-]/g, '_')}.log"`,
            ...NOSNIFF,
          },
          body: logText(runner, executionId!, req.signal),
        };
      },
    },
    {
      method: 'GET',
      segments: ['executions', ':id', 'artifacts'],
      async handler({ params: [executionId], allow }) {
        await allow('execution:artifacts', { executionId: executionId! });
        return jsonResponse(200, { artifacts: await runner.listArtifacts(executionId!) });
      },
    },
    {
      method: 'GET',
      // The name is one path segment: `plots/wind.png` arrives as `plots%2Fwind.png`.
      segments: ['executions', ':id', 'artifacts', ':name'],
      async handler({ params: [executionId, name], allow }) {
        await allow('execution:artifacts', { executionId: executionId! });
        const { artifact, content } = await runner.readArtifact(executionId!, name!);
        return {
          status: 200,
          headers: {
            // Always a download, never rendered: the bytes are whatever the script wrote.
            'Content-Type': 'application/octet-stream',
            'Content-Disposition': attachment(artifact.name.slice(artifact.name.lastIndexOf('/') + 1)),
            'Content-Length': String(artifact.sizeBytes),
            ETag: `"${artifact.sha256}"`,
            ...NOSNIFF,
          },
          body: content,
        };
      },
    },
    ...operationRoutes<Native>(runner, options),
  ];

  async function allowFor(req: HttpRequest<Native>, action: ScriptRunnerAction, resource: ScriptRunnerResource): Promise<void> {
    if (!options.authorize) return;
    if (!(await options.authorize(req.native, action, resource))) throw new HttpError(403, 'forbidden', `not allowed: ${action}`);
  }

  return async (req) => {
    try {
      const method = req.method === 'HEAD' ? 'GET' : req.method;
      const matched = match(routes, method, req.path);
      if (matched === 'not_found') return errorResponse(404, 'not_found', `no route ${req.method} ${req.path}`);
      if (matched.route === null) {
        return errorResponse(405, 'method_not_allowed', `${req.method} is not allowed here; use ${matched.allowed.join(', ')}`, {
          Allow: matched.allowed.join(', '),
        });
      }
      if (WRITE_METHODS.has(method)) {
        const reason = crossSiteReason(req.headers, options.trustedOrigins);
        if (reason !== null) {
          throw new HttpError(403, 'cross_site', `cross-site request refused: ${reason}. A front end on another origin must be listed in trustedOrigins`);
        }
      }
      // Ids are checked here; an artifact's name by core (a `validation` error names what is wrong).
      const params = matched.params.map((value, i) =>
        i === 0 ? checkedId(value, matched.route!.segments[0] === 'scripts' ? 'script' : 'execution') : value,
      );
      const response = await matched.route.handler({ req, params, allow: (action, resource) => allowFor(req, action, resource) });
      if (req.method === 'HEAD' && response.body !== null && typeof response.body === 'object' && Symbol.asyncIterator in response.body) {
        void response.body[Symbol.asyncIterator]().return?.();
        return { ...response, body: null };
      }
      return response;
    } catch (error) {
      return toErrorResponse(error, { logger, retryAfterSeconds, aborted: req.signal.aborted });
    }
  };
}

/** logs.txt: the stored lines, one slice per pull (the client's pace), yielding to the event loop between slices. */
async function* logText(runner: ScriptRunner, executionId: string, signal: AbortSignal): AsyncGenerator<string> {
  let after = 0;
  for (let slice = 0; !signal.aborted; slice++) {
    if (slice > 0) await yieldToEventLoop();
    const page = await runner.readLogs(executionId, { afterSeq: after, limit: TEXT_SLICE });
    if (page.length === 0) return;
    after = page[page.length - 1]!.seq;
    let text = '';
    for (const line of page) text += `${line.text}\n`;
    yield text;
    if (page.length < TEXT_SLICE) return;
  }
}

type Match<Native> = 'not_found' | { route: Route<Native> | null; params: string[]; allowed: string[] };

function match<Native>(routes: Route<Native>[], method: string, path: string): Match<Native> {
  // One trailing slash is ignored, as Express does.
  const trimmed = path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
  const raw = trimmed.split('/').slice(1);
  let segments: string[];
  try {
    segments = raw.map((s) => decodeURIComponent(s));
  } catch {
    return 'not_found';
  }
  const allowed: string[] = [];
  for (const route of routes) {
    if (route.segments.length !== segments.length) continue;
    const params: string[] = [];
    const fits = route.segments.every((part, i) => {
      if (part.startsWith(':')) {
        params.push(segments[i]!);
        return true;
      }
      return part === segments[i];
    });
    if (!fits) continue;
    if (route.method === method) return { route, params, allowed: [] };
    allowed.push(route.method);
  }
  return allowed.length === 0 ? 'not_found' : { route: null, params: [], allowed };
}
