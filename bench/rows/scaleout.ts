/**
 * scaleout: the BullMQ deployment as real OS processes — redis-server and PostgreSQL started here,
 * web nodes A and B and workers (`node --import tsx`, the scale test's own web-node.ts and
 * worker.ts, with `isolation: 'none'`) — measured side by side, interleaved per repetition:
 *
 * - throughput: N runs of a script printing as fast as python can, requested through A and B in
 *   turn, executed by two workers (concurrency 2 each) against the same runs with one worker (the
 *   second stopped); wall time from the first run() to the last worker reporting its run finished
 *   (after the final record is stored), lines/s persisted to PostgreSQL. Every run is checked in the
 *   store afterwards: succeeded, every line exactly once, in order, with the right text.
 * - fan-out across nodes: M socket.io clients following one run, half on web node A and half on
 *   web node B (the live lines of B's clients come over Redis from the worker), against the same
 *   number of clients all on A; the script pauses before printing so every client is subscribed
 *   first (live delivery, not catch-up); run() → last line at the last client, less that pause.
 *   Every client must get every line exactly once and in order.
 *
 * - web-node CPU per line: four more web nodes with `logEvents: 'all'` (every batch to every node, as
 *   before per-execution channels) and four with the default `watched`; per variant 8 concurrent
 *   runs requested through its first node, one socket.io viewer on that node following one of
 *   them; the CPU the variant's four web-node processes used, per line printed.
 *
 * The machine's CPU use during each throughput variant (from /proc/stat) is reported, because on
 * one 2-core machine a second worker process adds no cores.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createScriptRunnerClient } from '@scriptrunner/client';
import { postgresStore } from '@scriptrunner/store-prisma/postgresql';
import { postgresAvailable, POSTGRES_MISSING, startPostgres, type PostgresServer } from '../../packages/store-prisma/test/support/postgres.js';
import { originOf, startNode, stopNode, type NodeMessage, type NodeProcess } from '../../packages/queue-bullmq/test/support/nodes.js';
import { REDIS_MISSING, redisAvailable, startRedis, type RedisServer } from '../../packages/queue-bullmq/test/support/redis.js';
import { assertExactlyOnce, CorrectnessError, fmt, MANY_LINES, median, type Row } from '../lib.js';
import { calibrateWallClock } from './support-net/clock.js';
import { startClientThread, type ClientThread } from './support-net/threads.js';
import { manyLinesText, resolvePython } from './support-process/python.js';

const CONCURRENCY = 2;
/** Two workers must keep at least this share of one worker's throughput. */
const MIN_SPEEDUP = 0.9;
/** Clients split over A and B may take at most this multiple of the same clients all on A. */
const MAX_SPLIT_RATIO = 1.5;
/**
 * The fan-out script sleeps this long before printing, so every client has subscribed before the
 * first line and the row measures live delivery through both nodes, not 40 catch-ups from the
 * store racing the run (the catchup row measures those).
 */
const FAN_PAUSE_S = 1;
/** Web nodes per variant of the web-node CPU part. */
const FLEET_WEB_NODES = 4;
/** Watched-only web nodes must use at most this share of the CPU per line of nodes that get every batch. */
const MAX_WATCHED_SHARE = 0.5;
/** MANY_LINES after a pause of argv[2] seconds. */
const PAUSED_MANY_LINES = `import sys, time\ntime.sleep(float(sys.argv[2]))\n${MANY_LINES}`;

interface Finished {
  at: number;
  status: string;
  lineCount: number;
  worker: string;
}

/** Times from run(), less the script's pause (FAN_PAUSE_S). */
interface FanSample {
  /** → last line at the last client. */
  last: number;
  /** → last line at the first client to complete. */
  first: number;
  /** → the worker reported the run finished (every line stored, final record written). */
  stored: number;
}

interface Throughput {
  ms: number;
  /** Runs each worker executed. */
  perWorker: number[];
  /** Share of the machine's CPU time (all cores) that was busy, 0..1. */
  busy: number;
  /** CPU seconds used meanwhile, by part. */
  cpu: CpuUse;
}

/** CPU seconds by part of the deployment; `other` is the rest of the machine (redis-server, this bench, ...). */
interface CpuUse {
  python: number;
  workers: number;
  web: number;
  postgres: number;
  other: number;
  total: number;
}

const TICKS_PER_SECOND = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** Busy and total jiffies of all cores since boot (the first line of /proc/stat). */
function cpuTicks(): { busy: number; total: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = fields as [number, number, number, number, number, number, number, number];
  const busy = user + nice + system + irq + softirq + steal;
  return { busy, total: busy + idle + iowait };
}

/** /proc/<pid>/stat: parent pid, own CPU ticks, and the ticks of reaped children (a worker's python runs). */
function procTicks(pid: number): { ppid: number; own: number; children: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
    return { ppid: f[1]!, own: f[11]! + f[12]!, children: f[13]! + f[14]! };
  } catch {
    return null;
  }
}

/** CPU ticks of the PostgreSQL server listening on `port`: the postmaster, its live backends and the ones it reaped. */
function postgresTicks(port: number): number {
  const pids = readdirSync('/proc').filter((e) => /^\d+$/.test(e)).map(Number);
  const postmaster = pids.find((pid) => {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      return argv[0]?.endsWith('/postgres') === true && argv.includes('-p') && argv[argv.indexOf('-p') + 1] === String(port);
    } catch {
      return false;
    }
  });
  if (postmaster === undefined) return 0;
  let ticks = 0;
  for (const pid of pids) {
    const t = procTicks(pid);
    if (t === null) continue;
    if (pid === postmaster) ticks += t.own + t.children;
    else if (t.ppid === postmaster) ticks += t.own;
  }
  return ticks;
}

/** Like Promise.all, but waits for every promise, so nothing started is left running unseen when one fails. */
async function allSettled<T extends readonly unknown[]>(promises: { [K in keyof T]: Promise<T[K]> }): Promise<T> {
  const settled = await Promise.allSettled(promises);
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.map((r) => (r as PromiseFulfilledResult<unknown>).value) as unknown as T;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export const run: Row = async (ctx) => {
  if (!redisAvailable()) throw new Error(REDIS_MISSING);
  if (!postgresAvailable()) throw new Error(POSTGRES_MISSING);
  const runs = 8;
  const lines = 50_000;
  const fanLines = 50_000;
  const perNode = ctx.quick ? 5 : 20;
  const reps = ctx.quick ? 1 : 3;
  const wall = calibrateWallClock();

  // The workers' run directories, removed with everything else at the end.
  const dir = mkdtempSync(join(tmpdir(), 'sr-bench-scaleout-'));
  // Filled in as each server comes up, so the finally below stops whichever started when the other fails.
  const servers: { redis?: RedisServer; pg?: PostgresServer } = {};
  let store: ReturnType<typeof postgresStore> | null = null;
  const nodes: NodeProcess[] = [];
  const threads: ClientThread[] = [];
  const closeThreads = async () => {
    for (const thread of threads.splice(0)) await thread.close();
  };
  try {
    await allSettled([startRedis().then((r) => (servers.redis = r)), startPostgres().then((p) => (servers.pg = p))]);
    const redis = servers.redis!;
    const pg = servers.pg!;
    const databaseUrl = await pg.createDatabase('scaleout');
    // Migrate once, before several processes open the database; the bench reads the runs back through it.
    store = postgresStore({ connectionString: databaseUrl });
    await store.ready;
    const env = {
      REDIS_URL: redis.url,
      DATABASE_URL: databaseUrl,
      // The pipeline across processes, not the sandbox (the isolation row), on the real interpreter.
      ISOLATION: 'none',
      PYTHON: resolvePython(),
      CONCURRENCY: String(CONCURRENCY),
      WORK_DIR: join(dir, 'runs'),
    };

    /** Every run a worker reported finished, by execution id (recorded as the line arrives). */
    const finished = new Map<string, Finished>();
    const startWorker = async (name: string): Promise<NodeProcess> => {
      const node = await startNode(name, 'worker.ts', env, 60_000);
      nodes.push(node);
      node.onMessage((m: NodeMessage) => {
        if (typeof m.finished !== 'string') return;
        finished.set(m.finished, { at: performance.now(), status: String(m.status), lineCount: Number(m.lineCount), worker: name });
      });
      return node;
    };
    const startWeb = async (name: string, extra: Record<string, string> = {}): Promise<NodeProcess> => {
      const node = await startNode(name, 'web-node.ts', { ...env, ...extra }, 60_000);
      nodes.push(node);
      return node;
    };
    const [webA, webB, worker1] = await allSettled<[NodeProcess, NodeProcess, NodeProcess]>([startWeb('web A'), startWeb('web B'), startWorker('worker 1')]);
    let worker2: NodeProcess | null = await startWorker('worker 2');
    const live = () => (worker2 ? 2 : 1);
    const originA = originOf(webA);
    const originB = originOf(webB);
    const clientA = createScriptRunnerClient({ baseUrl: `${originA}/api` });
    const clientB = createScriptRunnerClient({ baseUrl: `${originB}/api` });
    const scriptId = (await clientB.uploadScript(new Blob([MANY_LINES]), { filename: 'test_bench_scaleout.py' })).id;
    const pausedId = (await clientB.uploadScript(new Blob([PAUSED_MANY_LINES]), { filename: 'test_bench_scaleout_paused.py' })).id;

    const waitFinished = async (ids: string[], timeoutMs: number, what: string): Promise<Finished[]> => {
      const deadline = Date.now() + timeoutMs;
      while (!ids.every((id) => finished.has(id))) {
        if (Date.now() > deadline) throw new Error(`${what}: ${ids.filter((id) => !finished.has(id)).length} of ${ids.length} runs not finished within ${timeoutMs} ms`);
        await sleep(5);
      }
      return ids.map((id) => finished.get(id)!);
    };

    /** Every run succeeded, and PostgreSQL holds each of its lines exactly once, in order, with the right text. */
    const checkStored = async (ids: string[], count: number, what: string): Promise<void> => {
      for (const id of ids) {
        const final = finished.get(id)!;
        if (final.status !== 'succeeded' || final.lineCount !== count) {
          throw new CorrectnessError(`${what}: execution ${id} ended ${final.status} with ${final.lineCount} of ${count} lines`);
        }
        const stored = await store!.readLogs(id, { afterSeq: 0, limit: count + 1 });
        assertExactlyOnce(
          stored.map((l) => l.seq),
          count,
          `${what}: PostgreSQL lines of execution ${id}`,
        );
        for (const line of stored) {
          if (line.text !== manyLinesText(line.seq)) throw new CorrectnessError(`${what}: stored line ${line.seq} of ${id} reads ${JSON.stringify(line.text)}`);
        }
      }
    };

    /** `n` runs of `count` lines, requested through A and B in turn, all at once. */
    const batch = async (n: number, count: number, what: string): Promise<{ ms: number; ids: string[] }> => {
      const start = performance.now();
      const executions = await Promise.all(Array.from({ length: n }, (_, i) => (i % 2 === 0 ? clientA : clientB).run(scriptId, { args: [String(count)] })));
      const ids = executions.map((e) => e.id);
      const ends = await waitFinished(ids, 120_000, what);
      return { ms: Math.max(...ends.map((e) => e.at)) - start, ids };
    };

    /** A fresh worker process has a cold JIT and pool: give each worker a few runs before measuring. */
    const warmUp = async () => {
      const { ids } = await batch(CONCURRENCY * live(), 5_000, 'warm-up');
      await checkStored(ids, 5_000, 'scaleout/warm-up');
    };

    /** Where the CPU goes: machine-wide ticks and those of each part of the deployment. */
    const cpuSnapshot = () => {
      const workers = (worker2 ? [worker1, worker2] : [worker1]).map((w) => procTicks(w.process.pid!));
      const web = [webA, webB].map((w) => procTicks(w.process.pid!));
      return {
        machine: cpuTicks(),
        python: workers.reduce((sum, t) => sum + (t?.children ?? 0), 0),
        workers: workers.reduce((sum, t) => sum + (t?.own ?? 0), 0),
        web: web.reduce((sum, t) => sum + (t?.own ?? 0), 0),
        postgres: postgresTicks(pg.port),
      };
    };

    const throughput = async (): Promise<Throughput> => {
      const what = `scaleout/throughput with ${live()} worker${live() === 1 ? '' : 's'}`;
      const before = cpuSnapshot();
      const { ms, ids } = await batch(runs, lines, what);
      const after = cpuSnapshot();
      await checkStored(ids, lines, what);
      const names = worker2 ? ['worker 1', 'worker 2'] : ['worker 1'];
      const perWorker = names.map((name) => ids.filter((id) => finished.get(id)!.worker === name).length);
      const seconds = (key: 'python' | 'workers' | 'web' | 'postgres') => (after[key] - before[key]) / TICKS_PER_SECOND;
      const total = (after.machine.busy - before.machine.busy) / TICKS_PER_SECOND;
      const parts = { python: seconds('python'), workers: seconds('workers'), web: seconds('web'), postgres: seconds('postgres') };
      const cpu: CpuUse = { ...parts, other: Math.max(0, total - parts.python - parts.workers - parts.web - parts.postgres), total };
      return { ms, perWorker, busy: (after.machine.busy - before.machine.busy) / Math.max(1, after.machine.total - before.machine.total), cpu };
    };

    /** `perNode` × 2 socket clients (split over A and B, or all on A) following one run of `fanLines`. */
    const fanout = async (split: boolean): Promise<FanSample> => {
      const origins = split ? [originA, originB] : [originA, originA];
      for (const origin of origins) {
        threads.push(
          await startClientThread({ task: 'follow', origin, baseUrl: `${origin}/api`, sockets: perNode, sse: false, expected: fanLines, latency: false, timeoutMs: 60_000 }),
        );
      }
      // The clients report on the wall clock, the worker's end is seen on performance.now().
      const start = wall();
      const startPerf = performance.now();
      const execution = await clientA.run(pausedId, { args: [String(fanLines), String(FAN_PAUSE_S)] });
      for (const thread of threads) thread.send({ type: 'subscribe', executionId: execution.id });
      const subscribed = Math.max(...(await Promise.all(threads.map((t) => t.next('subscribed', 30_000)))).map((m) => m.at - start));
      // Each thread checks each of its clients with assertExactlyOnce before it answers `done`.
      const results = (await Promise.all(threads.map((t) => t.next('done', 70_000)))).flatMap((m) => m.results);
      await closeThreads();
      const [end] = await waitFinished([execution.id], 30_000, 'scaleout/fan-out');
      await checkStored([execution.id], fanLines, 'scaleout/fan-out');
      if (results.length !== perNode * 2) throw new Error(`${results.length} of ${perNode * 2} clients reported`);
      if (subscribed > FAN_PAUSE_S * 1000) ctx.log(`note: the last client subscribed ${fmt.s(subscribed)} after run(), after the script's pause: it caught up from the store`);
      // Times after the pause: from when the script could print its first line.
      const pause = FAN_PAUSE_S * 1000;
      const lasts = results.map((r) => r.lastLineAt - start - pause);
      return { last: Math.max(...lasts), first: Math.min(...lasts), stored: end!.at - startPerf - pause };
    };

    // The web-node CPU part: two fleets of web nodes over the same workers, one per log flow.
    const fleets = {
      all: await Promise.all(Array.from({ length: FLEET_WEB_NODES }, (_, i) => startWeb(`all-logs web ${i + 1}`, { LOG_EVENTS: 'all' }))),
      watched: await Promise.all(Array.from({ length: FLEET_WEB_NODES }, (_, i) => startWeb(`watched web ${i + 1}`, { LOG_EVENTS: 'watched' }))),
    };
    /** 8 runs through the fleet's first node, one viewer there on the first run: CPU µs per printed line of the fleet's web nodes. */
    const webCpu = async (flow: 'all' | 'watched'): Promise<number> => {
      const fleet = fleets[flow];
      const origin = originOf(fleet[0]!);
      const client = createScriptRunnerClient({ baseUrl: `${origin}/api` });
      const viewer = await startClientThread({ task: 'follow', origin, baseUrl: `${origin}/api`, sockets: 1, sse: false, expected: lines, latency: false, timeoutMs: 120_000 });
      threads.push(viewer);
      const ticks = () => fleet.reduce((sum, node) => sum + (procTicks(node.process.pid!)?.own ?? 0), 0);
      const before = ticks();
      const executions = await Promise.all(Array.from({ length: runs }, () => client.run(scriptId, { args: [String(lines)] })));
      viewer.send({ type: 'subscribe', executionId: executions[0]!.id });
      const ids = executions.map((e) => e.id);
      await waitFinished(ids, 120_000, `scaleout/web CPU (${flow})`);
      await viewer.next('done', 60_000); // the viewer checked every line once, in order
      const used = ticks() - before;
      await closeThreads();
      await checkStored(ids, lines, `scaleout/web CPU (${flow})`);
      return ((used / TICKS_PER_SECOND) * 1e6) / (runs * lines);
    };

    await warmUp();
    const two: Throughput[] = [];
    const one: Throughput[] = [];
    const splitSamples: FanSample[] = [];
    const onASamples: FanSample[] = [];
    const allCpu: number[] = [];
    const watchedCpu: number[] = [];
    for (let rep = 0; rep < reps; rep++) {
      for (const flow of rep % 2 === 0 ? (['all', 'watched'] as const) : (['watched', 'all'] as const)) {
        const perLine = await webCpu(flow);
        (flow === 'all' ? allCpu : watchedCpu).push(perLine);
        ctx.log(`rep ${rep + 1}/${reps} web CPU, ${FLEET_WEB_NODES} web nodes, logEvents ${flow}: ${perLine.toFixed(2)} µs per line`);
      }
      // Alternate the order, so each rep needs one stop or one start of worker 2, and neither variant always goes first.
      for (const workers of rep % 2 === 0 ? [2, 1] : [1, 2]) {
        if (workers === 1 && worker2) {
          await stopNode(worker2, 10_000);
          worker2 = null;
        } else if (workers === 2 && !worker2) {
          worker2 = await startWorker('worker 2');
          await warmUp();
        }
        const sample = await throughput();
        (workers === 2 ? two : one).push(sample);
        ctx.log(
          `rep ${rep + 1}/${reps} throughput, ${workers} worker${workers === 1 ? ' ' : 's'}: ${runs} × ${fmt.int(lines)} lines in ${fmt.s(sample.ms)} ` +
            `(${fmt.int((runs * lines) / (sample.ms / 1000))} lines/s; runs per worker ${sample.perWorker.join('+')}; machine ${(sample.busy * 100).toFixed(0)}% busy; ` +
            `CPU s: python ${sample.cpu.python.toFixed(2)}, worker processes ${sample.cpu.workers.toFixed(2)}, web nodes ${sample.cpu.web.toFixed(2)}, ` +
            `PostgreSQL ${sample.cpu.postgres.toFixed(2)}, other ${sample.cpu.other.toFixed(2)}, all ${sample.cpu.total.toFixed(2)})`,
        );
      }
      for (const split of rep % 2 === 0 ? [true, false] : [false, true]) {
        const sample = await fanout(split);
        (split ? splitSamples : onASamples).push(sample);
        ctx.log(
          `rep ${rep + 1}/${reps} fan-out, ${split ? `${perNode} on A + ${perNode} on B` : `${perNode * 2} on A`}: last line at the last client ${fmt.s(sample.last)} ` +
            `(first client complete ${fmt.s(sample.first)}; run stored and finished on its worker ${fmt.s(sample.stored)})`,
        );
      }
    }

    const total = runs * lines;
    const twoMs = median(two.map((s) => s.ms));
    const oneMs = median(one.map((s) => s.ms));
    // Ratios per repetition (the two variants ran back to back), then their median: steadier than a
    // ratio of medians when other load on the machine comes and goes.
    const speedup = median(two.map((s, i) => one[i]!.ms / s.ms));
    const busyOne = median(one.map((s) => s.busy));
    const busyTwo = median(two.map((s) => s.busy));
    const cpuOf = (list: Throughput[], key: keyof CpuUse) => median(list.map((s) => s.cpu[key]));
    const split = median(splitSamples.map((s) => s.last));
    const onA = median(onASamples.map((s) => s.last));
    const stored = median([...splitSamples, ...onASamples].map((s) => s.stored));
    const splitRatio = median(splitSamples.map((s, i) => s.last / onASamples[i]!.last));
    const spread = two.map((s) => s.perWorker.join('+')).join(', ');
    const allPerLine = median(allCpu);
    const watchedPerLine = median(watchedCpu);
    const watchedShare = median(watchedCpu.map((w, i) => w / allCpu[i]!));
    const met = speedup >= MIN_SPEEDUP && splitRatio <= MAX_SPLIT_RATIO && watchedShare <= MAX_WATCHED_SHARE;
    const pct = (u: number) => `${(u * 100).toFixed(0)}%`;
    const cpuS = (n: number) => `${n.toFixed(1)} s`;
    const cores = cpus().length;
    const where =
      `With one worker the ${fmt.int(total)} lines took ${cpuS(cpuOf(one, 'total'))} of CPU in all — python ${cpuS(cpuOf(one, 'python'))}, the worker process ` +
      `${cpuS(cpuOf(one, 'workers'))}, the two web nodes ${cpuS(cpuOf(one, 'web'))} (nobody follows these runs on them, so they get their lifecycle events only), ` +
      `PostgreSQL ${cpuS(cpuOf(one, 'postgres'))}, the rest (redis-server, this bench, anything else on the machine) ${cpuS(cpuOf(one, 'other'))} — and kept the ${cores} cores ${pct(busyOne)} busy (two workers: ` +
      `${cpuS(cpuOf(two, 'total'))}, ${pct(busyTwo)}).`;
    const noisy = Math.max(cpuOf(one, 'other'), cpuOf(two, 'other')) > 0.25 * cpuOf(one, 'total') ? ' Other load on the machine took a large share meanwhile, so these numbers are noisy.' : '';
    const throughputReading =
      speedup >= 1.3
        ? `Two workers finished the ${runs} runs ${fmt.ratio(speedup)} faster than one. ${where}`
        : `Two workers are ${fmt.ratio(speedup)} one worker here, which is all one machine allows: every process shares the same ${cores} cores. ${where} ` +
          `A second worker process adds run slots, not CPU; on separate machines each worker brings its own cores. What this row does show is that ` +
          `spreading the runs over two workers (${spread} runs per worker) loses no line and ${
            speedup >= 0.97
              ? 'costs no throughput.'
              : `costs ${pct(1 - speedup)} of the throughput: the two worker processes used ${cpuS(cpuOf(two, 'workers'))} of CPU for the same runs against ` +
                `${cpuS(cpuOf(one, 'workers'))} for one, taken from the same cores.`
          }`;
    const fanReading =
      `Following one ${fmt.int(fanLines)}-line run live, the last of the ${perNode * 2} clients had every line ${fmt.s(split)} after the script started printing when split over A and B and ${fmt.s(onA)} ` +
      `when all on A (${fmt.ratio(splitRatio)}), against ${fmt.s(stored)} for the worker to store the run and finish` +
      (Math.max(split, onA) <= stored * 1.25
        ? ': the clients keep up with the pipeline, '
        : `: the last client completes ${fmt.s(Math.min(split, onA) - stored)}–${fmt.s(Math.max(split, onA) - stored)} after that, because the web nodes' sending and the clients' ` +
          `decoding of ${fmt.int(perNode * 2)} × ${fmt.int(fanLines)} lines share the ${cores} cores with the pipeline, `) +
      (splitRatio <= 1.1
        ? `and B's clients, whose lines come from the worker over Redis like A's, are as current as A's.`
        : `and the split costs that much more here, where the second web node's socket work runs on the same cores as the worker, PostgreSQL and the clients.`);
    return {
      row: 'scaleout',
      what:
        `BullMQ deployment as separate OS processes (redis-server, PostgreSQL, web nodes A and B, workers with concurrency ${CONCURRENCY}, isolation 'none'): ` +
        `${runs} runs × ${fmt.int(lines)} lines requested through A and B in turn, run() → last run finished, with two workers vs one (the second stopped); ` +
        `and ${perNode * 2} socket.io clients following one ${fmt.int(fanLines)}-line run live (the script waits ${FAN_PAUSE_S} s for them to subscribe), ` +
        `${perNode} on A + ${perNode} on B vs all ${perNode * 2} on A, run() → last line at the last client less that pause; ` +
        `python printing as fast as it can; every run read back from PostgreSQL and every client checked; medians of ${reps} interleaved repetitions (ratios per repetition)`,
      measured:
        `throughput: 2 workers ${fmt.s(twoMs)} (${fmt.int(total / (twoMs / 1000))} lines/s) · 1 worker ${fmt.s(oneMs)} (${fmt.int(total / (oneMs / 1000))} lines/s) → ${fmt.ratio(speedup)} — ` +
        `fan-out: ${perNode} on A + ${perNode} on B ${fmt.s(split)} · ${perNode * 2} on A ${fmt.s(onA)} → ${fmt.ratio(splitRatio)} — ` +
        `web-node CPU per line, ${FLEET_WEB_NODES} web nodes, ${runs} runs, one viewer: every batch to every node ${allPerLine.toFixed(2)} µs · watched only ${watchedPerLine.toFixed(2)} µs → ${fmt.ratio(watchedShare)}`,
      target: `every run stored and every client on either web node gets every line once, in order; two workers ≥ ${MIN_SPEEDUP}× one worker's lines/s; split over A and B ≤ ${MAX_SPLIT_RATIO}× all on A; watched-only web nodes ≤ ${MAX_WATCHED_SHARE}× the CPU per line of nodes that get every batch`,
      met,
      reading:
        `All ${runs * reps * 2} measured runs were stored complete and all ${perNode * 2} clients got all ${fmt.int(fanLines)} lines exactly once and in order in every repetition, ` +
        `on either web node. ${throughputReading}${noisy} ${fanReading} ` +
        `With ${runs} runs on the fleet and one viewer, ${FLEET_WEB_NODES} web nodes that receive every batch spent ${allPerLine.toFixed(2)} µs of CPU per printed line ` +
        `(each decodes all ${runs} runs); with watched-only channels ${watchedPerLine.toFixed(2)} µs: only the viewer's node decodes one run's batches, the others get the lifecycle events.`,
    };
  } finally {
    await closeThreads().catch(() => undefined);
    await Promise.all(nodes.map((node) => stopNode(node, 5_000)));
    await store?.close().catch(() => undefined);
    await Promise.all([servers.redis?.stop(), servers.pg?.destroy()]);
    rmSync(dir, { recursive: true, force: true });
  }
};
