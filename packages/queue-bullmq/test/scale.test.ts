/**
 * Scale-out end to end: real redis-server and PostgreSQL started here, two web nodes and two
 * workers as separate OS processes, real socket.io-client and REST clients.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createScriptRunnerClient, type ScriptRunnerClient } from '@scriptrunner/client';
import { createScriptRunner, isScriptRunnerError, type Execution, type LogLine } from '@scriptrunner/core';
import { bullmqDispatcher, createScriptWorker } from '@scriptrunner/queue-bullmq';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { postgresStore } from '@scriptrunner/store-prisma/postgresql';
import { io as connect, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { processesWith, waitUntil } from '../../core/test/helpers.js';
import { postgresAvailable, startPostgres, type PostgresServer } from '../../store-prisma/test/support/postgres.js';
import { originOf, startNode, stopNode, type NodeProcess as Node } from './support/nodes.js';
import { freePort, REDIS_MISSING, redisAvailable, startRedis, type RedisServer } from './support/redis.js';

const available = redisAvailable() && postgresAvailable();
/** Outside CI a machine without the servers skips with the hint; in CI the suite runs and fails. */
const describeScale = available || process.env.CI === 'true' ? describe : describe.skip;
if (!available && process.env.CI !== 'true') console.warn(`[scale.test] ${REDIS_MISSING} (and apt-get install -y postgresql)`);

/** Short locks so a killed worker's runs are recovered quickly. */
const LOCK_MS = 3000;
/** How often workers (BullMQ's stalled check) and web nodes look for executions whose worker died. */
const STALLED_MS = LOCK_MS / 2;
/** The documented bound for a dead worker's executions to end `interrupted`, free slots or not. */
const MARK_BOUND_MS = LOCK_MS + STALLED_MS + 5000;
/** Long enough to outlast MARK_BOUND_MS after the kill: the survivor's slots stay busy meanwhile. */
const BUSY_S = 15;
/**
 * The workers' lock in the Redis restart test. A job's lock must outlast the outage as its worker
 * sees it (docs/SCALING.md): up to half a lock since the last renewal, the time Redis is down and
 * restarting, and BullMQ's reconnect attempts, at least 1 s apart. LOCK_MS (3 s) does not, on a
 * loaded machine: the lock lapsed, and the live run was (rightly, by the lock) ended `interrupted`.
 */
const RESTART_LOCK_MS = 15_000;
/**
 * How long after an abandoned execution is stored as ended the run directories its dead worker left
 * on this machine may still be there: the runner that ends it removes them right after storing and
 * publishing the end (milliseconds normally; the bound leaves room for a loaded CI machine).
 */
const LEFT_DIRECTORY_MS = 5000;

const py = (...lines: string[]) => lines.join('\n') + '\n';

/** Prints `count` numbered lines, `perPause` at a time with a short sleep, so viewers join mid-run. */
const COUNTER = py(
  'import sys, time',
  'count, per, pause = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])',
  'for i in range(1, count + 1):',
  '    print(f"line {i}")',
  '    if i % per == 0: time.sleep(pause)',
);

/** As COUNTER, but at line `gate` it waits for a file named `go` in its run directory. */
const GATED = py(
  'import os, sys, time',
  'count, per, pause, gate = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])',
  'for i in range(1, count + 1):',
  '    print(f"line {i}")',
  '    if i % per == 0: time.sleep(pause)',
  '    if i == gate:',
  '        sys.stdout.flush()',
  '        while not os.path.exists("go"): time.sleep(0.02)',
);

const SLEEPER = py('import sys, time', 'print("started", sys.argv[1], flush=True)', 'time.sleep(float(sys.argv[2]))', 'print("done")');

/** Runs a Python child with the marker in its argv, so the host can look for it in /proc. */
const MARKED = py(
  'import subprocess, sys, time',
  'child = subprocess.Popen(["sleep", "600", sys.argv[1]])',
  'print("child started", flush=True)',
  'time.sleep(600)',
);

describeScale('BullMQ scale-out: two web nodes, two workers, Redis, PostgreSQL', () => {
  let redis: RedisServer;
  let pg: PostgresServer;
  let databaseUrl: string;
  let store: ReturnType<typeof postgresStore>;
  let webA: Node;
  let webB: Node;
  const workers: Node[] = [];
  let clientA: ScriptRunnerClient;
  let clientB: ScriptRunnerClient;
  let socketA: Socket;
  const scripts: Record<string, string> = {};
  let env: Record<string, string>;

  const startWorker = async (name: string, lockMs = LOCK_MS) => {
    const worker = await startNode(name, 'worker.ts', { ...env, CONCURRENCY: '2', LOCK_MS: String(lockMs), STALLED_MS: String(lockMs / 2) });
    workers.push(worker);
    return worker;
  };
  const liveWorkers = () => workers.filter((w) => w.process.exitCode === null && w.process.signalCode === null);
  const whoRuns = (executionId: string) => workers.find((w) => w.messages.some((m) => m.started === executionId));

  beforeAll(async () => {
    [redis, pg] = await Promise.all([startRedis(), startPostgres()]);
    databaseUrl = await pg.createDatabase('scale');
    // Migrate once, before several processes open the database.
    store = postgresStore({ connectionString: databaseUrl });
    await store.ready;
    env = { REDIS_URL: redis.url, DATABASE_URL: databaseUrl, CI: process.env.CI ?? '' };
    // Web nodes A and B leave dead workers to the workers' stalled check, so the kill tests see that
    // path alone; a web node's own look for them is tested with a web runner of its own.
    const webEnv = { ...env, STALLED_MS: String(10 * 60_000) };
    [webA, webB] = await Promise.all([startNode('web A', 'web-node.ts', webEnv), startNode('web B', 'web-node.ts', webEnv)]);
    await Promise.all([startWorker('worker 1'), startWorker('worker 2')]);
    socketA = connect(`${originOf(webA)}/scriptrunner`, { transports: ['websocket'] });
    clientA = createScriptRunnerClient({ baseUrl: `${originOf(webA)}/api`, socket: socketA });
    clientB = createScriptRunnerClient({ baseUrl: `${originOf(webB)}/api` });
    for (const [name, code] of Object.entries({ counter: COUNTER, gated: GATED, sleeper: SLEEPER, marked: MARKED })) {
      scripts[name] = (await clientB.uploadScript(new Blob([code]), { filename: `test_scale_${name}.py` })).id;
    }
  }, 120_000);

  afterAll(async () => {
    socketA?.close();
    await Promise.all([webA, webB, ...workers].map((node) => stopNode(node)));
    await store?.close();
    await Promise.all([redis?.stop(), pg?.destroy()]);
  }, 60_000);

  it('a run requested through web node B, run by a worker, is followed from web node A: every line once, in order, then finished', async () => {
    const count = 3000;
    const execution = await clientB.run(scripts.counter!, { args: [String(count), '100', '0.05'] });
    // A raw socket.io-client on A: what the server sends, before any client-side de-duplication.
    const raw = connect(`${originOf(webA)}/scriptrunner`, { transports: ['websocket'] });
    const received: LogLine[] = [];
    const events: string[] = [];
    const finished = new Promise<Execution>((resolve) => {
      raw.on('execution:log', (batch: { executionId: string; lines: LogLine[] }) => {
        if (batch.executionId !== execution.id) return;
        received.push(...batch.lines);
        if (events.at(-1) !== 'log') events.push('log');
      });
      raw.on('execution:finished', (final: Execution) => {
        if (final.id !== execution.id) return;
        events.push('finished');
        resolve(final);
      });
    });
    // Join mid-run: some lines are caught up from the store, the rest arrive live from the worker.
    await waitUntil(async () => (await clientA.readLogs(execution.id, { after: 0, limit: 1 })).lines.length > 0, 20_000);
    const ack = await raw.timeout(10_000).emitWithAck('execution:subscribe', { executionId: execution.id, afterSeq: 0 });
    expect(ack).toMatchObject({ ok: true });
    const final = await finished;
    raw.close();
    expect(final).toMatchObject({ status: 'succeeded', lineCount: count });
    expect(received.map((l) => l.seq)).toEqual(Array.from({ length: count }, (_, i) => i + 1));
    expect(received.map((l) => l.text)).toEqual(Array.from({ length: count }, (_, i) => `line ${i + 1}`));
    expect(events).toEqual(['log', 'finished']);
    expect(whoRuns(execution.id)).toBeDefined();
  }, 60_000);

  it('the file a worker\'s run writes is kept in the shared store and downloads the same from both web nodes', async () => {
    // 3 MiB and a bit: several chunks in PostgreSQL.
    const code = 'import os\nopen(os.path.join(os.environ["SCRIPTRUNNER_OUTPUT_DIR"], "curve.bin"), "wb").write(bytes(i % 251 for i in range(3 * 1024 * 1024 + 17)))\n';
    const scriptId = (await clientB.uploadScript(new Blob([code]), { filename: 'test_scale_artifact.py' })).id;
    const execution = await clientB.run(scriptId);
    expect(await waitForTerminal(execution.id)).toMatchObject({ status: 'succeeded', artifactCount: 1 });
    expect(whoRuns(execution.id)).toBeDefined();
    const [listed] = await clientA.listArtifacts(execution.id);
    expect(listed).toMatchObject({ name: 'curve.bin', sizeBytes: 3 * 1024 * 1024 + 17 });
    const [fromA, fromB] = await Promise.all([clientA.downloadArtifact(execution.id, 'curve.bin'), clientB.downloadArtifact(execution.id, 'curve.bin')]);
    expect(createHash('sha256').update(fromA).digest('hex')).toBe(listed!.sha256);
    expect(Buffer.from(fromB).equals(Buffer.from(fromA))).toBe(true);
    expect(fromA[1000]).toBe(1000 % 251);
  }, 60_000);

  it('20 runs spread over both workers with concurrency 2 each: all succeed, never more than 2 at once per worker', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      const client = i % 2 === 0 ? clientA : clientB;
      ids.push((await client.run(scripts.sleeper!, { args: [`run-${i}`, '0.4'] })).id);
    }
    const finals = await Promise.all(ids.map((id) => waitForTerminal(id)));
    expect(finals.map((e) => e.status)).toEqual(Array(20).fill('succeeded'));
    const perWorker = workers.map((w) => ids.filter((id) => w.messages.some((m) => m.started === id)).length);
    expect(perWorker.reduce((a, b) => a + b, 0)).toBe(20);
    expect(perWorker.filter((n) => n > 0).length).toBe(2);
    for (const worker of workers) {
      const peak = Math.max(0, ...worker.messages.filter((m) => typeof m.running === 'number' && m.started !== undefined).map((m) => m.running as number));
      expect(peak, worker.name).toBeLessThanOrEqual(2);
    }
    // Both workers ran 2 at a time at some point: the limit was reached, not just respected.
    expect(workers.some((w) => w.messages.some((m) => m.started !== undefined && m.running === 2))).toBe(true);
  }, 60_000);

  async function waitForTerminal(id: string, timeoutMs = 30_000): Promise<Execution> {
    let execution: Execution | null = null;
    await waitUntil(async () => {
      execution = await store.getExecution(id);
      return execution !== null && !['queued', 'running'].includes(execution.status);
    }, timeoutMs, 100);
    return execution!;
  }

  it('cancel through web node A stops the run on its worker; the process group is gone', async () => {
    const marker = `sr-scale-cancel-${Date.now()}`;
    const execution = await clientB.run(scripts.marked!, { args: [marker] });
    expect(await waitUntil(() => processesWith(marker).length > 0, 20_000)).toBe(true);
    const cancelled = await clientA.cancel(execution.id);
    const final = cancelled.status === 'cancelled' ? cancelled : await waitForTerminal(execution.id);
    expect(final).toMatchObject({ status: 'cancelled', errorMessage: 'cancelled by request' });
    expect(await waitUntil(() => processesWith(marker).length === 0, 5000)).toBe(true);
    expect(whoRuns(execution.id)).toBeDefined();
  }, 60_000);

  it('cancel of a run still waiting in the queue ends it without starting it', async () => {
    // Fill all four slots, then queue one more and cancel it.
    const blockers = await Promise.all([0, 1, 2, 3].map((i) => clientA.run(scripts.sleeper!, { args: [`blocker-${i}`, '2'] })));
    await waitUntil(() => blockers.every((b) => whoRuns(b.id) !== undefined), 20_000);
    const waiting = await clientB.run(scripts.sleeper!, { args: ['never', '1'] });
    const cancelled = await clientA.cancel(waiting.id);
    expect(cancelled).toMatchObject({ status: 'cancelled', startedAt: null, errorMessage: 'cancelled before it started' });
    await Promise.all(blockers.map((b) => waitForTerminal(b.id)));
    expect(whoRuns(waiting.id)).toBeUndefined();
  }, 60_000);

  it('kill -9 of a worker mid-run: its execution becomes interrupted within the bound; queued runs finish on the other worker', async () => {
    const victimRun = await clientA.run(scripts.sleeper!, { args: ['victim', '60'] });
    expect(await waitUntil(() => whoRuns(victimRun.id) !== undefined, 20_000)).toBe(true);
    const victim = whoRuns(victimRun.id)!;
    // Lines the victim stored before it died stay, and count.
    await waitUntil(async () => (await store.readLogs(victimRun.id, { afterSeq: 0, limit: 10 })).length > 0, 10_000);
    const runs = join(tmpdir(), 'scriptrunner');
    expect(readdirSync(runs).some((d) => d.startsWith(victimRun.id))).toBe(true);
    victim.process.kill('SIGKILL');
    const killedAt = Date.now();
    await victim.exited;
    // Queued while the dead worker's job still looks active: the survivor drains them.
    const queued = await Promise.all([0, 1, 2, 3, 4].map((i) => clientB.run(scripts.sleeper!, { args: [`after-kill-${i}`, '0.3'] })));

    const interrupted = await waitForTerminal(victimRun.id, 30_000);
    const took = Date.now() - killedAt;
    console.log(`[scale.test] worker killed mid-run: its execution interrupted ${took} ms after kill -9 (bound ${MARK_BOUND_MS} ms)`);
    expect(interrupted).toMatchObject({ status: 'interrupted', lineCount: 1 });
    expect(interrupted.errorMessage).toContain('stopped before it finished');
    // The survivor (same machine, same work directory) removes what the victim left — after it
    // stored and published the end, so wait for it (bounded) rather than look once.
    const leftOf = () => (existsSync(runs) ? readdirSync(runs).filter((d) => d.startsWith(victimRun.id)) : []);
    await waitUntil(() => leftOf().length === 0, LEFT_DIRECTORY_MS);
    expect(leftOf()).toEqual([]);
    // Documented bound: lockDuration + stalledInterval + 5 s.
    expect(took).toBeLessThan(MARK_BOUND_MS);
    const finals = await Promise.all(queued.map((q) => waitForTerminal(q.id)));
    expect(finals.map((e) => e.status)).toEqual(Array(5).fill('succeeded'));
    const survivor = liveWorkers()[0]!;
    for (const q of queued) expect(whoRuns(q.id)).toBe(survivor);
    // Its stalled check and its taking the job back (a slot was free) ended the execution once.
    expect(survivor.messages.filter((m) => m.finished === victimRun.id)).toMatchObject([{ status: 'interrupted', lineCount: 1 }]);
    await startWorker('worker 3');
  }, 90_000);

  it('kill -9 of a worker whose slots are all busy: both its executions end interrupted within lockDuration + stalledInterval + 5 s; the survivor keeps running its own, then runs the queued ones', async () => {
    expect(liveWorkers()).toHaveLength(2);
    const busy = await Promise.all([0, 1, 2, 3].map((i) => clientA.run(scripts.sleeper!, { args: [`busy-${i}`, String(BUSY_S)] })));
    expect(await waitUntil(() => busy.every((run) => whoRuns(run.id) !== undefined), 20_000)).toBe(true);
    // Concurrency 2 on each of two workers, four runs at once: two on each.
    const placement = new Map<Node, string[]>();
    for (const run of busy) placement.set(whoRuns(run.id)!, [...(placement.get(whoRuns(run.id)!) ?? []), run.id]);
    expect([...placement.values()].map((ids) => ids.length)).toEqual([2, 2]);
    const [[victim, victimIds], [survivor, survivorIds]] = [...placement.entries()] as [[Node, string[]], [Node, string[]]];
    // Each stored its first line, so what the victim's runs keep (and count) is known.
    const firstLines = async () => (await Promise.all(busy.map((run) => store.readLogs(run.id, { afterSeq: 0, limit: 1 })))).every((l) => l.length === 1);
    expect(await waitUntil(firstLines, 10_000)).toBe(true);
    // Waiting behind four busy slots.
    const queued = await Promise.all([0, 1].map((i) => clientB.run(scripts.sleeper!, { args: [`behind-busy-${i}`, '0.3'] })));
    const statuses = async (ids: string[]) => (await Promise.all(ids.map((id) => store.getExecution(id)))).map((e) => e?.status);

    victim.process.kill('SIGKILL');
    const killedAt = Date.now();
    await victim.exited;
    let took = -1;
    await waitUntil(
      async () => {
        if ((await statuses(victimIds)).some((status) => status === 'running')) return false;
        took = Date.now() - killedAt;
        return true;
      },
      MARK_BOUND_MS,
      50,
    );
    console.log(`[scale.test] busy worker killed: both its executions interrupted ${took} ms after kill -9 (bound ${MARK_BOUND_MS} ms)`);
    expect(took).toBeGreaterThanOrEqual(0);
    expect(took).toBeLessThan(MARK_BOUND_MS);
    for (const id of victimIds) {
      const ended = await store.getExecution(id);
      expect(ended).toMatchObject({ status: 'interrupted', lineCount: 1 });
      expect(ended!.errorMessage).toContain('stopped before it finished');
    }
    // The survivor ended them (its stalled check, on a timer, with both slots busy), each once.
    const endedBySurvivor = (id: string) => survivor.messages.filter((m) => m.finished === id);
    expect(await waitUntil(() => victimIds.every((id) => endedBySurvivor(id).length > 0), 5000)).toBe(true);
    for (const id of victimIds) expect(endedBySurvivor(id)).toMatchObject([{ status: 'interrupted', lineCount: 1 }]);
    // No slot was free meanwhile: the survivor's runs still run (nobody marked them), the queued still wait.
    expect(await statuses(survivorIds)).toEqual(['running', 'running']);
    expect(await statuses(queued.map((q) => q.id))).toEqual(['queued', 'queued']);

    // Then as before: the survivor finishes its runs, takes the queued ones and the victim's jobs.
    const finals = await Promise.all([...survivorIds, ...queued.map((q) => q.id)].map((id) => waitForTerminal(id, 60_000)));
    expect(finals.map((e) => e.status)).toEqual(Array(4).fill('succeeded'));
    for (const q of queued) expect(whoRuns(q.id)).toBe(survivor);
    // The victim's jobs came back and were completed (removed on completion) without running the scripts again.
    const queue = new Queue('scriptrunner', { connection: { host: '127.0.0.1', port: redis.port } });
    try {
      expect(await waitUntil(async () => (await Promise.all(victimIds.map((id) => queue.getJob(id)))).every((job) => !job), 20_000)).toBe(true);
    } finally {
      await queue.close();
    }
    for (const id of victimIds) expect(workers.filter((w) => w.messages.some((m) => m.started === id))).toEqual([victim]);
    expect(await statuses(victimIds)).toEqual(['interrupted', 'interrupted']);
    await startWorker('worker 4');
  }, 120_000);

  it('with no live worker left, a web node ends the dead worker\'s execution interrupted within the same bound', async () => {
    const queueName = 'scale-solo';
    const solo = await startNode('solo worker', 'worker.ts', {
      ...env,
      CONCURRENCY: '1',
      LOCK_MS: String(LOCK_MS),
      STALLED_MS: String(STALLED_MS),
      QUEUE_NAME: queueName,
    });
    const web = createScriptRunner({
      store,
      dispatcher: bullmqDispatcher({ connection: redis.url, queueName, stalledIntervalMs: STALLED_MS }),
      logger: { warn: () => {}, error: () => {} },
    });
    try {
      const endedHere: Execution[] = [];
      web.on('execution:finished', (execution) => endedHere.push(execution));
      const run = await web.run(scripts.sleeper!, { args: ['solo', '60'] });
      expect(await waitUntil(() => solo.messages.some((m) => m.started === run.id), 20_000)).toBe(true);
      expect(await waitUntil(async () => (await store.readLogs(run.id, { afterSeq: 0, limit: 1 })).length === 1, 10_000)).toBe(true);
      solo.process.kill('SIGKILL');
      const killedAt = Date.now();
      await solo.exited;
      let took = -1;
      await waitUntil(
        async () => {
          if ((await store.getExecution(run.id))?.status === 'running') return false;
          took = Date.now() - killedAt;
          return true;
        },
        MARK_BOUND_MS,
        50,
      );
      console.log(`[scale.test] only worker killed: its execution interrupted by a web node ${took} ms after kill -9 (bound ${MARK_BOUND_MS} ms)`);
      expect(took).toBeGreaterThanOrEqual(0);
      expect(took).toBeLessThan(MARK_BOUND_MS);
      expect(await store.getExecution(run.id)).toMatchObject({ status: 'interrupted', lineCount: 1 });
      // This web node is the only live node of that queue: it ended it, and published the end once.
      expect(await waitUntil(() => endedHere.length > 0, 5000)).toBe(true);
      expect(endedHere.map((e) => [e.id, e.status])).toEqual([[run.id, 'interrupted']]);
      expect(await web.waitFor(run.id)).toMatchObject({ status: 'interrupted', lineCount: 1 });
    } finally {
      await web.close();
      await stopNode(solo);
    }
  }, 60_000);

  it('a worker whose store fails while ending a job stalled past its limit stays up and reports the error', async () => {
    const queueName = 'scale-stalled-twice';
    const connection = { host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: null };
    const web = createScriptRunner({
      store,
      dispatcher: bullmqDispatcher({ connection: redis.url, queueName }),
      logger: { warn: () => {}, error: () => {} },
    });
    const queue = new Queue(queueName, { connection });
    // Stands for two workers that each took the job and died: it takes it and never renews the lock.
    const dying = new Worker(queueName, null, { connection, autorun: false, lockDuration: 300, stalledInterval: 300, maxStalledCount: 1 });
    let worker: Node | undefined;
    try {
      const run = await web.run(scripts.sleeper!, { args: ['stalled-twice', '0.1'] });
      // As a worker that started it left it.
      await store.updateExecution(run.id, { status: 'running', startedAt: new Date() });
      const state = async () => (await queue.getJob(run.id))?.getState();
      void dying.startStalledCheckTimer();
      for (const token of ['first-dead-worker', 'second-dead-worker']) {
        expect(await waitUntil(async () => (await dying.getNextJob(token, { block: false }))?.id === run.id, 5000)).toBe(true);
        expect(await waitUntil(async () => (await state()) === 'waiting', 5000)).toBe(true);
      }
      await dying.close();
      expect((await queue.getJob(run.id))?.deferredFailure).toBe('job stalled more than allowable limit');

      // A worker whose store fails to read logs: ending the execution (counting its stored lines) fails.
      worker = await startNode('worker with a failing store', 'worker.ts', {
        ...env,
        CONCURRENCY: '1',
        LOCK_MS: String(LOCK_MS),
        STALLED_MS: String(STALLED_MS),
        QUEUE_NAME: queueName,
        STORE_FAILS: 'readLogs',
      });
      const node = worker;
      const exited = () => node.process.exitCode !== null || node.process.signalCode !== null;
      const report = () => node.stderr.find((line) => line.includes(run.id));
      // BullMQ fails the job as it takes it; ending the execution then needs the store.
      expect(await waitUntil(async () => (await state()) === 'failed', 20_000)).toBe(true);
      expect(await waitUntil(() => report() !== undefined || exited(), 20_000)).toBe(true);
      expect(exited(), node.stderr.join('\n')).toBe(false);
      expect(report()).toMatch(/the database is down/);
      // Still serving: the next run on that queue runs there and succeeds.
      const next = await web.run(scripts.sleeper!, { args: ['after-the-failure', '0.1'] });
      expect((await waitForTerminal(next.id)).status).toBe('succeeded');
      expect(node.messages.some((m) => m.started === next.id)).toBe(true);
      expect(exited()).toBe(false);
    } finally {
      await dying.close();
      await queue.close();
      await web.close();
      await stopNode(worker);
    }
  }, 60_000);

  it('the queue limit maps to queue_full, and a run refused leaves nothing stored', async () => {
    // A queue no worker serves, so jobs stay waiting.
    const runner = createScriptRunner({
      store,
      dispatcher: bullmqDispatcher({ connection: redis.url, queueName: 'no-workers', maxQueued: 2 }),
      logger: { warn: () => {}, error: () => {} },
    });
    try {
      const script = await runner.uploadScript({ filename: 'test_full.py', content: 'print(1)' });
      await runner.run(script.id);
      await runner.run(script.id);
      const refused = await runner.run(script.id).catch((error: unknown) => error);
      expect(isScriptRunnerError(refused) && refused.code).toBe('queue_full');
      expect((await runner.listExecutions({ scriptId: script.id })).items).toHaveLength(2);
      expect((await runner.getScript(script.id)).totalRuns).toBe(2);
    } finally {
      await runner.close();
    }
    // Concurrent run() calls on one node see each other's claims: exactly maxQueued get in.
    const burst = createScriptRunner({
      store,
      dispatcher: bullmqDispatcher({ connection: redis.url, queueName: 'no-workers-burst', maxQueued: 3 }),
      logger: { warn: () => {}, error: () => {} },
    });
    try {
      const script = await burst.uploadScript({ filename: 'test_burst.py', content: 'print(1)' });
      const results = await Promise.allSettled(Array.from({ length: 10 }, () => burst.run(script.id)));
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(3);
      for (const r of results) if (r.status === 'rejected') expect(isScriptRunnerError(r.reason) && r.reason.code).toBe('queue_full');
    } finally {
      await burst.close();
    }
  });

  it('a worker whose options are refused opens no Redis connection', async () => {
    const admin = new Redis(redis.url);
    const clients = async () => String(await admin.client('LIST')).trim().split('\n').length;
    try {
      const before = await clients();
      expect(() => createScriptWorker({ store, connection: redis.url, limits: { memoryBytes: -1 } })).toThrow(/limits.memoryBytes/);
      await new Promise((r) => setTimeout(r, 300));
      expect(await clients()).toBe(before);
    } finally {
      admin.disconnect();
    }
  });

  it('Redis unreachable: run() fails with unavailable within redisTimeoutMs instead of hanging', async () => {
    const closedPort = await freePort();
    const runner = createScriptRunner({
      store,
      dispatcher: bullmqDispatcher({ connection: `redis://127.0.0.1:${closedPort}`, redisTimeoutMs: 1000 }),
      logger: { warn: () => {}, error: () => {} },
    });
    try {
      const script = await runner.uploadScript({ filename: 'test_noredis.py', content: 'print(1)' });
      const started = Date.now();
      const refused = await runner.run(script.id).catch((error: unknown) => error);
      expect(isScriptRunnerError(refused) && refused.code).toBe('unavailable');
      expect(Date.now() - started).toBeLessThan(5000);
      expect((await runner.listExecutions({ scriptId: script.id })).items).toHaveLength(0);
    } finally {
      await runner.close();
    }
  });

  it('Redis restarted mid-run: no line lost from the store; a viewer on web node A ends complete', async () => {
    await Promise.all(liveWorkers().map((worker) => stopNode(worker)));
    await Promise.all([startWorker('worker 5 (long lock)', RESTART_LOCK_MS), startWorker('worker 6 (long lock)', RESTART_LOCK_MS)]);
    const count = 4000;
    // Lines keep coming while Redis is down, but the run cannot end before the test lets it: at
    // line 3000 it waits for a file the test writes into its run directory after the restart.
    const execution = await clientB.run(scripts.gated!, { args: [String(count), '100', '0.05', '3000'] });
    const runs = join(tmpdir(), 'scriptrunner');
    const runDirectory = () => (existsSync(runs) ? readdirSync(runs).find((d) => d.startsWith(`${execution.id}-`)) : undefined);
    const seen: number[] = [];
    let finishedWith: Execution | null = null;
    const stop = clientA.followExecution(execution.id, {
      onLines: (lines) => seen.push(...lines.map((l) => l.seq)),
      onFinished: (final) => {
        finishedWith = final;
      },
    });
    try {
      expect(await waitUntil(() => seen.length >= 500, 20_000)).toBe(true);
      await redis.restart(500);
      // The restart happened mid-run, not after it.
      expect((await store.getExecution(execution.id))?.status).toBe('running');
      const directory = runDirectory();
      expect(directory).toBeDefined();
      writeFileSync(join(runs, directory!, 'go'), '');
      const final = await waitForTerminal(execution.id, 60_000);
      expect(final).toMatchObject({ status: 'succeeded', lineCount: count });
      const stored = await store.readLogs(execution.id, { afterSeq: 0, limit: 10_000 });
      expect(stored.map((l) => l.text)).toEqual(Array.from({ length: count }, (_, i) => `line ${i + 1}`));
      expect(await waitUntil(() => finishedWith !== null, 30_000)).toBe(true);
      expect(seen).toEqual(Array.from({ length: count }, (_, i) => i + 1));
    } finally {
      stop();
    }
    // The deployment still works after the restart.
    const after = await clientA.run(scripts.sleeper!, { args: ['after-restart', '0.1'] });
    expect((await waitForTerminal(after.id)).status).toBe('succeeded');
  }, 120_000);
});
