/**
 * pipeline: a 1M-line `python -u` script through createScriptRunner (memory store) with an
 * `execution:log` listener, against a bare child_process.spawn counting newlines and execa 9's
 * line iteration — interleaved per repetition, same interpreter for all three.
 */
import { execa } from 'execa';
import { createScriptRunner, memoryStore, type Store } from '@scriptrunner/core';
import { assertExactlyOnce, CorrectnessError, fmt, median, MANY_LINES, quietLogger, type Row } from '../lib.js';
import { bareSpawn, manyLinesChars, manyLinesText, resolvePython, settleHeap, gcPauses } from './support-process/python.js';

const TARGET = 1.15;
/** Every SAMPLE-th line's text is compared exactly inside the consumers (cheap); all lengths are summed. */
const SAMPLE = 1000;

interface Received {
  seqs: Int32Array;
  count: number;
  chars: number;
  badText: string | null;
}

function newReceived(lines: number): Received {
  return { seqs: new Int32Array(lines), count: 0, chars: 0, badText: null };
}

function checkReceived(r: Received, lines: number, where: string): void {
  if (r.count !== lines) throw new CorrectnessError(`${where}: received ${r.count} lines, expected ${lines}`);
  assertExactlyOnce(r.seqs, lines, where);
  if (r.badText !== null) throw new CorrectnessError(`${where}: ${r.badText}`);
  const chars = manyLinesChars(lines);
  if (r.chars !== chars) throw new CorrectnessError(`${where}: received ${r.chars} characters of text, expected ${chars}`);
}

/**
 * A diagnostic store: the memory store, except that appendLogs keeps nothing. It separates the
 * pipeline's own cost from the cost of the memory store holding every line.
 */
function keepNoLinesStore(): Store {
  return { ...memoryStore(), appendLogs: async () => {} };
}

async function throughRunner(python: string, lines: number, store?: Store): Promise<number> {
  const runner = createScriptRunner({
    runtimes: { python: { command: python } },
    // The pipeline's own cost; what the sandbox adds is the isolation row.
    isolation: 'none',
    logger: quietLogger,
    ...(store ? { store } : {}),
  });
  try {
    const script = await runner.uploadScript({ filename: 'test_pipeline.py', content: MANY_LINES });
    const r = newReceived(lines);
    let executionId = '';
    runner.on('execution:log', ({ executionId: id, lines: batch }) => {
      if (id !== executionId) return;
      for (const line of batch) {
        if (r.count < lines) r.seqs[r.count] = line.seq;
        r.count++;
        r.chars += line.text.length;
        if (line.seq % SAMPLE === 0 && r.badText === null && line.text !== manyLinesText(line.seq)) {
          r.badText = `seq ${line.seq} has text ${JSON.stringify(line.text)}`;
        }
      }
    });
    const start = performance.now();
    const execution = await runner.run(script.id, { args: [String(lines)] });
    executionId = execution.id;
    const final = await runner.waitFor(execution.id);
    const ms = performance.now() - start;
    if (final.status !== 'succeeded' || final.lineCount !== lines) {
      throw new Error(`runner: ${final.status}, ${final.lineCount} lines: ${final.errorMessage}`);
    }
    checkReceived(r, lines, `pipeline/runner${store ? ' (store keeping no lines)' : ''} execution:log listener`);
    return ms;
  } finally {
    await runner.close();
  }
}

async function throughExeca(python: string, lines: number): Promise<number> {
  const r = newReceived(lines);
  const start = performance.now();
  // buffer: false — lines are only streamed to the loop, not also kept for the result.
  const subprocess = execa(python, ['-u', '-c', MANY_LINES, String(lines)], { buffer: false });
  for await (const line of subprocess) {
    const seq = r.count + 1;
    if (r.count < lines) r.seqs[r.count] = seq;
    r.count++;
    r.chars += line.length;
    if (seq % SAMPLE === 0 && r.badText === null && line !== manyLinesText(seq)) {
      r.badText = `line ${seq} is ${JSON.stringify(line)}`;
    }
  }
  await subprocess;
  const ms = performance.now() - start;
  checkReceived(r, lines, 'pipeline/execa lines');
  return ms;
}

async function throughBare(python: string, lines: number): Promise<number> {
  const result = await bareSpawn(python, MANY_LINES, [String(lines)]);
  if (result.lines !== lines) throw new CorrectnessError(`pipeline/bare spawn: counted ${result.lines} newlines, expected ${lines}`);
  const bytes = manyLinesChars(lines) + lines;
  if (result.bytes !== bytes) throw new CorrectnessError(`pipeline/bare spawn: read ${result.bytes} bytes, expected ${bytes}`);
  return result.ms;
}

export const run: Row = async (ctx) => {
  const lines = ctx.quick ? 200_000 : 1_000_000;
  const reps = ctx.quick ? 2 : 5;
  const python = resolvePython();
  ctx.log(`interpreter ${python}; warm-up (20,000 lines each)`);
  await throughRunner(python, 20_000);
  await throughBare(python, 20_000);
  await throughExeca(python, 20_000);

  const runner: number[] = [];
  const bare: number[] = [];
  const execaMs: number[] = [];
  const ratios: number[] = [];
  const noKeep: number[] = [];
  const gcRunner: number[] = [];
  const gcBare: number[] = [];
  const gc = await gcPauses();
  for (let rep = 1; rep <= reps; rep++) {
    // A full GC before each variant: none pays for the garbage of the one before.
    await settleHeap();
    let t = performance.now();
    const r = await throughRunner(python, lines);
    gcRunner.push(await gc.since(t));
    await settleHeap();
    t = performance.now();
    const b = await throughBare(python, lines);
    gcBare.push(await gc.since(t));
    await settleHeap();
    const e = await throughExeca(python, lines);
    await settleHeap();
    const n = await throughRunner(python, lines, keepNoLinesStore());
    runner.push(r);
    noKeep.push(n);
    bare.push(b);
    execaMs.push(e);
    ratios.push(r / b);
    ctx.log(
      `rep ${rep}/${reps}: runner ${fmt.s(r)} (GC pauses ${fmt.ms(gcRunner[rep - 1]!)}) · bare ${fmt.s(b)} (GC ${fmt.ms(gcBare[rep - 1]!)}) · ` +
        `execa ${fmt.s(e)} · runner, store keeping no lines ${fmt.s(n)} (runner ${fmt.ratio(r / b)} bare)`,
    );
  }
  gc.dispose();
  const gcR = median(gcRunner);
  const nk = median(noKeep);
  const r = median(runner);
  const b = median(bare);
  const e = median(execaMs);
  const ratio = r / b;
  const met = ratio <= TARGET;
  const rate = (ms: number) => `${fmt.int(lines / (ms / 1000))} lines/s`;
  return {
    row: 'pipeline',
    what:
      `${fmt.int(lines)}-line \`python3 -u\` script through createScriptRunner (memory store), every line received by an ` +
      `\`execution:log\` listener, timed from run() to waitFor(); against a bare child_process.spawn counting newlines and ` +
      `execa 9 iterating lines (buffer: false), plus, as a diagnostic, the runner over a store that keeps no lines. All run the same interpreter, resolved once from \`python3\` ` +
      `(${python}, bypassing the pyenv shim); medians of ${reps} interleaved repetitions after a 20k-line warm-up, a full GC before each variant`,
    measured:
      `runner ${fmt.s(r)} (${rate(r)}) · bare spawn ${fmt.s(b)} · execa lines ${fmt.s(e)} (${fmt.ratio(e / b)}) → runner ${fmt.ratio(ratio)} bare ` +
      `(per-rep ratios ${ratios.map(fmt.ratio).join(', ')}); diagnostic: runner with a store that keeps no lines ${fmt.s(nk)} (${fmt.ratio(nk / b)})`,
    target: `≤ ${TARGET}× bare spawn`,
    met,
    reading: met
      ? `The runner adds ${fmt.int(r - b)} ms (${((ratio - 1) * 100).toFixed(0)}%) to what Python needs to print ${fmt.int(lines)} lines: ` +
        `splitting, numbering, batching and publishing overlap with the child's own printing; ${fmt.ms(gcR)} of main-thread GC pauses ` +
        `come from the memory store keeping every line (a store that keeps none: ${fmt.ratio(nk / b)}); ` +
        `${e > r ? `execa's per-line stream is slower (${fmt.ratio(e / b)})` : `execa's per-line stream takes ${fmt.ratio(e / b)}`}; ` +
        `the listener got seqs 1..${fmt.int(lines)} once, in order, with the expected text.`
      : `The runner takes ${fmt.ratio(ratio)} the bare spawn (${fmt.int(r - b)} ms more for ${fmt.int(lines)} lines; execa ${fmt.ratio(e / b)}), ` +
        `above the ${TARGET}× target. ${fmt.ms(gcR)} of it are main-thread GC pauses (bare: ${fmt.ms(median(gcBare))}): the memory store keeps ` +
        `every line as its own object and string, so ${fmt.int(lines)} lines survive into the old generation while Python holds the ` +
        `other core; the same runner with a store that keeps no lines takes ${fmt.ratio(nk / b)}${nk / b <= TARGET ? ' (within the target)' : ''}, so ` +
        `${nk / b <= TARGET ? 'the retention, not the pipeline, is the cost' : 'the pipeline itself also costs more than the target allows here'} ` +
        `(proposed fix: keep the memory store's lines columnar, the text bytes in one growing Buffer).`,
  };
};
