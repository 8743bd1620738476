/**
 * The runner's event side: its typed listeners (eventemitter3), the transports and the dispatcher
 * it publishes to, error reporting, and waiting for an execution's `execution:finished` from
 * anywhere. `Runner` (runner.ts) extends it with the public methods.
 */
import { EventEmitter } from 'eventemitter3';
import type { Dispatcher } from './dispatch.js';
import { describeError } from './errors.js';
import { FollowRegistry } from './follow.js';
import { notify, type RunnerObserver } from './observe.js';
import type { Logger } from './options.js';
import type { Transport } from './transport.js';
import type { RunnerEvent, ScriptRunnerEvents } from './types.js';

export abstract class EventHub extends EventEmitter<ScriptRunnerEvents> {
  /** waitFor()/cancel() calls on executions that run elsewhere, woken by their `execution:finished`. */
  private readonly finishWaiters = new Map<string, Set<() => void>>();
  /** Open `follow()`s, by execution: every event that reaches this runner's listeners reaches them. */
  protected readonly follows = new FollowRegistry(() => this.dispatcher);

  protected abstract readonly logger: Logger;
  protected abstract readonly transports: Transport[];
  protected abstract readonly observers: readonly RunnerObserver[];
  protected abstract readonly dispatcher: Dispatcher;

  /**
   * To listeners, transports and the dispatcher. Resolves when the paced transports took the event
   * (the log file); never rejects: no transport may break the run that produced the event.
   */
  protected publish(event: RunnerEvent): Promise<void> {
    const delivered = this.publishHere(event);
    if (this.dispatcher.publish) this.deliver(() => this.dispatcher.publish!(event));
    return delivered;
  }

  /** To this runner's listeners and transports, not to the other nodes (the dispatcher). */
  protected publishHere(event: RunnerEvent): Promise<void> {
    this.emitLocal(event);
    notify(this.observers, (o) => o.published?.(event));
    const paced: Promise<void>[] = [];
    for (const transport of this.transports) {
      const delivered = this.deliver(() => transport.publish(event));
      if (delivered && transport.paced) paced.push(delivered);
    }
    return paced.length === 0 ? Promise.resolve() : Promise.all(paced).then(() => undefined);
  }

  /** To this runner's listeners only. */
  protected emitLocal(event: RunnerEvent): void {
    try {
      // The union guarantees data matches the event name; eventemitter3's typing cannot see that.
      (this.emit as (name: string, data: unknown) => boolean)(event.type, event.data);
    } catch (error) {
      // A throwing listener must not break the pipeline of a run.
      this.reportError(error);
    }
    try {
      this.follows.deliver(event);
    } catch (error) {
      this.reportError(error);
    }
    if (event.type === 'execution:finished') {
      const waiters = this.finishWaiters.get(event.data.id);
      if (waiters) for (const wake of [...waiters]) wake();
    }
  }

  /** Hands an event to a transport or the dispatcher; returns its promise with failures reported. */
  private deliver(send: () => void | Promise<void>): Promise<void> | null {
    try {
      const result = send();
      if (result && typeof (result as Promise<void>).then === 'function') {
        return (result as Promise<void>).catch((error: unknown) => this.reportError(error));
      }
    } catch (error) {
      this.reportError(error);
    }
    return null;
  }

  protected reportError(error: unknown): void {
    const err = error instanceof Error ? error : new Error(String(error));
    notify(this.observers, (o) => o.error?.(err));
    if (this.listenerCount('error') > 0) {
      try {
        this.emit('error', err);
        return;
      } catch (listenerError) {
        this.logger.error(`[scriptrunner] an error listener threw: ${describeError(listenerError)}`);
      }
    }
    this.logger.error(err.message.startsWith('[scriptrunner]') ? err.message : `[scriptrunner] ${err.message}`);
  }

  /** Resolves on the next `execution:finished` of that execution (from anywhere) or after `ms`. */
  protected finishedOrTimeout(executionId: string, ms: number): { promise: Promise<void>; cancel: () => void } {
    let waiters = this.finishWaiters.get(executionId);
    if (!waiters) this.finishWaiters.set(executionId, (waiters = new Set()));
    const set = waiters;
    let resolve!: () => void;
    const promise = new Promise<void>((r) => {
      resolve = r;
    });
    const done = () => {
      clearTimeout(timer);
      set.delete(done);
      if (set.size === 0 && this.finishWaiters.get(executionId) === set) this.finishWaiters.delete(executionId);
      resolve();
    };
    const timer = setTimeout(done, ms);
    set.add(done);
    return { promise, cancel: done };
  }
}
