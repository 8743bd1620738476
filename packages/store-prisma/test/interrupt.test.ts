/**
 * A test or bench process that is killed (a time limit's SIGTERM, or SIGKILL) leaves no PostgreSQL
 * server behind: pg_ctl daemonizes it, so the support code's watchdog stops it and removes its files.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { postgresAvailable, POSTGRES_MISSING } from './support/postgres.js';

const here = dirname(fileURLToPath(import.meta.url));
const describePg = postgresAvailable() || process.env.CI === 'true' ? describe : describe.skip;

/** Running or sleeping; a zombie that init has not reaped yet counts as gone. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

async function until(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

describePg(`a killed process's PostgreSQL server${postgresAvailable() ? '' : ` (${POSTGRES_MISSING})`}`, () => {
  it.each(['SIGTERM', 'SIGKILL'] as const)('is stopped and removed after its owner dies of %s', { timeout: 60_000 }, async (signal) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(here, 'support', 'hold-postgres.ts')], { stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout! }).once('line', resolve);
      child.once('exit', (code) => reject(new Error(`the fixture exited (${code}) before its server was up`)));
    });
    const { pid, dataDir } = JSON.parse(line) as { pid: number; dataDir: string };
    expect(alive(pid)).toBe(true);
    child.kill(signal);
    // The watchdog polls every 0.5 s; pg_ctl stop -m immediate takes well under a second here.
    expect(await until(() => !alive(pid), 20_000), `postmaster ${pid} still running`).toBe(true);
    expect(await until(() => !existsSync(dirname(dataDir)), 20_000), `${dirname(dataDir)} still there`).toBe(true);
  });
});
