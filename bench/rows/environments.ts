/**
 * environments: what a declared dependency (PEP 723) costs. A cold run installs sr-wind from the
 * repository's wheelhouse into a new cached environment (venv + pip, offline); warm runs reuse it.
 * Warm runs are measured against runs of the same one-line script without the block, one at a time,
 * interleaved per repetition: extra ms per run = (warm total − plain total) / N.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createScriptRunner, type LogLine, type ScriptRunner } from '@scriptrunner/core';
import { CorrectnessError, fmt, median, quietLogger, type Row } from '../lib.js';
import { settleHeap } from './support-process/python.js';

const TARGET_MS = 20;
/** Debian's interpreter: python3-pip gives it the installer (the pyenv build on PATH would do too). */
const PYTHON = '/usr/bin/python3';
const WHEELHOUSE = fileURLToPath(new URL('../../examples/wheelhouse', import.meta.url));
const DECLARING = '# /// script\n# dependencies = ["sr-wind==1.0.0"]\n# ///\nimport sr_wind\nprint("sr-wind", sr_wind.__version__)\n';
const PLAIN = 'print("sr-wind", "1.0.0")\n';

function makeRunner(cacheDir: string, workDir: string): ScriptRunner {
  return createScriptRunner({
    runtimes: { python: { command: PYTHON } },
    // The install and the environment's cost; what the sandbox adds is the isolation row.
    isolation: 'none',
    concurrency: 1,
    workDir,
    logger: quietLogger,
    dependencies: { cacheDir, findLinks: [WHEELHOUSE], offline: true },
  });
}

/** Runs a script to its end and checks it: succeeded, the expected last line, installs as expected. */
async function timedRun(runner: ScriptRunner, scriptId: string, expectInstall: boolean): Promise<number> {
  const lines: LogLine[] = [];
  const t0 = performance.now();
  const queued = await runner.run(scriptId);
  const onLog = ({ executionId, lines: batch }: { executionId: string; lines: LogLine[] }) => executionId === queued.id && lines.push(...batch);
  runner.on('execution:log', onLog);
  const execution = await runner.waitFor(queued.id);
  const ms = performance.now() - t0;
  runner.off('execution:log', onLog);
  const all = await runner.readLogs(queued.id, { afterSeq: 0, limit: 1000 });
  if (execution.status !== 'succeeded' || all.at(-1)?.text !== 'sr-wind 1.0.0') {
    throw new CorrectnessError(`environments: execution ${execution.id} ${execution.status} (${execution.errorMessage}), last line ${JSON.stringify(all.at(-1)?.text)}`);
  }
  const installed = all.some((l) => l.text.includes('dependencies: installing'));
  if (installed !== expectInstall) throw new CorrectnessError(`environments: execution ${execution.id} ${installed ? 'installed' : 'did not install'} its dependencies`);
  return ms;
}

export const run: Row = async (ctx) => {
  const runs = ctx.quick ? 20 : 60;
  const reps = ctx.quick ? 2 : 3;
  const dir = mkdtempSync(join(tmpdir(), 'sr-bench-environments-'));
  try {
    const colds: number[] = [];
    const extras: number[] = [];
    const warmEach: number[] = [];
    const plainEach: number[] = [];
    for (let rep = 1; rep <= reps; rep++) {
      // A fresh cache per repetition: its first run installs.
      const runner = makeRunner(join(dir, `cache-${rep}`), join(dir, `runs-${rep}`));
      try {
        const declaring = await runner.uploadScript({ filename: 'experiment_env.py', content: DECLARING });
        const plain = await runner.uploadScript({ filename: 'experiment_plain.py', content: PLAIN });
        await timedRun(runner, plain.id, false); // warm-up of the runner itself
        await settleHeap();
        colds.push(await timedRun(runner, declaring.id, true));
        let warmTotal = 0;
        let plainTotal = 0;
        for (let i = 0; i < runs; i++) {
          const w = await timedRun(runner, declaring.id, false);
          const p = await timedRun(runner, plain.id, false);
          warmTotal += w;
          plainTotal += p;
          warmEach.push(w);
          plainEach.push(p);
        }
        extras.push((warmTotal - plainTotal) / runs);
        ctx.log(`rep ${rep}/${reps}: cold ${fmt.ms(colds.at(-1)!)} · warm ${fmt.ms(warmTotal / runs)} per run · plain ${fmt.ms(plainTotal / runs)} → +${fmt.ms(extras.at(-1)!)}`);
      } finally {
        await runner.close();
      }
    }
    const extra = median(extras);
    const met = extra <= TARGET_MS;
    return {
      row: 'environments',
      what:
        `a script declaring \`sr-wind==1.0.0\` (PEP 723) on ${PYTHON}, isolation none, dependencies from examples/wheelhouse offline: ` +
        `the cold run (venv + pip install into a fresh cache) and ${runs} warm runs (environment reused) interleaved with ${runs} runs of the ` +
        `same output without the block, one at a time; ${reps} repetitions, each on a fresh cache; every run checked (succeeded, its line, install or not)`,
      measured:
        `cold run ${fmt.ms(median(colds))} (per rep ${colds.map((c) => fmt.ms(c)).join(', ')}) · warm ${fmt.ms(median(warmEach))} vs plain ` +
        `${fmt.ms(median(plainEach))} median per run → +${fmt.ms(extra)} per warm run (per rep ${extras.map((e) => fmt.ms(e)).join(', ')})`,
      target: `warm reuse ≤ ${TARGET_MS} ms over a script without metadata`,
      met,
      reading:
        `The first run of a requirement set pays for \`python -m venv\` and pip (${fmt.ms(median(colds))} for one small local wheel; real ` +
        `packages add their download and unpack time). Every later run finds the environment by its key and costs ${fmt.ms(extra)} more ` +
        `than a script without dependencies: parsing the block, hashing the key, touching the cache marker, and the venv's interpreter start.`,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
};
