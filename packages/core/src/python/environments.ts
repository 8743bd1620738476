/**
 * Cached Python environments for scripts that declare dependencies (PEP 723). One environment per
 * interpreter + requirements + index settings, content-addressed under `cacheDir`; made once by a
 * maintained installer (`venv` + `pip`), reused by every later run with the same key, evicted least
 * recently used past `maxCacheBytes`. The install itself is run by the caller (ExecutionRun), as a
 * sandboxed step of the run: this module decides what to run and keeps the cache consistent.
 *
 * Layout: `<cacheDir>/<key>/` the environment, `<key>/.ready` written last (JSON: requirements,
 * size; its mtime is the last use), `<key>.lock` held by the process installing it.
 */
import { createHash } from 'node:crypto';
import { existsSync, realpathSync, statSync } from 'node:fs';
import { lchown, link, lstat, mkdir, readdir, readFile, rename, rm, rmdir, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import { ScriptRunnerError } from '../errors.js';
import { findExecutable } from '../process/which.js';
import { processAlive } from '../util.js';

export interface DependencyOptions {
  /** Where environments are kept. Default `<workDir>/.environments` (set a lasting path in production). */
  cacheDir?: string;
  /** Past this many bytes, the least recently used environments are removed. Default 5 GiB. */
  maxCacheBytes?: number;
  /** pip's `--index-url`. Default: pip's own (PyPI). */
  indexUrl?: string;
  /** pip's `--extra-index-url`, in order. */
  extraIndexUrls?: string[];
  /** pip's `--find-links`: local directories (shown read-only to the install) or URLs. */
  findLinks?: string[];
  /** `--no-index`: install only from `findLinks`. Default false. */
  offline?: boolean;
  /** `--only-binary :all:`: wheels only, so no package code runs at install time. Default true. */
  binaryOnly?: boolean;
  /** An install taking longer fails the run. Default 600,000 (10 minutes). */
  timeoutMs?: number;
}

export interface DependencySettings {
  cacheDir: string;
  maxCacheBytes: number;
  indexUrl: string | null;
  extraIndexUrls: string[];
  findLinks: string[];
  offline: boolean;
  binaryOnly: boolean;
  timeoutMs: number;
}

const GiB = 1024 ** 3;

export function resolveDependencyOptions(options: DependencyOptions | undefined, workDir: string): DependencySettings {
  const o = options ?? {};
  if (typeof o !== 'object') throw new ScriptRunnerError('validation', 'dependencies must be an object');
  const invalid = (message: string) => new ScriptRunnerError('validation', `dependencies.${message}`);
  if (o.cacheDir !== undefined && (typeof o.cacheDir !== 'string' || !isAbsolute(o.cacheDir))) throw invalid('cacheDir must be an absolute path');
  for (const [name, value] of [['maxCacheBytes', o.maxCacheBytes], ['timeoutMs', o.timeoutMs]] as const) {
    if (value !== undefined && (!Number.isSafeInteger(value) || value <= 0)) throw invalid(`${name} must be a positive integer`);
  }
  const urls = (name: string, value: unknown): string[] => {
    if (value === undefined) return [];
    if (!Array.isArray(value) || value.some((v) => typeof v !== 'string' || v === '' || v.startsWith('-'))) throw invalid(`${name} must be a list of URLs or paths`);
    return [...(value as string[])];
  };
  if (o.indexUrl !== undefined && (typeof o.indexUrl !== 'string' || o.indexUrl === '' || o.indexUrl.startsWith('-'))) throw invalid('indexUrl must be a URL');
  const findLinks = urls('findLinks', o.findLinks);
  for (const link of findLinks) {
    if (!link.includes('://') && !isAbsolute(link)) throw invalid(`findLinks: ${link} must be a URL or an absolute path`);
  }
  return {
    cacheDir: o.cacheDir ?? join(workDir, '.environments'),
    maxCacheBytes: o.maxCacheBytes ?? 5 * GiB,
    indexUrl: o.indexUrl ?? null,
    extraIndexUrls: urls('extraIndexUrls', o.extraIndexUrls),
    findLinks,
    offline: o.offline === true,
    binaryOnly: o.binaryOnly !== false,
    timeoutMs: o.timeoutMs ?? 600_000,
  };
}

/** A step of an install, run by the caller inside the run's sandbox with the network on. */
export interface InstallStep {
  args: string[];
  /** What the step may write (the new environment); everything else is read-only or hidden. */
  writable: string;
  /** Host directories it reads (local find-links). */
  readPaths: string[];
  /** Off when pip installs only from local directories (offline, no URL find-links). */
  network: boolean;
  env: Record<string, string>;
}

export interface InstallHost {
  /** A `system` line in the run's log. */
  say(level: 'info' | 'warn' | 'error', text: string): void;
  /** Runs one step, its output streamed into the log; resolves with why it failed, or null. */
  step(command: string, step: InstallStep): Promise<string | null>;
  /** Uid/gid the steps run as (the environment is made theirs while it is built), if switched. */
  owner: { uid: number; gid: number } | undefined;
  /** The run was stopped: stop waiting. */
  stopped(): boolean;
}

export interface PreparedEnvironment {
  /** The environment's interpreter: what runs the script. */
  python: string;
  /** The environment, to show read-only to the script. */
  dir: string;
  /** Once the run is over: the environment may be evicted again. */
  release(): Promise<void>;
}

/** The key: everything that changes what an install produces. */
function environmentKey(interpreter: string, requirements: string[], settings: DependencySettings): string {
  const material = JSON.stringify({
    interpreter,
    requirements: [...requirements].sort(),
    indexUrl: settings.indexUrl,
    extraIndexUrls: settings.extraIndexUrls,
    findLinks: settings.findLinks,
    offline: settings.offline,
    binaryOnly: settings.binaryOnly,
  });
  return createHash('sha256').update(material).digest('hex').slice(0, 32);
}

/**
 * The interpreter a command names, as a stable string for the key: its real path (a venv link or an
 * alternatives link resolved) with its size and change time, so an upgraded interpreter gets new
 * environments.
 */
function interpreterIdentity(command: string, path: string): string {
  const found = command.includes('/') ? command : findExecutable(command, path);
  if (found === null) return command;
  try {
    const real = realpathSync(found);
    const info = statSync(real);
    return `${real}:${info.size}:${info.ctimeMs}`;
  } catch {
    return found;
  }
}

async function sizeOf(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) total += await sizeOf(path);
    else total += (await lstat(path)).size;
  }
  return total;
}

/**
 * Gives a tree to another owner (to the install's user, then back). lchown never follows a link; the
 * install's processes are gone before the tree is given back, so nothing swaps an entry meanwhile.
 */
async function chownTree(dir: string, uid: number, gid: number): Promise<void> {
  await lchown(dir, uid, gid);
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await chownTree(path, uid, gid);
    else await lchown(path, uid, gid);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class EnvironmentCache {
  /** Installs in progress in this process, by key: a second run waits for the first. */
  private readonly installing = new Map<string, Promise<void>>();
  /** Environments in use by runs of this process: never evicted under them. */
  private readonly inUse = new Map<string, number>();
  private users = 0;

  constructor(readonly settings: DependencySettings) {}

  /**
   * The environment for `requirements` on `interpreter` (a runtime command), made now if missing.
   * Rejects with an Error whose message is the reason the run fails.
   */
  async prepare(command: string, path: string, requirements: string[], host: InstallHost): Promise<PreparedEnvironment> {
    const key = environmentKey(interpreterIdentity(command, path), requirements, this.settings);
    const dir = join(this.settings.cacheDir, key);
    this.inUse.set(key, (this.inUse.get(key) ?? 0) + 1);
    // Other processes sharing the cache see the use too: a file per run under <key>.users/.
    const marker = join(this.settings.cacheDir, `${key}.users`, `${process.pid}-${++this.users}`);
    for (let attempt = 1; ; attempt++) {
      await mkdir(dirname(marker), { recursive: true, mode: 0o700 });
      // The directory goes when its last marker does; another release may just have removed it.
      const made = await writeFile(marker, '').then(() => true, (error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT' || attempt >= 3) throw error;
        return false;
      });
      if (made) break;
    }
    let released = false;
    const release = async () => {
      if (released) return;
      released = true;
      await unlink(marker)
        .then(() => rmdir(dirname(marker)))
        .catch(() => undefined);
      const n = (this.inUse.get(key) ?? 1) - 1;
      if (n <= 0) this.inUse.delete(key);
      else this.inUse.set(key, n);
    };
    try {
      if (!(await this.ready(dir))) {
        await this.installOnce(key, dir, command, requirements, host);
      } else {
        host.say('info', `dependencies: reusing environment ${key.slice(0, 12)} (${requirements.join(', ')})`);
      }
      return { python: join(dir, 'bin', 'python'), dir, release };
    } catch (error) {
      await release();
      throw error;
    }
  }

  /** The environment is complete (and now marked used): its marker is a regular file this process's user wrote. */
  private async ready(dir: string): Promise<boolean> {
    const marker = join(dir, '.ready');
    try {
      const info = await lstat(marker);
      if (!info.isFile() || info.uid !== process.getuid?.()) return false;
      const now = new Date();
      await utimes(marker, now, now);
      return true;
    } catch {
      return false;
    }
  }

  private async installOnce(key: string, dir: string, command: string, requirements: string[], host: InstallHost): Promise<void> {
    for (;;) {
      const pending = this.installing.get(key);
      if (pending) {
        host.say('info', `dependencies: waiting for another run installing environment ${key.slice(0, 12)}`);
        await pending.catch(() => undefined);
        if (await this.ready(dir)) return;
        if (host.stopped()) throw new Error('stopped while waiting for the environment');
        continue;
      }
      const install = this.lockedInstall(key, dir, command, requirements, host);
      this.installing.set(key, install);
      try {
        await install;
        return;
      } finally {
        this.installing.delete(key);
      }
    }
  }

  /** Holds `<key>.lock` (across processes sharing the cache) while installing. */
  private async lockedInstall(key: string, dir: string, command: string, requirements: string[], host: InstallHost): Promise<void> {
    await mkdir(this.settings.cacheDir, { recursive: true, mode: 0o711 });
    const lock = `${dir}.lock`;
    const deadline = Date.now() + this.settings.timeoutMs + 60_000;
    let said = false;
    // The pid is written before the lock exists (link() of a complete file): a lock is never empty.
    const mine = `${lock}.${process.pid}-${++this.users}`;
    await writeFile(mine, String(process.pid));
    try {
      for (;;) {
        try {
          await link(mine, lock);
          break;
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        }
        if (await this.staleLock(lock)) {
          await unlink(lock).catch(() => undefined);
          continue;
        }
        if (!said) host.say('info', `dependencies: waiting for another process installing environment ${key.slice(0, 12)}`);
        said = true;
        if (host.stopped()) throw new Error('stopped while waiting for the environment');
        if (Date.now() > deadline) throw new Error(`waited too long for another process installing environment ${key.slice(0, 12)}`);
        await sleep(200);
      }
    } finally {
      await unlink(mine).catch(() => undefined);
    }
    try {
      if (await this.ready(dir)) return;
      await this.install(key, dir, command, requirements, host);
    } finally {
      await unlink(lock).catch(() => undefined);
    }
    await this.evict(key).catch((error: unknown) => host.say('warn', `dependencies: could not trim the cache: ${String(error)}`));
  }

  /**
   * A lock whose holder is gone: its process no longer exists, or it is older than any install may
   * take (a pid reused after a restart, or a holder in another PID namespace).
   */
  private async staleLock(lock: string): Promise<boolean> {
    try {
      const [text, info] = await Promise.all([readFile(lock, 'utf8'), lstat(lock)]);
      const holder = Number(text.trim());
      if (Date.now() - info.mtimeMs > this.settings.timeoutMs + 60_000) return true;
      return Number.isSafeInteger(holder) && holder > 0 && !processAlive(holder);
    } catch {
      return false; // released meanwhile: the next link() tells
    }
  }

  private async install(key: string, dir: string, command: string, requirements: string[], host: InstallHost): Promise<void> {
    const s = this.settings;
    await rm(dir, { recursive: true, force: true });
    // Readable by the scripts' user (it is shown to them read-only); the install's scratch space is not.
    await mkdir(dir, { mode: 0o755 });
    await mkdir(join(dir, '.tmp'), { mode: 0o700 });
    if (host.owner) await chownTree(dir, host.owner.uid, host.owner.gid);
    const started = Date.now();
    host.say('info', `dependencies: installing ${requirements.join(', ')} into a new environment ${key.slice(0, 12)}`);
    // pip reads no configuration file or PIP_* variable of the host: what is installed depends on
    // the key's settings only (PIP_CONFIG_FILE=/dev/null is pip's documented off switch).
    const env = { HOME: join(dir, '.tmp'), TMPDIR: join(dir, '.tmp'), PIP_CONFIG_FILE: '/dev/null', PIP_NO_INPUT: '1' };
    const readPaths = s.findLinks.filter((link) => isAbsolute(link) && existsSync(link));
    // Offline with local wheel directories only: the install needs no network, so it gets none.
    const network = !s.offline || s.findLinks.some((link) => !isAbsolute(link));
    const python = join(dir, 'bin', 'python');
    const pipArgs = [
      '-I', '-m', 'pip', '--python', python, 'install',
      '--disable-pip-version-check', '--no-input', '--no-cache-dir', '--progress-bar', 'off',
      ...(s.binaryOnly ? ['--only-binary', ':all:'] : []),
      ...(s.offline ? ['--no-index'] : []),
      ...(s.indexUrl ? ['--index-url', s.indexUrl] : []),
      ...s.extraIndexUrls.flatMap((url) => ['--extra-index-url', url]),
      ...s.findLinks.flatMap((link) => ['--find-links', link]),
      '--', ...requirements,
    ];
    const failed = async (why: string): Promise<never> => {
      await rm(dir, { recursive: true, force: true });
      throw new Error(why);
    };
    const step = (args: string[]) => host.step(command, { args, writable: dir, readPaths, env, network });
    // -I: nothing in the working directory (the new environment) or PYTHON* variables steer pip.
    const venv = await step(['-I', '-m', 'venv', '--without-pip', dir]);
    if (venv !== null) await failed(`could not create the environment (python -m venv): ${venv}`);
    const pip = await step(pipArgs);
    if (pip !== null) {
      const missingPip = /No module named pip/.test(pip);
      await failed(
        missingPip
          ? `${command} has no pip to install the script's dependencies: install it (Debian/Ubuntu: apt-get install python3-pip python3-venv) or use an interpreter that has pip`
          : `installing the script's dependencies failed: ${pip}`,
      );
    }
    await rm(join(dir, '.tmp'), { recursive: true, force: true });
    if (host.owner && process.getuid && process.getgid) await chownTree(dir, process.getuid(), process.getgid());
    const sizeBytes = await sizeOf(dir);
    // Written last, by rename: an environment is either complete or not there.
    await writeFile(join(this.settings.cacheDir, `${key}.ready-tmp`), JSON.stringify({ requirements, sizeBytes, createdAt: new Date().toISOString() }));
    await rename(join(this.settings.cacheDir, `${key}.ready-tmp`), join(dir, '.ready'));
    host.say('info', `dependencies: installed in ${((Date.now() - started) / 1000).toFixed(1)} s (${(sizeBytes / 1024 / 1024).toFixed(1)} MiB)`);
  }

  /** A run of another process (sharing the cache) has the environment: its marker's pid is alive. */
  private async usedElsewhere(key: string): Promise<boolean> {
    const users = join(this.settings.cacheDir, `${key}.users`);
    const names = await readdir(users).catch(() => [] as string[]);
    for (const name of names) {
      const pid = Number(name.split('-')[0]);
      if (pid !== process.pid && processAlive(pid)) return true;
      // A marker of a process that is gone (or of this one, whose own uses are in inUse).
      if (pid !== process.pid) await unlink(join(users, name)).catch(() => undefined);
    }
    return false;
  }

  /** Removes least recently used environments until the cache fits, never one in use here or being installed. */
  private async evict(justMade: string): Promise<void> {
    const root = this.settings.cacheDir;
    const entries: Array<{ key: string; size: number; used: number }> = [];
    for (const name of await readdir(root)) {
      // Remains of an eviction that did not finish (its process ended mid-way).
      const evicted = /^[0-9a-f]{32}\.evicted-(\d+)-/.exec(name);
      if (evicted && !processAlive(Number(evicted[1]))) await rm(join(root, name), { recursive: true, force: true });
      if (!/^[0-9a-f]{32}$/.test(name)) continue;
      try {
        const marker = join(root, name, '.ready');
        const [info, text] = await Promise.all([stat(marker), readFile(marker, 'utf8')]);
        entries.push({ key: name, size: Number((JSON.parse(text) as { sizeBytes?: number }).sizeBytes ?? 0), used: info.mtimeMs });
      } catch {
        // not complete: being installed, or a failed install's remains (removed when retried)
      }
    }
    let total = entries.reduce((sum, e) => sum + e.size, 0);
    entries.sort((a, b) => a.used - b.used);
    for (const entry of entries) {
      if (total <= this.settings.maxCacheBytes) break;
      if (entry.key === justMade || this.inUse.has(entry.key) || existsSync(join(root, `${entry.key}.lock`)) || (await this.usedElsewhere(entry.key))) continue;
      // Renamed first: a run starting now no longer finds it as ready.
      const trash = join(root, `${entry.key}.evicted-${process.pid}-${Date.now()}`);
      await rename(join(root, entry.key), trash);
      await rm(trash, { recursive: true, force: true });
      await rm(join(root, `${entry.key}.users`), { recursive: true, force: true });
      total -= entry.size;
    }
  }
}
