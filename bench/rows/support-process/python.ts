/**
 * Helpers shared by the pipeline, persist, memory and overhead rows: the real Python interpreter
 * (not a pyenv shim), a bare spawn of it, and the expected text of MANY_LINES.
 */
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';

let realPython: string | null = null;

/**
 * The interpreter `python3` on PATH really runs. A pyenv shim costs ~60 ms per start (a bash
 * script that execs the real binary); resolving it once keeps every variant on the same binary
 * without that cost.
 */
export function resolvePython(): string {
  realPython ??= execFileSync('python3', ['-c', 'import sys;print(sys.executable)'], { encoding: 'utf8' }).trim();
  if (!realPython) throw new Error('python3 -c "import sys;print(sys.executable)" printed nothing');
  return realPython;
}

/** The text of line `seq` of MANY_LINES. */
export const manyLinesText = (seq: number): string => `line ${seq} price forecast iteration ok`;

/** Sum of the text lengths of lines 1..count of MANY_LINES (a cheap whole-output check). */
export function manyLinesChars(count: number): number {
  const fixed = manyLinesText(0).length - 1;
  let digits = 0;
  for (let width = 1, lo = 1; lo <= count; width++, lo *= 10) digits += (Math.min(count, lo * 10 - 1) - lo + 1) * width;
  return fixed * count + digits;
}

/**
 * Like lib.ts's bareSpawnLines, but with an explicit interpreter (`python -u -c code args…`):
 * a bare child_process.spawn that only counts newlines — the raw limit.
 */
export async function bareSpawn(python: string, code: string, args: string[] = []): Promise<{ ms: number; lines: number; bytes: number }> {
  const start = performance.now();
  const child = spawn(python, ['-u', '-c', code, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let lines = 0;
  let bytes = 0;
  child.stdout.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++;
  });
  const [code_] = (await once(child, 'close')) as [number | null];
  if (code_ !== 0) throw new Error(`bare spawn exited with ${code_}`);
  return { ms: performance.now() - start, lines, bytes };
}

let gcFn: (() => void) | null = null;

/**
 * A full garbage collection between measured variants, so one variant never pays for the garbage
 * the previous one left (a million-line run leaves hundreds of MB). Works without --expose-gc.
 */
export async function settleHeap(): Promise<void> {
  if (gcFn === null) {
    const { setFlagsFromString } = await import('node:v8');
    const { runInNewContext } = await import('node:vm');
    setFlagsFromString('--expose-gc');
    gcFn = runInNewContext('gc') as () => void;
  }
  gcFn();
  await new Promise((resolve) => setTimeout(resolve, 20));
}

/** Main-thread garbage-collection pauses (ms) since a performance.now() mark, from perf_hooks 'gc' entries. */
export async function gcPauses(): Promise<{ since(start: number): Promise<number>; dispose(): void }> {
  const { PerformanceObserver } = await import('node:perf_hooks');
  const entries: Array<{ startTime: number; duration: number }> = [];
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) entries.push({ startTime: e.startTime, duration: e.duration });
  });
  observer.observe({ entryTypes: ['gc'] });
  return {
    async since(start: number) {
      const end = performance.now();
      // Entries are delivered asynchronously: let the observer catch up.
      await new Promise((resolve) => setTimeout(resolve, 10));
      return entries.filter((e) => e.startTime >= start && e.startTime <= end).reduce((sum, e) => sum + e.duration, 0);
    },
    dispose() {
      observer.disconnect();
    },
  };
}
