/**
 * Limits that bind a run as a whole (issue 12): a cgroup per run for processes and memory, a
 * size-capped run directory, an unprivileged user by default. Each test is an attack from the
 * issue, run for real (python3, bubblewrap, cgroups, loop mounts) with the host's view checked
 * while it runs and after.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createScriptRunner, isScriptRunnerError, memoryStore, type ScriptRunner } from '../src/index.js';
import { sampleExecution, sampleScript } from '../src/testing/index.js';
import { closeRunners, makeRunner, processesWith, runFixture, waitUntil } from './helpers.js';

const isRoot = process.getuid?.() === 0;
const hasBwrap = spawnSync('bwrap', ['--version']).status === 0;
/** Whole-run caps need root (v1 cgroups, mount) here; outside CI a host without them skips with the hint. */
const capable = isRoot && hasBwrap;
const describeCaps = capable || process.env.CI === 'true' ? describe : describe.skip;
if (!capable && process.env.CI !== 'true') {
  console.warn('[limits.test] needs root and bubblewrap (apt-get install -y bubblewrap); skipped');
}

const MiB = 1024 ** 2;
const py = (...lines: string[]) => lines.join('\n') + '\n';

let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'sr-limits-'));
  // The default user (65534) must get through to its run directories.
  chmodSync(root, 0o711);
});
afterAll(() => rmSync(root, { recursive: true, force: true }));
afterEach(closeRunners);

/** Where this process's cgroup of a v1 controller is (run cgroups are created under it). */
function ownCgroup(controller: string): string | null {
  const line = readFileSync('/proc/self/cgroup', 'utf8')
    .split('\n')
    .find((l) => l.split(':')[1]?.split(',').includes(controller));
  return line ? join('/sys/fs/cgroup', controller, line.slice(line.indexOf(':', line.indexOf(':') + 1) + 1)) : null;
}

function runCgroups(executionId: string): string[] {
  return ['pids', 'memory'].flatMap((c) => {
    const own = ownCgroup(c);
    return own ? [join(own, `scriptrunner-${executionId}`)] : [];
  });
}

function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4] ?? '')
    .filter((point) => point.startsWith(`${dir}/`));
}

/** Nothing of the run is left: no cgroup, no mount, no image, no run directory. */
function expectReleased(workDir: string, executionId: string): void {
  expect(runCgroups(executionId).filter((d) => existsSync(d))).toEqual([]);
  expect(mountsUnder(workDir)).toEqual([]);
  expect(existsSync(workDir) ? readdirSync(workDir).filter((n) => n.startsWith(executionId)) : []).toEqual([]);
}

function runDirOf(workDir: string, executionId: string): string | null {
  const name = existsSync(workDir) ? readdirSync(workDir).find((n) => n.startsWith(`${executionId}-`) && !n.endsWith('.img')) : undefined;
  return name === undefined ? null : join(workDir, name);
}

async function start(runner: ScriptRunner, filename: string, code: string, args: string[] = [], timeoutMs = 60_000) {
  const script = await runner.uploadScript({ filename, content: code });
  return runner.run(script.id, { args, timeoutMs });
}

async function waitForLine(runner: ScriptRunner, executionId: string, prefix: string, timeoutMs = 20_000): Promise<string | null> {
  let found: string | null = null;
  await waitUntil(
    async () => {
      found = (await runner.readLogs(executionId)).find((l) => l.text.startsWith(prefix))?.text ?? null;
      return found !== null;
    },
    timeoutMs,
    50,
  );
  return found;
}

describeCaps('whole-run caps (cgroup)', () => {
  // The attack: 2,000 processes forked as root with the default maxProcesses of 256 (RLIMIT_NPROC
  // does not bind root). Children stay alive (they keep the script's command line, so the host
  // can count them in /proc independently of the cgroup); the script keeps retrying while held.
  const forkLoop = py(
    'import os, sys, time',
    'forked, refused = 0, 0',
    'while forked < 2000 and not os.path.exists("done"):',
    '    try:',
    '        pid = os.fork()',
    '    except OSError as e:',
    '        if refused == 0: print("held after", forked, "uid", os.getuid(), type(e).__name__, flush=True)',
    '        refused += 1',
    '        time.sleep(0.01)',
    '        continue',
    '    if pid == 0:',
    '        time.sleep(600)',
    '        os._exit(0)',
    '    forked += 1',
    'print("forked", forked, "refused", refused, flush=True)',
    'sys.exit(3)',
  );

  for (const [label, runAs, uid] of [
    ['the default user', undefined, 65534],
    ['root (runAs: null)', null, 0],
  ] as const) {
    it(`a fork loop with the default options is held near maxProcesses, as ${label}; the host still spawns`, async () => {
      const workDir = join(root, `fork-${uid}`);
      const runner = makeRunner({ workDir, ...(runAs === null ? { runAs: null } : {}) });
      const marker = `sr-forkloop-${process.pid}-${Date.now()}`;
      const execution = await start(runner, 'test_forkloop.py', forkLoop, [marker]);
      const held = await waitForLine(runner, execution.id, 'held after');
      expect(held).toMatch(new RegExp(`^held after \\d+ uid ${uid} BlockingIOError$`));
      // Counted on the host while it keeps trying: bwrap, its init, the script and its children.
      const running = processesWith(marker).length;
      expect(running).toBeLessThanOrEqual(256);
      // Held by the cgroup, for root too (RLIMIT_NPROC does not bind root; with the cgroup it is not
      // set at all, so other runs as the same user do not hold this one lower).
      expect(running).toBeGreaterThanOrEqual(250);
      expect(spawnSync('true').status).toBe(0);

      writeFileSync(join(runDirOf(workDir, execution.id)!, 'done'), '');
      const final = await runner.waitFor(execution.id);
      expect(final.status).toBe('failed');
      expect(final.errorMessage).toMatch(/^exited with code 3 \(process limit of 256 for the whole run reached: limits\.maxProcesses\)/);
      // The children it left sleeping went with the run.
      expect(await waitUntil(() => processesWith(marker).length === 0, 5000)).toBe(true);
      expectReleased(workDir, execution.id);
    });
  }

  it("without a sandbox, a process that left the run's process group (setsid) is killed at the end", async () => {
    const workDir = join(root, 'setsid');
    const runner = makeRunner({ workDir, isolation: 'none' });
    const marker = `sr-escape-${process.pid}-${Date.now()}`;
    const code = py(
      'import os, sys, time',
      'if os.fork() == 0:',
      '    os.setsid()',
      '    os.closerange(0, 3)',
      '    time.sleep(600)',
      '    os._exit(0)',
      'print("escaped child started", flush=True)',
    );
    const { execution, texts } = await runFixture(runner, 'test_escape.py', { code, args: [marker] });
    expect(execution.status).toBe('succeeded');
    expect(texts).toEqual(['escaped child started']);
    // Only the run's cgroup still knew about it: it is in another session and process group.
    expect(await waitUntil(() => processesWith(marker).length === 0, 3000)).toBe(true);
    expectReleased(workDir, execution.id);
  });

  // Four children that each hold `size` bytes at once, reporting through a pipe; the parent waits
  // for all four, then ends them and exits 0.
  const fourHolders = py(
    'import os, sys, time',
    'size = int(sys.argv[1])',
    'r, w = os.pipe()',
    'kids = []',
    'for i in range(4):',
    '    pid = os.fork()',
    '    if pid == 0:',
    '        block = b"\\x01" * size',
    '        os.write(w, b"x")',
    '        time.sleep(600)',
    '        os._exit(0)',
    '    kids.append(pid)',
    'got = b""',
    'while len(got) < 4: got += os.read(r, 4)',
    'print("all four hold", size, flush=True)',
    'for pid in kids: os.kill(pid, 9)',
  );

  // The attack was four processes of 2 GiB each under memoryBytes 4 GiB. Touching memory
  // runs at about 60 MB/s on the test machine, so the same shape is scaled down: four processes
  // of 96 MiB each under 256 MiB, each one well within its own address-space limit.
  it('four processes that each stay under memoryBytes but together exceed it: the run is stopped and says why', async () => {
    const workDir = join(root, 'memory');
    const runner = makeRunner({ workDir, limits: { memoryBytes: 256 * MiB } });
    // Under the cap, the same script runs to the end (the cap is not hit by anything else).
    const small = await runFixture(runner, 'test_memory.py', { code: fourHolders, args: [String(32 * MiB)] });
    expect(small.execution.status, small.execution.errorMessage ?? '').toBe('succeeded');
    expect(small.texts).toEqual([`all four hold ${32 * MiB}`]);

    const { execution, lines } = await runFixture(runner, 'test_memory.py', { code: fourHolders, args: [String(96 * MiB)], timeoutMs: 60_000 });
    expect(execution.status).toBe('failed');
    expect(execution.signal).toBe('SIGKILL');
    expect(execution.errorMessage).toMatch(
      /^killed by signal SIGKILL \(memory limit of 268435456 bytes for the whole run reached: limits\.memoryBytes; the kernel OOM-killed \d+ process(es)? and the run was stopped\)/,
    );
    expect(lines.map((l) => l.text)).not.toContain(`all four hold ${96 * MiB}`);
    expect(lines.filter((l) => l.stream === 'system').map((l) => l.text)).toContainEqual(
      expect.stringContaining('the run reached its memory limit of 268435456 bytes (limits.memoryBytes, whole run)'),
    );
    expectReleased(workDir, execution.id);
  });
});

describeCaps('run directory size cap', () => {
  // The attack: after the first file hit maxFileBytes, four more files of that size landed
  // on the host's disk. The same shape, scaled down (writes run at tens of MB/s here): five files
  // of maxFileBytes (64 MiB) each against a run directory of twice that.
  it('five files of maxFileBytes each against runDirBytes of two: stopped at the cap, the host disk holds no more', async () => {
    const workDir = join(root, 'disk');
    const cap = 128 * MiB;
    const runner = makeRunner({ workDir, limits: { runDirBytes: cap, maxFileBytes: 64 * MiB } });
    const code = py(
      'import os, time',
      'chunk = b"x" * (4 * 1024 * 1024)',
      'total, last = 0, None',
      'for i in range(5):',
      '    written = 0',
      '    try:',
      '        with open(f"f{i}.bin", "wb") as f:',
      '            for _ in range(16):',
      '                f.write(chunk)',
      '                written += len(chunk)',
      '    except OSError as e:',
      '        last = e',
      '        written = os.path.getsize(f"f{i}.bin")',
      '    total += written',
      '    print(f"f{i}", written, last.errno if last else 0, flush=True)',
      'print("total", total, flush=True)',
      'while not os.path.exists("measured"): time.sleep(0.02)',
      'if last: raise last',
    );
    const execution = await start(runner, 'test_fill.py', code);
    const total = await waitForLine(runner, execution.id, 'total ', 40_000);
    const runDir = runDirOf(workDir, execution.id)!;
    const image = `${runDir}.img`;
    // What the host's disk holds for this run once written back: the image's allocated blocks (the
    // filesystem's own metadata takes a few percent of the cap).
    spawnSync('sync', ['-f', join(runDir, 'f0.bin')]);
    spawnSync('sync', ['-f', image]);
    const allocated = statSync(image).blocks * 512;
    const written = Number(total!.split(' ')[1]);
    expect(written).toBeGreaterThan(0.85 * cap);
    expect(written).toBeLessThanOrEqual(cap);
    expect(allocated).toBeGreaterThan(0.85 * cap);
    expect(allocated).toBeLessThanOrEqual(cap);
    expect(statSync(image).size).toBe(cap);
    // The host reads what the run wrote while the directory exists.
    expect(statSync(join(runDir, 'f0.bin')).size).toBe(64 * MiB);
    writeFileSync(join(runDir, 'measured'), '');

    const final = await runner.waitFor(execution.id);
    const texts = (await runner.readLogs(execution.id)).map((l) => l.text);
    expect(texts.filter((t) => /^f\d /.test(t)).map((t) => t.split(' ')[2])).toEqual(['0', '28', '28', '28', '28']);
    expect(final.status).toBe('failed');
    expect(final.errorMessage).toMatch(/^exited with code 1 \(run directory size limit of 134217728 bytes reached: limits\.runDirBytes\)/);
    expect(final.errorMessage).toContain('No space left on device');
    expectReleased(workDir, execution.id);
  });

  it('keepWorkDir keeps the files in a plain directory; the image and mount are gone', async () => {
    const workDir = join(root, 'kept');
    const runner = makeRunner({ workDir, keepWorkDir: true, limits: { runDirBytes: 8 * MiB } });
    const { execution } = await runFixture(runner, 'test_keep.py', { code: 'open("out.txt", "w").write("kept")\n' });
    expect(execution.status).toBe('succeeded');
    expect(mountsUnder(workDir)).toEqual([]);
    const names = readdirSync(workDir);
    expect(names).toHaveLength(1);
    expect(readFileSync(join(workDir, names[0]!, 'out.txt'), 'utf8')).toBe('kept');
    expect(readdirSync(join(workDir, names[0]!)).sort()).toEqual(['.tmp', 'out', 'out.txt', 'test_keep.py']);
  });
});

describeCaps('the default user', () => {
  const whoami = 'import os\nprint(os.getuid(), os.getgid(), os.getgroups())\n';

  it('sandboxed scripts of a root host run as 65534 by default; runAs: null opts out; unsandboxed ones are not switched', async () => {
    const workDir = join(root, 'whoami');
    expect((await runFixture(makeRunner({ workDir }), 'test_who.py', { code: whoami })).texts).toEqual(['65534 65534 []']);
    expect((await runFixture(makeRunner({ workDir, isolation: 'bwrap' }), 'test_who.py', { code: whoami })).texts).toEqual(['65534 65534 []']);
    expect((await runFixture(makeRunner({ workDir, runAs: null }), 'test_who.py', { code: whoami })).texts[0]).toMatch(/^0 0 /);
    expect((await runFixture(makeRunner({ workDir, runAs: { uid: 4242, gid: 4343 } }), 'test_who.py', { code: whoami })).texts).toEqual(['4242 4343 []']);
    expect((await runFixture(makeRunner({ workDir, isolation: 'none' }), 'test_who.py', { code: whoami })).texts[0]).toMatch(/^0 0 /);
  });

  it('a workDir the default user cannot reach: scripts run as root in the sandbox, and the runner says why', async () => {
    const closed = join(root, 'closed-700');
    mkdirSync(closed, { mode: 0o700 });
    const warnings: string[] = [];
    const runner = makeRunner({ workDir: join(closed, 'runs'), logger: { warn: (m) => warnings.push(m), error: () => {} } });
    // The sandbox is probed in the background: the first run waits for it, and then it has spoken.
    expect((await runFixture(runner, 'test_who.py', { code: whoami })).texts[0]).toMatch(/^0 0 /);
    expect(warnings.filter((w) => w.includes('ROOT'))).toEqual([
      `[scriptrunner] scripts run as ROOT inside the sandbox, not as uid 65534 (the default when the host is root): workDir: ${closed} does not let uid 65534 through (allow it with chmod o+x). Fix that, set runAs to a user that works, or pass runAs: null to accept root.`,
    ]);
  });
});

describeCaps('leftovers of a dead runner', () => {
  it("a probe mount left by a process that exited mid-probe is unmounted by the next process's probe", () => {
    // A pid that is gone, and a mounted probe directory named after it.
    const dead = spawnSync('true').pid!;
    const probe = mkdtempSync(join(tmpdir(), `scriptrunner-probe-${dead}-`));
    const image = join(probe, 'probe.img');
    const mnt = join(probe, 'mnt');
    execFileSync('truncate', ['-s', '8M', image]);
    execFileSync('mkfs.ext4', ['-q', '-F', image], { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
    mkdirSync(mnt);
    execFileSync('mount', ['-o', 'loop', image, mnt]);
    const mounted = () => readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${mnt} `);
    expect(mounted()).toBe(true);
    // A new process probes the host (once per process) when its first runner is created.
    const entry = pathToFileURL(join(__dirname, '..', 'dist', 'index.js')).href;
    const program = join(root, 'probe-sweep.mjs');
    writeFileSync(
      program,
      [
        `import { createScriptRunner } from ${JSON.stringify(entry)};`,
        `const runner = createScriptRunner({ logger: { warn() {}, error() {}, info: () => { console.log('probed'); } }, isolation: 'none' });`,
        `const script = await runner.uploadScript({ filename: 'test_ok.py', content: 'print(1)\\n' });`,
        `await runner.waitFor((await runner.run(script.id)).id);`,
        `await runner.close();`,
      ].join('\n'),
    );
    expect(execFileSync(process.execPath, [program], { encoding: 'utf8', timeout: 30_000 })).toContain('probed');
    expect(mounted()).toBe(false);
    expect(existsSync(probe)).toBe(false);
  });

  it('a runner that starts removes the cgroup (and what still runs in it) and the mount a killed runner left', async () => {
    const workDir = join(root, 'dead');
    const dir = mkdtempSync(join(tmpdir(), 'sr-dead-host-'));
    const marker = `sr-orphan-${process.pid}-${Date.now()}`;
    const entry = pathToFileURL(join(__dirname, '..', 'dist', 'index.js')).href;
    const program = join(dir, 'host.mjs');
    // A runner host without a sandbox (its script outlives it), killed with SIGKILL mid-run.
    writeFileSync(
      program,
      [
        `import { createScriptRunner } from ${JSON.stringify(entry)};`,
        `const runner = createScriptRunner({ logger: { warn() {}, error() {} }, isolation: 'none', workDir: ${JSON.stringify(workDir)} });`,
        `const script = await runner.uploadScript({ filename: 'test_orphan.py', content: 'import time\\nopen("alive", "w").write("yes")\\nprint("up", flush=True)\\ntime.sleep(600)\\n' });`,
        `runner.on('execution:log', (b) => { if (b.lines.some((l) => l.text === 'up')) console.log(b.executionId); });`,
        `await runner.run(script.id, { args: [${JSON.stringify(marker)}] });`,
      ].join('\n'),
    );
    const host = spawn(process.execPath, [program], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const executionId = await new Promise<string>((resolve, reject) => {
        host.stdout.on('data', (chunk: Buffer) => resolve(chunk.toString().trim()));
        host.once('exit', (code) => reject(new Error(`the host exited with ${String(code)}`)));
      });
      host.kill('SIGKILL');
      await new Promise((r) => host.once('exit', r));
      // What it left: the script, still running in its cgroup, and the mounted run directory.
      expect(processesWith(marker)).toHaveLength(1);
      expect(runCgroups(executionId).filter((d) => existsSync(d))).toHaveLength(2);
      expect(mountsUnder(workDir)).toHaveLength(1);
      const runDir = runDirOf(workDir, executionId)!;
      expect(readFileSync(join(runDir, 'alive'), 'utf8')).toBe('yes');

      // The store says it was running: a new runner interrupts it and clears up after it.
      const store = memoryStore();
      const script = await store.createScript(sampleScript());
      await store.createExecution(sampleExecution(script.id, { id: executionId, queuedAt: new Date(Date.now() - 5000) }));
      await store.updateExecution(executionId, { status: 'running', startedAt: new Date(Date.now() - 4000) });
      const runner = makeRunner({ store, workDir, isolation: 'none' });
      expect(await runner.getExecution(executionId)).toMatchObject({ status: 'interrupted' });
      expect(processesWith(marker)).toEqual([]);
      expect(runCgroups(executionId).filter((d) => existsSync(d))).toEqual([]);
      expect(mountsUnder(workDir)).toEqual([]);
      expect(readdirSync(workDir).filter((n) => n.endsWith('.img'))).toEqual([]);
    } finally {
      host.kill('SIGKILL');
      for (const point of mountsUnder(workDir)) spawnSync('umount', ['-l', point]);
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it('an empty run cgroup older than 10 minutes (its store forgot the run) is removed when a process starts a runner', async () => {
    const parent = ownCgroup('pids')!;
    const stale = join(parent, `scriptrunner-stale-${process.pid}`);
    const recent = join(parent, `scriptrunner-recent-${process.pid}`);
    mkdirSync(stale);
    mkdirSync(recent);
    spawnSync('touch', ['-d', '1 hour ago', stale]);
    // A fresh process: the sweep runs once per process, when its first runner starts.
    const entry = pathToFileURL(join(__dirname, '..', 'dist', 'index.js')).href;
    const program = join(root, 'sweep.mjs');
    writeFileSync(program, `import { createScriptRunner } from ${JSON.stringify(entry)};\ncreateScriptRunner({ logger: { warn() {}, error() {} }, isolation: 'none' });\nsetTimeout(() => {}, 30_000);\n`);
    const host = spawn(process.execPath, [program], { stdio: 'ignore' });
    try {
      expect(await waitUntil(() => !existsSync(stale), 10_000)).toBe(true);
      expect(existsSync(recent)).toBe(true);
    } finally {
      host.kill('SIGKILL');
      for (const dir of [stale, recent]) if (existsSync(dir)) rmdirSync(dir);
    }
  });
});

describe('a host that cannot bind a limit', () => {
  const nobodyCanRunNode = isRoot && spawnSync(process.execPath, ['-e', '0'], { uid: 65534, gid: 65534 }).status === 0;
  const itAsNobody = nobodyCanRunNode || process.env.CI === 'true' ? it : it.skip;

  itAsNobody('refuses a limit set explicitly and warns once per process about a default one (host not root)', () => {
    const entry = pathToFileURL(join(__dirname, '..', 'dist', 'index.js')).href;
    const program = join(root, 'unprivileged.mjs');
    writeFileSync(
      program,
      [
        `import { createScriptRunner } from ${JSON.stringify(entry)};`,
        `const said = [];`,
        `const logger = { warn: (m) => said.push(['warn', m]), error: (m) => said.push(['error', m]), info: (m) => said.push(['info', m]) };`,
        // The host is probed in the background: a run waits for the answer (and is refused before anything is stored).
        `const runtimes = { python: { command: '/usr/bin/python3' } };`,
        `const runOnce = async (options) => {`,
        `  const runner = createScriptRunner({ logger, isolation: 'none', runtimes, workDir: '/tmp/sr-unprivileged-' + process.pid, ...options });`,
        `  const script = await runner.uploadScript({ filename: 'test_ok.py', content: 'print(1)\\n' });`,
        `  try { await runner.waitFor((await runner.run(script.id)).id); return null; } catch (e) { return { code: e.code, message: e.message }; } finally { await runner.close(); }`,
        `};`,
        `const refused = await runOnce({ limits: { runDirBytes: 8 * 1024 * 1024 } });`,
        `await runOnce({});`,
        `await runOnce({});`,
        `console.log(JSON.stringify({ refused, said }));`,
      ].join('\n'),
    );
    chmodSync(program, 0o644);
    const out = execFileSync(process.execPath, [program], { uid: 65534, gid: 65534, cwd: '/', encoding: 'utf8', timeout: 20_000 });
    const { refused, said } = JSON.parse(out) as { refused: { code: string; message: string }; said: Array<[string, string]> };
    expect(refused).toEqual({
      code: 'validation',
      message:
        '[scriptrunner] limits.runDirBytes cannot be enforced on this host: mounting a size-capped filesystem needs root, and this process does not run as root; pass runDirBytes: null to run without it',
    });
    const warnings = said.filter(([kind]) => kind === 'warn').map(([, m]) => m);
    // Once per process, however many runners it creates.
    expect(warnings).toEqual([
      expect.stringMatching(/^\[scriptrunner\] no cgroup per run \(cgroup v1 hierarchies belong to root.*\): limits\.maxProcesses and limits\.memoryBytes bind each process/),
      expect.stringMatching(/^\[scriptrunner\] run directories are not size-capped \(limits\.runDirBytes\): mounting a size-capped filesystem needs root/),
    ]);
    const infos = said.filter(([kind]) => kind === 'info').map(([, m]) => m);
    expect(infos).toHaveLength(2);
    expect(infos[0]).toBe(
      '[scriptrunner] limits: whole run: none; run directory: not capped; per process (prlimit): maxProcesses 256 (RLIMIT_NPROC, per user), ' +
        'memoryBytes 4 GiB (address space), maxFileBytes 1 GiB, maxOpenFiles 1024; scripts run as uid 65534 (this process\'s user)',
    );
  });

  it('rejects a run directory cap too small to format', () => {
    let error: unknown;
    try {
      createScriptRunner({ logger: { warn() {}, error() {} }, limits: { runDirBytes: 4096 } });
    } catch (e) {
      error = e;
    }
    expect(isScriptRunnerError(error) && error.code).toBe('validation');
    expect((error as Error).message).toBe('[scriptrunner] limits.runDirBytes must be at least 1048576 (1 MiB) or null, got 4096');
  });
});
