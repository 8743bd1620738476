import { ScriptRunnerError } from '../errors.js';
import type { RuntimeConfig } from '../types.js';

/** Built-in runtimes. Python runs unbuffered so every print reaches viewers at once. */
export const DEFAULT_RUNTIMES: Readonly<Record<string, RuntimeConfig>> = Object.freeze({
  python: Object.freeze({
    extensions: ['.py'],
    command: 'python3',
    args: ['-u'],
    env: { PYTHONUNBUFFERED: '1', PYTHONIOENCODING: 'utf-8' },
  }),
});

/**
 * Merges caller runtimes over the defaults field by field, so `{ python: { command: '/opt/venv/bin/python' } }`
 * keeps the default `-u` and environment. A new runtime must name its command and extensions.
 */
export function resolveRuntimes(
  overrides: Record<string, Partial<RuntimeConfig>> | undefined,
): Record<string, RuntimeConfig> {
  const result: Record<string, RuntimeConfig> = {};
  for (const [name, config] of Object.entries(DEFAULT_RUNTIMES)) {
    result[name] = { ...config, extensions: [...config.extensions], args: [...config.args], env: { ...config.env } };
  }
  for (const [name, override] of Object.entries(overrides ?? {})) {
    if (override === null || typeof override !== 'object') {
      throw new ScriptRunnerError('validation', `runtimes.${name} must be an object`);
    }
    const base = result[name];
    const merged: Partial<RuntimeConfig> = {
      ...base,
      ...override,
      env: { ...base?.env, ...override.env },
    };
    if (typeof merged.command !== 'string' || merged.command.length === 0) {
      throw new ScriptRunnerError('validation', `runtimes.${name}.command must be a non-empty string`);
    }
    if (!Array.isArray(merged.extensions) || merged.extensions.some((e) => typeof e !== 'string' || !e.startsWith('.'))) {
      throw new ScriptRunnerError('validation', `runtimes.${name}.extensions must be a list like ['.py']`);
    }
    const args = merged.args ?? [];
    if (!Array.isArray(args) || args.some((a) => typeof a !== 'string')) {
      throw new ScriptRunnerError('validation', `runtimes.${name}.args must be a list of strings`);
    }
    if (merged.buffering !== undefined && merged.buffering !== 'unbuffered' && merged.buffering !== 'live') {
      throw new ScriptRunnerError('validation', `runtimes.${name}.buffering must be 'unbuffered' or 'live', got ${JSON.stringify(merged.buffering)}`);
    }
    const flushMs = merged.liveFlushMs;
    if (flushMs !== undefined && (!Number.isInteger(flushMs) || flushMs < 1 || flushMs > 10_000)) {
      throw new ScriptRunnerError('validation', `runtimes.${name}.liveFlushMs must be a whole number of milliseconds from 1 to 10000, got ${String(flushMs)}`);
    }
    result[name] = {
      command: merged.command,
      extensions: [...merged.extensions],
      args: [...args],
      env: merged.env ?? {},
      ...(merged.buffering !== undefined ? { buffering: merged.buffering } : {}),
      ...(flushMs !== undefined ? { liveFlushMs: flushMs } : {}),
    };
  }
  return result;
}
