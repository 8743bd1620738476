/**
 * One case of the memory row, in a fresh Node process so peaks never mix:
 *
 *   node --expose-gc memory-driver.mjs <case> <count> <python> <sqlite file>
 *
 *   lines     MANY_LINES printing <count> lines
 *   big       <count> lines of 1,023 characters + newline (1,048,576 lines = 1 GiB)
 *   longline  <count> pieces of 1 MiB without any newline: one line of <count> MiB
 *
 * The host is the embedded setup: createScriptRunner over sqliteStore. After a small warm-up run
 * and a GC it reads its idle VmRSS, resets the kernel's high-water mark (`5` → /proc/self/clear_refs),
 * runs the case and reads VmHWM: the exact peak of the run. RSS is also sampled every 10 ms as a
 * cross-check (and as the fallback when the reset is refused). An `execution:log` listener checks
 * that every line arrives once, in order, with the expected text; the store is checked afterwards.
 * Prints one JSON line with the numbers and any correctness problem.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createScriptRunner } from '@scriptrunner/core';
import { sqliteStore } from '@scriptrunner/store-prisma/sqlite';

const [kind, countArg, python, file] = process.argv.slice(2);
const count = Number(countArg);
const MAX_LINE_BYTES = 65_536;

const SCRIPTS = {
  lines: `import sys
w = sys.stdout.write
for i in range(1, int(sys.argv[1]) + 1):
    w(f"line {i} price forecast iteration ok\\n")
`,
  big: `import sys
w = sys.stdout.write
pad = "x" * 1013
for i in range(1, int(sys.argv[1]) + 1):
    w(f"{i:010d}{pad}\\n")
`,
  longline: `import sys
w = sys.stdout.write
piece = "y" * (1 << 20)
for _ in range(int(sys.argv[1])):
    w(piece)
`,
};

function status() {
  const text = readFileSync('/proc/self/status', 'utf8');
  const kb = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? Number.NaN) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

const problems = [];
const problem = (message) => {
  if (problems.length < 5) problems.push(message);
};

const expectedLines = kind === 'longline' ? 1 : count;
const PAD = 'x'.repeat(1013);
const longText = 'y'.repeat(MAX_LINE_BYTES) + ` … [line truncated: ${count * 1024 * 1024} bytes in total]`;
function expectedText(seq) {
  if (kind === 'lines') return `line ${seq} price forecast iteration ok`;
  if (kind === 'big') return `${String(seq).padStart(10, '0')}${PAD}`;
  return longText;
}

/** Exact, without building a 1 KiB string per line (that garbage would count against the host). */
function textOk(seq, text) {
  if (kind === 'lines') return seq % 1000 !== 0 || text === expectedText(seq);
  if (kind === 'big') return text.length === 1023 && text.endsWith(PAD) && text.startsWith(String(seq).padStart(10, '0'));
  return text === longText;
}

const store = sqliteStore({ file });
const runner = createScriptRunner({
  store,
  runtimes: { python: { command: python } },
  isolation: 'none',
  logger: { warn() {}, error: (m) => problem(`runner error: ${m}`) },
});

let watching = null;
let next = 1;
let received = 0;
runner.on('execution:log', ({ executionId, lines }) => {
  if (executionId !== watching) return;
  for (const line of lines) {
    received++;
    if (line.seq !== next) problem(`line ${received} has seq ${line.seq}, expected ${next}`);
    next = line.seq + 1;
    // Every line of the 1 GiB and 50 MiB cases is checked exactly; the 1M short lines every 1,000th.
    if (!textOk(line.seq, line.text)) {
      problem(`seq ${line.seq}: text of ${line.text.length} chars differs from the expected ${expectedText(line.seq).length}`);
    }
  }
});

try {
  await store.ready;
  const script = await runner.uploadScript({ filename: `test_memory_${kind}.py`, content: SCRIPTS[kind] });
  // Warm-up: JIT, the store's first statements, the child-process machinery.
  const warm = await runner.waitFor((await runner.run(script.id, { args: ['1'] })).id);
  if (warm.status !== 'succeeded') problem(`warm-up run ${warm.status}: ${warm.errorMessage}`);

  for (let i = 0; i < 3; i++) {
    globalThis.gc?.();
    await new Promise((r) => setTimeout(r, 50));
  }
  const idle = status().rss;
  let hwmReset = true;
  try {
    writeFileSync('/proc/self/clear_refs', '5');
  } catch {
    hwmReset = false;
  }
  let sampled = status().rss;
  const sampler = setInterval(() => {
    const rss = process.memoryUsage.rss();
    if (rss > sampled) sampled = rss;
  }, 10);

  const start = performance.now();
  const queued = await runner.run(script.id, { args: [String(count)] });
  watching = queued.id;
  const execution = await runner.waitFor(queued.id);
  const ms = performance.now() - start;
  clearInterval(sampler);
  const after = status();
  const peak = hwmReset ? after.hwm : sampled;

  if (execution.status !== 'succeeded') problem(`run ${execution.status}: ${execution.errorMessage}`);
  if (execution.lineCount !== expectedLines) problem(`lineCount ${execution.lineCount}, expected ${expectedLines}`);
  if (received !== expectedLines) problem(`listener received ${received} lines, expected ${expectedLines}`);
  if (kind === 'longline' && !execution.truncated) problem('the execution is not marked truncated');
  // The store: the first and last lines are there, exact, and nothing after the last.
  const first = await runner.readLogs(queued.id, { afterSeq: 0, limit: 1 });
  const last = await runner.readLogs(queued.id, { afterSeq: expectedLines - 1, limit: 2 });
  if (first[0]?.seq !== 1 || first[0]?.text !== expectedText(1)) problem('stored line 1 is missing or differs');
  if (last.length !== 1 || last[0]?.seq !== expectedLines || last[0]?.text !== expectedText(expectedLines)) {
    problem(`stored lines after ${expectedLines - 1}: ${last.map((l) => l.seq).join(',') || 'none'}`);
  }
  console.log(
    JSON.stringify({ kind, count, idle, peak, hwm: after.hwm, sampled, hwmReset, growth: peak - idle, ms, received, lineCount: execution.lineCount, problems }),
  );
} catch (error) {
  console.log(JSON.stringify({ kind, count, error: String(error?.stack ?? error), problems }));
} finally {
  await runner.close();
  await store.close();
}
