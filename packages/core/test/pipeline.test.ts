/**
 * The line pipeline end to end, with real python3 children and the memory store.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { memoryStore, type Execution, type LogLine, type Store } from '../src/index.js';
import { closeRunners, FLOOD_60K, makeRunner, runFixture } from './helpers.js';

afterEach(closeRunners);

function expectGapFree(lines: LogLine[], count: number) {
  expect(lines).toHaveLength(count);
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.seq !== i + 1) throw new Error(`seq ${lines[i]!.seq} at position ${i}`);
  }
}

describe('line pipeline', () => {
  it('joins a line written in several flushed pieces and keeps the final partial line', async () => {
    const runner = makeRunner();
    const { execution, texts } = await runFixture(runner, 'test_split_writes.py');
    expect(texts).toEqual(['alpha-beta-gamma-delta', 'no newline at the end']);
    expect(execution).toMatchObject({ status: 'succeeded', exitCode: 0, lineCount: 2, truncated: false });
  });

  it('delivers 100,000 lines complete and in order, live and from the store', async () => {
    const runner = makeRunner();
    const batches: number[] = [];
    runner.on('execution:log', (batch) => batches.push(batch.lines.length));
    const { execution, lines } = await runFixture(runner, 'test_many_lines.py', { args: ['100000'] });
    expect(execution).toMatchObject({ status: 'succeeded', lineCount: 100_000 });
    expectGapFree(lines, 100_000);
    for (const line of lines) {
      if (line.text !== `line ${line.seq} price forecast iteration ok`) throw new Error(`bad text at ${line.seq}: ${line.text}`);
    }
    // Batched: far fewer events than lines.
    expect(batches.length).toBeLessThan(50_000);
    const stored: LogLine[] = [];
    for (let after = 0; ; ) {
      const page = await runner.readLogs(execution.id, { afterSeq: after, limit: 10_000 });
      if (page.length === 0) break;
      stored.push(...page);
      after = page.at(-1)!.seq;
    }
    expectGapFree(stored, 100_000);
    expect(stored.at(-1)!.text).toBe('line 100000 price forecast iteration ok');
  });

  it('publishes a batch only after the store accepted it, and finished after the last batch', async () => {
    const inner = memoryStore();
    let persistedSeq = 0;
    const store: Store = {
      ...inner,
      async appendLogs(executionId, lines) {
        await new Promise((r) => setTimeout(r, 2));
        await inner.appendLogs(executionId, lines);
        persistedSeq = Math.max(persistedSeq, lines.at(-1)!.seq);
      },
    };
    const runner = makeRunner({ store });
    const events: string[] = [];
    let violations = 0;
    runner.on('execution:log', (batch) => {
      if (batch.lines.at(-1)!.seq > persistedSeq) violations++;
      events.push('log');
    });
    let finishedLineCount = -1;
    runner.on('execution:finished', (execution) => {
      events.push('finished');
      finishedLineCount = execution.lineCount;
    });
    const { execution } = await runFixture(runner, 'test_many_lines.py', { args: ['20000'] });
    expect(violations).toBe(0);
    expect(events.at(-1)).toBe('finished');
    expect(events.filter((e) => e === 'finished')).toHaveLength(1);
    expect(finishedLineCount).toBe(20_000);
    expect(execution.lineCount).toBe(20_000);
  });

  it('delivers the first line while the script is still sleeping', async () => {
    const runner = makeRunner();
    const script = await runner.uploadScript({
      filename: 'test_print_then_sleep.py',
      content: readFileSync(join(__dirname, 'fixtures', 'test_print_then_sleep.py')),
    });
    let firstAt = 0;
    let firstBatch = -1;
    let finishedAt = 0;
    runner.on('execution:log', ({ lines }) => {
      if (firstAt === 0) {
        firstAt = Date.now();
        firstBatch = lines.length;
      }
    });
    runner.on('execution:finished', () => {
      finishedAt = Date.now();
    });
    const execution = await runner.run(script.id);
    const final = await runner.waitFor(execution.id);
    expect(final.status).toBe('succeeded');
    // The script sleeps 3 s between its two lines: the first arrives alone, during the sleep — well
    // before the end. (Not a bound from run(): a loaded machine may take long to start Python.)
    expect(firstBatch).toBe(1);
    expect(finishedAt - firstAt).toBeGreaterThan(2500);
  });

  it('collapses a \\r progress bar into one line and emits throttled progress events', async () => {
    const runner = makeRunner();
    const progress: string[] = [];
    runner.on('execution:progress', (p) => progress.push(p.text));
    const { execution, lines } = await runFixture(runner, 'test_progress.py');
    expect(lines.map((l) => [l.stream, l.text])).toEqual([
      ['stderr', 'progress 2000/2000 [####################]'],
      ['stdout', 'training finished'],
    ]);
    expect(execution.lineCount).toBe(2);
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.length).toBeLessThan(50);
    for (const text of progress) expect(text).toMatch(/^progress \d+\/2000 \[#* *\]$/);
  });

  it('replaces invalid UTF-8 and keeps the lines around it', async () => {
    const runner = makeRunner();
    const { texts, execution } = await runFixture(runner, 'test_invalid_utf8.py');
    expect(texts).toEqual(['before', 'bad \uFFFD\uFFFD bytes \uFFFD( here', 'after']);
    expect(execution.status).toBe('succeeded');
  });

  it('classifies levels and keeps streams apart', async () => {
    const runner = makeRunner();
    const { lines } = await runFixture(runner, 'test_stderr_mix.py');
    expect(lines).toHaveLength(102);
    const find = (text: string) => lines.find((l) => l.text === text)!;
    expect(find('out 7')).toMatchObject({ stream: 'stdout', level: 'info' });
    expect(find('err 7')).toMatchObject({ stream: 'stderr', level: 'error' });
    expect(find('WARNING: wind profile missing for plant 7')).toMatchObject({ stream: 'stdout', level: 'warn' });
    expect(find('ERROR: price feed unavailable')).toMatchObject({ stream: 'stderr', level: 'error' });
    const errors = await runner.readLogs(lines[0]!.executionId, { levels: ['error'], limit: 1000 });
    expect(errors.map((l) => l.text)).toEqual(lines.filter((l) => l.level === 'error').map((l) => l.text));
    const stdout = await runner.readLogs(lines[0]!.executionId, { streams: ['stdout'], limit: 1000 });
    expect(stdout).toHaveLength(51);
  });

  it('uses a custom classifier, falling back to the default when it throws', async () => {
    const runner = makeRunner({
      classifyLine: (text) => {
        if (text === 'out 1') throw new Error('boom');
        return text.endsWith('3') ? 'warn' : 'info';
      },
    });
    const { lines } = await runFixture(runner, 'test_stderr_mix.py');
    expect(lines.find((l) => l.text === 'out 3')!.level).toBe('warn');
    expect(lines.find((l) => l.text === 'err 2')!.level).toBe('info');
    expect(lines.find((l) => l.text === 'out 1')!.level).toBe('info');
  });

  it('caps a 50 MB line without newline and keeps memory bounded', async () => {
    const runner = makeRunner({ maxLineBytes: 64 * 1024 });
    let peak = 0;
    const base = process.memoryUsage();
    const sampler = setInterval(() => {
      const m = process.memoryUsage();
      peak = Math.max(peak, m.heapUsed + m.arrayBuffers - base.heapUsed - base.arrayBuffers);
    }, 5);
    const { execution, lines } = await runFixture(runner, 'test_huge_line.py', { args: ['50'] });
    clearInterval(sampler);
    expect(execution).toMatchObject({ status: 'succeeded', truncated: true, lineCount: 1 });
    expect(lines[0]!.text).toBe('x'.repeat(64 * 1024) + ' … [line truncated: 52428800 bytes in total]');
    // 50 MB went through; the process held a small fraction of it at any time.
    expect(peak).toBeLessThan(40 * 1024 * 1024);
  });

  it('pauses the child when the store falls behind instead of buffering without bound', async () => {
    const inner = memoryStore();
    const store: Store = {
      ...inner,
      async appendLogs(executionId, lines) {
        await new Promise((r) => setTimeout(r, 25));
        await inner.appendLogs(executionId, lines);
      },
    };
    const runner = makeRunner({ store, maxBatchLines: 500 });
    const { execution, texts } = await runFixture(runner, 'test_backpressure.py', { code: FLOOD_60K });
    expect(execution.status).toBe('succeeded');
    expect(execution.lineCount).toBe(60_001);
    // Unthrottled, python writes these 60k lines in well under a second. With the store taking
    // 25 ms per 500 lines, the child can only finish if it was held back (blocked on a full pipe).
    const elapsed = Number(texts.at(-1)!.split(' ')[1]);
    expect(elapsed).toBeGreaterThan(1.5);
  });

  it('writes a plain-text log file per execution when logDir is set', async () => {
    const logDir = mkdtempSync(join(tmpdir(), 'sr-logs-'));
    try {
      const runner = makeRunner({ logDir });
      const { execution } = await runFixture(runner, 'test_exit_code.py', { args: ['0'] });
      const text = readFileSync(join(logDir, `${execution.id}.log`), 'utf8');
      expect(text).toBe('about to fail\n[stderr] something went wrong\n');
    } finally {
      rmSync(logDir, { recursive: true, force: true });
    }
  });

  it('updates totalRuns and lastRunAt of the script', async () => {
    const runner = makeRunner();
    const { script } = await runFixture(runner, 'test_exit_code.py', { args: ['0'] });
    const e1 = await runner.run(script.id, { args: ['0'] });
    const e2 = await runner.run(script.id, { args: ['1'] });
    const finals: Execution[] = await Promise.all([runner.waitFor(e1.id), runner.waitFor(e2.id)]);
    const after = await runner.getScript(script.id);
    expect(after.totalRuns).toBe(3);
    expect(after.lastRunAt!.getTime()).toBe(Math.max(e1.queuedAt.getTime(), e2.queuedAt.getTime()));
    expect(finals.map((f) => f.status)).toEqual(['succeeded', 'failed']);
  });
});
