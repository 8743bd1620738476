/**
 * isolation: what the sandbox costs per run. The same one-line script, N runs two at a time,
 * through three runners that differ only in confinement: no isolation and no limits (the bare
 * pipeline), no isolation with the default limits (prlimit in front), and bubblewrap with the
 * default limits (the default on a host with bubblewrap). Interleaved per repetition; all on
 * /usr/bin/python3, the interpreter the sandbox sees. Also checks, per run, that the sandboxed
 * script really was sandboxed (it sees its own PID namespace).
 */
import { existsSync } from 'node:fs';
import { createScriptRunner, type ScriptRunnerOptions } from '@scriptrunner/core';
import { CorrectnessError, fmt, median, pool, quietLogger, type Row } from '../lib.js';
import { settleHeap } from './support-process/python.js';

const CONCURRENCY = 2;
const TARGET_MS = 25;
const PYTHON = '/usr/bin/python3';
// pid 2 inside a new PID namespace (bwrap's init is 1); a host pid otherwise.
const SCRIPT = 'import os\nprint("pid", os.getpid())\n';

type Variant = { name: string; options: ScriptRunnerOptions; sandboxed: boolean };

const VARIANTS: Variant[] = [
  {
    name: 'none, no limits',
    options: { isolation: 'none', limits: { memoryBytes: null, maxProcesses: null, maxFileBytes: null, maxOpenFiles: null, cpuSeconds: null } },
    sandboxed: false,
  },
  { name: 'none + limits', options: { isolation: 'none' }, sandboxed: false },
  { name: 'bwrap + limits', options: { isolation: 'bwrap' }, sandboxed: true },
];

async function runs(variant: Variant, n: number): Promise<{ total: number; each: number[] }> {
  const runner = createScriptRunner({
    ...variant.options,
    runtimes: { python: { command: PYTHON } },
    concurrency: CONCURRENCY,
    logger: quietLogger,
  });
  try {
    const script = await runner.uploadScript({ filename: 'test_isolation.py', content: SCRIPT });
    return await pool(n, CONCURRENCY, async () => {
      const execution = await runner.waitFor((await runner.run(script.id)).id);
      const lines = await runner.readLogs(execution.id);
      if (execution.status !== 'succeeded' || lines.length !== 1) {
        throw new CorrectnessError(`isolation/${variant.name}: ${execution.status}, ${lines.length} lines: ${execution.errorMessage}`);
      }
      const inNamespace = lines[0]!.text === 'pid 2';
      if (inNamespace !== variant.sandboxed) {
        throw new CorrectnessError(`isolation/${variant.name}: printed "${lines[0]!.text}"; sandboxed should be ${variant.sandboxed}`);
      }
    });
  } finally {
    await runner.close();
  }
}

export const run: Row = async (ctx) => {
  if (!existsSync(PYTHON)) throw new Error(`${PYTHON} is missing (apt-get install python3)`);
  const n = ctx.quick ? 40 : 200;
  const reps = ctx.quick ? 2 : 3;
  for (const variant of VARIANTS) await runs(variant, 6); // warm-up
  const totals = new Map<string, number[]>(VARIANTS.map((v) => [v.name, []]));
  const each = new Map<string, number[]>(VARIANTS.map((v) => [v.name, []]));
  for (let rep = 1; rep <= reps; rep++) {
    const parts: string[] = [];
    for (const variant of VARIANTS) {
      await settleHeap();
      const timing = await runs(variant, n);
      totals.get(variant.name)!.push(timing.total);
      each.get(variant.name)!.push(...timing.each);
      parts.push(`${variant.name} ${fmt.s(timing.total)}`);
    }
    ctx.log(`rep ${rep}/${reps}: ${parts.join(' · ')}`);
  }
  const perRun = (name: string) => median(totals.get(name)!) / n;
  const [bare, limited, sandboxed] = VARIANTS.map((v) => perRun(v.name)) as [number, number, number];
  const limitsCost = limited - bare;
  const bwrapCost = sandboxed - limited;
  const met = sandboxed - bare <= TARGET_MS;
  const medianRun = (name: string) => fmt.ms(median(each.get(name)!));
  return {
    row: 'isolation',
    what:
      `${n} runs of a one-line \`${PYTHON} -u\` script, ${CONCURRENCY} at a time, through three runners (memory store) that differ only in ` +
      `confinement: \`isolation: 'none'\` without limits, \`'none'\` with the default limits (prlimit), \`'bwrap'\` with the default limits; ` +
      `each run checked (succeeded, one line, inside a PID namespace exactly when sandboxed); medians of ${reps} interleaved repetitions`,
    measured:
      `per run (wall time / runs): ${fmt.ms(bare)} · ${fmt.ms(limited)} · ${fmt.ms(sandboxed)} → limits +${fmt.ms(limitsCost)}, ` +
      `bubblewrap +${fmt.ms(bwrapCost)}, both +${fmt.ms(sandboxed - bare)}; median run ${medianRun(VARIANTS[0]!.name)} · ` +
      `${medianRun(VARIANTS[1]!.name)} · ${medianRun(VARIANTS[2]!.name)}`,
    target: `sandbox + limits ≤ ${TARGET_MS} ms extra per run`,
    met,
    reading:
      `The sandbox (namespaces, read-only binds, a fresh /proc, /dev and /tmp) and prlimit together cost ${fmt.ms(sandboxed - bare)} per run ` +
      `(prlimit's extra exec ${fmt.ms(limitsCost)}, bubblewrap ${fmt.ms(bwrapCost)}). Output goes through the same pipes (bubblewrap does not relay it); the other rows run with \`isolation: 'none'\` to measure the pipeline alone.`,
  };
};
