/**
 * `npm run bench [-- --quick]`: every benchmark row side by side in one run, then docs/BENCHMARKS.md.
 * Exits non-zero when any row loses, duplicates or reorders a line, or fails outright; a missed
 * target is reported in the table, not hidden.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CorrectnessError, type BenchContext, type Row, type RowResult } from './lib.js';

const here = dirname(fileURLToPath(import.meta.url));
const quick = process.argv.includes('--quick');
const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length).split(',');

/** Row modules, in table order. Each exports `run: Row`. */
const ROWS = ['pipeline', 'pipeline-print', 'persist', 'persist-print', 'live-buffered', 'latency', 'fanout', 'catchup', 'responsiveness', 'memory', 'retention', 'overhead', 'environments', 'isolation', 'scaleout', 'browser'];

function version(command: string, args: string[]): string {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim().split('\n')[0]!;
  } catch {
    return 'not found';
  }
}

async function main(): Promise<void> {
  const ctx: BenchContext = { quick, log: (m) => console.log(`  ${m}`) };
  const results: RowResult[] = [];
  const failures: string[] = [];
  const started = Date.now();
  for (const name of ROWS) {
    if (only && !only.includes(name)) continue;
    console.log(`[bench] ${name}`);
    const t = Date.now();
    try {
      const module = (await import(`./rows/${name}.js`)) as { run: Row };
      const result = await module.run(ctx);
      results.push(result);
      console.log(`[bench] ${name}: ${result.measured} → ${result.met === null ? 'no target' : result.met ? 'target met' : 'target MISSED'} (${((Date.now() - t) / 1000).toFixed(0)} s)`);
    } catch (error) {
      const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      failures.push(`${name}: ${message}`);
      console.error(`[bench] ${name} FAILED: ${message}`);
      if (error instanceof CorrectnessError) process.exitCode = 1;
    }
  }
  const seconds = (Date.now() - started) / 1000;
  const machine = [
    `${cpus().length} cores (${cpus()[0]?.model ?? 'unknown CPU'}), ${(totalmem() / 1024 ** 3).toFixed(0)} GiB`,
    `Node ${process.version}, ${version('python3', ['--version'])}, ${version('/usr/bin/chromium', ['--version'])}`,
    `PostgreSQL ${version('bash', ['-c', 'ls /usr/lib/postgresql | sort -n | tail -1'])}, SQLite via better-sqlite3, Prisma 7.10`,
  ];
  const lines = [
    '# Benchmarks',
    '',
    `Command: \`npm run bench${quick ? ' -- --quick' : ''}\` · ${new Date().toISOString().slice(0, 10)} · ${seconds.toFixed(0)} s in all`,
    '',
    ...machine.map((m) => `- ${m}`),
    '',
    'Every row is measured side by side in one run (medians of several repetitions; ratios between rows of',
    'the same run). Every row also checks what its consumers received: a lost, duplicated or reordered',
    'line makes the bench exit non-zero. How to reproduce each row: `bench/README.md`.',
    '',
    '| row | what | measured | target | met |',
    '|---|---|---|---|---|',
    ...results.map((r) => `| ${r.row} | ${r.what} | ${r.measured} | ${r.target} | ${r.met === null ? '—' : r.met ? 'yes' : '**no**'} |`),
    '',
    '## Reading',
    '',
    ...results.map((r) => `- **${r.row}**: ${r.reading}`),
    '',
  ];
  if (failures.length > 0) lines.push('## Failed rows', '', ...failures.map((f) => `- ${f}`), '');
  // Only a full run of every row is the published table; quick and partial runs just print.
  if (!only && !quick) writeFileSync(join(here, '..', 'docs', 'BENCHMARKS.md'), lines.join('\n'));
  console.log(lines.join('\n'));
  if (failures.length > 0) process.exitCode = 1;
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
