import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createScriptRunner, type LogLine, type ScriptRunner, type ScriptRunnerOptions, type Store } from '../src/index.js';

export const FIXTURES = join(fileURLToPath(new URL('.', import.meta.url)), 'fixtures');

export function fixture(name: string): Buffer {
  return readFileSync(join(FIXTURES, name));
}

/** Writes 60,000 lines as fast as it can, then how long that took: "elapsed <seconds>" (the 60,001st line). */
export const FLOOD_60K = [
  'import sys, time',
  'start = time.time()',
  'for i in range(60000):',
  '    sys.stdout.write(f"row {i} " + "y" * 40 + "\\n")',
  'print(f"elapsed {time.time() - start:.3f}")',
].join('\n');

/** Quiet by default: store-retry warnings in fault tests would only clutter the output. */
export const silentLogger = { warn: () => {}, error: () => {} };

const runners: ScriptRunner[] = [];

export function makeRunner(options: ScriptRunnerOptions = {}): ScriptRunner {
  const runner = createScriptRunner({ logger: silentLogger, killGraceMs: 1000, ...options });
  runners.push(runner);
  return runner;
}

export async function closeRunners(): Promise<void> {
  await Promise.all(runners.splice(0).map((r) => r.close()));
}

/** Uploads a fixture (or inline code) and runs it to the end. */
export async function runFixture(
  runner: ScriptRunner,
  name: string,
  options: { args?: string[]; timeoutMs?: number; env?: Record<string, string>; code?: string } = {},
) {
  const script = await runner.uploadScript({ filename: name, content: options.code ?? fixture(name) });
  const lines: LogLine[] = [];
  const onLog = (batch: { executionId: string; lines: LogLine[] }) => {
    if (batch.executionId === execution.id) lines.push(...batch.lines);
  };
  runner.on('execution:log', onLog);
  const runOptions: { args?: string[]; timeoutMs?: number; env?: Record<string, string> } = {};
  if (options.args) runOptions.args = options.args;
  if (options.timeoutMs !== undefined) runOptions.timeoutMs = options.timeoutMs;
  if (options.env) runOptions.env = options.env;
  const execution = await runner.run(script.id, runOptions);
  const final = await runner.waitFor(execution.id);
  runner.off('execution:log', onLog);
  return { script, execution: final, lines, texts: lines.map((l) => l.text) };
}

/** Alive means running or sleeping; a zombie waiting to be reaped by init counts as gone. */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

export async function waitUntil(check: () => boolean | Promise<boolean>, timeoutMs: number, stepMs = 20): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return check();
}

/**
 * Live host processes whose command line contains `marker`. The host's /proc sees every PID
 * namespace, so this finds a sandboxed script's processes, which print pids of their own namespace.
 */
export function processesWith(marker: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(marker) && isAlive(Number(entry))) found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** A store that records the name of every method called on it, then calls the real one. */
export function countingStore<S extends Store>(inner: S): { store: S; calls: string[] } {
  const calls: string[] = [];
  const store = new Proxy(inner, {
    get(target, key, receiver) {
      const value: unknown = Reflect.get(target, key, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        calls.push(String(key));
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { store, calls };
}

/** A script that writes `tick 1` … `tick N`, pausing every `every` lines: a run that lasts a while. */
export const STEADY = (total: number, every = 100, pause = 0.02) =>
  [
    'import sys, time',
    `for i in range(1, ${total + 1}):`,
    '    sys.stdout.write(f"tick {i}\\n")',
    `    if i % ${every} == 0:`,
    '        sys.stdout.flush()',
    `        time.sleep(${pause})`,
  ].join('\n');
