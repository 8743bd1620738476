/**
 * @scriptrunner/http — scriptrunner's HTTP routes written once, framework-neutral. You do not use it
 * directly: `@scriptrunner/adapter-express` and `@scriptrunner/adapter-fetch` are its two faces.
 * Exported for those faces (and for a third one, should a framework need it).
 */
export { createRouteHandler } from './routes.js';
export { crossSiteReason } from './origin.js';
export type { HttpRequest, HttpResponse, RouteOptions, ScriptRunnerAction, ScriptRunnerResource } from './types.js';
