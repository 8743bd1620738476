/**
 * Test support: a private, throw-away PostgreSQL server per test suite.
 *
 * Uses the Debian `postgresql` package binaries (/usr/lib/postgresql/<version>/bin).
 * initdb and pg_ctl refuse to run as root, so when we are root every server
 * command runs as the `postgres` OS user (via runuser) on a temp directory
 * that user owns. The server listens on 127.0.0.1 only, on a free port, with
 * trust authentication and durability switched off for speed.
 *
 * Nothing global is registered: callers must call `destroy()` (e.g. in afterAll).
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { appendFile, chown, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { onAbnormalExit, type Steps } from '../../../../scripts/test-support/reaper.js';

const execFileAsync = promisify(execFile);

export interface PostgresServer {
  /** postgresql://postgres@127.0.0.1:<port>/<db> — trust auth, no password. */
  url: string;
  port: number;
  /** The server's data directory (its postmaster.pid names the server process). */
  dataDir: string;
  /** Creates a fresh database on this server and returns its URL (for test isolation). */
  createDatabase(name?: string): Promise<string>;
  /** Stops the server process (pg_ctl stop -m immediate) but keeps the data dir, so it can be started again on the same port. */
  stopServer(): Promise<void>;
  /** Starts it again after stopServer (same port, same data). Resolves when it accepts connections. */
  startServer(): Promise<void>;
  /** Stops the server and deletes the data dir. Idempotent. */
  destroy(): Promise<void>;
}

const PG_ROOT = '/usr/lib/postgresql';
const REQUIRED_BINARIES = ['initdb', 'pg_ctl', 'postgres'] as const;
const HOST = '127.0.0.1';
const INSTALL_COMMAND = 'apt-get install -y postgresql';

/** Message for a skipped suite outside CI, naming the install command. */
export const POSTGRES_MISSING =
  `PostgreSQL is not installed (no ${PG_ROOT}/<version>/bin/initdb), so the PostgreSQL tests are skipped. ` +
  `Install it with: ${INSTALL_COMMAND}`;

/** Highest-versioned /usr/lib/postgresql/<v>/bin that contains initdb, or null. */
function findBinDir(): string | null {
  let entries: string[];
  try {
    entries = readdirSync(PG_ROOT);
  } catch {
    return null;
  }
  const candidates = entries
    .filter((v) => existsSync(join(PG_ROOT, v, 'bin', 'initdb')))
    .sort((a, b) => b.localeCompare(a, 'en', { numeric: true }));
  const best = candidates[0];
  return best === undefined ? null : join(PG_ROOT, best, 'bin');
}

/** True when /usr/lib/postgresql/<v>/bin/initdb exists. */
export function postgresAvailable(): boolean {
  return findBinDir() !== null;
}

function missingBinariesError(binDir: string | null): Error {
  const where = binDir ?? `${PG_ROOT}/<version>/bin`;
  const missing = REQUIRED_BINARIES.filter((b) => binDir === null || !existsSync(join(binDir, b)));
  return new Error(
    `PostgreSQL server binaries not found: ${missing.join(', ')} missing from ${where}. ` +
      `Install them with: ${INSTALL_COMMAND}`,
  );
}

async function freePort(): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const { port } = server.address() as AddressInfo;
      server.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}

async function idOf(flag: '-u' | '-g', user: string): Promise<number> {
  const { stdout } = await execFileAsync('id', [flag, user]);
  const n = Number.parseInt(stdout.trim(), 10);
  if (!Number.isInteger(n)) throw new Error(`\`id ${flag} ${user}\` printed ${JSON.stringify(stdout)}`);
  return n;
}

async function tail(file: string, lines = 40): Promise<string> {
  try {
    const text = await readFile(file, 'utf8');
    return text.trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log written)';
  }
}

function describeExecError(err: unknown): string {
  if (err && typeof err === 'object') {
    const e = err as { message?: unknown; stderr?: unknown; stdout?: unknown };
    const parts = [String(e.message ?? err)];
    if (typeof e.stderr === 'string' && e.stderr.trim()) parts.push(`stderr:\n${e.stderr.trim()}`);
    if (typeof e.stdout === 'string' && e.stdout.trim()) parts.push(`stdout:\n${e.stdout.trim()}`);
    return parts.join('\n');
  }
  return String(err);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Single-quoted postgresql.conf string literal. */
function confString(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

function databaseUrl(port: number, db: string): string {
  return `postgresql://postgres@${HOST}:${port}/${encodeURIComponent(db)}`;
}

let dbCounter = 0;

/**
 * Starts a private server on a free port. Rejects with a clear Error naming the
 * missing binaries (and the install command) if PostgreSQL is not installed.
 */
export async function startPostgres(): Promise<PostgresServer> {
  const binDir = findBinDir();
  if (binDir === null || REQUIRED_BINARIES.some((b) => !existsSync(join(binDir, b)))) {
    throw missingBinariesError(binDir);
  }

  const asRoot = process.getuid?.() === 0;
  const baseDir = await mkdtemp(join(tmpdir(), 'store-prisma-pg-'));
  const dataDir = join(baseDir, 'data');
  const logFile = join(baseDir, 'postgres.log');

  // Runs a PostgreSQL binary, as the `postgres` OS user when we are root.
  // cwd is the temp dir so the unprivileged user can always stat its cwd.
  const argvOf = (bin: string, args: string[]): string[] =>
    asRoot ? ['runuser', '-u', 'postgres', '--', join(binDir, bin), ...args] : [join(binDir, bin), ...args];
  const run = async (bin: string, args: string[]): Promise<void> => {
    const env: NodeJS.ProcessEnv = { ...process.env, LC_ALL: 'C', LANG: 'C' };
    for (const k of ['PGDATA', 'PGPORT', 'PGHOST', 'PGUSER', 'PGDATABASE', 'PGOPTIONS']) delete env[k];
    const [file, ...rest] = argvOf(bin, args);
    await execFileAsync(file!, rest, { cwd: baseDir, env });
  };
  // pg_ctl daemonizes the server: if this process is interrupted (Ctrl-C, a time limit, SIGKILL)
  // nothing here stops it, so a watchdog does.
  const removeDir: Steps = [['rm', '-rf', baseDir]];
  const stopAndRemove: Steps = [argvOf('pg_ctl', ['stop', '-w', '-t', '30', '-m', 'immediate', '-D', dataDir]), ...removeDir];
  const guard = onAbnormalExit(removeDir);

  let port = 0;
  let running = false;
  let destroyed: Promise<void> | null = null;

  const pgCtlStart = async (): Promise<void> => {
    try {
      // -o is passed through a shell by pg_ctl; the port is a plain number, so that is safe.
      await run('pg_ctl', ['start', '-w', '-t', '30', '-D', dataDir, '-l', logFile, '-o', `-p ${port}`]);
    } catch (err) {
      throw new Error(
        `pg_ctl start failed (port ${port}, data dir ${dataDir}): ${describeExecError(err)}\n` +
          `--- tail of ${logFile} ---\n${await tail(logFile)}`,
      );
    }
    running = true;
    guard.set(stopAndRemove);
    await waitForConnections();
  };

  // pg_ctl -w already waits for the "ready" state; this proves TCP on 127.0.0.1 works too.
  const waitForConnections = async (): Promise<void> => {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const client = new pg.Client({ connectionString: databaseUrl(port, 'postgres'), connectionTimeoutMillis: 2_000 });
      try {
        await client.connect();
        await client.query('select 1');
        return;
      } catch (err) {
        if (Date.now() > deadline) {
          throw new Error(
            `PostgreSQL on ${HOST}:${port} did not accept connections: ${describeExecError(err)}\n` +
              `--- tail of ${logFile} ---\n${await tail(logFile)}`,
          );
        }
        await sleep(50);
      } finally {
        await client.end().catch(() => {});
      }
    }
  };

  const postmasterPid = async (): Promise<number | null> => {
    try {
      const first = (await readFile(join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0];
      const pid = Number.parseInt(first ?? '', 10);
      return Number.isInteger(pid) && pid > 0 ? pid : null;
    } catch {
      return null;
    }
  };

  const pgCtlStop = async (): Promise<void> => {
    try {
      await run('pg_ctl', ['stop', '-w', '-t', '30', '-m', 'immediate', '-D', dataDir]);
    } catch (err) {
      // Already gone (crashed / killed)? Then there is nothing to stop.
      const pid = await postmasterPid();
      if (pid !== null && pidAlive(pid)) {
        throw new Error(`pg_ctl stop failed (data dir ${dataDir}): ${describeExecError(err)}`);
      }
    }
    running = false;
    guard.set(removeDir);
  };

  // Serialize lifecycle operations so overlapping calls cannot interleave.
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = queue.then(fn);
    queue = next.catch(() => {});
    return next;
  };
  const assertAlive = (): void => {
    if (destroyed) throw new Error(`PostgreSQL test server on port ${port} has been destroyed`);
  };

  const destroy = (): Promise<void> => {
    destroyed ??= serial(async () => {
      try {
        if (running || (await postmasterPid()) !== null) await pgCtlStop();
      } catch {
        // Last resort: SIGQUIT (immediate shutdown), then SIGKILL.
        const pid = await postmasterPid();
        if (pid !== null) {
          try {
            process.kill(pid, 'SIGQUIT');
          } catch {
            /* already gone */
          }
          for (let i = 0; i < 100 && pidAlive(pid); i++) await sleep(50);
          if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
        }
        running = false;
      }
      await rm(baseDir, { recursive: true, force: true, maxRetries: 3 });
      guard.release();
    });
    return destroyed;
  };

  try {
    if (asRoot) {
      const [uid, gid] = await Promise.all([idOf('-u', 'postgres'), idOf('-g', 'postgres')]);
      await chown(baseDir, uid, gid);
    }
    try {
      await run('initdb', [
        '-D', dataDir,
        '-U', 'postgres',
        '--auth=trust',
        '-E', 'UTF8',
        '--locale=C',
        '--no-sync',
      ]);
    } catch (err) {
      throw new Error(`initdb failed in ${dataDir}: ${describeExecError(err)}`);
    }
    // Appending keeps the file owned by postgres. Port is passed on the command line (pg_ctl -o).
    await appendFile(
      join(dataDir, 'postgresql.conf'),
      [
        '',
        '# --- store-prisma test server ---',
        `listen_addresses = ${confString(HOST)}`,
        `unix_socket_directories = ${confString(baseDir)}`,
        'fsync = off',
        'full_page_writes = off',
        // synchronous_commit stays on: with `stop -m immediate` an async commit could be lost.
        'shared_buffers = 16MB',
        'max_connections = 100',
        'max_wal_size = 1GB',
        '',
      ].join('\n'),
    );

    // The free port can be taken between probing and binding; retry a few times on a new one.
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      try {
        await pgCtlStart();
        break;
      } catch (err) {
        const log = await tail(logFile);
        const portTaken = /could not (bind|create listen socket)|Address already in use/i.test(log);
        if (!portTaken || attempt >= 3) throw err;
        await pgCtlStop().catch(() => {});
      }
    }
  } catch (err) {
    await destroy().catch(() => {});
    throw err;
  }

  return {
    url: databaseUrl(port, 'postgres'),
    port,
    dataDir,
    async createDatabase(name?: string): Promise<string> {
      assertAlive();
      const db = name ?? `test_${Date.now().toString(36)}_${++dbCounter}_${Math.random().toString(36).slice(2, 8)}`;
      if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(db)) {
        throw new Error(`Invalid database name ${JSON.stringify(db)}: use letters, digits and _ (max 63 chars)`);
      }
      const client = new pg.Client({ connectionString: databaseUrl(port, 'postgres') });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE "${db}"`);
      } finally {
        await client.end().catch(() => {});
      }
      return databaseUrl(port, db);
    },
    stopServer(): Promise<void> {
      return serial(async () => {
        assertAlive();
        if (running) await pgCtlStop();
      });
    },
    startServer(): Promise<void> {
      return serial(async () => {
        assertAlive();
        if (!running) await pgCtlStart();
      });
    },
    destroy,
  };
}
