/**
 * Scripts that declare dependencies (PEP 723): validated at upload, installed once into a cached
 * environment by pip in a venv, reused, evicted. No package index is reachable here: every wheel is
 * assembled by the test into a local find-links directory, and pip reads nothing else (offline).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isScriptRunnerError, type ScriptRunnerOptions } from '../src/index.js';
import { parseInlineMetadata } from '../src/python/inline-metadata.js';
import { closeRunners, makeRunner, runFixture as runWithPrefix } from './helpers.js';

/** The run's lines with the runner's `[scriptrunner] ` prefix of system lines taken off. */
async function runFixture(...args: Parameters<typeof runWithPrefix>) {
  const result = await runWithPrefix(...args);
  return { ...result, texts: result.texts.map((t) => t.replace(/^\[scriptrunner\] /, '')) };
}

/** Debian's interpreter: the sandbox sees it, and python3-pip gives it pip. */
const PYTHON = '/usr/bin/python3';
const hasPip = spawnSync(PYTHON, ['-m', 'pip', '--version']).status === 0;
const hasBwrap = spawnSync('bwrap', ['--version']).status === 0;
// In CI a missing installer or sandbox fails these suites instead of skipping them.
const describeInstaller = hasPip || process.env.CI === 'true' ? describe : describe.skip;

let root: string;
let wheels: string;

/** A pure-Python wheel assembled by hand (zip + METADATA/WHEEL/RECORD): `import <module>` gives its version. */
function buildWheel(dir: string, name: string, version: string): void {
  const module = name.replace(/-/g, '_');
  const program = `
import base64, hashlib, sys, zipfile
name, module, version, out = sys.argv[1:5]
dist = f"{module}-{version}.dist-info"
files = {
    f"{module}/__init__.py": f'__version__ = "{version}"\\n',
    f"{dist}/METADATA": f"Metadata-Version: 2.1\\nName: {name}\\nVersion: {version}\\n",
    f"{dist}/WHEEL": "Wheel-Version: 1.0\\nGenerator: scriptrunner-test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
}
record = []
for path, text in files.items():
    digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
    record.append(f"{path},sha256={digest},{len(text.encode())}")
files[f"{dist}/RECORD"] = "\\n".join(record + [f"{dist}/RECORD,,"]) + "\\n"
with zipfile.ZipFile(f"{out}/{module}-{version}-py3-none-any.whl", "w") as z:
    for path, text in files.items():
        z.writestr(path, text)
`;
  execFileSync(PYTHON, ['-c', program, name, module, version, dir]);
}

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'sr-deps-'));
  // Scripts of a root host run as 65534 in the sandbox: it must get through to its run directories.
  chmodSync(root, 0o711);
  wheels = join(root, 'wheels');
  mkdirSync(wheels);
  chmodSync(wheels, 0o755);
  buildWheel(wheels, 'sr-demo-pkg', '1.2.3');
  buildWheel(wheels, 'sr-other-pkg', '0.1.0');
});
afterAll(() => rmSync(root, { recursive: true, force: true }));
afterEach(closeRunners);

let cacheCount = 0;
function runnerWith(options: ScriptRunnerOptions = {}, deps: ScriptRunnerOptions['dependencies'] = {}) {
  const cacheDir = join(root, `cache-${++cacheCount}`);
  const runner = makeRunner({
    runtimes: { python: { command: PYTHON } },
    workDir: join(root, `runs-${cacheCount}`),
    dependencies: { cacheDir, findLinks: [wheels], offline: true, ...deps },
    ...options,
  });
  return { runner, cacheDir };
}

const declaring = (...requirements: string[]) =>
  [
    '# /// script',
    `# dependencies = [${requirements.map((r) => JSON.stringify(r)).join(', ')}]`,
    '# ///',
    'import importlib.metadata as m',
    ...requirements.map((r) => `print(${JSON.stringify(r.split(/[=<>]/)[0])}, m.version(${JSON.stringify(r.split(/[=<>]/)[0])}))`),
  ].join('\n') + '\n';

const installLines = (texts: string[]) => texts.filter((t) => t.startsWith('dependencies: installing'));

describe('PEP 723 inline metadata', () => {
  it('reads dependencies, requires-python and [tool.scriptrunner] environment', () => {
    const source = [
      '#!/usr/bin/env python3',
      '# /// script',
      '# requires-python = ">=3.9"',
      '# dependencies = [',
      '#   "numpy>=1.26",',
      '#   "pandas[excel] ==2.2.*; python_version >= \'3.10\'",',
      '# ]',
      '#',
      '# [tool.scriptrunner]',
      '# environment = "forecast"',
      '# ///',
      'print(1)',
    ].join('\n');
    expect(parseInlineMetadata(source)).toEqual({
      dependencies: ['numpy>=1.26', "pandas[excel] ==2.2.*; python_version >= '3.10'"],
      requiresPython: '>=3.9',
      environment: 'forecast',
      environmentLine: 10,
      line: 2,
    });
    expect(parseInlineMetadata('print("no block")\n')).toBeNull();
  });

  const refusals: Array<[string, string[], number, RegExp]> = [
    ['an opener without a closer', ['x = 1', '# /// script', '# dependencies = []', 'print(1)'], 2, /no closing "# \/\/\/" line/],
    ['TOML that does not parse', ['# /// script', '# dependencies = ["a",', '# ///'], 2, /not valid TOML/],
    ['a requirement that is not PEP 508', ['# /// script', '# dependencies = [', '#   "numpy",', '#   "pandas>>=2",', '# ]', '# ///'], 4, /"pandas>>=2" is not a valid requirement/],
    ['a requirement naming a URL (pip would build it from source, around the index)', ['# /// script', '# dependencies = [', '#   "evil @ https://example.com/evil-1.0.tar.gz",', '# ]', '# ///'], 3, /names a URL/],
    ['a pip option instead of a requirement', ['# /// script', '# dependencies = ["-r other.txt"]', '# ///'], 2, /is not a requirement/],
    ['a requires-python that is not a specifier', ['# /// script', '# requires-python = "three"', '# ///'], 2, /not a version specifier/],
    ['dependencies that are not a list', ['# /// script', '# dependencies = "numpy"', '# ///'], 2, /must be a list/],
    ['a second script block', ['# /// script', '# ///', 'x = 1', '# /// script', '# ///'], 4, /a second "# \/\/\/ script" block/],
  ];
  for (const [what, lines, line, message] of refusals) {
    it(`refuses ${what} at upload, naming line ${line}`, async () => {
      const runner = makeRunner();
      const error = await runner.uploadScript({ filename: 'test_meta.py', content: lines.join('\n') + '\n' }).catch((e: unknown) => e);
      expect(isScriptRunnerError(error) && error.code).toBe('validation');
      expect((error as Error).message).toMatch(new RegExp(`line ${line}: `));
      expect((error as Error).message).toMatch(message);
      expect((error as { details?: unknown }).details).toEqual({ field: 'content', line });
      expect((await runner.listScripts()).items).toEqual([]);
    });
  }
});

describeInstaller('declared dependencies: a cached environment per requirement set', () => {
  it.each(hasBwrap || process.env.CI === 'true' ? (['bwrap', 'none'] as const) : (['none'] as const))(
    'isolation %s: installed from the local wheelhouse before the script starts, streamed as system lines; the next run reuses it',
    async (isolation) => {
      const { runner, cacheDir } = runnerWith({ isolation });
      const first = await runFixture(runner, 'test_deps.py', { code: declaring('sr-demo-pkg==1.2.3') });
      expect(first.execution.status, first.execution.errorMessage ?? '').toBe('succeeded');
      expect(installLines(first.texts)).toHaveLength(1);
      expect(first.texts).toContain('Successfully installed sr-demo-pkg-1.2.3');
      expect(first.texts.at(-1)).toBe('sr-demo-pkg 1.2.3');
      // One log: the installer's lines are system lines before the script's own, in one seq sequence.
      const seqs = first.lines.map((l) => l.seq);
      expect(seqs).toEqual(seqs.map((_, i) => i + 1));
      const installed = first.lines.find((l) => l.text.includes('dependencies: installing'))!;
      expect(installed.stream).toBe('system');
      expect(first.lines.at(-1)!.stream).toBe('stdout');
      expect(readdirSync(cacheDir).filter((n) => /^[0-9a-f]{32}$/.test(n))).toHaveLength(1);

      const second = await runFixture(runner, 'test_deps2.py', { code: declaring('sr-demo-pkg==1.2.3') });
      expect(second.execution.status).toBe('succeeded');
      expect(installLines(second.texts)).toEqual([]);
      expect(second.texts.some((t) => t.startsWith('dependencies: reusing environment'))).toBe(true);
      expect(second.texts.at(-1)).toBe('sr-demo-pkg 1.2.3');
    },
  );

  it('a package the wheelhouse does not have: the run fails with pip\'s reason, nothing is cached', async () => {
    const { runner, cacheDir } = runnerWith({ isolation: 'none' });
    const { execution, texts } = await runFixture(runner, 'test_missing.py', { code: declaring('sr-no-such-pkg==9.9') });
    expect(execution.status).toBe('failed');
    expect(execution.errorMessage).toMatch(/^installing the script's dependencies failed: ERROR: .*sr-no-such-pkg/);
    expect(texts.some((t) => t.startsWith('ERROR:'))).toBe(true);
    // The script never started.
    expect(texts.some((t) => t.startsWith('sr-no-such-pkg '))).toBe(false);
    expect(readdirSync(cacheDir).filter((n) => /^[0-9a-f]{32}/.test(n))).toEqual([]);
  });

  it('two runs needing the same environment at once: one installs, the other waits and reuses it', async () => {
    const { runner } = runnerWith({ isolation: 'none' });
    const [a, b] = await Promise.all([
      runFixture(runner, 'test_a.py', { code: declaring('sr-other-pkg==0.1.0') }),
      runFixture(runner, 'test_b.py', { code: declaring('sr-other-pkg==0.1.0') }),
    ]);
    expect([a.execution.status, b.execution.status]).toEqual(['succeeded', 'succeeded']);
    expect(installLines([...a.texts, ...b.texts])).toHaveLength(1);
    expect([a.texts.at(-1), b.texts.at(-1)]).toEqual(['sr-other-pkg 0.1.0', 'sr-other-pkg 0.1.0']);
  });

  it('past maxCacheBytes the least recently used environment is removed, not the one just made', async () => {
    const { runner, cacheDir } = runnerWith({ isolation: 'none' }, { maxCacheBytes: 1 });
    const environments = () => readdirSync(cacheDir).filter((n) => /^[0-9a-f]{32}$/.test(n));
    await runFixture(runner, 'test_one.py', { code: declaring('sr-demo-pkg==1.2.3') });
    const [first] = environments();
    const other = await runFixture(runner, 'test_two.py', { code: declaring('sr-other-pkg==0.1.0') });
    expect(other.execution.status).toBe('succeeded');
    expect(environments()).toHaveLength(1);
    expect(environments()[0]).not.toBe(first);
    expect(existsSync(join(cacheDir, first!))).toBe(false);
  });

  it('unsandboxed scripts switched to another user (runAs): a script with dependencies fails saying why', async () => {
    if (process.getuid?.() !== 0) return; // runAs needs a root host
    const { runner, cacheDir } = runnerWith({ isolation: 'none', runAs: { uid: 65534, gid: 65534 } });
    const { execution } = await runFixture(runner, 'test_runas.py', { code: declaring('sr-demo-pkg==1.2.3') });
    expect(execution.status).toBe('failed');
    expect(execution.errorMessage).toBe('declared dependencies need the sandbox when scripts run as another user (runAs): install bubblewrap, or unset runAs');
    expect(existsSync(cacheDir)).toBe(false);
  });

  it('requires-python the interpreter does not meet: failed, saying which version it is', async () => {
    const { runner } = runnerWith({ isolation: 'none' });
    const code = ['# /// script', '# requires-python = ">=4"', '# ///', 'print("ran")'].join('\n');
    const { execution, texts } = await runFixture(runner, 'test_py4.py', { code });
    expect(execution.status).toBe('failed');
    expect(execution.errorMessage).toMatch(/^the script requires Python >=4; "\/usr\/bin\/python3[\d.]*" is Python 3\.\d+\.\d+/);
    expect(texts).not.toContain('ran');
  });

  it('an interpreter without pip: a script with dependencies fails saying how to get it; one without metadata runs', async () => {
    const venv = join(root, 'nopip');
    if (!existsSync(venv)) execFileSync(PYTHON, ['-m', 'venv', '--without-pip', venv]);
    const { runner, cacheDir } = runnerWith({ isolation: 'none', runtimes: { python: { command: join(venv, 'bin', 'python') } } });
    const plain = await runFixture(runner, 'test_plain.py', { code: 'print("plain")\n' });
    expect(plain.execution.status).toBe('succeeded');
    expect(existsSync(cacheDir)).toBe(false);
    const { execution } = await runFixture(runner, 'test_needs.py', { code: declaring('sr-demo-pkg==1.2.3') });
    expect(execution.status).toBe('failed');
    expect(execution.errorMessage).toContain('has no pip to install the script\'s dependencies: install it (Debian/Ubuntu: apt-get install python3-pip python3-venv)');
  });
});
