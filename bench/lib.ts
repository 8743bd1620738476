/**
 * Shared pieces of the benchmarks: the row result every row module returns, statistics, and the
 * correctness check every row runs (a lost, duplicated or reordered line fails the whole bench).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';

export interface BenchContext {
  /** `--quick`: smaller sizes and fewer repetitions, the whole bench under 2 minutes. */
  quick: boolean;
  /** Progress output for the person running the bench. */
  log(message: string): void;
}

export interface RowResult {
  /** Short row name, e.g. `pipeline`. */
  row: string;
  /** What was measured, e.g. "1,000,000-line python3 -u script through the runner (memory store)". */
  what: string;
  /** The side-by-side numbers of this run, already formatted, e.g. "runner 1.42 s · bare spawn 1.24 s · execa 1.61 s". */
  measured: string;
  /** The target as the issue states it, e.g. "≤ 1.15× bare spawn". */
  target: string;
  /** Whether the target is met (null when the row has no target). */
  met: boolean | null;
  /** One sentence that reads the numbers (why it is what it is). */
  reading: string;
}

export type Row = (ctx: BenchContext) => Promise<RowResult>;

/** Thrown by a row when a line was lost, duplicated or out of order: the bench exits non-zero. */
export class CorrectnessError extends Error {
  override name = 'CorrectnessError';
}

export function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The p-th percentile (0..100) by nearest rank. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export const fmt = {
  int: (n: number) => Math.round(n).toLocaleString('en-US'),
  ms: (n: number) => `${n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : Math.round(n).toLocaleString('en-US')} ms`,
  s: (ms: number) => `${(ms / 1000).toFixed(2)} s`,
  ratio: (n: number) => `${n.toFixed(2)}×`,
  mb: (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MB`,
};

/**
 * Checks that `seqs` is exactly 1..count in order; throws CorrectnessError naming the first
 * problem otherwise. Every row calls it on what its consumers received.
 */
export function assertExactlyOnce(seqs: ArrayLike<number>, count: number, where: string): void {
  if (seqs.length !== count) throw new CorrectnessError(`${where}: received ${seqs.length} lines, expected ${count}`);
  for (let i = 0; i < count; i++) {
    if (seqs[i] !== i + 1) throw new CorrectnessError(`${where}: position ${i} holds seq ${seqs[i]}, expected ${i + 1}`);
  }
}

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Runs `python3 -u -c code args…` as a bare child and counts newlines: the raw limit. */
export async function bareSpawnLines(code: string, args: string[] = []): Promise<{ ms: number; lines: number }> {
  const start = performance.now();
  const child = spawn('python3', ['-u', '-c', code, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let lines = 0;
  child.stdout.on('data', (chunk: Buffer) => {
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++;
  });
  const [code_] = (await once(child, 'close')) as [number | null];
  if (code_ !== 0) throw new Error(`bare spawn exited with ${code_}`);
  return { ms: performance.now() - start, lines };
}

/** A python script that prints `count` numbered lines as fast as it can ("line <seq> …"). */
export const MANY_LINES = `import sys
w = sys.stdout.write
for i in range(1, int(sys.argv[1]) + 1):
    w(f"line {i} price forecast iteration ok\\n")
`;

export const quietLogger = { warn: () => {}, error: (m: string) => console.error(m) };

/** Runs `task(i)` for i in 0..n-1 with `workers` in parallel; returns the wall time and each task's ms. */
export async function pool(n: number, workers: number, task: (i: number) => Promise<void>): Promise<{ total: number; each: number[] }> {
  const each: number[] = [];
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (next < n) {
        const i = next++;
        const t = performance.now();
        await task(i);
        each.push(performance.now() - t);
      }
    }),
  );
  return { total: performance.now() - start, each };
}
