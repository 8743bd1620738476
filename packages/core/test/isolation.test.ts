/**
 * One test per attack an uploaded script could try, each a real python3 script run through the
 * runner in a real bubblewrap sandbox, with the host's view checked afterwards.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createScriptRunner, isScriptRunnerError, type ScriptRunnerOptions } from '../src/index.js';
import { closeRunners, fixture, makeRunner, processesWith, runFixture, silentLogger, waitUntil } from './helpers.js';

const hasBwrap = spawnSync('bwrap', ['--version']).status === 0;
/** Outside CI a machine without bubblewrap skips with the hint; in CI the suite runs and fails. */
const describeSandbox = hasBwrap || process.env.CI === 'true' ? describe : describe.skip;
if (!hasBwrap && process.env.CI !== 'true') {
  console.warn('[isolation.test] bubblewrap is missing; install it with: apt-get install -y bubblewrap');
}

const NOBODY = { uid: 65534, gid: 65534 };

let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'sr-isolation-'));
  // runAs: the scripts' user must get through to its run directory.
  chmodSync(root, 0o711);
});
afterAll(() => rmSync(root, { recursive: true, force: true }));
afterEach(closeRunners);

function sandboxed(options: ScriptRunnerOptions = {}) {
  return makeRunner({ isolation: 'bwrap', workDir: join(root, 'runs'), ...options });
}

const py = (...lines: string[]) => lines.join('\n') + '\n';

/** Until the execution has stored a line with this text. */
async function waitUntilLogged(runner: ReturnType<typeof makeRunner>, executionId: string, text: string): Promise<boolean> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if ((await runner.readLogs(executionId)).some((l) => l.text === text)) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

describeSandbox('isolation: bwrap', () => {
  it('hides the host environment and the host processes (/proc/<pid>/environ)', async () => {
    process.env.SR_ATTACK_SECRET = 'hunter2-host-secret';
    try {
      const code = py(
        'import os, sys',
        'host_pid = sys.argv[1]',
        'print("env has secret:", any("hunter2" in v for v in os.environ.values()))',
        'for pid in sorted({str(os.getppid()), "1", host_pid}):',
        '    try:',
        '        data = open(f"/proc/{pid}/environ", "rb").read()',
        '        print(f"environ {pid}:", b"hunter2" in data)',
        '    except OSError as e:',
        '        print(f"environ {pid}: denied", type(e).__name__)',
        'leaks = []',
        'for entry in os.listdir("/proc"):',
        '    if entry.isdigit():',
        '        try:',
        '            if b"hunter2" in open(f"/proc/{entry}/environ", "rb").read(): leaks.append(entry)',
        '        except OSError: pass',
        'print("processes visible:", sorted(int(e) for e in os.listdir("/proc") if e.isdigit()))',
        'print("leaks:", leaks)',
      );
      const { execution, texts } = await runFixture(sandboxed(), 'test_secrets.py', { code, args: [String(process.pid)] });
      expect(execution.status).toBe('succeeded');
      expect(texts.join('\n')).not.toContain('hunter2-host-secret');
      expect(texts).toContain('env has secret: False');
      expect(texts).toContain('leaks: []');
      expect(texts).toContain(`environ ${process.pid}: denied FileNotFoundError`);
      // Only the sandbox's own processes: its init and the script.
      const visible = JSON.parse(texts.find((t) => t.startsWith('processes visible:'))!.slice(19)) as number[];
      expect(visible).not.toContain(process.pid);
      expect(visible.length).toBeLessThanOrEqual(3);
    } finally {
      delete process.env.SR_ATTACK_SECRET;
    }
  });

  it('denies writes outside the run directory and changes nothing there', async () => {
    const storeDir = join(root, 'store');
    mkdirSync(storeDir, { recursive: true });
    const storeFile = join(storeDir, 'scriptrunner.db');
    writeFileSync(storeFile, 'the stored scripts');
    const homeTarget = join(process.env.HOME ?? '/root', `sr-attack-${process.pid}`);
    const hostTmpTarget = join(tmpdir(), `sr-attack-${process.pid}`);

    // Another run, still going, whose directory the attacker tries to write into.
    const runner = sandboxed({ concurrency: 2 });
    const sleeper = await runner.uploadScript({ filename: 'test_victim.py', content: 'import time\nprint("up", flush=True)\ntime.sleep(30)\n' });
    const victim = await runner.run(sleeper.id);
    const runs = join(root, 'runs');
    expect(await waitUntil(() => existsSync(runs) && readdirSync(runs).some((d) => d.startsWith(victim.id)), 5000)).toBe(true);
    const victimDir = join(runs, readdirSync(runs).find((d) => d.startsWith(victim.id))!);
    const victimBefore = readdirSync(victimDir).sort();

    const code = py(
      'import os, sys',
      'for target in sys.argv[1:]:',
      '    try:',
      '        with open(target, "w") as f: f.write("pwned")',
      '        print("WROTE", target)',
      '    except OSError as e:',
      '        print("denied", target, type(e).__name__)',
      'open("mine.txt", "w").write("fine")',
      'open("/tmp/private.txt", "w").write("fine")',
      'print("own dir ok")',
    );
    const targets = [storeFile, join(storeDir, 'new.db'), homeTarget, hostTmpTarget, join(victimDir, 'injected.py'), join(victimDir, 'test_victim.py'), '/usr/bin/evil', '/etc/passwd'];
    const { execution, texts } = await runFixture(runner, 'test_escape.py', { code, args: targets });
    await runner.cancel(victim.id);

    expect(execution.status).toBe('succeeded');
    // /tmp inside is a private tmpfs: the write lands there, never in the host's /tmp.
    expect(texts.filter((t) => t.startsWith('WROTE'))).toEqual([`WROTE ${hostTmpTarget}`]);
    expect(texts.filter((t) => t.startsWith('denied'))).toHaveLength(targets.length - 1);
    expect(texts).toContain('own dir ok');
    expect(readFileSync(storeFile, 'utf8')).toBe('the stored scripts');
    expect(readdirSync(storeDir)).toEqual(['scriptrunner.db']);
    expect(existsSync(homeTarget)).toBe(false);
    expect(existsSync(hostTmpTarget)).toBe(false);
    expect(existsSync(join(tmpdir(), 'private.txt'))).toBe(false);
    if (existsSync(victimDir)) expect(readdirSync(victimDir).sort()).toEqual(victimBefore);
  });

  it('cannot remount the read-only system directories writable, even when the host runs as root', async () => {
    // Without --cap-drop ALL, bubblewrap started by root leaves root every capability inside its
    // user namespace: this remount succeeded and the write below landed in the host's /usr.
    const target = `/usr/sr-attack-${process.pid}`;
    const code = py(
      'import ctypes, os, sys',
      'print("CapEff", [l.split()[1] for l in open("/proc/self/status") if l.startswith("CapEff")][0])',
      'libc = ctypes.CDLL(None, use_errno=True)',
      'MS_REMOUNT, MS_BIND = 32, 4096',
      'rc = libc.mount(b"none", b"/usr", None, MS_REMOUNT | MS_BIND, None)',
      'print("remount", rc, os.strerror(ctypes.get_errno()) if rc else "")',
      'rc = libc.umount2(b"/usr", 2)',
      'print("umount", rc)',
      'try:',
      '    open(sys.argv[1], "w").write("pwned")',
      '    print("WROTE")',
      'except OSError as e:',
      '    print("denied", type(e).__name__)',
    );
    try {
      // As root inside (runAs: null): a sandboxed script of a root host otherwise runs as 65534.
      const { texts } = await runFixture(sandboxed({ runAs: null }), 'test_remount.py', { code, args: [target] });
      expect(texts).toEqual(['CapEff 0000000000000000', 'remount -1 Operation not permitted', 'umount -1', 'denied OSError']);
      expect(existsSync(target)).toBe(false);
    } finally {
      rmSync(target, { force: true });
    }
  });

  it('cannot change the kernel settings in /proc/sys, fill RAM through /tmp or /dev, and gets a graceful SIGTERM', async () => {
    const before = readFileSync('/proc/sys/kernel/printk_ratelimit', 'utf8').trim();
    const code = py(
      'import os',
      'value = open("/proc/sys/kernel/printk_ratelimit").read().strip()',
      'try:',
      '    open("/proc/sys/kernel/printk_ratelimit", "w").write(str(int(value) + 1))',
      '    print("WROTE sysctl")',
      'except OSError as e:',
      '    print("sysctl denied", e.errno == 30)',
      'for path in ("/tmp/fill", "/dev/shm/fill"):',
      '    try:',
      '        with open(path, "wb") as f:',
      '            for _ in range(8): f.write(b"x" * 1024 * 1024)',
      '        print("filled", path)',
      '    except OSError as e:',
      '        print("full", path, e.errno == 28)',
      'try:',
      '    open("/dev/evil", "w")',
      '    print("WROTE /dev")',
      'except OSError as e:',
      '    print("dev denied", e.errno == 30)',
    );
    // As root inside (runAs: null), who could write /proc/sys were it not read-only.
    const { texts } = await runFixture(sandboxed({ runAs: null, limits: { tmpBytes: 4 * 1024 * 1024 } }), 'test_kernel.py', { code });
    expect(texts).toEqual(['sysctl denied True', 'full /tmp/fill True', 'full /dev/shm/fill True', 'dev denied True']);
    expect(readFileSync('/proc/sys/kernel/printk_ratelimit', 'utf8').trim()).toBe(before);

    // Cancel: the script's SIGTERM handler runs (bwrap itself is spared the SIGTERM that would
    // make it SIGKILL the sandbox at once).
    const runner = sandboxed({ killGraceMs: 5000 });
    const script = await runner.uploadScript({
      filename: 'test_graceful.py',
      content: py(
        'import signal, sys, time',
        'def stop(*_):',
        '    print("got SIGTERM", flush=True)',
        '    time.sleep(0.3)',
        '    print("cleaned up", flush=True)',
        '    sys.exit(0)',
        'signal.signal(signal.SIGTERM, stop)',
        'print("ready", flush=True)',
        'time.sleep(60)',
      ),
    });
    const execution = await runner.run(script.id);
    expect(await waitUntilLogged(runner, execution.id, 'ready')).toBe(true);
    const cancelled = await runner.cancel(execution.id);
    expect(cancelled.status).toBe('cancelled');
    const texts2 = (await runner.readLogs(execution.id)).map((l) => l.text);
    expect(texts2).toEqual(expect.arrayContaining(['got SIGTERM', 'cleaned up']));
  });

  describe('network', () => {
    let server: Server;
    let port = 0;
    let connections = 0;
    beforeAll(async () => {
      server = createServer((socket) => {
        connections++;
        socket.end('hello from the host\n');
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      port = (server.address() as { port: number }).port;
    });
    afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

    const connect = py(
      'import socket, sys',
      'try:',
      '    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)',
      '    print("connected:", s.recv(100).decode().strip())',
      'except OSError as e:',
      '    print("refused:", type(e).__name__)',
    );

    it('refuses a connection to a server on the host loopback', async () => {
      const before = connections;
      const { texts } = await runFixture(sandboxed(), 'test_net.py', { code: connect, args: [String(port)] });
      expect(texts).toEqual(['refused: ConnectionRefusedError']);
      expect(connections).toBe(before);
    });

    it('connects with allowNetwork: true', async () => {
      const before = connections;
      const { texts } = await runFixture(sandboxed({ allowNetwork: true }), 'test_net.py', { code: connect, args: [String(port)] });
      expect(texts).toEqual(['connected: hello from the host']);
      expect(connections).toBe(before + 1);
    });
  });

  it('a process that calls setsid() is gone when the run ends', async () => {
    const marker = `sr-setsid-${process.pid}-${Date.now()}`;
    const code = py(
      'import os, subprocess, sys, time',
      'pid = os.fork()',
      'if pid == 0:',
      '    os.setsid()',
      '    os.closerange(0, 3)',
      '    os.execvp("sleep", ["sleep", "600", sys.argv[1]])',
      'print("escaped child started", flush=True)',
      'time.sleep(1.5)',
      'print("main done")',
    );
    const runner = sandboxed();
    let seenDuringRun = false;
    runner.on('execution:log', (batch) => {
      if (batch.lines.some((l) => l.text === 'escaped child started')) {
        // GNU sleep accepts extra operands and adds them up; a marker it cannot parse would make
        // it exit, so the marker is checked for while it runs.
        void waitUntil(() => processesWith(marker).length > 0, 1000).then((seen) => {
          seenDuringRun = seen;
        });
      }
    });
    const { execution } = await runFixture(runner, 'test_setsid.py', { code, args: [marker] });
    expect(execution.status).toBe('succeeded');
    expect(await waitUntil(() => processesWith(marker).length === 0, 3000)).toBe(true);
    expect(seenDuringRun).toBe(true);
  });

  it('a fork loop is held by maxProcesses (runAs a non-root user) and the host is unaffected', async () => {
    const marker = `sr-fork-${process.pid}-${Date.now()}`;
    const code = py(
      'import os, sys, time',
      'children = 0',
      'for i in range(1000):',
      '    try:',
      '        pid = os.fork()',
      '    except OSError as e:',
      '        print("fork refused after", children, type(e).__name__, flush=True)',
      '        break',
      '    if pid == 0:',
      '        os.execvp("sleep", ["sleep", "600", sys.argv[1]])',
      '    children += 1',
      'print("uid", os.getuid(), "children", children, flush=True)',
    );
    // Its own work root: one created for runAs lets that user through (an existing 0700 one would not).
    const runner = sandboxed({ runAs: NOBODY, limits: { maxProcesses: 40 }, workDir: join(root, 'runs-nobody') });
    const { execution, texts } = await runFixture(runner, 'test_fork.py', { code, args: [marker] });
    expect(execution.status).toBe('succeeded');
    const summary = texts.find((t) => t.startsWith('uid '))!;
    const [, uid, , children] = summary.split(' ');
    expect(Number(uid)).toBe(NOBODY.uid);
    expect(Number(children)).toBeLessThan(40);
    expect(texts.some((t) => t.startsWith('fork refused after') && t.endsWith('BlockingIOError'))).toBe(true);
    // Everything it started went with the run, and the host still starts processes.
    expect(await waitUntil(() => processesWith(marker).length === 0, 3000)).toBe(true);
    expect(spawnSync('true').status).toBe(0);
  });

  it('allocating far more than memoryBytes fails the run with the reason', async () => {
    const runner = sandboxed({ limits: { memoryBytes: 256 * 1024 * 1024 } });
    const code = py('data = bytearray(2 * 1024 * 1024 * 1024)', 'print("allocated 2 GiB")');
    const { execution, texts } = await runFixture(runner, 'test_memory.py', { code });
    expect(execution.status).toBe('failed');
    expect(texts).not.toContain('allocated 2 GiB');
    expect(execution.errorMessage).toMatch(/^exited with code 1 \(memory limit of 268435456 bytes reached: limits\.memoryBytes\)/);
    expect(execution.errorMessage).toContain('MemoryError');
    // The host goes on: the next run on the same runner succeeds.
    expect((await runFixture(runner, 'test_after.py', { code: 'print("still fine")' })).execution.status).toBe('succeeded');
  });

  it('writing a file larger than maxFileBytes fails the run with the reason', async () => {
    const runner = sandboxed({ limits: { maxFileBytes: 1024 * 1024 }, keepWorkDir: true, workDir: join(root, 'kept') });
    const code = py('with open("big.bin", "wb") as f:', '    f.write(b"x" * 4 * 1024 * 1024)', 'print("wrote 4 MiB")');
    const { execution, texts } = await runFixture(runner, 'test_bigfile.py', { code });
    expect(execution.status).toBe('failed');
    expect(texts).not.toContain('wrote 4 MiB');
    expect(execution.errorMessage).toMatch(/file size limit of 1048576 bytes reached: limits\.maxFileBytes/);
    expect(execution.errorMessage).toContain('File too large');
    const runDir = join(root, 'kept', readdirSync(join(root, 'kept')).find((d) => d.startsWith(execution.id))!);
    expect(statSync(join(runDir, 'big.bin')).size).toBeLessThanOrEqual(1024 * 1024);
  });

  it('cpuSeconds stops a busy loop with SIGXCPU and says so', async () => {
    const runner = sandboxed({ limits: { cpuSeconds: 1 } });
    const { execution } = await runFixture(runner, 'test_spin.py', { code: 'while True:\n    pass\n', timeoutMs: 20_000 });
    expect(execution).toMatchObject({ status: 'failed', signal: 'SIGXCPU', exitCode: null });
    expect(execution.errorMessage).toBe('killed by signal SIGXCPU (CPU time limit of 1 s reached: limits.cpuSeconds)');
  });

  it('printing past maxLogLines stops the run: failed, truncated, reason logged', async () => {
    const runner = sandboxed({ maxLogLines: 1000 });
    const started = Date.now();
    const { execution, lines } = await runFixture(runner, 'test_flood.py', { code: 'i = 0\nwhile True:\n    i += 1\n    print(i)\n', timeoutMs: 60_000 });
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(execution).toMatchObject({ status: 'failed', truncated: true });
    expect(execution.errorMessage).toBe('stopped: the script printed more than 1000 lines (maxLogLines)');
    const output = lines.filter((l) => l.stream === 'stdout');
    expect(output.map((l) => l.text)).toEqual(Array.from({ length: 1000 }, (_, i) => String(i + 1)));
    const system = lines.filter((l) => l.stream === 'system');
    expect(system[0]).toMatchObject({ level: 'error', text: expect.stringContaining('output limit reached: the script printed more than 1000 lines (maxLogLines)') });
    const stored = await runner.readLogs(execution.id, { limit: 10_000 });
    expect(stored.length).toBe(execution.lineCount);
    expect(stored.map((l) => l.seq)).toEqual(Array.from({ length: stored.length }, (_, i) => i + 1));
  });

  it('printing past maxLogBytes stops the run the same way', async () => {
    const runner = sandboxed({ maxLogBytes: 10_000 });
    const { execution, lines } = await runFixture(runner, 'test_flood_bytes.py', { code: 'while True:\n    print("x" * 99)\n', timeoutMs: 60_000 });
    expect(execution).toMatchObject({ status: 'failed', truncated: true, errorMessage: 'stopped: the script printed more than 10000 bytes (maxLogBytes)' });
    expect(lines.filter((l) => l.stream === 'stdout')).toHaveLength(101);
  });

  it('test_sample.py gives the same lines with and without isolation', async () => {
    const mask = (text: string) => text.replace(/\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/, '<time>');
    const plain = await runFixture(makeRunner({ isolation: 'none' }), 'test_sample.py');
    const boxed = await runFixture(sandboxed(), 'test_sample.py');
    expect(boxed.execution.status).toBe('succeeded');
    expect(plain.execution.status).toBe('succeeded');
    const shape = (run: typeof plain) => run.lines.map((l) => ({ seq: l.seq, stream: l.stream, level: l.level, text: mask(l.text) }));
    expect(shape(boxed)).toEqual(shape(plain));
    expect(boxed.lines.length).toBe(fixture('test_sample.py').toString().match(/^print\(/gm)!.length);
  });

  it('readPaths are readable and stay read-only', async () => {
    const models = join(root, 'models');
    mkdirSync(models, { recursive: true });
    writeFileSync(join(models, 'weights.txt'), 'w=0.42');
    const code = py(
      'import sys',
      'print(open(sys.argv[1] + "/weights.txt").read())',
      'try:',
      '    open(sys.argv[1] + "/weights.txt", "w").write("changed")',
      '    print("WROTE")',
      'except OSError as e:',
      '    print("denied", type(e).__name__)',
    );
    const { texts } = await runFixture(sandboxed({ readPaths: [models] }), 'test_models.py', { code, args: [models] });
    expect(texts).toEqual(['w=0.42', 'denied OSError']);
    expect(readFileSync(join(models, 'weights.txt'), 'utf8')).toBe('w=0.42');
    // Without readPaths the folder does not exist inside.
    const { texts: hidden } = await runFixture(sandboxed(), 'test_models.py', { code: 'import os, sys\nprint(os.path.exists(sys.argv[1]))\n', args: [models] });
    expect(hidden).toEqual(['False']);
  });

  it('a venv outside /usr: the sandbox runs it as the host does, its own packages importable, without readPaths', async () => {
    // A venv with a module only it has, first on PATH as if activated: `python3` is the venv's.
    const venv = join(root, 'host-venv');
    if (!existsSync(venv)) execFileSync('/usr/bin/python3', ['-m', 'venv', '--without-pip', venv]);
    const site = execFileSync(join(venv, 'bin', 'python3'), ['-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'], { encoding: 'utf8' }).trim();
    writeFileSync(join(site, 'sr_only_in_venv.py'), 'WHERE = "venv"\n');
    const code = py('import sys, sr_only_in_venv', 'print(sys.prefix, sr_only_in_venv.WHERE)');
    const savedPath = process.env.PATH;
    process.env.PATH = `${join(venv, 'bin')}:/usr/bin:/bin`;
    try {
      const warnings: string[] = [];
      const logger = { warn: (m: string) => warnings.push(m), error: () => {} };
      for (const isolation of ['bwrap', 'none'] as const) {
        const runner = makeRunner({ isolation, workDir: join(root, `runs-venv-${isolation}`), logger });
        const { execution, texts } = await runFixture(runner, 'test_venv.py', { code });
        expect(execution.status, `${isolation}: ${execution.errorMessage ?? ''}`).toBe('succeeded');
        expect(texts).toEqual([`${venv} venv`]);
      }
      expect(warnings.filter((w) => w.includes('python3'))).toEqual([]);
    } finally {
      process.env.PATH = savedPath;
    }
  });

  it('an interpreter whose installation holds workDir: runs fail saying what to do, nothing else is shown', async () => {
    const venv = join(root, 'venv-around-work');
    if (!existsSync(venv)) execFileSync('/usr/bin/python3', ['-m', 'venv', '--without-pip', venv]);
    const runner = sandboxed({ runtimes: { python: { command: join(venv, 'bin', 'python3') } }, workDir: join(venv, 'runs') });
    const { execution } = await runFixture(runner, 'test_hidden.py', { code: 'print("ran")\n' });
    expect(execution.status).toBe('failed');
    expect(execution.errorMessage).toContain(`whose installation ${venv} the sandbox must not show (it holds workDir, with other runs)`);
    expect(execution.errorMessage).toContain("set runtimes.python.command, or run with isolation: 'none'");
  });
});

describeSandbox('isolation: which interpreter runs', () => {
  it('python3 as the host resolves it (through links and shims) is what runs in the sandbox, without a warning', async () => {
    // A host-only python3 first on PATH (like a version manager's shim): the sandbox runs what it resolves to.
    const hostBin = join(root, 'host-only-bin');
    mkdirSync(hostBin, { recursive: true });
    if (!existsSync(join(hostBin, 'python3'))) symlinkSync('/usr/bin/python3', join(hostBin, 'python3'));
    const savedPath = process.env.PATH;
    process.env.PATH = `${hostBin}:/usr/bin:/bin`;
    try {
      const warnings: string[] = [];
      const logger = { warn: (m: string) => warnings.push(m), error: () => {} };
      const real = realpathSync('/usr/bin/python3');
      for (const isolation of ['bwrap', 'none'] as const) {
        const runner = makeRunner({ isolation, workDir: join(root, 'runs'), logger });
        const { texts } = await runFixture(runner, 'test_which.py', { code: 'import sys\nprint(sys.executable)\n' });
        expect(texts).toEqual([real]);
      }
      expect(warnings).toEqual([]);
    } finally {
      process.env.PATH = savedPath;
    }
  });

  it('the default user runs with no capabilities and no new privileges, though bwrap itself ran as root', async () => {
    const code = py(
      'import os',
      'status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)',
      'print(os.getuid(), status["CapEff"].strip(), status["CapBnd"].strip(), status["NoNewPrivs"].strip())',
    );
    const { texts } = await runFixture(sandboxed(), 'test_caps.py', { code });
    expect(texts).toEqual([`${process.getuid?.() === 0 ? 65534 : process.getuid?.()} 0000000000000000 0000000000000000 1`]);
  });
});

describeSandbox('runAs', () => {
  for (const isolation of ['none', 'bwrap'] as const) {
    it(`runs scripts as the given user (isolation ${isolation})`, async () => {
      const runner = makeRunner({ isolation, runAs: NOBODY, workDir: join(root, `runas-${isolation}`) });
      // A root-owned place outside /tmp (inside a sandbox /tmp is private, so writes there land nowhere).
      const target = join(process.env.HOME ?? '/root', `sr-runas-${isolation}-${process.pid}`);
      const code = py(
        'import os, sys',
        'print("uid", os.getuid(), "gid", os.getgid(), "groups", os.getgroups())',
        'open("own.txt", "w").write("ok")',
        'try:',
        '    open(sys.argv[1], "w").write("x")',
        '    print("WROTE")',
        'except OSError as e:',
        '    print("denied", type(e).__name__)',
      );
      const { execution, texts } = await runFixture(runner, 'test_whoami.py', { code, args: [target] });
      expect(execution.status, execution.errorMessage ?? '').toBe('succeeded');
      expect(texts[0]).toBe('uid 65534 gid 65534 groups []');
      expect(texts[1]).toMatch(/^denied /);
      expect(existsSync(target)).toBe(false);
    });
  }

  it("leaves a caller's existing work directory as it is, and says when it does not let the user through", async () => {
    const open = join(root, 'shared-755');
    mkdirSync(open, { mode: 0o755 });
    chmodSync(open, 0o755);
    const ok = await runFixture(makeRunner({ isolation: 'none', runAs: NOBODY, workDir: open }), 'test_w.py', { code: 'print("ok")' });
    expect(ok.texts).toEqual(['ok']);
    expect(statSync(open).mode & 0o7777).toBe(0o755);
    const closed = join(root, 'private-700');
    mkdirSync(closed, { mode: 0o700 });
    const refused = await runFixture(makeRunner({ isolation: 'none', runAs: NOBODY, workDir: closed }), 'test_w.py', { code: 'print("ok")' });
    expect(refused.execution.status).toBe('failed');
    expect(refused.execution.errorMessage).toContain(`workDir: ${closed} does not let uid 65534 (runAs) through`);
    expect(statSync(closed).mode & 0o7777).toBe(0o700);
  });

  it('refuses root and a non-root host', () => {
    expect(() => createScriptRunner({ runAs: { uid: 0, gid: 0 }, logger: silentLogger })).toThrow(/runAs exists so scripts do not run as root/);
    expect(() => createScriptRunner({ runAs: { uid: -1, gid: 5 } as never, logger: silentLogger })).toThrow(/runAs must be/);
  });
});

describe('isolation options', () => {
  it("'auto' without bubblewrap warns once and runs unisolated; 'bwrap' refuses with code unavailable", async () => {
    // A PATH on which prlimit is found but bwrap is not.
    const bin = join(root, 'no-bwrap-bin');
    mkdirSync(bin, { recursive: true });
    const tools = {
      prlimit: spawnSync('sh', ['-c', 'command -v prlimit'], { encoding: 'utf8' }).stdout.trim(),
      // The interpreter itself, not a version manager's shell shim.
      python3: spawnSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).stdout.trim(),
    };
    for (const [tool, found] of Object.entries(tools)) {
      if (!existsSync(join(bin, tool))) symlinkSync(found, join(bin, tool));
    }
    const savedPath = process.env.PATH;
    process.env.PATH = bin;
    try {
      const warnings: string[] = [];
      const runner = makeRunner({ isolation: 'auto', logger: { warn: (m) => warnings.push(m), error: () => {} } });
      const { texts } = await runFixture(runner, 'test_where.py', { code: 'import os\nprint(os.path.exists("/proc/1/environ") and len(os.listdir("/proc")) > 0)\n' });
      expect(texts).toEqual(['True']);
      expect(warnings.filter((w) => w.includes('WITHOUT isolation'))).toHaveLength(1);
      expect(warnings.find((w) => w.includes('WITHOUT isolation'))).toMatch(/scripts run WITHOUT isolation: bubblewrap \(bwrap\) is not installed/);
      let error: unknown;
      try {
        createScriptRunner({ isolation: 'bwrap', logger: silentLogger });
      } catch (e) {
        error = e;
      }
      expect(isScriptRunnerError(error) && error.code).toBe('unavailable');
      expect((error as Error).message).toContain("isolation 'bwrap' cannot run on this host: bubblewrap (bwrap) is not installed (Debian/Ubuntu: apt-get install bubblewrap)");
    } finally {
      process.env.PATH = savedPath;
    }
  });

  it('a custom wrapper gets the spec and the run directory', async () => {
    const seen: string[] = [];
    const runner = makeRunner({
      isolation: (spec, context) => {
        seen.push(context.runDir);
        return { ...spec, command: '/usr/bin/env', args: ['WRAPPED_BY=custom', spec.command, ...spec.args] };
      },
    });
    const { texts } = await runFixture(runner, 'test_wrapped.py', { code: 'import os\nprint(os.environ.get("WRAPPED_BY"), os.getcwd())\n' });
    expect(seen).toHaveLength(1);
    expect(texts).toEqual([`custom ${seen[0]}`]);
  });

  it('rejects bad options with validation errors', () => {
    const bad: Array<[ScriptRunnerOptions, RegExp]> = [
      [{ isolation: 'docker' as never }, /isolation must be 'auto', 'bwrap', 'none' or a function/],
      [{ readPaths: ['relative/path'] }, /readPaths must be a list of absolute paths/],
      [{ allowNetwork: 'yes' as never }, /allowNetwork must be true or false/],
      [{ limits: { memoryBytes: -1 } }, /limits.memoryBytes must be a positive integer or null/],
      [{ limits: { ram: 5 } as never }, /limits.ram is not a limit/],
      [{ maxLogLines: 0 }, /maxLogLines must be an integer/],
    ];
    for (const [options, message] of bad) {
      let error: unknown;
      try {
        createScriptRunner({ logger: silentLogger, ...options });
      } catch (e) {
        error = e;
      }
      expect(isScriptRunnerError(error) && error.code, String(message)).toBe('validation');
      expect((error as Error).message).toMatch(message);
    }
  });

  it('limits: null lifts a default limit', async () => {
    const runner = makeRunner({ isolation: 'none', limits: { maxOpenFiles: null, memoryBytes: 64 * 1024 * 1024 } });
    const code = py('import resource', 'print(resource.getrlimit(resource.RLIMIT_AS)[0], resource.getrlimit(resource.RLIMIT_NOFILE)[0])');
    const hostNofile = spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).stdout.trim();
    const { texts } = await runFixture(runner, 'test_limits.py', { code });
    expect(texts).toEqual([`${64 * 1024 * 1024} ${hostNofile}`]);
    const defaults = await runFixture(makeRunner({ isolation: 'none' }), 'test_limits.py', { code });
    expect(defaults.texts).toEqual([`${4 * 1024 ** 3} 1024`]);
  });
});
