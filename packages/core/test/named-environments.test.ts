/**
 * Named Python environments: configured interpreters a script names at upload (option or inline
 * metadata), a run overrides, and the execution records. Real venvs, each with a module only it
 * has, run in the sandbox and outside it.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createScriptRunner, isScriptRunnerError, memoryStore, type ScriptRunner, type ScriptRunnerOptions } from '../src/index.js';
import { closeRunners, makeRunner } from './helpers.js';

/** Debian's interpreter: it has venv (python3-venv), and the sandbox's user can run it. */
const PYTHON = '/usr/bin/python3';
const hasBwrap = spawnSync('bwrap', ['--version']).status === 0;
const isolations: ReadonlyArray<'bwrap' | 'none'> = hasBwrap || process.env.CI === 'true' ? ['bwrap', 'none'] : ['none'];

let root: string;
/** The `forecast` venv's interpreter: it alone can import `sr_forecast_only`. */
let forecast: string;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'sr-named-envs-'));
  // Scripts of a root host run as 65534 in the sandbox: it must get through to its run directories.
  chmodSync(root, 0o711);
  const venv = join(root, 'venvs', 'forecast');
  execFileSync(PYTHON, ['-m', 'venv', '--without-pip', venv]);
  forecast = join(venv, 'bin', 'python');
  const site = execFileSync(forecast, ['-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'], { encoding: 'utf8' }).trim();
  writeFileSync(join(site, 'sr_forecast_only.py'), 'WHERE = "forecast"\n');
  chmodSync(join(root, 'venvs'), 0o755);
});
afterAll(() => rmSync(root, { recursive: true, force: true }));
afterEach(closeRunners);

let runs = 0;
function runnerWith(options: ScriptRunnerOptions = {}): ScriptRunner {
  return makeRunner({
    runtimes: { python: { command: PYTHON } },
    environments: { forecast: { python: forecast } },
    workDir: join(root, `runs-${++runs}`),
    ...options,
  });
}

/** Prints where it runs, and whether the forecast venv's own module is there. */
const WHERE = [
  'import sys',
  'try:',
  '    import sr_forecast_only',
  '    print(sys.prefix, sr_forecast_only.WHERE)',
  'except ModuleNotFoundError as e:',
  '    print(sys.prefix, "missing", e.name)',
].join('\n');

const naming = (environment: string) =>
  ['# /// script', '# [tool.scriptrunner]', `# environment = ${JSON.stringify(environment)}`, '# ///', WHERE].join('\n') + '\n';

async function runToEnd(runner: ScriptRunner, scriptId: string, options: { environment?: string } = {}) {
  const queued = await runner.run(scriptId, options);
  const execution = await runner.waitFor(queued.id);
  const texts = (await runner.readLogs(execution.id)).map((l) => l.text);
  return { queued, execution, texts };
}

async function refusal(promise: Promise<unknown>) {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(isScriptRunnerError(error), String(error)).toBe(true);
  return error as Error & { code: string; details?: Record<string, unknown> };
}

describe('named environments', () => {
  it.each(isolations)('a script naming one in its inline metadata runs on that interpreter, with its packages (isolation %s)', async (isolation) => {
    const runner = runnerWith({ isolation });
    const script = await runner.uploadScript({ filename: 'experiment_named.py', content: naming('forecast') });
    expect(script.environment).toBe('forecast');
    const { queued, execution, texts } = await runToEnd(runner, script.id);
    expect(queued.environment).toBe('forecast');
    expect(execution.status, execution.errorMessage ?? '').toBe('succeeded');
    expect(execution.environment).toBe('forecast');
    expect(texts).toEqual([`${join(root, 'venvs', 'forecast')} forecast`]);
    // Recorded in the store, as a reader on another node would see it.
    expect((await runner.getExecution(execution.id)).environment).toBe('forecast');
  });

  it.each(isolations)('a run may override it; the default is the python runtime (isolation %s)', async (isolation) => {
    const runner = runnerWith({ isolation });
    const script = await runner.uploadScript({ filename: 'experiment_named.py', content: naming('forecast') });
    const { execution, texts } = await runToEnd(runner, script.id, { environment: 'default' });
    expect(execution.environment).toBe('default');
    expect(execution.status).toBe('succeeded');
    expect(texts).toEqual(['/usr missing sr_forecast_only']);
  });

  it('the upload option names one (and wins over the inline metadata); a script naming none runs in the default', async () => {
    const runner = runnerWith({ environments: { forecast: { python: forecast }, other: { python: PYTHON } } });
    const chosen = await runner.uploadScript({ filename: 'test_plain.py', content: naming('other'), environment: 'forecast' });
    expect(chosen.environment).toBe('forecast');
    expect((await runToEnd(runner, chosen.id)).texts).toEqual([`${join(root, 'venvs', 'forecast')} forecast`]);
    const plain = await runner.uploadScript({ filename: 'test_plain.py', content: WHERE });
    expect(plain.environment).toBeNull();
    const { execution, texts } = await runToEnd(runner, plain.id);
    expect(execution.environment).toBe('default');
    expect(texts).toEqual(['/usr missing sr_forecast_only']);
  });

  it('defaultEnvironment makes another one the default', async () => {
    const runner = runnerWith({ defaultEnvironment: 'forecast' });
    const script = await runner.uploadScript({ filename: 'test_plain.py', content: WHERE });
    const { execution, texts } = await runToEnd(runner, script.id);
    expect(execution.environment).toBe('forecast');
    expect(texts).toEqual([`${join(root, 'venvs', 'forecast')} forecast`]);
  });

  it('an unknown name is a validation error where it is given: upload option, inline metadata (its line), run; nothing is stored', async () => {
    const runner = runnerWith();
    const byOption = await refusal(runner.uploadScript({ filename: 'test_x.py', content: WHERE, environment: 'forcast' }));
    expect(byOption.code).toBe('validation');
    expect(byOption.details).toMatchObject({ field: 'environment' });
    expect(byOption.message).toContain('no environment is named "forcast"; this runner has default, forecast');
    const byMetadata = await refusal(runner.uploadScript({ filename: 'test_x.py', content: `print(1)\n${naming('forcast')}` }));
    expect(byMetadata.code).toBe('validation');
    expect(byMetadata.details).toMatchObject({ field: 'content', line: 4 });
    expect(byMetadata.message).toMatch(/line 4: \[tool\.scriptrunner\] environment: no environment is named "forcast"/);
    expect((await runner.listScripts()).items).toEqual([]);

    const script = await runner.uploadScript({ filename: 'test_x.py', content: WHERE });
    const byRun = await refusal(runner.run(script.id, { environment: 'nope' }));
    expect(byRun.code).toBe('validation');
    expect(byRun.details).toMatchObject({ field: 'environment' });
    const wrongType = await refusal(runner.run(script.id, { environment: 42 as unknown as string }));
    expect(wrongType.code).toBe('validation');
    expect((await runner.listExecutions({ scriptId: script.id })).items).toEqual([]);
  });

  it('a script whose environment this runner no longer has: run() says so, and an override still runs it', async () => {
    const store = memoryStore();
    const before = runnerWith({ store });
    const script = await before.uploadScript({ filename: 'experiment_named.py', content: naming('forecast') });
    await before.close();
    const after = makeRunner({ store, runtimes: { python: { command: PYTHON } }, workDir: join(root, `runs-${++runs}`) });
    const refused = await refusal(after.run(script.id));
    expect(refused.code).toBe('validation');
    expect(refused.message).toContain('names the environment "forecast", which this runner does not have (default)');
    const { execution } = await runToEnd(after, script.id, { environment: 'default' });
    expect(execution.status).toBe('succeeded');
  });

  it('environments apply to Python only: another runtime records none and refuses one', async () => {
    const runner = runnerWith({
      runtimes: { python: { command: PYTHON }, sh: { extensions: ['.sh'], command: 'sh', args: [] } },
      upload: { pattern: /^test_[a-z]+\.(py|sh)$/ },
      isolation: 'none',
    });
    const script = await runner.uploadScript({ filename: 'test_shell.sh', content: 'echo shell\n' });
    const { execution, texts } = await runToEnd(runner, script.id);
    expect(execution.environment).toBeNull();
    expect(texts).toEqual(['shell']);
    expect((await refusal(runner.run(script.id, { environment: 'forecast' }))).message).toContain('environments apply to Python scripts');
    expect((await refusal(runner.uploadScript({ filename: 'test_shell.sh', content: 'echo 1\n', environment: 'forecast' }))).code).toBe('validation');
  });

  it('bad options are refused when the runner is made', () => {
    const make = (options: ScriptRunnerOptions) => () => createScriptRunner({ logger: { warn() {}, error() {} }, ...options });
    expect(make({ environments: { 'bad name': { python: PYTHON } } })).toThrow(/"bad name" is not a valid name/);
    expect(make({ environments: { forecast: { python: '' } } })).toThrow(/environments\.forecast\.python must be/);
    expect(make({ defaultEnvironment: 'missing' })).toThrow(/defaultEnvironment "missing" is not one of the environments \(default\)/);
  });

  it.runIf(isolations.includes('bwrap'))('an environment the sandbox cannot show fails its runs saying which option to change; the others run', async () => {
    // A venv that holds workDir would show other runs' directories.
    const around = join(root, 'around');
    execFileSync(PYTHON, ['-m', 'venv', '--without-pip', around]);
    const runner = makeRunner({
      isolation: 'bwrap',
      runtimes: { python: { command: PYTHON } },
      environments: { wide: { python: join(around, 'bin', 'python') } },
      workDir: join(around, 'runs'),
    });
    const script = await runner.uploadScript({ filename: 'test_plain.py', content: 'print("ran")\n' });
    const wide = await runToEnd(runner, script.id, { environment: 'wide' });
    expect(wide.execution.status).toBe('failed');
    expect(wide.execution.errorMessage).toContain('set environments.wide.python');
    expect((await runToEnd(runner, script.id)).execution.status).toBe('succeeded');
  });
});
