/**
 * The demo service as a newcomer runs it: a real process on a free port, seeded on first start,
 * on SQLite by default or PostgreSQL via DATABASE_URL, and a clean shutdown on SIGINT that cancels
 * running scripts, records them, and leaves no process behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { describePostgres } from '../../../packages/store-prisma/test/support/databases.js';
import { reapWithParent } from '../../../scripts/test-support/reaper.js';

const root = fileURLToPath(new URL('..', import.meta.url));

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

interface Demo {
  child: ChildProcess;
  base: string;
  output: () => string;
  dataDir: string;
}

/** Live processes whose command line mentions `text` (zombies excluded). */
function processesMentioning(text: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      if (cmdline.includes(text) && state !== 'Z') found.push(`${pid}: ${cmdline}`);
    } catch {
      // The process ended while we looked.
    }
  }
  return found;
}

const demos: Demo[] = [];
afterEach(async () => {
  for (const demo of demos.splice(0)) {
    if (demo.child.exitCode === null) {
      demo.child.kill('SIGKILL');
      await new Promise((r) => demo.child.once('exit', r));
    }
    rmSync(demo.dataDir, { recursive: true, force: true });
  }
});

async function startDemo(env: Record<string, string> = {}): Promise<Demo> {
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'sr-demo-'));
  // `node --import tsx` rather than the tsx CLI: signals reach the server itself, and a killed test
  // cannot orphan it behind a relay process.
  const child = reapWithParent(spawn(process.execPath, ['--import', 'tsx', join(root, 'src', 'server.ts')], { cwd: root, env: { ...process.env, PORT: String(port), SCRIPTRUNNER_DATA_DIR: dataDir, ...env }, stdio: ['ignore', 'pipe', 'pipe'] }));
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const demo = { child, base: `http://127.0.0.1:${port}`, output: () => output, dataDir };
  demos.push(demo);
  const deadline = Date.now() + 30_000;
  while (!output.includes(`scriptrunner demo on http://localhost:${port}`)) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`the demo did not start:\n${output}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return demo;
}

const api = async (demo: Demo, path: string, init?: RequestInit) => {
  const res = await fetch(`${demo.base}/api/scripts-runner${path}`, init);
  return { status: res.status, body: (await res.json()) as any };
};

/** The execution once it ended, asked for until it did (within 60 s: a run that never ends fails the test). */
async function finished(demo: Demo, executionId: string) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const execution = (await api(demo, `/executions/${executionId}`)).body.execution;
    if (execution.status !== 'queued' && execution.status !== 'running') return execution;
    if (Date.now() > deadline) throw new Error(`execution ${executionId} still ${execution.status} after 60 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('the demo server', () => {
  it('starts on PORT, offers the sample scripts once, and serves the page', { timeout: 60_000 }, async () => {
    const demo = await startDemo();
    const scripts = await api(demo, '/scripts');
    const names = scripts.body.items.map((s: { filename: string }) => s.filename).sort();
    expect(names).toEqual(['experiment_long_forecast.py', 'experiment_wind_profiles.py', 'test_progress.py', 'test_sample.py', 'test_stderr_mix.py']);
    const page = await fetch(`${demo.base}/`);
    expect(await page.text()).toContain('<div id="root"></div>');
    // Deep links reach the page too (the UI keeps its selection in the URL).
    expect((await fetch(`${demo.base}/some/deep/link`)).status).toBe(200);

    // A second start on the same data does not offer them again.
    demo.child.kill('SIGINT');
    await new Promise((r) => demo.child.once('exit', r));
    const again = await startDemo({ SCRIPTRUNNER_DATA_DIR: demo.dataDir });
    expect((await api(again, '/scripts')).body.items).toHaveLength(5);
  });

  it('runs the sample that declares a dependency: installed from the repository wheelhouse once, reused after', { timeout: 90_000 }, async () => {
    const demo = await startDemo();
    const sample = (await api(demo, '/scripts')).body.items.find((s: { filename: string }) => s.filename === 'experiment_wind_profiles.py');
    const runOnce = async () => {
      const run = await api(demo, `/scripts/${sample.id}/executions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      expect(run.status).toBe(202);
      const execution = await finished(demo, run.body.execution.id);
      const text = await (await fetch(`${demo.base}/api/scripts-runner/executions/${execution.id}/logs.txt`)).text();
      return { execution, lines: text.trimEnd().split('\n') };
    };
    const first = await runOnce();
    expect(first.execution.status, first.lines.join('\n')).toBe('succeeded');
    expect(first.lines.some((l) => l.includes('dependencies: installing sr-wind==1.0.0'))).toBe(true);
    expect(first.lines).toContain('sr-wind 1.0.0: log-law profile');
    expect(first.lines).toContain('Nordsee Ost: 10.08 m/s at 120 m (10 m mast: 8.2 m/s)');
    const second = await runOnce();
    expect(second.execution.status).toBe('succeeded');
    expect(second.lines.some((l) => l.includes('dependencies: installing'))).toBe(false);
    expect(second.lines.some((l) => l.includes('dependencies: reusing environment'))).toBe(true);
    // The demo serves its metrics and health: the two runs are counted.
    const metrics = await (await fetch(`${demo.base}/api/scripts-runner/metrics`)).text();
    expect(metrics).toMatch(/^scriptrunner_runs_finished_total\{status="succeeded"\} 2$/m);
    expect((await fetch(`${demo.base}/api/scripts-runner/health`)).status).toBe(200);
  });

  it('on Ctrl-C cancels running scripts, records them as interrupted and leaves no process behind', { timeout: 60_000 }, async () => {
    const demo = await startDemo();
    const scripts = await api(demo, '/scripts');
    const long = scripts.body.items.find((s: { filename: string }) => s.filename === 'experiment_long_forecast.py');
    const run = await api(demo, `/scripts/${long.id}/executions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(run.status).toBe(202);
    const executionId = run.body.execution.id as string;
    // `running` is stored when the run claims the execution, a moment before the script's process
    // exists (its directory, image and cgroup are made first): wait for the script itself.
    const scriptProcesses = () => processesMentioning(join(demo.dataDir, 'runs')).filter((p) => p.includes('experiment_long_forecast.py'));
    for (let i = 0; i < 200; i++) {
      if (scriptProcesses().length > 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    // The check below can see the script's process while it runs...
    expect((await api(demo, `/executions/${executionId}`)).body.execution.status).toBe('running');
    expect(scriptProcesses().length).toBeGreaterThan(0);
    const code = await new Promise<number | null>((resolve) => {
      demo.child.once('exit', resolve);
      demo.child.kill('SIGINT');
    });
    expect(code).toBe(0);
    expect(demo.output()).toContain('cancelling running scripts');
    // No python process of this demo's run directory survives.
    // ...and none after the shutdown.
    expect(processesMentioning(join(demo.dataDir, 'runs'))).toEqual([]);
    // The record says what happened.
    const again = await startDemo({ SCRIPTRUNNER_DATA_DIR: demo.dataDir });
    const execution = (await api(again, `/executions/${executionId}`)).body.execution;
    expect(execution.status).toBe('interrupted');
    expect(execution.finishedAt).not.toBeNull();
  });
});

describePostgres('the demo server on PostgreSQL', (suite) => {
  it('uses DATABASE_URL, migrates at start and runs a script', { timeout: 60_000 }, async () => {
    const url = await suite.server().createDatabase();
    const demo = await startDemo({ DATABASE_URL: url });
    expect(demo.output()).toContain('store: PostgreSQL');
    const sample = (await api(demo, '/scripts')).body.items.find((s: { filename: string }) => s.filename === 'test_sample.py');
    const run = await api(demo, `/scripts/${sample.id}/executions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    const execution = await finished(demo, run.body.execution.id);
    expect(execution).toMatchObject({ status: 'succeeded', lineCount: 8, artifactCount: 1 });
    // The CSV the sample leaves, kept in PostgreSQL and downloadable.
    const csv = await fetch(`${demo.base}/api/scripts-runner/executions/${execution.id}/artifacts/day_ahead_prices.csv`);
    expect(csv.headers.get('content-disposition')).toMatch(/^attachment; filename="day_ahead_prices.csv"/);
    const rows = (await csv.text()).trim().split(/\r?\n/);
    expect(rows[0]).toBe('hour,price_eur_mwh');
    expect(rows).toHaveLength(25);
    const text = await (await fetch(`${demo.base}/api/scripts-runner/executions/${execution.id}/logs.txt`)).text();
    expect(text.split('\n')[0]).toBe('Model name: sample check');
    expect(readFileSync(join(root, '..', 'scripts', 'test_sample.py'), 'utf8')).toContain('Execution completed successfully');
  });
});
