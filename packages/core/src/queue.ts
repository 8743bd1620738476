/**
 * The in-process dispatch (the default when no `Dispatcher` is given): at most `concurrency`
 * executions run at once, at most `maxQueued` wait. The runner asks it to `reserve` room before it
 * creates a queued execution, `enqueue`s it once stored, and the queue calls `start` when a slot
 * is free. A distributed dispatcher (dispatch.ts) replaces it with workers elsewhere.
 */
import { ScriptRunnerError } from './errors.js';

interface LocalQueue {
  /** Claims a waiting place; throws `queue_full` when none is left. Release it with `release`. */
  reserve(): void;
  release(): void;
  /** Turns a reservation into a queued execution. */
  enqueue(executionId: string): void;
  /** Removes a waiting execution; true when it was waiting (so it will never start). */
  remove(executionId: string): boolean;
  /** Ids still waiting, in order. */
  waiting(): string[];
  /** Starts nothing more; returns the ids that were waiting (they will never start). */
  stop(): string[];
}

export class InProcessQueue implements LocalQueue {
  private readonly queue: string[] = [];
  private reserved = 0;
  private running = 0;
  private stopped = false;

  constructor(
    private readonly concurrency: number,
    private readonly maxQueued: number,
    /** Starts an execution; the returned promise settles when it has ended. */
    private readonly start: (executionId: string) => Promise<void>,
  ) {}

  get runningCount(): number {
    return this.running;
  }

  reserve(): void {
    // Room = the free running slots plus maxQueued waiting places.
    if (this.running + this.queue.length + this.reserved >= this.concurrency + this.maxQueued) {
      throw new ScriptRunnerError(
        'queue_full',
        `${this.queue.length} executions are already waiting (maxQueued ${this.maxQueued}); try again later`,
        { details: { maxQueued: this.maxQueued, concurrency: this.concurrency } },
      );
    }
    this.reserved++;
  }

  release(): void {
    this.reserved--;
  }

  enqueue(executionId: string): void {
    this.reserved--;
    this.queue.push(executionId);
    this.pump();
  }

  remove(executionId: string): boolean {
    const index = this.queue.indexOf(executionId);
    if (index === -1) return false;
    this.queue.splice(index, 1);
    return true;
  }

  waiting(): string[] {
    return [...this.queue];
  }

  /** Starts nothing more and hands back the ids that were still waiting. */
  stop(): string[] {
    this.stopped = true;
    return this.queue.splice(0);
  }

  private pump(): void {
    while (!this.stopped && this.running < this.concurrency && this.queue.length > 0) {
      const id = this.queue.shift()!;
      this.running++;
      void this.start(id).finally(() => {
        this.running--;
        this.pump();
      });
    }
  }
}
