/**
 * Retention in a fleet: three nodes with the same `retention` (two workers, one web node) over a
 * real redis-server sweep through one BullMQ job scheduler, so each interval is swept by exactly
 * one of them — never two sweeps at once, and no more sweeps than intervals (three nodes on their
 * own timers would make three times as many). And the sweeps do delete.
 */
import { createScriptRunner, memoryStore, ScriptRunnerError, type Store } from '@scriptrunner/core';
import { bullmqDispatcher, createScriptWorker } from '@scriptrunner/queue-bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger, waitUntil } from '../../core/test/helpers.js';
import { REDIS_MISSING, redisAvailable, startRedis, type RedisServer } from './support/redis.js';

const available = redisAvailable();
const describeRedis = available || process.env.CI === 'true' ? describe : describe.skip;
if (!available && process.env.CI !== 'true') console.warn(`[retention.test] ${REDIS_MISSING}`);

const INTERVAL_MS = 400;

describeRedis('retention in a BullMQ fleet', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis();
  }, 60_000);
  afterAll(async () => {
    await redis?.stop();
  });

  it('one node sweeps per interval, and the sweeps delete', { timeout: 60_000 }, async () => {
    const store = memoryStore();
    // Each sweep starts by asking the store what expired: that call marks a sweep, on any node.
    const sweeps: Array<{ node: number; start: number; end: number }> = [];
    let inFlight = 0;
    let overlapped = false;
    const observed = (node: number): Store => ({
      ...store,
      async listExpiredExecutions(query) {
        inFlight++;
        if (inFlight > 1) overlapped = true;
        const sweep = { node, start: Date.now(), end: 0 };
        sweeps.push(sweep);
        try {
          // Long enough that two nodes sweeping the same interval would overlap.
          await new Promise((r) => setTimeout(r, 50));
          return await store.listExpiredExecutions!(query);
        } finally {
          sweep.end = Date.now();
          inFlight--;
        }
      },
    });
    const common = { isolation: 'none' as const, logger: silentLogger, retention: { keepPerScript: 1, intervalMs: INTERVAL_MS } };
    const queueName = 'retention-fleet';
    const workers = [1, 2].map((node) => createScriptWorker({ ...common, store: observed(node), connection: redis.url, queueName }));
    const web = createScriptRunner({ ...common, store: observed(3), dispatcher: bullmqDispatcher({ connection: redis.url, queueName }) });
    try {
      const script = await web.uploadScript({ filename: 'test_hello.py', content: 'print("hello")\n' });
      const first = await web.waitFor((await web.run(script.id)).id);
      const second = await web.waitFor((await web.run(script.id)).id);
      expect([first.status, second.status]).toEqual(['succeeded', 'succeeded']);
      // The older run goes at the next sweep (keepPerScript: 1), whichever node sweeps.
      const deleted = await waitUntil(
        () => web.getExecution(first.id).then(() => false, (e: unknown) => e instanceof ScriptRunnerError && e.code === 'not_found'),
        20_000,
        50,
      );
      expect(deleted).toBe(true);
      expect((await web.getExecution(second.id)).status).toBe('succeeded');

      const watchFrom = Date.now();
      const before = sweeps.length;
      expect(await waitUntil(() => sweeps.length - before >= 6, 30_000, 50)).toBe(true);
      const elapsed = Date.now() - watchFrom;
      const counted = sweeps.length - before;
      expect(overlapped).toBe(false);
      // A scheduler makes at most one job per interval; three timers would make three.
      expect(counted).toBeLessThanOrEqual(Math.floor(elapsed / INTERVAL_MS) + 2);
    } finally {
      await web.close();
      await Promise.all(workers.map((w) => w.close()));
    }
  });
});
