#!/usr/bin/env node
// The smallest embedding of @scriptrunner/core: upload a script, run it, print each line the moment
// the runner has stored it, then the final record. Usage: node demo.mjs [script.py] [args...]
import { readFile } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createScriptRunner } from '@scriptrunner/core';

const here = fileURLToPath(new URL('.', import.meta.url));
const file = resolve(process.argv[2] ?? resolve(here, '../scripts/test_sample.py'));
const args = process.argv.slice(3);

const colour = process.stdout.isTTY
  ? { info: '', warn: '\x1b[33m', error: '\x1b[31m', system: '\x1b[36m', dim: '\x1b[2m', reset: '\x1b[0m' }
  : { info: '', warn: '', error: '', system: '', dim: '', reset: '' };

// No store given: the memory store. No options: python3 -u, test_*/experiment_* names only.
const runner = createScriptRunner();
runner.on('execution:log', ({ lines }) => {
  for (const line of lines) {
    const tone = line.stream === 'system' ? colour.system : colour[line.level];
    const stamp = line.time.toISOString().slice(11, 23);
    process.stdout.write(`${colour.dim}${stamp} #${String(line.seq).padStart(3)} ${line.stream.padEnd(6)}${colour.reset} ${tone}${line.text}${colour.reset}\n`);
  }
});
runner.on('execution:progress', ({ text }) => process.stdout.write(`${colour.dim}  … ${text}${colour.reset}\r`));

let exitCode = 1;
try {
  const script = await runner.uploadScript({ filename: basename(file), content: await readFile(file) });
  console.log(`uploaded ${script.filename} (${script.sizeBytes} bytes, sha256 ${script.sha256.slice(0, 12)}…) as ${script.id}`);
  const queued = await runner.run(script.id, { args });
  console.log(`execution ${queued.id} queued; live output:`);
  const done = await runner.waitFor(queued.id);
  console.log(
    `\n${done.status} — exit code ${done.exitCode ?? '-'}${done.signal ? `, signal ${done.signal}` : ''}, ` +
      `${done.lineCount} lines in ${done.durationMs} ms${done.errorMessage ? `\n${done.errorMessage}` : ''}`,
  );
  exitCode = done.status === 'succeeded' ? 0 : 1;
} catch (error) {
  console.error(error instanceof Error ? error.message : error);
} finally {
  await runner.close();
}
process.exitCode = exitCode;
