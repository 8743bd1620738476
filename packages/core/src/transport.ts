/**
 * A Transport carries the runner's published events somewhere else: Socket.IO rooms, a Redis
 * channel, a message bus, a log file.
 *
 * Rules the runner guarantees to every transport:
 * - `execution:log` events arrive only after the store accepted their lines (persist, then
 *   publish), in ascending `seq` order per execution, each batch exactly once.
 * - `execution:finished` for an execution arrives after its last `execution:log`.
 * - Events are delivered in the order the runner emitted them. A transport that needs more time
 *   may return a promise. The runner does not wait for it (live delivery must never slow the
 *   child down) unless the transport is `paced`; a rejected promise or a throw is reported through
 *   the runner's `error` event and never breaks the run.
 */
import type { RunnerEvent } from './types.js';

export interface Transport {
  publish(event: RunnerEvent): void | Promise<void>;
  /**
   * When true, the promise `publish` returns for an execution's batch holds that execution's next
   * batch back until it settles, and `execution:finished` (hence `waitFor`) waits for the promise
   * of the last event. A slow paced transport therefore slows the script (the runner stops reading
   * its output) rather than buffering without bound: right for a local file, wrong for a network
   * hop to browsers. Default false.
   */
  paced?: boolean;
  /** Called by `runner.close()` after the last event. Optional. */
  close?(): void | Promise<void>;
}
