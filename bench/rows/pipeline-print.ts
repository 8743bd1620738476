/**
 * pipeline-print: what users' scripts do — `print()` under `python -u` (two writes per line) and
 * `sys.stdout.write` (one) — through createScriptRunner into the memory store, against a bare spawn
 * of the same script.
 */
import { memoryStore } from '@scriptrunner/core';
import { fmt, type Row } from '../lib.js';
import { describeResults, measureWorkloads } from './support-process/print-workload.js';
import { resolvePython } from './support-process/python.js';

const TARGET = 1.1;

export const run: Row = async (ctx) => {
  const sizes = ctx.quick ? { lines: 200_000, reps: 2 } : { lines: 1_000_000, reps: 3 };
  const python = resolvePython();
  const { results, bare } = await measureWorkloads(ctx, 'pipeline-print', python, [{ name: 'memory', target: TARGET, store: () => memoryStore() }], sizes);
  const met = results.every((r) => r.ratio <= r.target);
  const print = results.find((r) => r.workload === 'print')!;
  const write = results.find((r) => r.workload === 'write')!;
  return {
    row: 'pipeline-print',
    what:
      `${fmt.int(sizes.lines)}-line scripts through createScriptRunner (memory store, isolation none), run() → waitFor(), every stored line read back and checked: ` +
      `one calling \`print()\` (two writes per line under \`-u\`), one calling \`sys.stdout.write\`; each against a bare child_process.spawn of the same script ` +
      `counting newlines (${python}); medians of ${sizes.reps} interleaved repetitions of the per-repetition ratio`,
    measured: describeResults(results, bare),
    target: `≤ ${TARGET}× bare spawn (print and write)`,
    met,
    reading:
      `A print() line costs Python ${fmt.ms((bare.print / sizes.lines) * 1000)} per 1,000 lines against ${fmt.ms((bare.write / sizes.lines) * 1000)} for write ` +
      `(the second system call of -u), and the runner reads twice as many small chunks for it; the runner is ${fmt.ratio(print.ratio)} the bare spawn for print ` +
      `and ${fmt.ratio(write.ratio)} for write${met ? ', within the target' : `; over the ${TARGET}× target where it says no`}. ` +
      'Where the rest goes (CPU profile of 1M printed lines): the memory store keeps every line in the JS heap, and the collector ' +
      "pauses for it (the pipeline row's diagnostic: ~0.1× less with a store that keeps no lines); Python, Node and the kernel's pipe " +
      'share 2 cores, so any CPU the host spends slows the child. What would fix it: a store that keeps log text outside the JS heap ' +
      '(the memory store is for tests and demos; the database stores keep nothing), or `buffering: \'live\'` (below), which removes ' +
      "most of Python's own cost.",
  };
};
