/**
 * A `Dispatcher` for core's dispatch seam on top of BullMQ.
 *
 * - Web nodes: `createScriptRunner({ store, dispatcher: bullmqDispatcher({ connection }) })`.
 *   `run()` stores the execution and adds a BullMQ job (id = execution id); events published by
 *   workers come back over a Redis channel and are emitted to the local runner's listeners, so the
 *   Socket.IO adapter and the SSE route follow remote runs exactly as local ones.
 * - Workers: `createScriptWorker({ store, connection, concurrency })` is a runner whose dispatcher
 *   also runs a BullMQ Worker: each job runs through core's own process control and line
 *   pipeline, persists to the shared store, then publishes on the Redis channel (persist, then
 *   publish — across machines as on one).
 * - Cancel: a job still waiting is removed; otherwise a command on a Redis control channel reaches
 *   the worker running it.
 * - A worker that dies: its job's lock expires. The job's lock is the truth about whether its run
 *   is alive: BullMQ's stalled check (on a timer in every live worker, busy slots or not) finds
 *   the job without its lock, puts it back and tells that worker, which ends the execution
 *   `interrupted` at once; web nodes look for active jobs without a lock themselves, so they do it
 *   too when no worker is left. Whichever worker takes the job back later finds the execution over
 *   and completes the job without running user code twice.
 */
import { randomUUID } from 'node:crypto';
import {
  createScriptRunner,
  isTerminalStatus,
  ScriptRunnerError,
  type Dispatcher,
  type DispatchHost,
  type DispatchRequest,
  type RunnerEvent,
  type ScriptRunner,
  type ScriptRunnerOptions,
  type Store,
} from '@scriptrunner/core';
import { Queue, Worker, type ConnectionOptions, type Job } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import { decodeEvent, encodeEvent } from './events.js';
import { bounded, guardConnectionErrors } from './connections.js';
import { SweepSchedule } from './sweeps.js';

/** `redis://[:password@]host:port[/db]`, or ioredis options (`{ host, port, password, db, tls }`). */
export type RedisConnection = string | RedisOptions;

export interface BullmqDispatcherOptions {
  connection: RedisConnection;
  /** BullMQ queue name; web nodes and workers of one deployment use the same. Default `scriptrunner`. */
  queueName?: string;
  /** BullMQ key prefix. Default `bull`. */
  prefix?: string;
  /** Jobs waiting beyond this make `run()` reject with `queue_full`. Default 1,000. */
  maxQueued?: number;
  /** How long a Redis call of `run()`/`cancel()` may take before it fails with `unavailable`. Default 5,000. */
  redisTimeoutMs?: number;
  /**
   * Which log batches (and progress) a web node receives: `watched` (default) only those of the
   * executions someone on this node follows (`runner.follow()`: Socket.IO, SSE), over a channel
   * per execution subscribed on demand; `all` every execution's, as if all were followed (for
   * `runner.on('execution:log')` listeners that want every run). Lifecycle events (queued, started,
   * finished, scripts) reach every node either way.
   */
  logEvents?: 'watched' | 'all';
  /**
   * How often this node looks for executions whose worker died (jobs whose lock expired) and ends
   * them `interrupted`: on a worker, BullMQ's stalled check; on a web node, a scan of the active
   * jobs. Default: on workers half of `lockDurationMs` (at least 1,000), on web nodes 5,000.
   */
  stalledIntervalMs?: number;
}

export interface ScriptWorkerOptions
  extends BullmqDispatcherOptions,
    Omit<ScriptRunnerOptions, 'dispatcher' | 'maxQueued' | 'store' | 'recoverOnStart'> {
  /** The store the web nodes use (PostgreSQL through @scriptrunner/store-prisma). */
  store: Store;
  /** Executions this worker runs at once. Default 2. */
  concurrency?: number;
  /**
   * How long a job stays claimed without a renewal (the worker renews it every half of this). When
   * a worker dies, its executions end `interrupted` within lockDurationMs + stalledIntervalMs (and
   * the store's time to take it), whether or not any slot is free. Default 10,000.
   */
  lockDurationMs?: number;
}

export interface ScriptWorker {
  /** The worker's own runner (its store, events); `run()` on it enqueues like a web node. */
  runner: ScriptRunner;
  /** Stops taking jobs, ends running executions as `interrupted`, closes the Redis connections. */
  close(): Promise<void>;
}

interface JobData {
  executionId: string;
  env?: Record<string, string>;
  /** Only when run() was given one; otherwise the worker's own timeoutMs applies. */
  timeoutMs?: number;
}

interface Settings {
  redis: RedisOptions;
  queueName: string;
  prefix: string;
  maxQueued: number;
  redisTimeoutMs: number;
  /** As given; the default depends on the role (see BullmqDispatcherOptions.stalledIntervalMs). */
  stalledIntervalMs: number | undefined;
  logEvents: 'watched' | 'all';
}

interface WorkSettings {
  concurrency: number;
  lockDurationMs: number;
  stalledIntervalMs: number;
}

const CANCEL_MEMORY_MS = 10 * 60_000;
const STOP_RETRY_MS = 50;
/** Bytes of events kept while the publisher is not connected. */
const PENDING_EVENT_BYTES = 16 * 1024 * 1024;
/** How long close() waits for BullMQ to finish the jobs of runs that already ended. */
const WORKER_CLOSE_MS = 30_000;
/** Web nodes: how often they look for active jobs without a lock, unless stalledIntervalMs says. */
const WEB_STALLED_INTERVAL_MS = 5_000;
/**
 * How long a node's claim to end an abandoned execution keeps other nodes from doing the same. Kept
 * after the end is stored, so the scans that see its job until BullMQ moves it skip it.
 */
const ABANDONED_CLAIM_MS = 10 * 60_000;
/** How long close() waits for the ends of abandoned executions it is storing. */
const ENDING_CLOSE_MS = 10_000;
/**
 * The ids of active jobs whose lock is gone: their worker stopped renewing it (it died, or was cut
 * off from Redis longer than the lock lasts). In one script, so a job that completes meanwhile
 * (BullMQ removes the lock and the job from the active list in one script too) is never seen
 * half-way. `0:` ids are BullMQ's old delay markers, not jobs.
 */
const ACTIVE_WITHOUT_LOCK = `
local gone = {}
for _, id in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  if string.sub(id, 1, 2) ~= '0:' and redis.call('EXISTS', ARGV[1] .. id .. ':lock') == 0 then
    gone[#gone + 1] = id
  end
end
return gone
`;

/**
 * BullMQ's own connections block instead of failing commands while Redis is away. The cast: bullmq
 * 6 types its options structurally instead of as ioredis's RedisOptions, and the build must compile
 * against either major (the peer range covers both).
 */
function bullmqConnection(redis: RedisOptions): ConnectionOptions {
  return { ...redis, maxRetriesPerRequest: null } as ConnectionOptions;
}

/**
 * Jobs not yet taken. 'paused' holds a paused queue's jobs in bullmq 5; bullmq 6 keeps them in
 * 'wait', dropped the name from its types and counts it as 0, so the same list serves both.
 */
const WAITING_STATES = ['waiting', 'prioritized', 'delayed', 'paused'] as unknown as Parameters<Queue['getJobCounts']>;

function toRedisOptions(connection: RedisConnection): RedisOptions {
  if (typeof connection !== 'string') {
    if (connection === null || typeof connection !== 'object') {
      throw new ScriptRunnerError('validation', 'connection must be a redis:// URL or ioredis options');
    }
    return { ...connection };
  }
  let url: URL;
  try {
    url = new URL(connection);
  } catch {
    throw new ScriptRunnerError('validation', `connection ${JSON.stringify(connection)} is not a redis:// URL`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new ScriptRunnerError('validation', `connection must use redis:// or rediss://, got ${url.protocol}`);
  }
  const options: RedisOptions = { host: url.hostname || '127.0.0.1', port: url.port ? Number(url.port) : 6379 };
  if (url.username) options.username = decodeURIComponent(url.username);
  if (url.password) options.password = decodeURIComponent(url.password);
  const db = url.pathname.replace(/^\//, '');
  if (db) options.db = Number(db);
  if (url.protocol === 'rediss:') options.tls = {};
  return options;
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new ScriptRunnerError('validation', `${name} must be a positive integer, got ${String(value)}`);
  }
  return value;
}

function settingsOf(options: BullmqDispatcherOptions): Settings {
  if (!options || typeof options !== 'object') throw new ScriptRunnerError('validation', 'options with a connection are required');
  const queueName = options.queueName ?? 'scriptrunner';
  if (typeof queueName !== 'string' || !/^[\w.-]{1,100}$/.test(queueName)) {
    throw new ScriptRunnerError('validation', 'queueName must be 1-100 letters, digits, "_", "." or "-"');
  }
  return {
    redis: toRedisOptions(options.connection),
    queueName,
    prefix: options.prefix ?? 'bull',
    maxQueued: positive(options.maxQueued, 1000, 'maxQueued'),
    redisTimeoutMs: positive(options.redisTimeoutMs, 5000, 'redisTimeoutMs'),
    stalledIntervalMs: options.stalledIntervalMs === undefined ? undefined : positive(options.stalledIntervalMs, 0, 'stalledIntervalMs'),
    logEvents: logEventsOf(options.logEvents),
  };
}

class BullmqDispatcher implements Dispatcher {
  private host: DispatchHost | null = null;
  private readonly node = randomUUID();
  /** Opened by attach(), so a createScriptRunner that throws first leaves no connection open. */
  private connections: { queue: Queue<JobData>; publisher: Redis; subscriber: Redis } | null = null;
  /**
   * Events published before the publisher is connected (at start, after a reconnect), sent once
   * it is. Bounded: past PENDING_EVENT_BYTES they are dropped (viewers fill gaps from the store) rather
   * than piling up in memory while Redis is away.
   */
  private readonly pendingEvents: Array<{ channel: string; message: string }> = [];
  private pendingBytes = 0;
  /** Places admit() granted whose job dispatch() has not added yet. */
  private admitted = 0;
  private readonly eventsChannel: string;
  /** `<eventsChannel>:x:<executionId>` carries that execution's log batches and progress. */
  private readonly logChannelPrefix: string;
  /** Executions followed on this node: how many follows, and the subscription they wait for. */
  private readonly watched = new Map<string, { follows: number; subscribed: Promise<void> }>();
  private readonly controlChannel: string;
  private worker: Worker<JobData> | null = null;
  /** Executions whose job this worker's processor is handling right now. */
  private readonly processing = new Set<string>();
  /** Cancel commands seen recently: a job picked up after its cancel must not start. */
  private readonly cancelled = new Map<string, number>();
  private publishFailing = false;
  private closing: Promise<void> | null = null;
  /** Abandoned executions this node is ending now (see abandoned()). */
  private readonly ending = new Map<string, Promise<void>>();
  /** Web nodes: the next look for active jobs without a lock. */
  private scanTimer: NodeJS.Timeout | null = null;
  private readonly claimPrefix: string;
  private sweeps: SweepSchedule | null = null;

  constructor(
    private readonly settings: Settings,
    private readonly work: WorkSettings | null,
  ) {
    const { queueName, prefix } = settings;
    this.eventsChannel = `${prefix}:${queueName}:scriptrunner:events`;
    this.logChannelPrefix = `${this.eventsChannel}:x:`;
    this.controlChannel = `${prefix}:${queueName}:scriptrunner:control`;
    this.claimPrefix = `${prefix}:${queueName}:scriptrunner:abandoned:`;
  }

  attach(host: DispatchHost): void {
    this.host = host;
    const { redis, queueName, prefix } = this.settings;
    const queue = new Queue<JobData>(queueName, { connection: bullmqConnection(redis), prefix });
    queue.on('error', (error) => this.reportOnce('queue', error));
    guardConnectionErrors(queue);
    const publisher = new Redis({ ...redis, enableOfflineQueue: false });
    publisher.on('error', () => undefined); // connection errors: reported when a publish fails
    publisher.on('ready', () => this.flushEvents());
    const subscriber = new Redis({ ...redis, maxRetriesPerRequest: null });
    subscriber.on('error', () => undefined); // ioredis reconnects and resubscribes by itself
    this.connections = { queue, publisher, subscriber };
    // Workers only need commands; web nodes need the lifecycle of every run, and the lines of the
    // runs followed here (watch()), or of all runs with logEvents: 'all'.
    const channels = this.work ? [this.controlChannel] : [this.eventsChannel, this.controlChannel];
    subscriber.subscribe(...channels).catch((error: unknown) => this.reportOnce('subscribe', error));
    if (!this.work && this.settings.logEvents === 'all') {
      subscriber.psubscribe(`${this.logChannelPrefix}*`).catch((error: unknown) => this.reportOnce('subscribe', error));
      subscriber.on('pmessage', (_pattern: string, _channel: string, message: string) => this.received(message));
    }
    subscriber.on('message', (channel: string, message: string) => {
      if (channel === this.eventsChannel || channel.startsWith(this.logChannelPrefix)) this.received(message);
      else if (channel === this.controlChannel) this.command(message);
    });
    if (this.work) this.startWorker(host, this.work);
    else this.scheduleScan(this.settings.stalledIntervalMs ?? WEB_STALLED_INTERVAL_MS);
  }

  async admit(): Promise<void> {
    const { queue } = this.open();
    // Counted before the await, so concurrent run() calls on this node see each other's claims.
    // (Across nodes the check and the add are separate Redis round trips: the limit can be passed
    // by as many jobs as other nodes admit at the same moment.)
    this.admitted++;
    let waiting: number;
    try {
      const counts = await this.redisCall('count the waiting jobs', () => queue.getJobCounts(...WAITING_STATES));
      waiting = Object.values(counts).reduce((sum, n) => sum + n, 0) + this.admitted - 1;
    } catch (error) {
      this.admitted--;
      throw error;
    }
    if (waiting >= this.settings.maxQueued) {
      this.admitted--;
      throw new ScriptRunnerError('queue_full', `${waiting} executions are already waiting (maxQueued ${this.settings.maxQueued}); try again later`, {
        details: { maxQueued: this.settings.maxQueued },
      });
    }
  }

  release(): void {
    this.admitted = Math.max(0, this.admitted - 1);
  }

  /** Jobs waiting in the fleet's queue (the same number on every node). */
  async queued(): Promise<number> {
    const { queue } = this.open();
    const counts = await this.redisCall('count the waiting jobs', () => queue.getJobCounts(...WAITING_STATES));
    return Object.values(counts).reduce((sum, n) => sum + n, 0);
  }

  /** Redis answers a PING on this node's connection (which fails at once while disconnected). */
  async health(): Promise<void> {
    const { publisher } = this.open();
    if (publisher.status !== 'ready') throw new Error(`Redis is not connected (${publisher.status})`);
    await publisher.ping();
  }

  /** One node of the deployment sweeps per interval (see sweeps.ts). */
  scheduleSweep(sweep: () => Promise<unknown>, intervalMs: number): void {
    if (this.closing !== null || this.sweeps !== null) return;
    const { redis, queueName, prefix } = this.settings;
    this.sweeps = new SweepSchedule(bullmqConnection(redis), queueName, prefix, (where, error) => this.reportOnce(where, error));
    this.sweeps.start(sweep, intervalMs);
  }

  async dispatch(request: DispatchRequest): Promise<void> {
    const { queue } = this.open();
    const data: JobData = { executionId: request.executionId };
    if (request.timeoutMs !== undefined) data.timeoutMs = request.timeoutMs;
    if (request.env !== undefined) data.env = request.env;
    try {
      await this.redisCall('queue the execution', () =>
        queue.add('run', data, {
          jobId: request.executionId,
          attempts: 1,
          removeOnComplete: true,
          removeOnFail: { count: 1000 },
        }),
      );
    } finally {
      this.release();
    }
  }

  async cancel(executionId: string): Promise<void> {
    const host = this.requireHost();
    const { queue, publisher } = this.open();
    const job = await this.redisCall('find the job', () => queue.getJob(executionId));
    if (job) {
      const state = await this.redisCall('read the job state', () => job.getState());
      if (state === 'waiting' || state === 'prioritized' || state === 'delayed' || state === 'waiting-children') {
        const removed = await job.remove().then(
          () => true,
          () => false, // a worker took it meanwhile: the command below reaches it
        );
        if (removed) {
          await host.endUnstarted(executionId, 'cancelled', 'cancelled before it started');
          return;
        }
      }
    }
    await this.redisCall('send the cancel command', () =>
      publisher.publish(this.controlChannel, JSON.stringify({ n: this.node, c: 'cancel', id: executionId })),
    );
  }

  publish(event: RunnerEvent): void {
    const message = encodeEvent(this.node, event);
    // A run's lines and progress go to its own channel, which only nodes that follow it subscribe to.
    const channel =
      event.type === 'execution:log' || event.type === 'execution:progress' ? this.logChannelPrefix + event.data.executionId : this.eventsChannel;
    if (this.connections?.publisher.status !== 'ready' || this.pendingEvents.length > 0) {
      if (this.pendingBytes + message.length <= PENDING_EVENT_BYTES) {
        this.pendingEvents.push({ channel, message });
        this.pendingBytes += message.length;
      } else {
        this.publishFailed(new Error(`Redis is not connected and ${PENDING_EVENT_BYTES} bytes of events are waiting`));
      }
      return;
    }
    this.send(channel, message);
  }

  /**
   * Someone here follows `executionId`: subscribe to its channel (once for all its follows) and
   * resolve when Redis confirmed, or after redisTimeoutMs (Redis away: ioredis subscribes when it
   * is back; the follow fills what it missed from the store meanwhile).
   */
  watch(executionId: string): Promise<void> {
    const connections = this.connections;
    if (!connections || this.closing !== null || this.settings.logEvents === 'all') return Promise.resolve();
    const current = this.watched.get(executionId);
    if (current) {
      current.follows++;
      return current.subscribed;
    }
    const subscribed = connections.subscriber.subscribe(this.logChannelPrefix + executionId).then(
      () => undefined,
      (error: unknown) => this.reportOnce('subscribe to a followed execution', error),
    );
    const entry = { follows: 1, subscribed: settleWithin(subscribed, this.settings.redisTimeoutMs) };
    this.watched.set(executionId, entry);
    return entry.subscribed;
  }

  /** A follow of `executionId` ended: the last one unsubscribes (Redis keeps commands in order). */
  unwatch(executionId: string): void {
    const entry = this.watched.get(executionId);
    if (!entry || --entry.follows > 0) return;
    this.watched.delete(executionId);
    this.connections?.subscriber.unsubscribe(this.logChannelPrefix + executionId).catch(() => undefined);
  }

  /** Sends what waited for the connection, in order. */
  private flushEvents(): void {
    this.pendingBytes = 0;
    for (const { channel, message } of this.pendingEvents.splice(0)) this.send(channel, message);
  }

  private send(channel: string, message: string): void {
    const publisher = this.connections?.publisher;
    if (!publisher) return;
    publisher.publish(channel, message).then(
      () => {
        this.publishFailing = false;
      },
      (error: unknown) => this.publishFailed(error),
    );
  }

  private publishFailed(error: unknown): void {
    // One report per outage, not one per batch.
    if (this.publishFailing) return;
    this.publishFailing = true;
    this.host?.error(
      new ScriptRunnerError('unavailable', `could not publish live events to Redis (viewers will fill gaps from the store): ${String(error)}`, {
        cause: error,
      }),
    );
  }

  private open(): { queue: Queue<JobData>; publisher: Redis; subscriber: Redis } {
    if (this.connections === null || this.closing !== null) {
      throw new ScriptRunnerError('closed', 'the BullMQ dispatcher is not attached to a runner, or closed');
    }
    return this.connections;
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    const connections = this.connections;
    if (connections === null) return;
    const { queue, publisher, subscriber } = connections;
    if (this.scanTimer) clearTimeout(this.scanTimer);
    await bounded(this.sweeps?.close() ?? Promise.resolve(), WORKER_CLOSE_MS, () => undefined);
    // The worker waits for its running jobs (the runner ends them as interrupted meanwhile), so
    // their last events are published before the publisher goes.
    // Bounded too: with Redis away, BullMQ cannot move the finished jobs and would wait on it.
    const worker = this.worker;
    if (worker) await bounded(worker.close(), WORKER_CLOSE_MS, () => void worker.close(true).catch(() => undefined));
    await bounded(Promise.all(this.ending.values()), ENDING_CLOSE_MS, () => undefined);
    await bounded(queue.close(), 2000, () => void queue.disconnect().catch(() => undefined));
    this.flushEvents();
    await Promise.all([quit(subscriber), quit(publisher)]);
  }

  private startWorker(host: DispatchHost, work: WorkSettings): void {
    const worker = new Worker<JobData>(
      this.settings.queueName,
      async (job: Job<JobData>) => {
        const { executionId } = job.data;
        this.processing.add(executionId);
        try {
          // Back from a stall while this node ends it: then it finds the execution over.
          await this.ending.get(executionId);
          if (this.cancelled.has(executionId)) {
            await host.endUnstarted(executionId, 'cancelled', 'cancelled before it started');
            return;
          }
          await host.execute(this.requestOf(job.data));
        } finally {
          this.processing.delete(executionId);
        }
      },
      {
        connection: bullmqConnection(this.settings.redis),
        prefix: this.settings.prefix,
        concurrency: work.concurrency,
        lockDuration: work.lockDurationMs,
        stalledInterval: work.stalledIntervalMs,
        // Once back in the queue, the job ends the execution (interrupted); a second stall fails it.
        maxStalledCount: 1,
        removeOnComplete: { count: 0 },
        removeOnFail: { count: 1000 },
      },
    );
    worker.on('error', (error) => this.reportOnce('worker', error));
    guardConnectionErrors(worker);
    // BullMQ's stalled check runs on a timer, whether or not a slot is free, and found this job
    // without its lock: its worker is gone. End the execution now rather than when a slot frees up
    // and some worker takes the job back.
    worker.on('stalled', (jobId) => void this.abandoned(jobId));
    worker.on('failed', (job, error) => {
      // Stalled past maxStalledCount: nobody will run it again, so end the execution here (kept
      // lines and all if it had started), without running it outside the worker's concurrency.
      if (job && /stalled/i.test(error.message)) {
        const executionId = job.data.executionId;
        host.endUnstarted(executionId, 'interrupted', 'the worker running this execution stopped before it finished').catch((error: unknown) =>
          host.error(new ScriptRunnerError('store', `could not end execution ${executionId}, whose job stalled too often: ${String(error)}`, { cause: error })),
        );
      }
    });
    this.worker = worker;
  }

  /**
   * The worker running `executionId` is gone (its job's lock expired): end the execution
   * `interrupted`, unless it runs here (then this node is alive, whatever the lock says). Several
   * nodes can learn of one death at once (the worker whose stalled check moved the job, the scans
   * of web nodes): a claim in Redis lets one of them end it. Ending it twice (no Redis to claim in,
   * or a worker taking the job back meanwhile) stores the same end again. Never rejects.
   */
  private abandoned(executionId: string): Promise<void> {
    if (this.processing.has(executionId) || this.closing !== null) return Promise.resolve();
    let ending = this.ending.get(executionId);
    if (!ending) {
      ending = this.endAbandoned(executionId).finally(() => this.ending.delete(executionId));
      this.ending.set(executionId, ending);
    }
    return ending;
  }

  private async endAbandoned(executionId: string): Promise<void> {
    const host = this.host;
    const publisher = this.connections?.publisher;
    if (!host || !publisher) return;
    const claim = this.claimPrefix + executionId;
    const claimed = await publisher.set(claim, this.node, 'PX', ABANDONED_CLAIM_MS, 'NX').then(
      (reply) => reply === 'OK',
      () => true, // Redis went away meanwhile: end it anyway, twice is harmless
    );
    if (!claimed) return;
    let ended = false;
    try {
      const execution = await host.endAbandoned(executionId);
      ended = execution !== null && isTerminalStatus(execution.status);
    } catch (error) {
      host.error(new ScriptRunnerError('store', `could not end execution ${executionId}, whose worker stopped: ${String(error)}`, { cause: error }));
    }
    // Still queued (it never started: a worker will run it), or the store failed: let the next
    // look (or the worker that takes the job back) deal with it.
    if (!ended) await publisher.del(claim).catch(() => undefined);
  }

  /** Web nodes: every `intervalMs`, end the executions of active jobs whose lock is gone. */
  private scheduleScan(intervalMs: number): void {
    this.scanTimer = setTimeout(() => {
      void this.scan().finally(() => {
        if (this.closing === null) this.scheduleScan(intervalMs);
      });
    }, intervalMs);
    this.scanTimer.unref();
  }

  private async scan(): Promise<void> {
    const connections = this.connections;
    // While Redis is away there is nothing to learn; ioredis reconnects by itself.
    if (!connections || connections.publisher.status !== 'ready') return;
    const { queue, publisher } = connections;
    let ids: unknown;
    try {
      ids = await publisher.eval(ACTIVE_WITHOUT_LOCK, 1, queue.toKey('active'), queue.toKey(''));
    } catch (error) {
      this.reportOnce('look for stalled jobs', error);
      return;
    }
    if (!Array.isArray(ids)) return;
    await Promise.all(ids.filter((id): id is string => typeof id === 'string').map((id) => this.abandoned(id)));
  }

  private requestOf(data: JobData): DispatchRequest {
    const request: DispatchRequest = { executionId: data.executionId };
    if (data.timeoutMs !== undefined) request.timeoutMs = data.timeoutMs;
    if (data.env !== undefined) request.env = data.env;
    return request;
  }

  private received(message: string): void {
    const decoded = decodeEvent(message);
    if (decoded === null || decoded.node === this.node) return;
    this.host?.emit(decoded.event);
  }

  private command(message: string): void {
    let parsed: { n?: unknown; c?: unknown; id?: unknown };
    try {
      parsed = JSON.parse(message) as typeof parsed;
    } catch {
      return;
    }
    if (parsed.c !== 'cancel' || typeof parsed.id !== 'string' || !this.work || !this.host) return;
    const id = parsed.id;
    const now = Date.now();
    this.cancelled.set(id, now);
    for (const [key, at] of this.cancelled) if (now - at > CANCEL_MEMORY_MS) this.cancelled.delete(key);
    // Between picking the job and starting the run there is a moment when the runner does not
    // know the execution yet: keep asking while this worker handles it.
    const host = this.host;
    const tryStop = () => {
      if (host.stop(id, 'cancelled', 'cancelled by request')) return;
      if (this.processing.has(id)) setTimeout(tryStop, STOP_RETRY_MS).unref();
    };
    tryStop();
  }

  private requireHost(): DispatchHost {
    if (!this.host) throw new ScriptRunnerError('closed', 'the dispatcher is not attached to a runner');
    return this.host;
  }

  /** A Redis call of run()/cancel(): bounded, so a Redis outage is an error, never a hang. */
  private async redisCall<T>(what: string, call: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new ScriptRunnerError('unavailable', `Redis did not answer within ${this.settings.redisTimeoutMs} ms (${what})`)),
        this.settings.redisTimeoutMs,
      );
    });
    const pending = call();
    // Settles after the timeout too (when Redis comes back or the connection gives up): never unhandled.
    pending.catch(() => undefined);
    try {
      return await Promise.race([pending, timeout]);
    } catch (error) {
      if (error instanceof ScriptRunnerError) throw error;
      throw new ScriptRunnerError('unavailable', `Redis failed (${what}): ${String(error)}`, { cause: error });
    } finally {
      clearTimeout(timer);
    }
  }

  private readonly reported = new Set<string>();

  private reportOnce(where: string, error: unknown): void {
    const message = error instanceof Error ? error.message : String(error);
    const key = `${where}:${message}`;
    if (this.reported.has(key)) return;
    this.reported.add(key);
    setTimeout(() => this.reported.delete(key), 60_000).unref();
    this.host?.error(new ScriptRunnerError('unavailable', `BullMQ ${where}: ${message}`, { cause: error }));
  }
}

/**
 * QUIT, or a hard disconnect after a second: with Redis away, QUIT waits in the offline queue
 * behind other commands and would never settle.
 */
async function quit(redis: Redis): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const forced = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      redis.disconnect();
      resolve();
    }, 1000);
  });
  await Promise.race([redis.quit().then(() => undefined, () => redis.disconnect()), forced]);
  clearTimeout(timer);
}

/** The dispatcher of a web node: runs nothing itself, follows every run live. */
export function bullmqDispatcher(options: BullmqDispatcherOptions): Dispatcher {
  return new BullmqDispatcher(settingsOf(options), null);
}

/** A worker: takes jobs from the queue and runs them with core's process control and pipeline. */
export function createScriptWorker(options: ScriptWorkerOptions): ScriptWorker {
  const { connection, queueName, prefix, maxQueued, redisTimeoutMs, concurrency, lockDurationMs, stalledIntervalMs, store, ...runnerOptions } =
    options;
  const dispatcherOptions: BullmqDispatcherOptions = { connection };
  if (queueName !== undefined) dispatcherOptions.queueName = queueName;
  if (prefix !== undefined) dispatcherOptions.prefix = prefix;
  if (maxQueued !== undefined) dispatcherOptions.maxQueued = maxQueued;
  if (redisTimeoutMs !== undefined) dispatcherOptions.redisTimeoutMs = redisTimeoutMs;
  const lock = positive(lockDurationMs, 10_000, 'lockDurationMs');
  const dispatcher = new BullmqDispatcher(settingsOf(dispatcherOptions), {
    concurrency: positive(concurrency, 2, 'concurrency'),
    lockDurationMs: lock,
    stalledIntervalMs: positive(stalledIntervalMs, Math.max(1000, Math.floor(lock / 2)), 'stalledIntervalMs'),
  });
  const runner = createScriptRunner({ ...runnerOptions, store, dispatcher, recoverOnStart: false });
  return { runner, close: () => runner.close() };
}

function logEventsOf(value: unknown): 'watched' | 'all' {
  if (value === undefined || value === 'watched' || value === 'all') return value ?? 'watched';
  throw new ScriptRunnerError('validation', `logEvents must be 'watched' or 'all', got ${String(value)}`);
}

/** Resolves when `promise` settles or after `ms`, whichever is first; never rejects. */
async function settleWithin(promise: Promise<unknown>, ms: number): Promise<void> {
  await bounded(promise, ms, () => undefined);
}
