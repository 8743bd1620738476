/**
 * Retention sweeps in a fleet: one BullMQ job scheduler fires a `sweep` job every interval on a
 * queue of its own, and every node whose runner has `retention` runs a Worker (one job at a time)
 * on it. BullMQ hands each job to one worker, so exactly one node sweeps per interval, whichever
 * nodes are up; a node that dies mid-sweep loses the job's lock and the next interval sweeps again
 * (a sweep resumes where one stopped: the store lists what is still there).
 *
 * Separate from the executions' queue so a sweep never waits behind runs (nor takes a run's slot),
 * and web nodes, which run no executions, can sweep too.
 */
import { Queue, Worker, type ConnectionOptions } from 'bullmq';

/** The scheduler's id: every node upserts the same one, so there is one schedule (the last interval given wins). */
const SCHEDULER_ID = 'scriptrunner-retention';

export class SweepSchedule {
  private queue: Queue | null = null;
  private worker: Worker | null = null;

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
    queue
      .upsertJobScheduler(SCHEDULER_ID, { every: intervalMs }, { name: 'sweep', opts: { removeOnComplete: true, removeOnFail: { count: 100 } } })
      .catch((error: unknown) => this.report('schedule the retention sweep', error));
    const worker = new Worker(name, async () => void (await sweep()), {
      connection: this.connection,
      prefix: this.prefix,
      concurrency: 1,
      removeOnComplete: { count: 0 },
      removeOnFail: { count: 100 },
    });
    worker.on('error', (error) => this.report('maintenance worker', error));
    // A sweep that failed (the store was away) is reported here; the next interval tries again.
    worker.on('failed', (_job, error) => {
      // A sweep cut short because this node's runner is closing is not a failure to report.
      if ((error as { code?: unknown }).code !== 'closed') this.report('retention sweep', error);
    });
    this.queue = queue;
    this.worker = worker;
  }

  /** Stops taking sweep jobs (waits for the one running, which stops at its next store call). */
  async close(): Promise<void> {
    await this.worker?.close().catch(() => undefined);
    await this.queue?.close().catch(() => undefined);
  }
}
