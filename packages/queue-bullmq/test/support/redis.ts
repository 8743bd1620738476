/**
 * A private redis-server (Debian's `redis-server`) on a free port in a temp dir, with an
 * append-only file so a restart keeps the queue, as a production Redis for BullMQ should.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { onAbnormalExit, reapWithParent } from '../../../../scripts/test-support/reaper.js';

export const REDIS_MISSING = 'redis-server is not installed, so the BullMQ tests are skipped. Install it with: apt-get install -y redis-server';

export function redisAvailable(): boolean {
  return spawnSync('redis-server', ['--version']).status === 0;
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface RedisServer {
  url: string;
  port: number;
  /** SIGKILL, then start again on the same port with the same data (a crash and a restart). */
  restart(downMs?: number): Promise<void>;
  /** SIGKILL only (the data stays); `start()` brings it back on the same port. */
  kill(): Promise<void>;
  /** Starts a killed server again; resolves when it answers PING. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

async function waitForPing(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on('error', () => undefined);
    try {
      await client.connect();
      if ((await client.ping()) === 'PONG') return;
    } catch {
      // not yet
    } finally {
      client.disconnect();
    }
    if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer PING`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function startRedis(): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'sr-redis-'));
  const leftover = onAbnormalExit([['rm', '-rf', dir]]);
  const port = await freePort();
  let child: ChildProcess | null = null;
  const start = async () => {
    child = reapWithParent(
      spawn(
        'redis-server',
        ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--maxmemory-policy', 'noeviction'],
        { stdio: 'ignore' },
      ),
    );
    await waitForPing(port);
  };
  const kill = async () => {
    const current = child;
    child = null;
    if (!current || current.exitCode !== null) return;
    const exited = new Promise((resolve) => current.once('exit', resolve));
    current.kill('SIGKILL');
    await exited;
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    kill,
    start,
    async restart(downMs = 500) {
      await kill();
      await new Promise((r) => setTimeout(r, downMs));
      await start();
    },
    async stop() {
      await kill();
      rmSync(dir, { recursive: true, force: true });
      leftover.release();
    },
  };
}
