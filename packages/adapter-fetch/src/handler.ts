/**
 * createScriptRunnerHandler: the REST resources of a ScriptRunner as one Web-standard
 * `(request: Request) => Promise<Response>` — a Next.js App Router route handler, a Hono or Bun or
 * Deno handler, anything with Fetch objects. A thin face over @scriptrunner/http's route table.
 */
import type { ScriptRunner } from '@scriptrunner/core';
import { createRouteHandler, type HttpResponse, type RouteOptions } from '@scriptrunner/http';

export type { ScriptRunnerAction, ScriptRunnerResource } from '@scriptrunner/http';

export interface ScriptRunnerHandlerOptions extends RouteOptions<Request> {
  /**
   * Where the routes are mounted in the URL path, e.g. `/api/sandbox/test-scripts` for
   * `app/api/sandbox/test-scripts/[[...path]]/route.ts`. Requests outside it answer 404. Default `/`.
   */
  basePath?: string;
}

const encoder = new TextEncoder();

/** A streamed body as a pull-based stream: the next chunk is produced only when the client asks. */
function toStream(chunks: AsyncIterable<string | Uint8Array>): ReadableStream<Uint8Array> {
  const iterator = chunks[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const next = await iterator.next();
          if (next.done) controller.close();
          else controller.enqueue(typeof next.value === 'string' ? encoder.encode(next.value) : next.value);
        } catch (error) {
          controller.error(error);
        }
      },
      async cancel() {
        await iterator.return?.();
      },
    },
    { highWaterMark: 0 },
  );
}

function toResponse(response: HttpResponse): Response {
  const { body } = response;
  const init = { status: response.status, headers: response.headers };
  if (body === null || typeof body === 'string') return new Response(body, init);
  if (body instanceof Uint8Array) return new Response(body as Uint8Array<ArrayBuffer>, init);
  return new Response(toStream(body), init);
}

export function createScriptRunnerHandler(
  runner: ScriptRunner,
  options: ScriptRunnerHandlerOptions = {},
): (request: Request) => Promise<Response> {
  const basePath = (options.basePath ?? '/').replace(/\/+$/, '');
  const handle = createRouteHandler<Request>(runner, options);
  return async (request) => {
    const url = new URL(request.url);
    const inside = url.pathname === basePath || url.pathname.startsWith(`${basePath}/`);
    const response = await handle({
      method: request.method,
      // Outside the mount: a path no route has, so the answer is the routes' JSON 404.
      path: inside ? url.pathname.slice(basePath.length) || '/' : `/\0${url.pathname}`,
      query: url.searchParams,
      headers: request.headers,
      // Web ReadableStreams are async iterable in Node, Bun and Deno.
      body: request.body as unknown as AsyncIterable<Uint8Array> | null,
      signal: request.signal,
      baseUrl: basePath,
      native: request,
    });
    return toResponse(response);
  };
}
