/**
 * A Transport carries the runner's published events somewhere else: Socket.IO rooms, a Redis
 * channel, a message bus.
 *
 * Rules the runner guarantees to every transport:
 * - `execution:log` events arrive only after the store accepted their lines (persist, then
 *   publish), in ascending `seq` order per execution, each batch exactly once.
 * - `execution:finished` for an execution arrives after its last `execution:log`.
 * - Events are delivered in the order the runner emitted them. A transport that needs more time
 *   may return a promise; the runner does not wait for it (live delivery must never slow the
 *   child down), but a rejected promise or a throw is reported through the runner's `error` event.
 */
import type { RunnerEvent } from './types.js';

export interface Transport {
  publish(event: RunnerEvent): void | Promise<void>;
  /** Called by `runner.close()` after the last event. Optional. */
  close?(): void | Promise<void>;
}
