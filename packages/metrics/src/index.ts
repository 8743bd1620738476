/**
 * @scriptrunner/metrics — Prometheus metrics (prom-client) for scriptrunner, and handlers for
 * `/metrics` and `/health`. Metric names: README, "Metrics and health".
 */
export { scriptRunnerMetrics } from './metrics.js';
export type { MetricsResponse, ScriptRunnerMetrics, ScriptRunnerMetricsOptions } from './metrics.js';
export { healthHandler, metricsHandler } from './handlers.js';
