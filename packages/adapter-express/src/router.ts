/**
 * createScriptRunnerRouter: the REST resources of a ScriptRunner as an Express 5 Router. A thin
 * face over @scriptrunner/http's route table: it translates Express's request into the neutral one
 * and writes the neutral response back, streaming bodies at the client's pace.
 */
import type { ScriptRunner } from '@scriptrunner/core';
import { createRouteHandler, type HttpResponse, type RouteOptions } from '@scriptrunner/http';
import { Router, type Request, type Response } from 'express';

export type { ScriptRunnerAction, ScriptRunnerResource } from '@scriptrunner/http';

/** Options of the router; `authorize` receives Express's request (e.g. `req.user` from your auth middleware). */
export type ScriptRunnerRouterOptions = RouteOptions<Request>;

/** Resolves when the socket buffer drained, or the client went away (no 'drain' will ever come). */
function drained(res: Response): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

async function send(res: Response, response: HttpResponse, signal: AbortSignal): Promise<void> {
  res.status(response.status);
  for (const [name, value] of Object.entries(response.headers)) res.setHeader(name, value);
  const { body } = response;
  if (body === null || typeof body === 'string' || body instanceof Uint8Array) {
    res.end(body ?? undefined);
    return;
  }
  res.flushHeaders();
  const chunks = body[Symbol.asyncIterator]();
  try {
    // One chunk at a time, the next only once the client took the last: a slow reader paces the store reads.
    while (!signal.aborted) {
      const next = await chunks.next();
      if (next.done || signal.aborted) break;
      if (!res.write(next.value)) await drained(res);
    }
  } finally {
    await chunks.return?.();
    res.end();
  }
}

export function createScriptRunnerRouter(runner: ScriptRunner, options: ScriptRunnerRouterOptions = {}): Router {
  const handle = createRouteHandler<Request>(runner, options);
  const router = Router();
  router.use(async (req: Request, res: Response) => {
    const controller = new AbortController();
    // 'close' before the response finished: the client went away.
    res.on('close', () => {
      if (!res.writableFinished) controller.abort();
    });
    const query = new URLSearchParams(req.originalUrl.includes('?') ? req.originalUrl.slice(req.originalUrl.indexOf('?')) : '');
    const response = await handle({
      method: req.method,
      path: req.path,
      query,
      headers: { get: (name) => req.get(name) ?? null },
      // A body-parser in front of the router (app.use(express.json())) already consumed the stream.
      body: (req as { _body?: boolean })._body === true || req.readableEnded ? null : req,
      ...((req as { _body?: boolean })._body === true ? { parsedJson: req.body as unknown } : {}),
      signal: controller.signal,
      baseUrl: req.baseUrl,
      native: req,
    });
    if (res.headersSent) return;
    await send(res, response, controller.signal);
  });
  return router;
}
