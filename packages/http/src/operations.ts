/**
 * The operations routes: `GET /health` (always) and `GET /metrics` (with the `metrics` option).
 * Both are reads, behind `authorize` like every route; mount the routes where your monitoring can
 * reach them, or allow these two actions for it.
 */
import { ScriptRunnerError, type ScriptRunner } from '@scriptrunner/core';
import { jsonResponse } from './errors.js';
import type { Route } from './routes.js';
import type { RouteOptions } from './types.js';

const NO_STORE = { 'Cache-Control': 'no-store' };

export function operationRoutes<Native>(runner: ScriptRunner, options: RouteOptions<Native>): Route<Native>[] {
  const timeoutMs = options.healthTimeoutMs ?? 2000;
  // Checked once, here: a bad value must not turn every health probe into an error.
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 60_000) {
    throw new ScriptRunnerError('validation', `healthTimeoutMs must be an integer from 1 to 60000, got ${String(timeoutMs)}`);
  }
  const routes: Route<Native>[] = [
    {
      method: 'GET',
      segments: ['health'],
      async handler({ allow }) {
        await allow('health:read', {});
        // Never rejects and answers within the timeout: a load balancer gets 503, not a hung request.
        const report = await runner.health({ timeoutMs });
        return jsonResponse(report.ok ? 200 : 503, report, NO_STORE);
      },
    },
  ];
  const metrics = options.metrics;
  if (metrics) {
    routes.push({
      method: 'GET',
      segments: ['metrics'],
      async handler({ allow }) {
        await allow('metrics:read', {});
        const { contentType, body } = await metrics.render();
        return { status: 200, headers: { 'Content-Type': contentType, ...NO_STORE }, body };
      },
    });
  }
  return routes;
}
