/**
 * `/metrics` and `/health` outside the scriptrunner routes: plain Node `http` or Express handlers
 * (`app.get('/metrics', metricsHandler(metrics))`). Inside them, pass `metrics` to
 * `createScriptRunnerRouter` / `createScriptRunnerHandler` instead: the same answers, behind their
 * `authorize`.
 */
import type { ScriptRunner } from '@scriptrunner/core';
import type { ScriptRunnerMetrics } from './metrics.js';

/** What both Node's ServerResponse and Express's response have. */
interface NodeResponse {
  statusCode: number;
  setHeader(name: string, value: string): unknown;
  end(body?: string): unknown;
}

function send(res: NodeResponse, status: number, contentType: string, body: string): void {
  res.statusCode = status;
  res.setHeader('Content-Type', contentType);
  res.setHeader('Cache-Control', 'no-store');
  res.end(body);
}

/** Answers with the metrics in Prometheus' text format (500 with the reason if collecting failed). */
export function metricsHandler(metrics: ScriptRunnerMetrics): (req: unknown, res: NodeResponse) => void {
  return (_req, res) => {
    metrics.render().then(
      ({ contentType, body }) => send(res, 200, contentType, body),
      (error: unknown) => send(res, 500, 'text/plain; charset=utf-8', `collecting the metrics failed: ${String(error)}\n`),
    );
  };
}

/** Answers 200 with the runner's health report when every check is ok, else 503 (within `timeoutMs`). */
export function healthHandler(runner: ScriptRunner, options: { timeoutMs?: number } = {}): (req: unknown, res: NodeResponse) => void {
  return (_req, res) => {
    runner.health(options).then(
      (report) => send(res, report.ok ? 200 : 503, 'application/json; charset=utf-8', JSON.stringify(report)),
      (error: unknown) => send(res, 503, 'application/json; charset=utf-8', JSON.stringify({ ok: false, error: String(error) })),
    );
  };
}
