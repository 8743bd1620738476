/**
 * @scriptrunner/client — typed REST calls and exactly-once log following, in browsers and Node.
 *
 * ```ts
 * const client = createScriptRunnerClient({ baseUrl: '/api/scripts-runner', socket: io('/scriptrunner') });
 * const stop = client.followExecution(executionId, { onLines: (lines) => append(lines) });
 * ```
 */
export { createScriptRunnerClient } from './client.js';
export type { ScriptRunnerClient, ScriptRunnerClientOptions, ReadLogsQuery, LogsPage, ScriptLifecycleHandlers } from './client.js';
export { ScriptRunnerClientError } from './errors.js';
export type { FollowOptions, SocketLike } from './follow.js';
export type { ScriptWithLastExecution } from './wire.js';
export { UPLOAD_RULES, checkUpload } from './rules.js';
export type { UploadRules } from './rules.js';
