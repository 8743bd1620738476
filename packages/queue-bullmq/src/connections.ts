/** Shared by the dispatcher and the sweep schedule: BullMQ objects that close safely while Redis is away. */
import type { EventEmitter } from 'node:events';

/**
 * BullMQ 5's RedisConnection emits its failed initial connect as an 'error' event from a promise
 * handler, and `close()` removes all its listeners first: a Queue or Worker closed while Redis is
 * unreachable then throws inside that handler — an unhandled rejection that would end the host
 * process. An 'error' nobody listens to any more is dropped instead (the queue's and worker's own
 * 'error' listeners report everything before close).
 */
export function guardConnectionErrors(owner: object): void {
  for (const key of ['connection', 'blockingConnection']) {
    const connection = (owner as Record<string, unknown>)[key] as EventEmitter | undefined;
    if (!connection || typeof connection.emit !== 'function') continue;
    const emit = connection.emit.bind(connection);
    connection.emit = (event: string | symbol, ...args: unknown[]) =>
      event === 'error' && connection.listenerCount('error') === 0 ? false : emit(event, ...args);
  }
}

/** Waits for `promise` at most `ms`, then gives up on it (after `onTimeout`). */
export async function bounded(promise: Promise<unknown>, ms: number, onTimeout: () => void): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    promise.then(
      () => undefined,
      () => undefined,
    ),
    new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        onTimeout();
        resolve();
      }, ms);
    }),
  ]);
  clearTimeout(timer);
}

