/**
 * The workloads users run, for the pipeline-print and persist-print rows: a script calling
 * `print()` (two writes per line under `python -u`) and one calling `sys.stdout.write` (one), each
 * through the runner into a given store, against a bare spawn of the same script. Ratios to the
 * bare spawn of the same repetition are what the rows judge.
 */
import { createScriptRunner, type Store } from '@scriptrunner/core';
import { assertExactlyOnce, CorrectnessError, fmt, median, MANY_LINES, quietLogger, type BenchContext } from '../../lib.js';
import { bareSpawn, manyLinesText, settleHeap } from './python.js';

export type Workload = 'print' | 'write';

export const WORKLOAD_CODE: Record<Workload, string> = {
  print: `import sys
for i in range(1, int(sys.argv[1]) + 1):
    print(f"line {i} price forecast iteration ok")
`,
  write: MANY_LINES,
};

/** Reads every stored line back and checks seqs 1..count and the exact text. */
export async function verifyStored(store: Store, executionId: string, count: number, where: string): Promise<void> {
  const seqs: number[] = [];
  let after = 0;
  for (;;) {
    const page = await store.readLogs(executionId, { afterSeq: after, limit: 10_000 });
    if (page.length === 0) break;
    for (const line of page) {
      seqs.push(line.seq);
      if (line.text !== manyLinesText(line.seq)) throw new CorrectnessError(`${where}: seq ${line.seq} stored as ${JSON.stringify(line.text)}`);
    }
    after = page[page.length - 1]!.seq;
    if (seqs.length > count) break;
  }
  assertExactlyOnce(seqs, count, where);
}

/** run() → waitFor() of the workload through a runner over `store` (isolation none); checked after. */
export async function throughRunner(store: Store, python: string, workload: Workload, lines: number, where: string): Promise<number> {
  const runner = createScriptRunner({ store, runtimes: { python: { command: python } }, isolation: 'none', logger: quietLogger });
  try {
    const script = await runner.uploadScript({ filename: `test_${workload}.py`, content: WORKLOAD_CODE[workload] });
    const start = performance.now();
    const execution = await runner.run(script.id, { args: [String(lines)] });
    const final = await runner.waitFor(execution.id);
    const ms = performance.now() - start;
    if (final.status !== 'succeeded' || final.lineCount !== lines) throw new Error(`${where}: ${final.status}, ${final.lineCount} lines: ${final.errorMessage}`);
    await verifyStored(store, execution.id, lines, where);
    return ms;
  } finally {
    await runner.close();
  }
}

export interface Variant {
  name: string;
  target: number;
  /** A store for one run (a fresh memory store each time; a database store may be reused). */
  store(): Store;
}

export interface VariantResult {
  name: string;
  target: number;
  workload: Workload;
  ms: number;
  ratio: number;
  ratios: number[];
}

/**
 * Per repetition and workload, interleaved: the bare spawn, then each variant; a full GC before
 * each. Returns each variant's median time and median of its per-repetition ratios to the bare spawn.
 */
export async function measureWorkloads(
  ctx: BenchContext,
  row: string,
  python: string,
  variants: Variant[],
  sizes: { lines: number; reps: number },
): Promise<{ results: VariantResult[]; bare: Record<Workload, number> }> {
  const workloads: Workload[] = ['print', 'write'];
  for (const workload of workloads) for (const v of variants) await throughRunner(v.store(), python, workload, 20_000, `${row}/${v.name} warm-up`);
  const times = new Map<string, number[]>();
  const ratios = new Map<string, number[]>();
  const bare: Record<Workload, number[]> = { print: [], write: [] };
  for (let rep = 1; rep <= sizes.reps; rep++) {
    for (const workload of workloads) {
      await settleHeap();
      const b = await bareSpawn(python, WORKLOAD_CODE[workload], [String(sizes.lines)]);
      if (b.lines !== sizes.lines) throw new CorrectnessError(`${row}/bare ${workload}: ${b.lines} lines, expected ${sizes.lines}`);
      bare[workload].push(b.ms);
      const parts = [`bare ${fmt.s(b.ms)}`];
      for (const v of variants) {
        await settleHeap();
        const ms = await throughRunner(v.store(), python, workload, sizes.lines, `${row}/${v.name} (${workload})`);
        const key = `${v.name}|${workload}`;
        (times.get(key) ?? times.set(key, []).get(key)!).push(ms);
        (ratios.get(key) ?? ratios.set(key, []).get(key)!).push(ms / b.ms);
        parts.push(`${v.name} ${fmt.s(ms)} (${fmt.ratio(ms / b.ms)})`);
      }
      ctx.log(`rep ${rep}/${sizes.reps} ${workload}: ${parts.join(' · ')}`);
    }
  }
  const results: VariantResult[] = [];
  for (const workload of workloads) {
    for (const v of variants) {
      const key = `${v.name}|${workload}`;
      results.push({ name: v.name, target: v.target, workload, ms: median(times.get(key)!), ratio: median(ratios.get(key)!), ratios: ratios.get(key)! });
    }
  }
  return { results, bare: { print: median(bare.print), write: median(bare.write) } };
}

/** "print: memory 1.08× (7.5 s; per rep …) · …" */
export function describeResults(results: VariantResult[], bare: Record<Workload, number>): string {
  return (['print', 'write'] as const)
    .map(
      (w) =>
        `${w} (bare ${fmt.s(bare[w])}): ` +
        results
          .filter((r) => r.workload === w)
          .map((r) => `${r.name} ${fmt.ratio(r.ratio)} (${fmt.s(r.ms)}; per rep ${r.ratios.map(fmt.ratio).join(', ')})`)
          .join(' · '),
    )
    .join(' — ');
}
