/**
 * memory: peak RSS growth of a host process over its idle RSS while it runs (a) a 1M-line script,
 * (b) a script printing 1 GiB, (c) one 50 MiB line without a newline. Each case runs in a fresh
 * Node process (support-process/memory-driver.mjs) so peaks never mix; cases are interleaved per
 * repetition (a, b, c, a, b, c …). The host is createScriptRunner over sqliteStore on a temp file.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CorrectnessError, fmt, median, type Row } from '../lib.js';
import { resolvePython } from './support-process/python.js';

const here = dirname(fileURLToPath(import.meta.url));
const DRIVER = join(here, 'support-process', 'memory-driver.mjs');
const TARGET_BYTES = 150 * 1024 * 1024;
const CHILD_TIMEOUT_MS = 240_000;

interface DriverResult {
  kind: string;
  count: number;
  idle: number;
  peak: number;
  hwm: number;
  sampled: number;
  hwmReset: boolean;
  growth: number;
  ms: number;
  received: number;
  lineCount: number;
  problems: string[];
  error?: string;
}

interface Case {
  kind: 'lines' | 'big' | 'longline';
  count: number;
  label: string;
}

async function runCase(c: Case, python: string): Promise<DriverResult> {
  const dir = mkdtempSync(join(tmpdir(), 'sr-bench-memory-'));
  try {
    const child = spawn(process.execPath, ['--expose-gc', DRIVER, c.kind, String(c.count), python, join(dir, 'memory.db')], {
      cwd: here,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_TIMEOUT_MS);
    const [code, signal] = (await once(child, 'close')) as [number | null, string | null];
    clearTimeout(timer);
    const last = stdout.trim().split('\n').pop() ?? '';
    let result: DriverResult;
    try {
      result = JSON.parse(last) as DriverResult;
    } catch {
      throw new Error(`memory driver (${c.label}) exited with ${code ?? signal} and printed no result: ${stderr.slice(-2000)}`);
    }
    if (result.error) throw new Error(`memory driver (${c.label}) failed: ${result.error}`);
    if (result.problems.length > 0) throw new CorrectnessError(`memory/${c.label}: ${result.problems.join('; ')}`);
    if (code !== 0) throw new Error(`memory driver (${c.label}) exited with ${code ?? signal}: ${stderr.slice(-2000)}`);
    return result;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const run: Row = async (ctx) => {
  const reps = ctx.quick ? 2 : 3;
  const bigLines = ctx.quick ? 131_072 : 1_048_576;
  const manyLines = ctx.quick ? 200_000 : 1_000_000;
  const cases: Case[] = [
    { kind: 'lines', count: manyLines, label: ctx.quick ? '200k lines' : '1M lines' },
    { kind: 'big', count: bigLines, label: ctx.quick ? '128 MiB of output' : '1 GiB of output' },
    { kind: 'longline', count: 50, label: 'one 50 MiB line' },
  ];
  const python = resolvePython();
  const results = new Map<Case, DriverResult[]>(cases.map((c) => [c, []]));
  for (let rep = 1; rep <= reps; rep++) {
    for (const c of cases) {
      const r = await runCase(c, python);
      results.get(c)!.push(r);
      ctx.log(
        `rep ${rep}/${reps} ${c.label}: idle ${fmt.mb(r.idle)} → peak ${fmt.mb(r.peak)} (+${fmt.mb(r.growth)}` +
          `${r.hwmReset ? '' : ', sampled'}) in ${fmt.s(r.ms)}`,
      );
    }
  }
  const summary = cases.map((c) => {
    const rs = results.get(c)!;
    const growth = median(rs.map((r) => r.growth));
    const worst = Math.max(...rs.map((r) => r.growth));
    return { c, growth, worst, idle: median(rs.map((r) => r.idle)), ms: median(rs.map((r) => r.ms)), exact: rs.every((r) => r.hwmReset) };
  });
  const met = summary.every((s) => s.worst <= TARGET_BYTES);
  const measured = summary
    .map((s) => `${s.c.label}: +${fmt.mb(s.growth)}${s.worst > s.growth + 2 * 1024 * 1024 ? ` (max +${fmt.mb(s.worst)})` : ''} in ${fmt.s(s.ms)}`)
    .join(' · ');
  const idle = median(summary.map((s) => s.idle));
  const exact = summary.every((s) => s.exact);
  const biggest = summary.reduce((a, b) => (b.worst > a.worst ? b : a));
  return {
    row: 'memory',
    what:
      `Peak RSS growth of a fresh Node host (createScriptRunner over sqliteStore on a temp file — the embedded setup; the memory ` +
      `store keeps every line by design) over its idle RSS (~${fmt.mb(idle)} after a warm-up run and a GC), measured as the ` +
      `kernel's high-water mark (${exact ? 'VmHWM, reset at the start of the run' : 'sampled every 10 ms'}) while it runs ` +
      `(a) a ${fmt.int(manyLines)}-line script, (b) ${fmt.int(bigLines)} lines of 1,023 characters (${ctx.quick ? '128 MiB' : '1 GiB'}), ` +
      `(c) 50 MiB without a newline; one process per case, ${reps} interleaved repetitions, line counts and texts checked`,
    measured: `${measured} (medians of ${reps})`,
    target: '≤ 150 MB growth in every case',
    met,
    reading: met
      ? `Memory stays bounded whatever the output: at most 8,000 lines or 16 MiB wait for the store before the child's pipes ` +
        `are paused, and a long line is capped at 64 KiB while it is read (the 50 MiB line is stored as 64 KiB plus the ` +
        `truncation marker, lineCount 1). The peaks (largest +${fmt.mb(biggest.worst)}, ${biggest.c.label}) are mostly V8 heap ` +
        `growth — per-line strings, objects and JSON chunks that it collects lazily — not retained lines.`
      : `${biggest.c.label} grows the host by up to +${fmt.mb(biggest.worst)}, above 150 MB: the buffered lines, the batch being ` +
        `written and its encodings are all alive at once, and V8 lets the heap grow before collecting.`,
  };
};
