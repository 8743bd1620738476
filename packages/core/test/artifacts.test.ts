/**
 * Artifacts: what a real script writes to SCRIPTRUNNER_OUTPUT_DIR is kept through the store after
 * the run, within caps, in the sandbox and outside it; what is not kept is named in the log.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { isScriptRunnerError, memoryStore, type ScriptRunner, type ScriptRunnerOptions, type Store } from '../src/index.js';
import { closeRunners, makeRunner, runFixture } from './helpers.js';

const PYTHON = '/usr/bin/python3';
const hasBwrap = spawnSync('bwrap', ['--version']).status === 0;
const isolations: ReadonlyArray<'bwrap' | 'none'> = hasBwrap || process.env.CI === 'true' ? ['bwrap', 'none'] : ['none'];

afterEach(closeRunners);

function runnerWith(options: ScriptRunnerOptions = {}): ScriptRunner {
  return makeRunner({ runtimes: { python: { command: PYTHON } }, ...options });
}

async function bytesOf(runner: ScriptRunner, executionId: string, name: string): Promise<Buffer> {
  const { content } = await runner.readArtifact(executionId, name);
  const chunks: Uint8Array[] = [];
  for await (const chunk of content) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** Writes a CSV, a nested file and 300 KiB of binary; prints where it wrote them. */
const WRITER = [
  'import os',
  'out = os.environ["SCRIPTRUNNER_OUTPUT_DIR"]',
  'print("out", out, "cwd", os.getcwd())',
  'with open(os.path.join(out, "forecast.csv"), "w") as f:',
  '    f.write("hour,price\\n" + "".join(f"{h},{40 + h}.5\\n" for h in range(24)))',
  'os.makedirs(os.path.join(out, "plots"))',
  'with open(os.path.join(out, "plots", "wind.bin"), "wb") as f:',
  '    f.write(bytes((i * 7) % 256 for i in range(300 * 1024)))',
  'print("written")',
].join('\n');

const CSV = `hour,price\n${Array.from({ length: 24 }, (_, h) => `${h},${40 + h}.5\n`).join('')}`;

describe.each(isolations)('artifacts (isolation %s)', (isolation) => {
  it('keeps every regular file of the output directory, inside the run directory, with exact bytes', async () => {
    const runner = runnerWith({ isolation });
    const { execution, texts } = await runFixture(runner, 'test_artifacts.py', { code: WRITER });
    expect(execution.status, execution.errorMessage ?? '').toBe('succeeded');
    const said = texts.find((t) => t.startsWith('out '))!.split(' ');
    // The output directory sits in the run directory (the script's cwd), bound at the same path.
    expect(said[1]!.startsWith(`${said[3]!}/`)).toBe(true);
    expect(execution.artifactCount).toBe(2);
    const listed = await runner.listArtifacts(execution.id);
    expect(listed.map((a) => [a.name, a.sizeBytes])).toEqual([
      ['forecast.csv', CSV.length],
      ['plots/wind.bin', 300 * 1024],
    ]);
    const csv = await bytesOf(runner, execution.id, 'forecast.csv');
    expect(csv.toString()).toBe(CSV);
    const bin = await bytesOf(runner, execution.id, 'plots/wind.bin');
    expect(bin.length).toBe(300 * 1024);
    expect(bin[1000]).toBe((1000 * 7) % 256);
    expect(listed[1]!.sha256).toBe(createHash('sha256').update(bin).digest('hex'));
    // Said in the log, before the run's end; the run directory is gone afterwards.
    expect(texts).toContain('[scriptrunner] artifact "forecast.csv" kept (193 B)');
    expect(texts).toContain('[scriptrunner] artifact "plots/wind.bin" kept (300.0 KiB)');
    expect(existsSync(said[3]!)).toBe(false);
  });
});

describe('artifacts: what is not kept is named', () => {
  it('skips links, pipes, hard links, unsafe names and what is over each cap, and says so', async () => {
    const runner = runnerWith({ isolation: 'none', artifacts: { maxFiles: 4, maxFileBytes: 2048, maxBytes: 3000 } });
    const code = [
      'import os',
      'out = os.environ["SCRIPTRUNNER_OUTPUT_DIR"]',
      'def write(name, size):',
      '    with open(os.path.join(out, name), "wb") as f: f.write(b"x" * size)',
      'write("a_small.txt", 1000)',
      'write("b_big.bin", 5000)',          // over maxFileBytes
      'write("c_mid.txt", 1500)',
      'write("d_more.txt", 1600)',         // would pass maxBytes (1500 + 1600 > 3000)
      'write("e1.txt", 10)',
      'write("e2.txt", 10)',
      'write("e3.txt", 10)',
      'write("e4.txt", 10)',               // the fifth to keep: over maxFiles
      'os.symlink("/etc/hostname", os.path.join(out, "h_link"))',
      'os.mkfifo(os.path.join(out, "i_pipe"))',
      'os.link(os.path.join(out, "a_small.txt"), os.path.join(out, "j_hard.txt"))',
      'write("k\\nnewline.txt", 5)',
      'print("done")',
    ].join('\n');
    const { execution, texts } = await runFixture(runner, 'test_caps.py', { code });
    expect(execution.status, execution.errorMessage ?? '').toBe('succeeded');
    const listed = (await runner.listArtifacts(execution.id)).map((a) => a.name);
    // a_small.txt has a second name (j_hard.txt) by the time it is read: neither is kept.
    expect(listed).toEqual(['c_mid.txt', 'e1.txt', 'e2.txt', 'e3.txt']);
    expect(execution.artifactCount).toBe(4);
    const skips = texts.filter((t) => t.includes('not kept'));
    expect(skips).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^\[scriptrunner\] artifact "a_small.txt" not kept: a hard link/),
        expect.stringMatching(/^\[scriptrunner\] artifact "b_big.bin" not kept: 4\.9 KiB is over the cap of 2\.0 KiB per file \(artifacts.maxFileBytes\)/),
        expect.stringMatching(/^\[scriptrunner\] artifact "d_more.txt" not kept: 1\.6 KiB would pass the cap of 2\.9 KiB per run \(artifacts.maxBytes\)/),
        '[scriptrunner] artifact "e4.txt" not kept: over the cap of 4 files per run (artifacts.maxFiles)',
        expect.stringMatching(/^\[scriptrunner\] artifact "h_link" not kept: a symbolic link/),
        expect.stringMatching(/^\[scriptrunner\] artifact "i_pipe" not kept: not a regular file/),
        '[scriptrunner] artifact "j_hard.txt" not kept: over the cap of 4 files per run (artifacts.maxFiles)',
        expect.stringMatching(/^\[scriptrunner\] artifact "k\\nnewline.txt" not kept: the name has a control character/),
      ]),
    );
  });

  it('names the files over maxFiles', async () => {
    const runner = runnerWith({ isolation: 'none', artifacts: { maxFiles: 2 } });
    const code = 'import os\nfor n in "abcd":\n    open(os.path.join(os.environ["SCRIPTRUNNER_OUTPUT_DIR"], n + ".txt"), "w").write(n)\n';
    const { execution, texts } = await runFixture(runner, 'test_many.py', { code });
    expect((await runner.listArtifacts(execution.id)).map((a) => a.name)).toEqual(['a.txt', 'b.txt']);
    expect(texts).toContain('[scriptrunner] artifact "c.txt" not kept: over the cap of 2 files per run (artifacts.maxFiles)');
    expect(texts).toContain('[scriptrunner] artifact "d.txt" not kept: over the cap of 2 files per run (artifacts.maxFiles)');
  });

  it('a failed or timed-out run keeps what it wrote before it ended', async () => {
    const runner = runnerWith({ isolation: 'none' });
    const code = 'import os, sys\nopen(os.path.join(os.environ["SCRIPTRUNNER_OUTPUT_DIR"], "partial.txt"), "w").write("half")\nsys.exit(3)\n';
    const { execution } = await runFixture(runner, 'test_fails.py', { code });
    expect(execution.status).toBe('failed');
    expect(execution.artifactCount).toBe(1);
    expect((await bytesOf(runner, execution.id, 'partial.txt')).toString()).toBe('half');
  });

  it('a store without artifacts keeps none and says so', async () => {
    const { putArtifact: _put, listArtifacts: _list, readArtifact: _read, ...plain } = memoryStore();
    const runner = runnerWith({ isolation: 'none', store: plain as Store });
    const code = 'import os\nopen(os.path.join(os.environ["SCRIPTRUNNER_OUTPUT_DIR"], "x.txt"), "w").write("x")\n';
    const { execution, texts } = await runFixture(runner, 'test_plain.py', { code });
    expect(execution.status).toBe('succeeded');
    expect(execution.artifactCount).toBe(0);
    expect(texts).toContain('[scriptrunner] 1 file(s) in SCRIPTRUNNER_OUTPUT_DIR not kept: the store keeps no artifacts (it has no putArtifact)');
    expect(await runner.listArtifacts(execution.id)).toEqual([]);
  });

  it('reads refuse unknown executions and artifacts, and names no artifact can have', async () => {
    const runner = runnerWith({ isolation: 'none' });
    const { execution } = await runFixture(runner, 'test_empty.py', { code: 'print(1)\n' });
    expect(execution.artifactCount).toBe(0);
    const code = async (p: Promise<unknown>) => p.then(() => 'resolved', (e: unknown) => (isScriptRunnerError(e) ? e.code : String(e)));
    expect(await code(runner.listArtifacts('nope'))).toBe('not_found');
    expect(await code(runner.readArtifact(execution.id, 'missing.csv'))).toBe('not_found');
    expect(await code(runner.readArtifact('nope', 'a.csv'))).toBe('not_found');
    for (const bad of ['', '../etc/passwd', 'a//b', 'x\u0000y', 'a'.repeat(1025)]) {
      expect(await code(runner.readArtifact(execution.id, bad)), JSON.stringify(bad)).toBe('validation');
    }
  });

  it('refuses caps that are not whole numbers', () => {
    expect(() => runnerWith({ artifacts: { maxFiles: -1 } })).toThrow(/artifacts.maxFiles must be a whole number/);
    expect(() => runnerWith({ artifacts: { maxFileBytes: 2 ** 40 } })).toThrow(/artifacts.maxFileBytes/);
  });
});

describe('restoreScript', () => {
  it('makes an archived script active and runnable again, with an event', async () => {
    const runner = runnerWith({ isolation: 'none' });
    const script = await runner.uploadScript({ filename: 'test_restore.py', content: 'print("back")\n' });
    const restored: string[] = [];
    runner.on('script:restored', (s) => restored.push(s.id));
    await runner.archiveScript(script.id);
    await expect(runner.run(script.id)).rejects.toMatchObject({ code: 'conflict' });
    const again = await runner.restoreScript(script.id);
    expect(again.status).toBe('active');
    expect(restored).toEqual([script.id]);
    // Restoring an active script changes nothing and says nothing.
    expect((await runner.restoreScript(script.id)).status).toBe('active');
    expect(restored).toEqual([script.id]);
    expect((await runner.listScripts()).items.map((s) => s.id)).toContain(script.id);
    const execution = await runner.run(script.id);
    expect((await runner.waitFor(execution.id)).status).toBe('succeeded');
    await expect(runner.restoreScript('nope')).rejects.toMatchObject({ code: 'not_found' });
  });
});
