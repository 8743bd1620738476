/**
 * Metrics and health through real HTTP: a runner with real python3 runs, its metrics scraped from
 * the Express router's /metrics (and from the fetch handler, and from the standalone Node handler),
 * the counters checked against what ran; /health answering 503 while PostgreSQL or Redis is down
 * and 200 once it is back.
 */
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createScriptRunnerRouter } from '@scriptrunner/adapter-express';
import { createScriptRunnerHandler } from '@scriptrunner/adapter-fetch';
import { createScriptRunner, memoryStore, type ScriptRunner } from '@scriptrunner/core';
import { bullmqDispatcher } from '@scriptrunner/queue-bullmq';
import { postgresStore } from '@scriptrunner/store-prisma/postgresql';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { healthHandler, metricsHandler, scriptRunnerMetrics } from '../src/index.js';
import { silentLogger, waitUntil } from '../../core/test/helpers.js';
import { postgresAvailable, startPostgres } from '../../store-prisma/test/support/postgres.js';
import { redisAvailable, startRedis } from '../../queue-bullmq/test/support/redis.js';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function listen(handler: Parameters<typeof createServer>[1]): Promise<string> {
  const server: Server = createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(() => new Promise((r) => server.close(r)));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function expressApp(runner: ScriptRunner, metrics?: ReturnType<typeof scriptRunnerMetrics>): Promise<string> {
  const app = express();
  app.use('/api', createScriptRunnerRouter(runner, metrics ? { metrics, healthTimeoutMs: 1000 } : { healthTimeoutMs: 1000 }));
  return listen(app);
}

/** `name{labels} value` lines of the Prometheus text format, by series. */
function parse(text: string): Map<string, number> {
  const series = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    series.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return series;
}

async function scrape(url: string): Promise<Map<string, number>> {
  const response = await fetch(url);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parse(await response.text());
}

describe('metrics', () => {
  it('count the runs, lines, bytes, store calls and sweeps of a runner, scraped over HTTP', { timeout: 60_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sr-metrics-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const go = join(dir, 'go');
    const metrics = scriptRunnerMetrics();
    const runner = createScriptRunner({
      observers: [metrics],
      isolation: 'none',
      concurrency: 1,
      maxLineBytes: 1024,
      artifacts: { maxFiles: 1 },
      logger: silentLogger,
      retention: { keepPerScript: 0, intervalMs: 0 },
    });
    cleanups.push(() => runner.close());
    const base = await expressApp(runner, metrics);

    const lines = Array.from({ length: 100 }, (_, i) => `line ${i} é`);
    const ok = await runner.uploadScript({ filename: 'test_ok.py', content: `for i in range(100):\n    print(f"line {i} é")\n` });
    // A line over maxLineBytes, two files where one is kept, then a failure.
    const bad = await runner.uploadScript({
      filename: 'test_bad.py',
      content: [
        'import os',
        'print("x" * 5000)',
        'for name in ("a.txt", "b.txt"):',
        '    with open(os.path.join(os.environ["SCRIPTRUNNER_OUTPUT_DIR"], name), "w") as f: f.write(name)',
        'raise SystemExit(3)',
      ].join('\n'),
    });
    const gated = await runner.uploadScript({
      filename: 'test_gated.py',
      content: `import os, time\nprint("waiting", flush=True)\nwhile not os.path.exists(${JSON.stringify(go)}):\n    time.sleep(0.02)\n`,
    });
    expect((await runner.waitFor((await runner.run(ok.id)).id)).status).toBe('succeeded');
    expect((await runner.waitFor((await runner.run(bad.id)).id)).status).toBe('failed');

    // One running (concurrency 1) and one waiting behind it: the gauges say so.
    const running = await runner.run(gated.id);
    const waiting = await runner.run(ok.id);
    expect(await waitUntil(async () => (await runner.readLogs(running.id)).length === 1, 20_000)).toBe(true);
    const during = await scrape(`${base}/api/metrics`);
    expect(during.get('scriptrunner_runs_running')).toBe(1);
    expect(during.get('scriptrunner_queue_depth')).toBe(1);
    expect(during.get('scriptrunner_sandbox_info{isolation="none"}')).toBe(1);
    writeFileSync(go, '');
    await runner.waitFor(running.id);
    await runner.waitFor(waiting.id);

    const swept = await runner.sweep();
    expect(swept.executionsDeleted).toBe(4);
    const after = await scrape(`${base}/api/metrics`);
    expect(after.get('scriptrunner_runs_queued_total')).toBe(4);
    expect(after.get('scriptrunner_runs_started_total')).toBe(4);
    expect(after.get('scriptrunner_runs_finished_total{status="succeeded"}')).toBe(3);
    expect(after.get('scriptrunner_runs_finished_total{status="failed"}')).toBe(1);
    expect(after.get('scriptrunner_runs_truncated_total')).toBe(1); // the 5,000-character line was cut
    expect(after.get('scriptrunner_dropped_total{what="line_cut"}')).toBe(1);
    expect(after.get('scriptrunner_dropped_total{what="artifact_skipped"}')).toBe(1); // maxFiles: 1
    expect(after.get('scriptrunner_run_duration_seconds_count{status="succeeded"}')).toBe(3);
    expect(after.get('scriptrunner_runs_running')).toBe(0);
    expect(after.get('scriptrunner_queue_depth')).toBe(0);
    // Two runs of test_ok (100 lines each), the gated one's line, and what test_bad printed (its
    // cut line and the traceback-free exit): at least the 201 counted here, exactly what is stored.
    const linesPersisted = after.get('scriptrunner_log_lines_persisted_total')!;
    expect(linesPersisted).toBeGreaterThanOrEqual(201);
    const okBytes = lines.reduce((sum, l) => sum + Buffer.byteLength(l), 0);
    expect(after.get('scriptrunner_log_bytes_persisted_total')).toBeGreaterThanOrEqual(2 * okBytes + 1024);
    expect(after.get('scriptrunner_store_call_duration_seconds_count{method="appendLogs",outcome="ok"}')).toBeGreaterThan(0);
    expect(after.get('scriptrunner_store_call_duration_seconds_bucket{le="+Inf",method="createExecution",outcome="ok"}')).toBe(4);
    expect(after.get('scriptrunner_retention_sweeps_total')).toBe(1);
    expect(after.get('scriptrunner_retention_deleted_executions_total')).toBe(4);

    // The fetch face answers the same, and the standalone Node handler too.
    const handler = createScriptRunnerHandler(runner, { basePath: '/api', metrics });
    const viaFetch = await handler(new Request('http://localhost/api/metrics'));
    expect(viaFetch.status).toBe(200);
    expect(parse(await viaFetch.text()).get('scriptrunner_runs_started_total')).toBe(4);
    const plain = await listen(metricsHandler(metrics));
    expect((await scrape(plain)).get('scriptrunner_runs_started_total')).toBe(4);
  });

  it('count a run stopped at an output cap', { timeout: 30_000 }, async () => {
    const metrics = scriptRunnerMetrics();
    const runner = createScriptRunner({ observers: [metrics], isolation: 'none', maxLogLines: 10, logger: silentLogger });
    cleanups.push(() => runner.close());
    const script = await runner.uploadScript({ filename: 'test_chatty.py', content: 'for i in range(100000):\n    print(i)\n' });
    const final = await runner.waitFor((await runner.run(script.id)).id);
    expect(final).toMatchObject({ status: 'failed', truncated: true });
    const series = parse((await metrics.render()).body);
    expect(series.get('scriptrunner_dropped_total{what="output_over_cap"}')).toBe(1);
    expect(series.get('scriptrunner_runs_truncated_total')).toBe(1);
    expect(series.get('scriptrunner_log_lines_persisted_total')).toBeLessThanOrEqual(20); // 10 lines and the runner's own notes
  });

  it('/metrics is behind authorize and absent without the option; /health answers', async () => {
    const metrics = scriptRunnerMetrics();
    const runner = createScriptRunner({ observers: [metrics], logger: silentLogger });
    cleanups.push(() => runner.close());
    const app = express();
    app.use('/locked', createScriptRunnerRouter(runner, { metrics, authorize: (_req, action) => action !== 'metrics:read' }));
    app.use('/plain', createScriptRunnerRouter(runner));
    const base = await listen(app);
    expect((await fetch(`${base}/locked/metrics`)).status).toBe(403);
    expect((await fetch(`${base}/plain/metrics`)).status).toBe(404);
    const health = await fetch(`${base}/plain/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ ok: true, checks: { store: { ok: true } } });
    const standalone = await listen(healthHandler(runner));
    expect((await fetch(standalone)).status).toBe(200);
  });
});

const describePostgres = postgresAvailable() || process.env.CI === 'true' ? describe : describe.skip;
const describeRedis = redisAvailable() || process.env.CI === 'true' ? describe : describe.skip;

describePostgres('health with PostgreSQL', () => {
  it('turns 503 while PostgreSQL is stopped and 200 once it is back', { timeout: 90_000 }, async () => {
    const pg = await startPostgres();
    cleanups.push(() => pg.destroy());
    const store = postgresStore({ connectionString: await pg.createDatabase() });
    cleanups.push(() => store.close());
    await store.ready;
    const runner = createScriptRunner({ store, logger: silentLogger });
    cleanups.push(() => runner.close());
    const base = await expressApp(runner);
    expect((await fetch(`${base}/api/health`)).status).toBe(200);
    await pg.stopServer();
    const started = Date.now();
    const down = await fetch(`${base}/api/health`);
    expect(down.status).toBe(503);
    expect(Date.now() - started).toBeLessThan(10_000); // bounded by healthTimeoutMs, not by the driver's retries
    expect(((await down.json()) as { checks: { store: { ok: boolean } } }).checks.store.ok).toBe(false);
    await pg.startServer();
    expect(await waitUntil(async () => (await fetch(`${base}/api/health`)).status === 200, 30_000, 200)).toBe(true);
  });
});

describeRedis('health with Redis', () => {
  it('turns 503 while Redis is down and 200 once it is back (BullMQ web node)', { timeout: 90_000 }, async () => {
    const redis = await startRedis();
    cleanups.push(() => redis.stop());
    const runner = createScriptRunner({ store: memoryStore(), logger: silentLogger, dispatcher: bullmqDispatcher({ connection: redis.url, queueName: 'health' }) });
    cleanups.push(() => runner.close());
    const base = await expressApp(runner);
    expect(await waitUntil(async () => (await fetch(`${base}/api/health`)).status === 200, 20_000, 100)).toBe(true);
    const up = (await (await fetch(`${base}/api/health`)).json()) as { checks: Record<string, { ok: boolean }> };
    expect(up.checks.queue?.ok).toBe(true);
    await redis.kill();
    expect(await waitUntil(async () => (await fetch(`${base}/api/health`)).status === 503, 20_000, 100)).toBe(true);
    await redis.start();
    expect(await waitUntil(async () => (await fetch(`${base}/api/health`)).status === 200, 30_000, 100)).toBe(true);
  });
});
