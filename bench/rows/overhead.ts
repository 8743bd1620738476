/**
 * overhead: the fixed cost of a run. N runs of a one-line script, two at a time, through the
 * runner (memory store) against N bare spawns of the same interpreter on the same script, also two
 * at a time; interleaved per repetition. Extra ms per run = (runner total − bare total) / N.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createScriptRunner, type LogLine } from '@scriptrunner/core';
import { assertExactlyOnce, CorrectnessError, fmt, median, pool, quietLogger, type Row } from '../lib.js';
import { resolvePython, settleHeap } from './support-process/python.js';

const TARGET_MS = 15;
const CONCURRENCY = 2;
const TEXT = 'hello from one run';
const SCRIPT = `print(${JSON.stringify(TEXT)})\n`;

async function throughRunner(python: string, runs: number): Promise<{ total: number; each: number[] }> {
  const runner = createScriptRunner({
    runtimes: { python: { command: python } },
    // The pipeline's own cost; what the sandbox adds is the isolation row.
    isolation: 'none',
    concurrency: CONCURRENCY,
    logger: quietLogger,
  });
  try {
    const script = await runner.uploadScript({ filename: 'test_overhead.py', content: SCRIPT });
    const received = new Map<string, LogLine[]>();
    runner.on('execution:log', ({ executionId, lines }) => {
      let list = received.get(executionId);
      if (!list) received.set(executionId, (list = []));
      list.push(...lines);
    });
    const ids: string[] = [];
    const timing = await pool(runs, CONCURRENCY, async () => {
      const execution = await runner.waitFor((await runner.run(script.id)).id);
      ids.push(execution.id);
      if (execution.status !== 'succeeded' || execution.lineCount !== 1) {
        throw new CorrectnessError(`overhead/runner: execution ${execution.id} ${execution.status} with ${execution.lineCount} lines: ${execution.errorMessage}`);
      }
    });
    if (ids.length !== runs) throw new CorrectnessError(`overhead/runner: ${ids.length} of ${runs} runs finished`);
    for (const id of ids) {
      const lines = received.get(id) ?? [];
      assertExactlyOnce(lines.map((l) => l.seq), 1, `overhead/runner execution ${id}`);
      if (lines[0]!.text !== TEXT || lines[0]!.stream !== 'stdout') {
        throw new CorrectnessError(`overhead/runner execution ${id}: received ${lines[0]!.stream} ${JSON.stringify(lines[0]!.text)}`);
      }
    }
    return timing;
  } finally {
    await runner.close();
  }
}

async function bareOnce(python: string, file: string): Promise<void> {
  const child = spawn(python, ['-u', file], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  const [code] = (await once(child, 'close')) as [number | null];
  if (code !== 0) throw new Error(`bare spawn exited with ${code}`);
  if (out !== `${TEXT}\n`) throw new CorrectnessError(`overhead/bare: received ${JSON.stringify(out)}`);
}

export const run: Row = async (ctx) => {
  const runs = ctx.quick ? 40 : 200;
  const reps = ctx.quick ? 2 : 3;
  const python = resolvePython();
  const dir = mkdtempSync(join(tmpdir(), 'sr-bench-overhead-'));
  try {
    const file = join(dir, 'test_overhead.py');
    writeFileSync(file, SCRIPT);
    // Warm-up: JIT and the child-process machinery of both paths.
    await throughRunner(python, 6);
    await pool(6, CONCURRENCY, () => bareOnce(python, file));

    const runnerTotals: number[] = [];
    const bareTotals: number[] = [];
    const runnerEach: number[] = [];
    const bareEach: number[] = [];
    const extras: number[] = [];
    for (let rep = 1; rep <= reps; rep++) {
      await settleHeap();
      const r = await throughRunner(python, runs);
      await settleHeap();
      const b = await pool(runs, CONCURRENCY, () => bareOnce(python, file));
      runnerTotals.push(r.total);
      bareTotals.push(b.total);
      runnerEach.push(...r.each);
      bareEach.push(...b.each);
      extras.push((r.total - b.total) / runs);
      ctx.log(
        `rep ${rep}/${reps}: runner ${fmt.s(r.total)} (median run ${fmt.ms(median(r.each))}) · bare ${fmt.s(b.total)} ` +
          `(median ${fmt.ms(median(b.each))}) → +${fmt.ms((r.total - b.total) / runs)} per run`,
      );
    }
    const extra = median(extras);
    const met = extra <= TARGET_MS;
    const rEach = median(runnerEach);
    const bEach = median(bareEach);
    return {
      row: 'overhead',
      what:
        `${runs} runs of a one-line \`python3 -u\` script, ${CONCURRENCY} at a time, through createScriptRunner (memory store; ` +
        `run() → waitFor(), each checked: succeeded, one line, exact text) against ${runs} bare child_process.spawn of the same ` +
        `script file, also ${CONCURRENCY} at a time; both on ${python} (resolved once from \`python3\`, bypassing the pyenv shim); ` +
        `medians of ${reps} interleaved repetitions`,
      measured:
        `runner ${fmt.s(median(runnerTotals))} · bare spawn ${fmt.s(median(bareTotals))} → +${fmt.ms(extra)} per run ` +
        `(per rep ${extras.map((e) => fmt.ms(e)).join(', ')}); median run ${fmt.ms(rEach)} vs ${fmt.ms(bEach)} bare`,
      target: `≤ ${TARGET_MS} ms extra per run`,
      met,
      reading: met
        ? `A run costs ${fmt.ms(extra)} more than a bare spawn: storing the queued/running/final records, creating and removing ` +
          `the run directory with the script, the new process group and the extra \`execution:*\` events — small next to ` +
          `the ${fmt.ms(bEach)} Python itself needs to start and print one line.`
        : `A run costs ${fmt.ms(extra)} more than a bare spawn, above the ${TARGET_MS} ms target: per-run bookkeeping (records, run ` +
          `directory, process group, drain) outweighs the ${fmt.ms(bEach)} the bare spawn needs.`,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
};
