/**
 * Support for the browser end-to-end test: Debian's Chromium driven by playwright-core (never a
 * downloaded browser), and the demo server started as a child process on a free port with its own
 * temporary SQLite database.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { reapWithParent } from '../../../../scripts/test-support/reaper.js';

const here = dirname(fileURLToPath(import.meta.url));
/** examples/server */
export const SERVER_DIR = resolve(here, '..', '..');
export const REPO_ROOT = resolve(SERVER_DIR, '..', '..');
export const SCRIPTS_DIR = join(REPO_ROOT, 'examples', 'scripts');
const WEB_INDEX = join(SERVER_DIR, 'dist', 'web', 'index.html');

export const CHROMIUM_PATH = '/usr/bin/chromium';
export const CHROMIUM_MISSING = `Chromium not found at ${CHROMIUM_PATH}: apt-get install -y chromium`;

export function chromiumAvailable(): boolean {
  return existsSync(CHROMIUM_PATH);
}

/** Headless Chromium from the system; playwright gives it a fresh temporary profile and removes it on close. */
export async function launchChromium(): Promise<Browser> {
  if (!chromiumAvailable()) throw new Error(CHROMIUM_MISSING);
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    timeout: 60_000,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** A port that was free a moment ago (bound on 127.0.0.1:0, then released). */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port ? resolvePort(port) : reject(new Error('no port assigned'))));
    });
  });
}

export interface DemoServer {
  /** http://127.0.0.1:<port> */
  url: string;
  port: number;
  dataDir: string;
  /** Everything the child printed so far (stdout and stderr). */
  output(): string;
  /** SIGTERM, wait for the exit (SIGKILL after `graceMs`), remove the data directory. */
  stop(graceMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const READY = 'scriptrunner demo on';

/**
 * Starts examples/server/src/server.ts (through tsx, as `npm run start` does) on a free port with a
 * fresh SCRIPTRUNNER_DATA_DIR, and resolves once it prints that it listens.
 */
export async function startDemoServer(options: { timeoutMs?: number } = {}): Promise<DemoServer> {
  if (!existsSync(WEB_INDEX)) {
    throw new Error(`the web UI is not built (${WEB_INDEX} is missing): run \`npx turbo run build\` at the repository root (\`npm test\` builds first)`);
  }
  const timeoutMs = options.timeoutMs ?? 45_000;
  const port = await freePort();
  const dataDir = await mkdtemp(join(tmpdir(), 'scriptrunner-e2e-'));
  let output = '';
  const { DATABASE_URL: _ignored, ...env } = process.env;
  // `node --import tsx` is what the tsx CLI does, minus its relay process: SIGTERM reaches the server itself.
  const child: ChildProcess = reapWithParent(spawn(process.execPath, ['--import', 'tsx', join(SERVER_DIR, 'src', 'server.ts')], {
    cwd: SERVER_DIR,
    env: { ...env, PORT: String(port), SCRIPTRUNNER_DATA_DIR: dataDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  }));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolveExit) => {
    child.once('exit', (code, signal) => resolveExit({ code, signal }));
  });
  child.stdout?.setEncoding('utf8');
  child.stderr?.setEncoding('utf8');
  child.stdout?.on('data', (chunk: string) => (output += chunk));
  child.stderr?.on('data', (chunk: string) => (output += chunk));

  const cleanup = async () => {
    await rm(dataDir, { recursive: true, force: true, maxRetries: 3 });
  };

  try {
    await new Promise<void>((resolveReady, reject) => {
      const timer = setTimeout(() => {
        done();
        reject(new Error(`the demo server did not print "${READY}" within ${timeoutMs} ms; its output:\n${output || '(nothing)'}`));
      }, timeoutMs);
      const onData = () => {
        if (output.includes(READY)) {
          done();
          resolveReady();
        }
      };
      const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
        done();
        reject(new Error(`the demo server exited before listening (code ${code}, signal ${signal}); its output:\n${output || '(nothing)'}`));
      };
      const onError = (error: Error) => {
        done();
        reject(new Error(`the demo server could not be started: ${error.message}`));
      };
      const done = () => {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        child.off('exit', onExit);
        child.off('error', onError);
      };
      child.stdout?.on('data', onData);
      child.once('exit', onExit);
      child.once('error', onError);
      onData();
    });
  } catch (error) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
    await cleanup();
    throw error;
  }

  let stopping: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | null = null;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    dataDir,
    output: () => output,
    stop(graceMs = 20_000) {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        let timer: ReturnType<typeof setTimeout> | undefined;
        const killed = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), graceMs)));
        const first = await Promise.race([exited, killed]);
        clearTimeout(timer);
        if (first === 'timeout') {
          child.kill('SIGKILL');
          await exited;
          await cleanup();
          throw new Error(`the demo server did not exit within ${graceMs} ms of SIGTERM; its output:\n${output}`);
        }
        await cleanup();
        return first;
      })();
      return stopping;
    },
  };
}
