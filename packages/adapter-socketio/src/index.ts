/**
 * @scriptrunner/adapter-socketio — scriptrunner's live logs over Socket.IO: per-execution rooms with
 * gap-free catch-up from the store. A thin adapter: all behaviour stays in @scriptrunner/core.
 */

/** The one entry point: serve the protocol for a runner on a Socket.IO server. */
export { attachScriptRunner } from './attach.js';
/** Its options and its handle (namespace + detach), for hosts that wrap or store them. */
export type { AttachScriptRunnerOptions, AttachedScriptRunner } from './attach.js';
/** Names a host needs to address the same rooms (its own events, metrics, tests) on any Socket.IO adapter. */
export { DEFAULT_NAMESPACE, SCRIPTS_ROOM, executionRoom } from './protocol.js';
/** The wire protocol, so clients (and @scriptrunner/client) can type their sockets and acks. */
export type {
  Ack,
  AckError,
  AckErrorCode,
  ScriptRunnerClientToServerEvents,
  ScriptRunnerServerToClientEvents,
  Serialized,
  SocketAction,
  SubscribeAck,
  SubscribePayload,
  SubscriptionError,
  UnsubscribePayload,
} from './protocol.js';
