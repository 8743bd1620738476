/**
 * The bench's SSE consumers use the client package's own fetch-based reader (not part of its
 * public API, so it is imported from the source).
 */
export { readEventStream, type SseMessage } from '../../../packages/client/src/sse.js';
