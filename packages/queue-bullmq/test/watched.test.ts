/**
 * Watched-only log flow in a fleet (real redis-server, a worker and three web runners in this
 * process): a web node receives an execution's log batches only while someone on it follows the
 * execution; one whose viewer arrives mid-run catches up exactly once; lifecycle events reach every
 * node; `logEvents: 'all'` restores every batch everywhere.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createScriptRunner, memoryStore, type LogFollow, type ScriptRunner } from '@scriptrunner/core';
import { bullmqDispatcher, createScriptWorker } from '@scriptrunner/queue-bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger, waitUntil } from '../../core/test/helpers.js';
import { REDIS_MISSING, redisAvailable, startRedis, type RedisServer } from './support/redis.js';

const available = redisAvailable();
const describeRedis = available || process.env.CI === 'true' ? describe : describe.skip;
if (!available && process.env.CI !== 'true') console.warn(`[watched.test] ${REDIS_MISSING}`);

/** 200 lines, then waits for the file named by argv[1], then 200 more. */
const GATED = [
  'import os, sys, time',
  'for i in range(1, 201): print(f"line {i}")',
  'sys.stdout.flush()',
  'while not os.path.exists(sys.argv[1]): time.sleep(0.02)',
  'for i in range(201, 401): print(f"line {i}")',
].join('\n');

/** Every seq a follow yields, until the execution's end. */
async function collect(follow: LogFollow, seqs: number[]): Promise<void> {
  for await (const item of follow) if (item.type === 'lines') seqs.push(...item.lines.map((l) => l.seq));
}

describeRedis('watched-only log flow in a BullMQ fleet', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis();
  }, 60_000);
  afterAll(async () => {
    await redis?.stop();
  });

  it('a node without a viewer receives no log batch; a viewer arriving mid-run gets every line once', { timeout: 60_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sr-watched-'));
    const go = join(dir, 'go');
    const queueName = 'watched';
    const store = memoryStore();
    const common = { store, isolation: 'none' as const, logger: silentLogger };
    const worker = createScriptWorker({ ...common, connection: redis.url, queueName });
    const web = (logEvents?: 'all') => createScriptRunner({ ...common, dispatcher: bullmqDispatcher({ connection: redis.url, queueName, logEvents }) });
    const [a, b, all] = [web(), web(), web('all')];
    const probe = new Redis(redis.url);
    const batches = new Map<ScriptRunner, number>([
      [a, 0],
      [b, 0],
      [all, 0],
    ]);
    const finishes = new Map<ScriptRunner, number>([...batches.keys()].map((r) => [r, 0]));
    for (const runner of batches.keys()) {
      runner.on('execution:log', () => batches.set(runner, batches.get(runner)! + 1));
      runner.on('execution:finished', () => finishes.set(runner, finishes.get(runner)! + 1));
    }
    try {
      const eventsChannel = `bull:${queueName}:scriptrunner:events`;
      expect(
        await waitUntil(async () => Number(((await probe.pubsub('NUMSUB', eventsChannel)) as [string, number])[1]) >= 3, 10_000),
      ).toBe(true);
      const script = await a.uploadScript({ filename: 'test_gated.py', content: GATED });
      const execution = await a.run(script.id, { args: [go] });
      const logChannel = `${eventsChannel}:x:${execution.id}`;
      const subscribers = async () => Number(((await probe.pubsub('NUMSUB', logChannel)) as [string, number])[1]);

      // A viewer on A from the start.
      const seenOnA: number[] = [];
      const onA = collect(await a.follow(execution.id), seenOnA);
      expect(await subscribers()).toBe(1); // follow() resolved after A subscribed
      expect(await waitUntil(() => seenOnA.length >= 200, 20_000)).toBe(true);
      expect(batches.get(a)).toBeGreaterThan(0);
      expect(batches.get(all)).toBeGreaterThan(0);
      expect(batches.get(b)).toBe(0); // nobody follows it on B: not one batch reached B

      // A viewer on B arrives mid-run: the store gives it what came before, live gives the rest.
      const seenOnB: number[] = [];
      const onB = collect(await b.follow(execution.id), seenOnB);
      expect(await subscribers()).toBe(2);
      writeFileSync(go, '');
      const final = await a.waitFor(execution.id);
      expect(final).toMatchObject({ status: 'succeeded', lineCount: 400 });
      await Promise.all([onA, onB]);
      const all400 = Array.from({ length: 400 }, (_, i) => i + 1);
      expect(seenOnA).toEqual(all400);
      expect(seenOnB).toEqual(all400);
      expect(batches.get(b)).toBeGreaterThan(0); // live batches while B's viewer followed

      // The follows ended with the run: both nodes left the channel. Lifecycle reached every node.
      expect(await waitUntil(async () => (await subscribers()) === 0, 10_000)).toBe(true);
      expect(await waitUntil(() => [...finishes.values()].every((n) => n === 1), 10_000)).toBe(true);
    } finally {
      probe.disconnect();
      await Promise.all([a.close(), b.close(), all.close()]);
      await worker.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
