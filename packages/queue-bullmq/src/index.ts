/**
 * @scriptrunner/queue-bullmq — run executions on many worker machines through BullMQ (Redis), and
 * follow them live from any web node. See docs/SCALING.md for the topology.
 */
export { bullmqDispatcher, createScriptWorker } from './dispatcher.js';
export type { BullmqDispatcherOptions, ScriptWorker, ScriptWorkerOptions, RedisConnection } from './dispatcher.js';
