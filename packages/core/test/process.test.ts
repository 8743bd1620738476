/**
 * Process control with real children: exit codes, signals, timeouts, process groups, drain,
 * spawn errors, environment, literal arguments, run directories.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import type { ScriptRunnerOptions } from '../src/index.js';
import { closeRunners, isAlive, makeRunner as makeAnyRunner, runFixture, waitUntil } from './helpers.js';

// Process control of the runner itself (groups, signals, drain), observed through the host pids
// the scripts print: unisolated, because in a sandbox's PID namespace those pids are its own.
// isolation.test.ts checks the same guarantees under bubblewrap.
const makeRunner = (options: ScriptRunnerOptions = {}) => makeAnyRunner({ isolation: 'none', ...options });

afterEach(closeRunners);

/**
 * The interpreter itself, for the tests that time a script's start against a timeout: a version
 * manager's shim (pyenv: bash and several subprocesses) took up to 2.8 s to start under load here.
 */
const fastPython = { runtimes: { python: { command: execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim() } } };

function pidFrom(texts: string[], prefix: string): number {
  const line = texts.find((t) => t.startsWith(prefix));
  if (!line) throw new Error(`no "${prefix}" line in ${JSON.stringify(texts)}`);
  return Number(line.slice(prefix.length));
}

describe('exit status', () => {
  it('succeeds only with exit code 0', async () => {
    const runner = makeRunner();
    const ok = await runFixture(runner, 'test_exit_code.py', { args: ['0'] });
    expect(ok.execution).toMatchObject({ status: 'succeeded', exitCode: 0, signal: null, errorMessage: null });
    const bad = await runFixture(runner, 'test_exit_code.py', { args: ['3'] });
    expect(bad.execution).toMatchObject({ status: 'failed', exitCode: 3, signal: null, lineCount: 2 });
    expect(bad.execution.errorMessage).toBe('exited with code 3\nsomething went wrong');
    for (const execution of [ok.execution, bad.execution]) {
      expect(execution.durationMs).toBeGreaterThan(0);
      expect(execution.finishedAt!.getTime() - execution.startedAt!.getTime()).toBe(execution.durationMs);
    }
  });

  for (const signal of ['SIGKILL', 'SIGTERM', 'SIGSEGV']) {
    it(`a script killed by ${signal} is failed with the signal, never succeeded`, async () => {
      const runner = makeRunner();
      const { execution, texts } = await runFixture(runner, 'test_signal_self.py', { args: [signal] });
      expect(texts[0]).toBe(`sending myself ${signal}`);
      expect(execution).toMatchObject({ status: 'failed', exitCode: null, signal });
      expect(execution.errorMessage).toContain(`killed by signal ${signal}`);
    });
  }
});

describe('timeout and cancel', () => {
  it('a timeout kills the script and the child process it started', async () => {
    const runner = makeRunner({ killGraceMs: 500, ...fastPython });
    // Long enough for the script to start its child and say so even on a loaded machine.
    const { execution, texts, lines } = await runFixture(runner, 'test_child_tree.py', { timeoutMs: 4000 });
    const childPid = pidFrom(texts, 'child pid ');
    expect(execution.status).toBe('timed_out');
    expect(execution.errorMessage).toBe('timed out after 4000 ms');
    expect(execution.durationMs).toBeGreaterThanOrEqual(3900);
    expect(execution.durationMs).toBeLessThan(15_000);
    expect(await waitUntil(() => !isAlive(childPid), 2000)).toBe(true);
    const system = lines.filter((l) => l.stream === 'system');
    expect(system[0]!.text).toContain('timed out after 4000 ms');
    expect(system[0]!.level).toBe('error');
  });

  it('escalates to SIGKILL after killGraceMs when SIGTERM is ignored', async () => {
    const runner = makeRunner({ killGraceMs: 300, ...fastPython });
    // Both processes say they are ready only after their SIGTERM handler is in place: a stop sent
    // earlier would kill them before they could ignore it (Python's start-up time varies with load).
    const code = [
      'import signal, subprocess, sys, time',
      'signal.signal(signal.SIGTERM, signal.SIG_IGN)',
      'child = subprocess.Popen([sys.executable, "-c", "import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(f\'child ready {os.getpid()}\', flush=True); time.sleep(600)"])',
      'print(f"child pid {child.pid}", flush=True)',
      'print("parent ready", flush=True)',
      'while True: time.sleep(1)',
    ].join('\n');
    const script = await runner.uploadScript({ filename: 'test_stubborn.py', content: Buffer.from(code) });
    const texts: string[] = [];
    const queued = await runner.run(script.id);
    runner.on('execution:log', (batch) => {
      if (batch.executionId === queued.id) for (const line of batch.lines) texts.push(line.text);
    });
    const ready = () => texts.includes('parent ready') && texts.some((t) => t.startsWith('child ready '));
    expect(await waitUntil(ready, 20_000)).toBe(true);
    const execution = await runner.cancel(queued.id);
    const lines = await runner.readLogs(queued.id);
    expect(execution).toMatchObject({ status: 'cancelled', signal: 'SIGKILL' });
    expect(lines.some((l) => l.stream === 'system' && l.text.includes('sent SIGKILL'))).toBe(true);
    expect(await waitUntil(() => !isAlive(pidFrom(texts, 'child pid ')), 2000)).toBe(true);
  });

  it('cancel stops a running script and its process group', async () => {
    const runner = makeRunner();
    const script = await runner.uploadScript({ filename: 'test_child_tree.py', content: await import('./helpers.js').then((h) => h.fixture('test_child_tree.py')) });
    let childPid = 0;
    runner.on('execution:log', (batch) => {
      for (const line of batch.lines) if (line.text.startsWith('child pid ')) childPid = Number(line.text.slice(10));
    });
    const execution = await runner.run(script.id);
    expect(await waitUntil(() => childPid > 0, 5000)).toBe(true);
    const cancelled = await runner.cancel(execution.id);
    expect(cancelled).toMatchObject({ status: 'cancelled', errorMessage: 'cancelled by request' });
    expect(await waitUntil(() => !isAlive(childPid), 2000)).toBe(true);
    // Cancelling again is harmless and returns the same terminal record.
    expect((await runner.cancel(execution.id)).status).toBe('cancelled');
  });
});

describe('drain', () => {
  it('a background grandchild holding stdout does not keep the execution running', async () => {
    const runner = makeRunner({ drainTimeoutMs: 1000, ...fastPython });
    const { execution, texts } = await runFixture(runner, 'test_grandchild_holds_pipe.py');
    expect(execution.status).toBe('succeeded');
    expect(texts.slice(0, 2)).toEqual([texts[0], 'main process exiting']);
    // The background process would hold the pipe for 60 s: the run ended after the 1 s drain
    // (with room for a loaded machine's start-up times).
    expect(execution.durationMs).toBeLessThan(15_000);
    const bgPid = pidFrom(texts, 'background pid ');
    expect(await waitUntil(() => !isAlive(bgPid), 2000)).toBe(true);
  });

  it('kills background processes left behind even when they closed their output', async () => {
    const runner = makeRunner();
    const code = [
      'import subprocess, sys',
      'bg = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)',
      'print(f"background pid {bg.pid}")',
    ].join('\n');
    const { execution, texts } = await runFixture(runner, 'test_left_behind.py', { code });
    expect(execution.status).toBe('succeeded');
    expect(await waitUntil(() => !isAlive(pidFrom(texts, 'background pid ')), 2000)).toBe(true);
  });
});

describe('spawn errors', () => {
  it('a missing interpreter fails cleanly with the reason', async () => {
    const runner = makeRunner({ runtimes: { python: { command: '/nonexistent/bin/python3' } } });
    const { execution, lines } = await runFixture(runner, 'test_exit_code.py');
    expect(execution).toMatchObject({ status: 'failed', exitCode: null, signal: null });
    expect(execution.errorMessage).toMatch(/could not start "\/nonexistent\/bin\/python3".*ENOENT/);
    expect(lines.at(-1)).toMatchObject({ stream: 'system', level: 'error' });
    expect(execution.durationMs).not.toBeNull();
  });

  it('an interpreter that is not executable fails with EACCES', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sr-eacces-'));
    const fake = join(dir, 'python3');
    writeFileSync(fake, '#!/bin/sh\necho hi\n');
    chmodSync(fake, 0o644);
    try {
      const runner = makeRunner({ runtimes: { python: { command: fake } } });
      const { execution } = await runFixture(runner, 'test_exit_code.py');
      expect(execution.status).toBe('failed');
      expect(execution.errorMessage).toMatch(/EACCES/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('out of file descriptors', () => {
  it('a spawn that fails with EMFILE ends the run as failed instead of crashing the host', async () => {
    // A real fault: a host process limited to 100 descriptors uses them all up just before the
    // spawn. The built package is loaded, as a user would.
    const dir = mkdtempSync(join(tmpdir(), 'sr-emfile-'));
    const entry = pathToFileURL(join(__dirname, '..', 'dist', 'index.js')).href;
    const program = join(dir, 'host.mjs');
    writeFileSync(
      program,
      [
        `import { openSync } from 'node:fs';`,
        `import { createScriptRunner } from ${JSON.stringify(entry)};`,
        // No run directory mount: unmounting it spawns umount, which a host out of descriptors cannot either.
        `const runner = createScriptRunner({ logger: { warn() {}, error() {} }, isolation: 'none', workDir: ${JSON.stringify(dir)}, limits: { runDirBytes: null } });`,
        `const script = await runner.uploadScript({ filename: 'test_x.py', content: 'print("hi")' });`,
        `const fds = [];`,
        `runner.on('execution:started', () => { try { for (;;) fds.push(openSync('/dev/null', 'r')); } catch {} });`,
        `const e = await runner.waitFor((await runner.run(script.id)).id);`,
        `console.log(JSON.stringify({ status: e.status, errorMessage: e.errorMessage }));`,
        `await runner.close();`,
      ].join('\n'),
    );
    try {
      const out = execFileSync('bash', ['-c', `ulimit -n 100 && exec "${process.execPath}" "${program}"`], { encoding: 'utf8', timeout: 20_000 });
      // Out of descriptors at the start: whatever meets it first (the run's cgroup, the spawn) ends the run.
      expect(JSON.parse(out)).toEqual({ status: 'failed', errorMessage: expect.stringMatching(/^could not start "python3": .*EMFILE/) });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('environment and arguments', () => {
  it('does not pass the host environment secrets to the script', async () => {
    process.env.DATABASE_URL = 'postgres://user:secret@db/prod';
    process.env.SR_TEST_API_TOKEN = 'tok_live_123';
    try {
      // The real interpreter, not a version-manager shim that adds variables of its own.
      const python = execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim();
      const runner = makeRunner({ env: { TEAM: 'power' }, runtimes: { python: { command: python } } });
      const { texts, execution } = await runFixture(runner, 'test_env_probe.py', { env: { RUN_MODE: 'dry' } });
      expect(execution.status).toBe('succeeded');
      const names = texts.filter((t) => t.startsWith('env ')).map((t) => t.slice(4));
      expect(names).not.toContain('DATABASE_URL');
      expect(names).not.toContain('SR_TEST_API_TOKEN');
      expect(names).toEqual(expect.arrayContaining(['PATH', 'HOME', 'TMPDIR', 'PYTHONUNBUFFERED', 'PYTHONIOENCODING', 'TEAM', 'RUN_MODE']));
      const allowed = /^(PATH|HOME|TMPDIR|LANG|LANGUAGE|TZ|TERM|LC_.*|PYTHON.*|TEAM|RUN_MODE|LD_LIBRARY_PATH|SCRIPTRUNNER_OUTPUT_DIR)$/;
      expect(names.filter((n) => !allowed.test(n))).toEqual([]);
      // cwd is a fresh run directory, not the host's cwd.
      const cwd = texts.at(-1)!.slice(4);
      expect(cwd).not.toBe(process.cwd());
      expect(cwd).toContain(execution.id);
    } finally {
      delete process.env.DATABASE_URL;
      delete process.env.SR_TEST_API_TOKEN;
    }
  });

  it('passes arguments literally, without a shell', async () => {
    const runner = makeRunner();
    const args = ['$(whoami)', '; rm -rf /', '`id`', 'a b  c', '*', '"quoted"', "'single'", '&& echo pwned', '|', '-h', '', 'ünïcødé'];
    const { texts, execution } = await runFixture(runner, 'test_args_echo.py', { args });
    expect(execution.status).toBe('succeeded');
    expect(execution.args).toEqual(args);
    expect(texts).toEqual(args.map((a, i) => `arg${i + 1}=${a}`));
  });

  it('rejects arguments and env values the OS cannot carry', async () => {
    const runner = makeRunner();
    const script = await runner.uploadScript({ filename: 'test_x.py', content: 'print(1)' });
    await expect(runner.run(script.id, { args: ['a\0b'] })).rejects.toMatchObject({ code: 'validation' });
    await expect(runner.run(script.id, { args: 'oops' as never })).rejects.toMatchObject({ code: 'validation' });
    await expect(runner.run(script.id, { args: [1 as never] })).rejects.toMatchObject({ code: 'validation' });
    await expect(runner.run(script.id, { env: { 'A=B': 'x' } })).rejects.toMatchObject({ code: 'validation' });
    await expect(runner.run(script.id, { timeoutMs: -1 })).rejects.toMatchObject({ code: 'validation' });
    // setTimeout would fire at once for anything longer than 2^31-1 ms.
    await expect(runner.run(script.id, { timeoutMs: 30 * 24 * 3600 * 1000 })).rejects.toMatchObject({ code: 'validation' });
    expect(() => makeRunner({ killGraceMs: 2 ** 31 })).toThrow(/killGraceMs must be an integer from 0 to 2147483647/);
    expect((await runner.listExecutions()).items).toEqual([]);
  });
});

describe('run directories', () => {
  it('runs a private copy in a fresh directory and removes it afterwards', async () => {
    const workDir = mkdtempSync(join(tmpdir(), 'sr-work-'));
    try {
      const runner = makeRunner({ workDir });
      const code = 'import os\nprint(os.getcwd())\nprint(sorted(os.listdir(".")))\nopen("test_x.py", "w").write("clobbered")\n';
      const first = await runFixture(runner, 'test_x.py', { code });
      expect(first.texts[0]!.startsWith(join(workDir, first.execution.id))).toBe(true);
      // `out` is the run's artifact directory (SCRIPTRUNNER_OUTPUT_DIR), empty until the script writes.
      expect(first.texts[1]).toBe("['.tmp', 'out', 'test_x.py']");
      expect(readdirSync(workDir)).toEqual([]);
      // The stored original is untouched by what the run did to its copy.
      expect(Buffer.from(await runner.getScriptContent(first.script.id)).toString()).toBe(code);
    } finally {
      rmSync(workDir, { recursive: true, force: true });
    }
  });

  it('keeps the directory with keepWorkDir', async () => {
    const workDir = mkdtempSync(join(tmpdir(), 'sr-work-'));
    try {
      const runner = makeRunner({ workDir, keepWorkDir: true });
      const { execution } = await runFixture(runner, 'test_x.py', { code: 'open("out.txt", "w").write("kept")\n' });
      const [dir] = readdirSync(workDir);
      expect(dir!.startsWith(execution.id)).toBe(true);
      expect(existsSync(join(workDir, dir!, 'out.txt'))).toBe(true);
    } finally {
      rmSync(workDir, { recursive: true, force: true });
    }
  });
});
