/**
 * The BullMQ dispatcher passes core's dispatcher conformance suite: two web runners whose
 * dispatcher is `bullmqDispatcher` and a worker from `createScriptWorker`, all in this process,
 * sharing one store, over a real redis-server started here. Both web runners must see every event.
 */
import { memoryStore, type Store } from '@scriptrunner/core';
import { runDispatcherConformance } from '@scriptrunner/core/testing';
import { bullmqDispatcher, createScriptWorker } from '@scriptrunner/queue-bullmq';
import { createScriptRunner } from '@scriptrunner/core';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe } from 'vitest';
import { silentLogger } from '../../core/test/helpers.js';
import { REDIS_MISSING, redisAvailable, startRedis, type RedisServer } from './support/redis.js';

const available = redisAvailable();
/** Outside CI a machine without redis-server skips with the hint; in CI the suite runs and fails. */
const describeRedis = available || process.env.CI === 'true' ? describe : describe.skip;
if (!available && process.env.CI !== 'true') console.warn(`[conformance.test] ${REDIS_MISSING}`);

describeRedis('queue-bullmq', () => {
  let redis: RedisServer;
  let queues = 0;
  beforeAll(async () => {
    redis = await startRedis();
  }, 60_000);
  afterAll(async () => {
    await redis?.stop();
  });

  runDispatcherConformance('bullmq', async ({ concurrency, maxQueued }) => {
    // A queue of its own per test: nothing one test left in Redis reaches the next.
    const queueName = `conformance-${++queues}`;
    const store: Store = memoryStore();
    const common = { store, isolation: 'none' as const, killGraceMs: 1000, logger: silentLogger };
    const web = () => createScriptRunner({ ...common, dispatcher: bullmqDispatcher({ connection: redis.url, queueName, maxQueued }) });
    const [runner, other] = [web(), web()];
    const worker = createScriptWorker({ ...common, connection: redis.url, queueName, concurrency, lockDurationMs: 3000 });
    // Both web runners subscribe to the event channel in the background: start once they have.
    const probe = new Redis(redis.url);
    try {
      const channel = `bull:${queueName}:scriptrunner:events`;
      const deadline = Date.now() + 10_000;
      for (;;) {
        const [, subscribers] = (await probe.pubsub('NUMSUB', channel)) as [string, number];
        if (Number(subscribers) >= 2) break;
        if (Date.now() > deadline) throw new Error(`the web runners did not subscribe to ${channel}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    } finally {
      probe.disconnect();
    }
    return {
      runner,
      observers: [runner, other],
      store,
      close: async () => {
        await Promise.all([runner.close(), other.close()]);
        await worker.close();
      },
    };
  });
});
