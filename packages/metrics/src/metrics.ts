/**
 * scriptrunner's metrics on prom-client. The object is a `RunnerObserver`: give it to
 * `createScriptRunner({ observers: [metrics] })` and it counts what that runner does itself (its
 * own runs, its store calls, its sweeps), and reads the runner's gauges (`stats()`) when scraped.
 * Counters count each run once across a fleet: a web node counts the runs queued through it, a
 * worker the runs it ran — sum them in Prometheus.
 */
import {
  isScriptRunnerError,
  type RunnerEvent,
  type RunnerObserver,
  type ScriptRunner,
  type SweepResult,
} from '@scriptrunner/core';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export interface ScriptRunnerMetricsOptions {
  /**
   * Where the metrics are registered. Default: a registry of their own, so nothing collides with
   * the application's; pass prom-client's global `register` to serve them with yours.
   */
  registry?: Registry;
  /** Prefix of every metric name. Default `scriptrunner_`. */
  prefix?: string;
  /** Buckets of `store_call_duration_seconds`. Default 0.5 ms … 10 s. */
  storeCallBuckets?: number[];
}

/** A `/metrics` response: the Prometheus text format and its content type. */
export interface MetricsResponse {
  contentType: string;
  body: string;
}

export interface ScriptRunnerMetrics extends RunnerObserver {
  readonly registry: Registry;
  /** The current values in Prometheus' text format (gauges read the runners' `stats()` now). */
  render(): Promise<MetricsResponse>;
}

const STORE_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const RUN_BUCKETS = [0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 14_400];

export function scriptRunnerMetrics(options: ScriptRunnerMetricsOptions = {}): ScriptRunnerMetrics {
  const registry = options.registry ?? new Registry();
  const prefix = options.prefix ?? 'scriptrunner_';
  const registers = [registry];
  const runners: ScriptRunner[] = [];

  const queued = new Counter({ name: `${prefix}runs_queued_total`, help: 'Executions queued through this runner (run() calls accepted).', registers });
  const started = new Counter({ name: `${prefix}runs_started_total`, help: 'Executions this runner started.', registers });
  const finished = new Counter({
    name: `${prefix}runs_finished_total`,
    help: 'Executions this runner ended, by final status.',
    labelNames: ['status'],
    registers,
  });
  const runSeconds = new Histogram({
    name: `${prefix}run_duration_seconds`,
    help: 'Wall time of the executions this runner ended, from start to end, by final status.',
    labelNames: ['status'],
    buckets: RUN_BUCKETS,
    registers,
  });
  const truncated = new Counter({
    name: `${prefix}runs_truncated_total`,
    help: 'Executions that hit an output cap: a line cut at maxLineBytes, or output past maxLogLines / maxLogBytes dropped.',
    registers,
  });
  const dropped = new Counter({
    name: `${prefix}dropped_total`,
    help: 'Output not kept whole, by what: line_cut (lines cut at maxLineBytes), output_over_cap (runs stopped at maxLogLines/maxLogBytes), artifact_skipped (files not kept).',
    labelNames: ['what'],
    registers,
  });
  const lines = new Counter({ name: `${prefix}log_lines_persisted_total`, help: 'Log lines this runner stored (then published).', registers });
  const bytes = new Counter({ name: `${prefix}log_bytes_persisted_total`, help: 'UTF-8 bytes of the text of the log lines this runner stored.', registers });
  const storeCalls = new Histogram({
    name: `${prefix}store_call_duration_seconds`,
    help: 'Duration of each Store call this runner made, by method and outcome (ok, error).',
    labelNames: ['method', 'outcome'],
    buckets: options.storeCallBuckets ?? STORE_BUCKETS,
    registers,
  });
  const errors = new Counter({
    name: `${prefix}errors_total`,
    help: "Errors the runner reported (its 'error' event), by ScriptRunnerError code (other: anything else).",
    labelNames: ['code'],
    registers,
  });
  const sweeps = new Counter({ name: `${prefix}retention_sweeps_total`, help: 'Retention sweeps this runner ran.', registers });
  const sweptExecutions = new Counter({
    name: `${prefix}retention_deleted_executions_total`,
    help: 'Executions deleted by retention sweeps (with their log lines and artifacts).',
    registers,
  });
  const sweptScripts = new Counter({ name: `${prefix}retention_deleted_scripts_total`, help: 'Archived scripts deleted by retention sweeps.', registers });

  /** The runners' stats, read once per scrape by all three gauges below. */
  let reading: Promise<Array<Awaited<ReturnType<ScriptRunner['stats']>>>> | null = null;
  const readStats = () => {
    reading ??= Promise.all(runners.map((r) => r.stats())).finally(() => {
      setImmediate(() => (reading = null));
    });
    return reading;
  };
  new Gauge({
    name: `${prefix}runs_running`,
    help: 'Executions running in this process now.',
    registers,
    async collect() {
      this.set((await readStats()).reduce((sum, s) => sum + s.running, 0));
    },
  });
  new Gauge({
    name: `${prefix}queue_depth`,
    help: "Executions waiting to start: this process's queue, or the fleet's BullMQ queue (the same number on every node). Absent when unknown.",
    registers,
    async collect() {
      const known = (await readStats()).filter((s) => s.queued !== null);
      this.reset();
      if (known.length > 0) this.set(Math.max(...known.map((s) => s.queued!)));
    },
  });
  new Gauge({
    name: `${prefix}sandbox_info`,
    help: 'How scripts are isolated on this node: 1 for the isolation in use (none, bwrap, custom; unknown while the sandbox is probed or when the probe failed).',
    labelNames: ['isolation'],
    registers,
    async collect() {
      this.reset();
      for (const s of await readStats()) this.set({ isolation: s.isolation ?? 'unknown' }, 1);
    },
  });

  function published(event: RunnerEvent): void {
    switch (event.type) {
      case 'execution:queued':
        queued.inc();
        break;
      case 'execution:started':
        started.inc();
        break;
      case 'execution:finished': {
        const { status, durationMs, truncated: cut } = event.data;
        finished.inc({ status });
        if (durationMs !== null) runSeconds.observe({ status }, durationMs / 1000);
        if (cut) truncated.inc();
        break;
      }
      case 'execution:log': {
        let size = 0;
        for (const line of event.data.lines) size += Buffer.byteLength(line.text, 'utf8');
        lines.inc(event.data.lines.length);
        bytes.inc(size);
        break;
      }
      default:
        break;
    }
  }

  return {
    registry,
    attach(runner) {
      runners.push(runner);
    },
    detach(runner) {
      const at = runners.indexOf(runner);
      if (at >= 0) runners.splice(at, 1);
    },
    published,
    storeCall(method, durationMs, failed) {
      storeCalls.observe({ method, outcome: failed ? 'error' : 'ok' }, durationMs / 1000);
    },
    swept(result: SweepResult) {
      sweeps.inc();
      sweptExecutions.inc(result.executionsDeleted);
      sweptScripts.inc(result.scriptsDeleted);
    },
    dropped(what, count) {
      dropped.inc({ what }, count);
    },
    error(error) {
      errors.inc({ code: isScriptRunnerError(error) ? error.code : 'other' });
    },
    async render() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
}
