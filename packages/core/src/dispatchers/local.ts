/**
 * The in-process dispatcher, the default: executions run on this runner, at most `concurrency`
 * at once, at most `maxQueued` waiting. It is a `Dispatcher` like any other (e.g.
 * @scriptrunner/queue-bullmq's), so the runner has one path — admit → dispatch → execute — and
 * both pass the dispatcher conformance suite of `@scriptrunner/core/testing`.
 */
import type { DispatchHost, Dispatcher, DispatchRequest } from '../dispatch.js';
import { ScriptRunnerError } from '../errors.js';

export interface LocalDispatcherOptions {
  /** Executions running at once. */
  concurrency: number;
  /** Executions waiting beyond `concurrency`. */
  maxQueued: number;
}

export class LocalDispatcher implements Dispatcher {
  private host: DispatchHost | null = null;
  private readonly waiting: Array<DispatchRequest & { cancelled?: true }> = [];
  /** Admitted, not yet dispatched (being stored). */
  private reserved = 0;
  private running = 0;
  private closed = false;

  constructor(private readonly options: LocalDispatcherOptions) {}

  async queued(): Promise<number> {
    return this.waiting.filter((r) => !r.cancelled).length;
  }

  attach(host: DispatchHost): void {
    this.host = host;
  }

  async admit(): Promise<void> {
    const { concurrency, maxQueued } = this.options;
    // Room = the free running slots plus maxQueued waiting places.
    if (this.running + this.waiting.length + this.reserved >= concurrency + maxQueued) {
      throw new ScriptRunnerError(
        'queue_full',
        `${this.waiting.length} executions are already waiting (maxQueued ${maxQueued}); try again later`,
        { details: { maxQueued, concurrency } },
      );
    }
    this.reserved++;
  }

  release(): void {
    this.reserved--;
  }

  async dispatch(request: DispatchRequest): Promise<void> {
    this.reserved--;
    if (this.closed) {
      await this.attached().endUnstarted(request.executionId, 'interrupted', 'the runner was closed before it started');
      return;
    }
    this.waiting.push(request);
    this.pump();
  }

  async cancel(executionId: string): Promise<void> {
    const host = this.attached();
    const index = this.waiting.findIndex((r) => r.executionId === executionId);
    if (index !== -1) {
      // It never started and never will.
      const [request] = this.waiting.splice(index, 1);
      const ended = await host.endUnstarted(executionId, 'cancelled', 'cancelled before it started');
      // The store could not take the end (reported): it waits for its turn again, and is ended
      // instead of run then.
      if (ended === null) this.waiting.splice(Math.min(index, this.waiting.length), 0, { ...request!, cancelled: true });
      return;
    }
    if (host.stop(executionId, 'cancelled', 'cancelled by request')) return;
    throw new ScriptRunnerError('conflict', `execution ${executionId} is not queued or running in this runner`, {
      details: { executionId },
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const host = this.attached();
    const waiting = this.waiting.splice(0);
    await Promise.all(waiting.map((r) => host.endUnstarted(r.executionId, 'interrupted', 'the runner was closed before it started')));
  }

  private attached(): DispatchHost {
    if (this.host === null) throw new ScriptRunnerError('closed', 'the dispatcher is not attached to a runner');
    return this.host;
  }

  private pump(): void {
    const host = this.attached();
    while (!this.closed && this.running < this.options.concurrency && this.waiting.length > 0) {
      const { cancelled, ...request } = this.waiting.shift()!;
      this.running++;
      // Neither rejects (DispatchHost contract).
      const work = cancelled ? host.endUnstarted(request.executionId, 'cancelled', 'cancelled before it started') : host.execute(request);
      void work.finally(() => {
        this.running--;
        this.pump();
      });
    }
  }
}
