/**
 * @scriptrunner/adapter-express — mount a ScriptRunner's REST routes and SSE log stream anywhere:
 *
 * ```ts
 * app.use('/api/scripts-runner', createScriptRunnerRouter(runner, { authorize }));
 * ```
 */
export { createScriptRunnerRouter } from './router.js';
export type { ScriptRunnerAction, ScriptRunnerResource, ScriptRunnerRouterOptions } from './router.js';
/** What the script routes answer with: a script and its newest execution (null when it never ran). */
export type { ScriptWithLastExecution } from '@scriptrunner/core';
