/**
 * Every scriptrunner route (upload, list, run, cancel, logs, SSE …) under
 * /api/sandbox/test-scripts, through the Web-standard handler, behind the app's own session:
 * no session → 401 on every sub-path; viewers may read, analysts may also upload, run and cancel.
 */
import { createScriptRunnerHandler } from '@scriptrunner/adapter-fetch';
import { canRun, currentUser } from '@/lib/auth.ts';
import { scriptRunner } from '@/lib/scriptrunner.ts';

const WRITES = new Set(['script:upload', 'script:archive', 'script:run', 'execution:cancel']);

// Created on the first request, not at import: `next build` imports route modules.
let handler: ((request: Request) => Promise<Response>) | undefined;

async function route(request: Request): Promise<Response> {
  const user = await currentUser(request);
  if (!user) return Response.json({ error: { code: 'unauthenticated', message: 'sign in first' } }, { status: 401 });
  handler ??= createScriptRunnerHandler(scriptRunner(), {
    basePath: '/api/sandbox/test-scripts',
    authorize: async (req, action) => !WRITES.has(action) || canRun(await currentUser(req)),
  });
  return handler(request);
}

export { route as GET, route as POST, route as DELETE };
// Lists and streamed logs are live data: never cached or prerendered.
export const dynamic = 'force-dynamic';
