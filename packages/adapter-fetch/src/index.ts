/**
 * @scriptrunner/adapter-fetch — a ScriptRunner's REST routes and SSE log stream as a Web-standard
 * handler. In a Next.js App Router app, `app/api/scripts/[[...path]]/route.ts`:
 *
 * ```ts
 * const handler = createScriptRunnerHandler(runner, { basePath: '/api/scripts', authorize });
 * export { handler as GET, handler as POST, handler as DELETE };
 * ```
 */
export { createScriptRunnerHandler } from './handler.js';
export type { ScriptRunnerAction, ScriptRunnerHandlerOptions, ScriptRunnerResource } from './handler.js';
