/**
 * Python's live-buffered mode (`runtimes.python.buffering: 'live'`): block-buffered output flushed
 * by a thread, and flushed on the ways a run ends that Python can see — an exception, SIGTERM
 * (cancel, timeout), exit. What it cannot cover (`os._exit`) is shown too.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createScriptRunner, type ScriptRunnerOptions } from '../src/index.js';
import { closeRunners, makeRunner, runFixture, silentLogger, waitUntil } from './helpers.js';

const PYTHON = '/usr/bin/python3';
const hasBwrap = spawnSync('bwrap', ['--version']).status === 0;
const isolations: ReadonlyArray<'bwrap' | 'none'> = hasBwrap || process.env.CI === 'true' ? ['bwrap', 'none'] : ['none'];

afterEach(closeRunners);

const live = (options: ScriptRunnerOptions & { liveFlushMs?: number } = {}) => {
  const { liveFlushMs, ...rest } = options;
  return makeRunner({
    runtimes: { python: { command: PYTHON, buffering: 'live', ...(liveFlushMs !== undefined ? { liveFlushMs } : {}) } },
    ...rest,
  });
};

describe.each(isolations)('live-buffered Python (isolation %s)', (isolation) => {
  it('runs the script as Python would, block-buffered, and delivers every line in order', async () => {
    const code = [
      'import os, sys',
      'print("mode", sys.stdout.write_through, sys.stdout.line_buffering, os.environ.get("PYTHONUNBUFFERED"))',
      'print("main", __name__, os.path.basename(__file__), sys.argv[1:], sys.path[0] == os.path.dirname(os.path.abspath(__file__)))',
      'for i in range(1, 20001):',
      '    print(f"line {i}")',
      'sys.stderr.write("done on stderr\\n")',
    ].join('\n');
    const { execution, texts, lines } = await runFixture(live({ isolation }), 'test_live.py', { code, args: ['--day', 'wind farm'] });
    expect(execution.status, texts.slice(-5).join('\n')).toBe('succeeded');
    expect(texts[0]).toBe('mode False False None');
    expect(texts[1]).toBe("main __main__ test_live.py ['--day', 'wind farm'] True");
    expect(texts.slice(2, -1)).toEqual(Array.from({ length: 20_000 }, (_, i) => `line ${i + 1}`));
    expect(texts.at(-1)).toBe('done on stderr');
    expect(lines.map((l) => l.seq)).toEqual(Array.from({ length: lines.length }, (_, i) => i + 1));
  });

  it('keeps what was printed before an uncaught exception, before its traceback, which shows only the script', async () => {
    const code = ['print("computed 1")', 'print("computed 2")', 'def fail():', '    raise ValueError("no prices for hour 25")', 'fail()'].join('\n');
    const { execution, texts } = await runFixture(live({ isolation, liveFlushMs: 10_000 }), 'test_live_raise.py', { code });
    expect(execution).toMatchObject({ status: 'failed', exitCode: 1 });
    expect(texts.slice(0, 2)).toEqual(['computed 1', 'computed 2']);
    const traceback = texts.slice(2);
    expect(traceback[0]).toBe('Traceback (most recent call last):');
    expect(traceback.at(-1)).toBe('ValueError: no prices for hour 25');
    // The launcher's own frames are not shown: the traceback is the one `python script.py` prints.
    expect(traceback.filter((t) => t.trimStart().startsWith('File ')).map((t) => t.trim().split(',')[0])).toEqual([
      expect.stringMatching(/^File ".*test_live_raise\.py"$/),
      expect.stringMatching(/^File ".*test_live_raise\.py"$/),
    ]);
  });

  it('keeps sys.exit codes and output', async () => {
    const { execution, texts } = await runFixture(live({ isolation, liveFlushMs: 10_000 }), 'test_live_exit.py', { code: 'import sys\nprint("bye")\nsys.exit(3)\n' });
    expect(execution).toMatchObject({ status: 'failed', exitCode: 3 });
    expect(texts).toEqual(['bye']);
  });
});

describe('live-buffered Python: ends it cannot see', () => {
  it('flushes on SIGTERM: a cancelled run keeps the line it printed long before the next flush', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sr-live-'));
    try {
      const ready = join(dir, 'ready');
      // Flushed every 10 s: only the SIGTERM handler can deliver the line before the cancel ends it.
      const runner = live({ isolation: 'none', liveFlushMs: 10_000 });
      const code = 'import os, pathlib, time\nprint("halfway through the forecast")\npathlib.Path(os.environ["READY"]).write_text("1")\ntime.sleep(60)\n';
      const script = await runner.uploadScript({ filename: 'test_live_cancel.py', content: code });
      const started = Date.now();
      const execution = await runner.run(script.id, { env: { READY: ready } });
      expect(await waitUntil(() => existsSync(ready), 20_000)).toBe(true);
      await runner.cancel(execution.id);
      const final = await runner.waitFor(execution.id);
      expect(final.status).toBe('cancelled');
      // Proof that the line came from the handler, not the 10 s flusher.
      expect(Date.now() - started).toBeLessThan(10_000);
      expect((await runner.readLogs(execution.id)).filter((l) => l.stream === 'stdout').map((l) => l.text)).toEqual(['halfway through the forecast']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('cannot keep what was printed right before os._exit (documented): unbuffered mode does', async () => {
    const code = 'import os\nprint("lost in live mode")\nos._exit(0)\n';
    const liveRun = await runFixture(live({ isolation: 'none', liveFlushMs: 10_000 }), 'test_live_os_exit.py', { code });
    expect(liveRun.execution.status).toBe('succeeded');
    expect(liveRun.texts).toEqual([]);
    const unbuffered = await runFixture(makeRunner({ isolation: 'none', runtimes: { python: { command: PYTHON } } }), 'test_unbuffered_os_exit.py', { code });
    expect(unbuffered.texts).toEqual(['lost in live mode']);
  });

  it('refuses a buffering mode or flush interval it does not know', () => {
    const make = (python: Record<string, unknown>) => () => createScriptRunner({ logger: silentLogger, runtimes: { python } as never });
    expect(make({ buffering: 'fast' })).toThrow(/runtimes\.python\.buffering must be 'unbuffered' or 'live', got "fast"/);
    expect(make({ buffering: 'live', liveFlushMs: 0 })).toThrow(/liveFlushMs must be a whole number of milliseconds from 1 to 10000, got 0/);
    expect(make({ buffering: 'live', liveFlushMs: 2.5 })).toThrow(/liveFlushMs/);
  });
});
