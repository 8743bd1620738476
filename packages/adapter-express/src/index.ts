/**
 * @scriptrunner/adapter-express — mount a ScriptRunner's REST routes and SSE log stream anywhere:
 *
 * ```ts
 * app.use('/api/scripts-runner', createScriptRunnerRouter(runner, { authorize }));
 * ```
 */
export { createScriptRunnerRouter } from './router.js';
export type {
  ScriptRunnerAction,
  ScriptRunnerResource,
  ScriptRunnerRouterOptions,
  ScriptWithLastExecution,
} from './router.js';
