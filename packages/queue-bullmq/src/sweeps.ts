/**
 * Retention sweeps in a fleet: one BullMQ job scheduler fires a `sweep` job every interval on a
 * queue of its own, and every node whose runner has `retention` runs a Worker on it. BullMQ hands
 * each job to one worker, and the queue's global concurrency of 1 keeps a second node from taking
 * the next job while a long sweep still runs (BullMQ adds it when the current one is taken): one
 * sweep at a time in the whole fleet, whichever nodes are up. A node that dies mid-sweep loses the
 * job's lock; the next sweep resumes (the store lists what is still there).
 *
 * Separate from the executions' queue so a sweep never waits behind runs (nor takes a run's slot),
 * and web nodes, which run no executions, can sweep too.
 */
import { Queue, Worker, type ConnectionOptions } from 'bullmq';
import { bounded, guardConnectionErrors } from './connections.js';

/** The scheduler's id: every node upserts the same one, so there is one schedule (the last interval given wins). */
const SCHEDULER_ID = 'scriptrunner-retention';
/** After a failed upsert (Redis away at start), try again this often until it holds. */
const RETRY_MS = 5_000;
/** How long close() waits for a running sweep (it stops at its next store call) before forcing. */
const CLOSE_MS = 30_000;

export class SweepSchedule {
  private queue: Queue | null = null;
  private worker: Worker | null = null;
  private retry: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    private readonly connection: ConnectionOptions,
    private readonly queueName: string,
    private readonly prefix: string,
    private readonly report: (where: string, error: unknown) => void,
  ) {}

  start(sweep: () => Promise<unknown>, intervalMs: number): void {
    const name = `${this.queueName}-maintenance`;
    const queue = new Queue(name, { connection: this.connection, prefix: this.prefix });
    queue.on('error', (error) => this.report('maintenance queue', error));
    guardConnectionErrors(queue);
    const schedule = () => {
      this.retry = null;
      Promise.all([
        queue.setGlobalConcurrency(1),
        queue.upsertJobScheduler(SCHEDULER_ID, { every: intervalMs }, { name: 'sweep', opts: { removeOnComplete: true, removeOnFail: { count: 100 } } }),
      ]).catch((error: unknown) => {
        this.report('schedule the retention sweep', error);
        if (!this.closed) this.retry = setTimeout(schedule, RETRY_MS).unref();
      });
    };
    schedule();
    const worker = new Worker(name, async () => void (await sweep()), {
      connection: this.connection,
      prefix: this.prefix,
      concurrency: 1,
      removeOnComplete: { count: 0 },
      removeOnFail: { count: 100 },
    });
    worker.on('error', (error) => this.report('maintenance worker', error));
    guardConnectionErrors(worker);
    worker.on('failed', (_job, error) => {
      // A sweep cut short because this node's runner is closing is not a failure to report.
      if ((error as { code?: unknown }).code !== 'closed') this.report('retention sweep', error);
    });
    this.queue = queue;
    this.worker = worker;
  }

  /** Stops taking sweep jobs: waits for the running one (bounded), then the connections go. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.retry) clearTimeout(this.retry);
    const { worker, queue } = this;
    if (worker) await bounded(worker.close(), CLOSE_MS, () => void worker.close(true).catch(() => undefined));
    if (queue) await bounded(queue.close(), 2000, () => void queue.disconnect().catch(() => undefined));
  }
}
