/**
 * Persisted log lines per second through Prisma, on SQLite and PostgreSQL, side by side in one run:
 *
 *   chunked  store.appendLogs of @scriptrunner/store-prisma (contiguous lines as one row), 1M lines
 *            in batches of 2,000 — the batches the runner hands it at high rates
 *   runner   a 1,000,000-line `python3 -u` script through createScriptRunner into the same store
 *   naive    one row per line through createMany (20,000 lines, same batches): the design we replaced
 *
 * Usage: npm run bench:store [-- --quick]
 * Medians of several repetitions; ratios are between rows of this run. Every run checks that the
 * stored lines are complete and in order, and exits non-zero if not.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PrismaBetterSqlite3 } from '@prisma/adapter-better-sqlite3';
import { PrismaPg } from '@prisma/adapter-pg';
import { createScriptRunner, type LogLine, type Store } from '@scriptrunner/core';
import { applyMigrations, prismaStore } from '@scriptrunner/store-prisma';
import { startPostgres } from '../packages/store-prisma/test/support/postgres.js';

const quick = process.argv.includes('--quick');
const CHUNKED_LINES = quick ? 200_000 : 1_000_000;
const RUNNER_LINES = quick ? 200_000 : 1_000_000;
const NAIVE_LINES = quick ? 5_000 : 20_000;
const BATCH = 2_000;
const REPS = quick ? 2 : 3;
const here = dirname(fileURLToPath(import.meta.url));

// ---------------------------------------------------------------- naive client (one row per line)

/** Generates a Prisma client with scriptrunner's models plus a one-row-per-line table. */
function generateClients(): void {
  const require = createRequire(import.meta.url);
  const cli = require.resolve('prisma/build/index.js', { paths: [join(here, '../packages/store-prisma')] });
  const models = execFileSync('cat', [join(here, '../packages/store-prisma/prisma/scriptrunner.prisma')], { encoding: 'utf8' });
  const naive = `model NaiveLogLine {\n  executionId String\n  seq Int\n  stream String\n  level String\n  text String\n  time DateTime\n  @@id([executionId, seq])\n}\n`;
  const work = mkdtempSync(join(tmpdir(), 'sr-bench-gen-'));
  const stub = join(work, 'engine.sh');
  writeFileSync(stub, '#!/bin/sh\nexit 1\n');
  chmodSync(stub, 0o755);
  for (const provider of ['sqlite', 'postgresql']) {
    const dir = join(work, provider);
    mkdirSync(dir);
    writeFileSync(join(dir, 'scriptrunner.prisma'), models);
    writeFileSync(join(dir, 'naive.prisma'), naive);
    writeFileSync(
      join(dir, 'base.prisma'),
      `datasource db {\n  provider = "${provider}"\n}\ngenerator client {\n  provider = "prisma-client"\n  output = ${JSON.stringify(join(here, '.generated', provider))}\n  moduleFormat = "esm"\n  importFileExtension = "js"\n}\n`,
    );
    execFileSync(process.execPath, [cli, 'generate', '--schema', dir], {
      env: { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: stub, CHECKPOINT_DISABLE: '1' },
      stdio: 'ignore',
    });
  }
  rmSync(work, { recursive: true, force: true });
}

const NAIVE_DDL = {
  sqlite: `CREATE TABLE "NaiveLogLine" ("executionId" TEXT NOT NULL, "seq" INTEGER NOT NULL, "stream" TEXT NOT NULL, "level" TEXT NOT NULL, "text" TEXT NOT NULL, "time" DATETIME NOT NULL, PRIMARY KEY ("executionId", "seq"))`,
  postgresql: `CREATE TABLE "NaiveLogLine" ("executionId" TEXT NOT NULL, "seq" INTEGER NOT NULL, "stream" TEXT NOT NULL, "level" TEXT NOT NULL, "text" TEXT NOT NULL, "time" TIMESTAMP(3) NOT NULL, PRIMARY KEY ("executionId", "seq"))`,
};

// ---------------------------------------------------------------------------------- measurements

function lines(executionId: string, from: number, to: number): LogLine[] {
  const out: LogLine[] = [];
  const time = new Date();
  for (let seq = from; seq <= to; seq++) {
    out.push({ executionId, seq, stream: 'stdout', level: seq % 50 === 0 ? 'warn' : 'info', text: `line ${seq} price forecast iteration ok`, time });
  }
  return out;
}

async function newExecution(store: Store): Promise<string> {
  const id = `bench-${Math.random().toString(36).slice(2)}`;
  const scriptId = `${id}-script`;
  const now = new Date();
  await store.createScript({
    id: scriptId, filename: 'test_bench.py', runtime: 'python', sizeBytes: 1, sha256: 'x', description: null, metadata: {},
    status: 'active', createdAt: now, updatedAt: now, lastRunAt: null, totalRuns: 0, content: new Uint8Array([0x23]),
  });
  await store.createExecution({
    id, scriptId, status: 'running', args: [], exitCode: null, signal: null, queuedAt: now, startedAt: now,
    finishedAt: null, durationMs: null, lineCount: 0, errorMessage: null, truncated: false,
  });
  return id;
}

/** Reads everything back and fails loudly on any gap, repeat or wrong text. */
async function verify(store: Store, executionId: string, count: number, text: (seq: number) => string): Promise<void> {
  let after = 0;
  for (;;) {
    const page = await store.readLogs(executionId, { afterSeq: after, limit: 10_000 });
    if (page.length === 0) break;
    for (const line of page) {
      if (line.seq !== after + 1 || line.text !== text(line.seq)) {
        throw new Error(`verification failed at seq ${line.seq} (expected ${after + 1}): ${line.text}`);
      }
      after = line.seq;
    }
  }
  if (after !== count) throw new Error(`verification failed: ${after} of ${count} lines stored`);
}

async function chunked(store: Store): Promise<number> {
  const id = await newExecution(store);
  const start = performance.now();
  for (let from = 1; from <= CHUNKED_LINES; from += BATCH) {
    await store.appendLogs(id, lines(id, from, Math.min(from + BATCH - 1, CHUNKED_LINES)));
  }
  const seconds = (performance.now() - start) / 1000;
  await verify(store, id, CHUNKED_LINES, (seq) => `line ${seq} price forecast iteration ok`);
  return CHUNKED_LINES / seconds;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function naive(prisma: any, store: Store): Promise<number> {
  const id = await newExecution(store);
  const start = performance.now();
  for (let from = 1; from <= NAIVE_LINES; from += BATCH) {
    const batch = lines(id, from, Math.min(from + BATCH - 1, NAIVE_LINES));
    await prisma.naiveLogLine.createMany({ data: batch.map((l) => ({ ...l })) });
  }
  const seconds = (performance.now() - start) / 1000;
  const stored = await prisma.naiveLogLine.count({ where: { executionId: id } });
  if (stored !== NAIVE_LINES) throw new Error(`naive store kept ${stored} of ${NAIVE_LINES} lines`);
  return NAIVE_LINES / seconds;
}

const SCRIPT = `import sys\nw = sys.stdout.write\nfor i in range(1, int(sys.argv[1]) + 1):\n    w(f"line {i} price forecast iteration ok\\n")\n`;

async function throughRunner(store: Store): Promise<number> {
  const runner = createScriptRunner({ store, logger: { warn() {}, error: console.error } });
  const script = await runner.uploadScript({ filename: 'test_bench.py', content: SCRIPT });
  const start = performance.now();
  const execution = await runner.waitFor((await runner.run(script.id, { args: [String(RUNNER_LINES)] })).id);
  const seconds = (performance.now() - start) / 1000;
  await runner.close();
  if (execution.status !== 'succeeded' || execution.lineCount !== RUNNER_LINES) {
    throw new Error(`runner: ${execution.status}, ${execution.lineCount} lines: ${execution.errorMessage}`);
  }
  await verify(store, execution.id, RUNNER_LINES, (seq) => `line ${seq} price forecast iteration ok`);
  return RUNNER_LINES / seconds;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function measure(name: string, fn: () => Promise<number>): Promise<number> {
  const values: number[] = [];
  for (let i = 0; i < REPS; i++) values.push(await fn());
  const m = median(values);
  console.log(`  ${name.padEnd(8)} ${values.map((v) => Math.round(v).toLocaleString('en-US')).join(', ')} → median ${Math.round(m).toLocaleString('en-US')} lines/s`);
  return m;
}

async function main(): Promise<void> {
  generateClients();
  const { PrismaClient: SqliteClient } = await import('./.generated/sqlite/client.js');
  const { PrismaClient: PgClient } = await import('./.generated/postgresql/client.js');
  const dir = mkdtempSync(join(tmpdir(), 'sr-bench-'));
  const pgServer = await startPostgres();
  const rows: Array<{ provider: string; chunked: number; runner: number; naive: number }> = [];
  try {
    const providers = [
      { name: 'sqlite' as const, make: () => new SqliteClient({ adapter: new PrismaBetterSqlite3({ url: `file:${join(dir, 'bench.db')}` }) }) },
      { name: 'postgresql' as const, make: () => new PgClient({ adapter: new PrismaPg({ connectionString: pgServer.url }) }) },
    ];
    for (const provider of providers) {
      console.log(`${provider.name}:`);
      const prisma = provider.make();
      if (provider.name === 'sqlite') {
        await prisma.$queryRawUnsafe('PRAGMA journal_mode = WAL');
        await prisma.$executeRawUnsafe('PRAGMA synchronous = NORMAL');
      }
      await applyMigrations(prisma, { provider: provider.name });
      await prisma.$executeRawUnsafe(NAIVE_DDL[provider.name]);
      const store = prismaStore(prisma);
      const row = {
        provider: provider.name,
        naive: await measure('naive', () => naive(prisma, store)),
        chunked: await measure('chunked', () => chunked(store)),
        runner: await measure('runner', () => throughRunner(store)),
      };
      rows.push(row);
      await prisma.$disconnect();
    }
  } finally {
    await pgServer.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
  const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
  console.log(`\n| provider | chunked appendLogs (${CHUNKED_LINES.toLocaleString('en-US')} lines) | runner end to end (${RUNNER_LINES.toLocaleString('en-US')}-line script) | naive createMany, one row per line (${NAIVE_LINES.toLocaleString('en-US')} lines) | chunked ÷ naive |`);
  console.log('|---|---|---|---|---|');
  for (const r of rows) {
    console.log(`| ${r.provider} | ${fmt(r.chunked)} lines/s | ${fmt(r.runner)} lines/s | ${fmt(r.naive)} lines/s | ${(r.chunked / r.naive).toFixed(1)}× |`);
  }
  const missed = rows.filter((r) => r.chunked < 150_000);
  console.log(missed.length === 0 ? '\ntarget ≥ 150,000 lines/s persisted: met on every provider' : `\ntarget ≥ 150,000 lines/s persisted: MISSED on ${missed.map((r) => r.provider).join(', ')}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
