/**
 * A cgroup per run: pids.max and a memory limit for everything the run starts, binding root too
 * (RLIMIT_NPROC does not bind root, and RLIMIT_AS is per process). Each run's cgroup is created
 * under this process's own cgroup of that controller, so whatever limits the container or service
 * already has still hold above it.
 *
 * cgroup v2: needs a delegated subtree in which this process's cgroup (or, when this process sits in
 * a leaf, its parent) can hand the pids and memory controllers to children. cgroup v1: needs root
 * (the hierarchies are root's). The script joins its cgroup before it starts (see joinArgs), so
 * nothing it forks can escape the count.
 */
import { createHash, randomBytes } from 'node:crypto';
import { accessSync, constants, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { chown, mkdir, readdir, readFile, rmdir, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';

export interface CgroupHost {
  version: 1 | 2;
  /** Directory under which run cgroups of each controller are created (v2: the same one twice). */
  pids: string | null;
  memory: string | null;
  /** Why a controller is missing (v1 may have one without the other). */
  problems: string[];
}

/** The limits a run cgroup carries; null lifts one (the cgroup still tracks every process). */
export interface CgroupLimits {
  maxProcesses: number | null;
  memoryBytes: number | null;
}

export interface CgroupOutcome {
  /** Processes the kernel OOM-killed because the run reached its memory limit. */
  oomKills: number;
  /** Times a fork or clone failed because the run reached pids.max. */
  pidsMaxHits: number;
}

const PREFIX = 'scriptrunner-';
const OOM_POLL_MS = 250;
const KILL_BOUND_MS = 5_000;

function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

/** `key value` lines (memory.events, pids.events, memory.oom_control): the value of `key`, or 0. */
function counter(text: string | null, key: string): number {
  const match = text?.match(new RegExp(`^${key} (\\d+)$`, 'm'));
  return match ? Number(match[1]) : 0;
}

/** /proc/self/mountinfo unescapes: the kernel writes space, tab, newline and backslash as \ooo. */
function unescapeMount(path: string): string {
  return path.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

interface CgroupMount {
  root: string;
  mountPoint: string;
  fsType: string;
  superOptions: string[];
}

function cgroupMounts(): CgroupMount[] {
  const mounts: CgroupMount[] = [];
  for (const line of (readText('/proc/self/mountinfo') ?? '').split('\n')) {
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    const fields = left.split(' ');
    const [fsType, , superOptions] = right.split(' ');
    if ((fsType !== 'cgroup' && fsType !== 'cgroup2') || fields[3] === undefined || fields[4] === undefined) continue;
    mounts.push({ root: unescapeMount(fields[3]), mountPoint: unescapeMount(fields[4]), fsType, superOptions: (superOptions ?? '').split(',') });
  }
  return mounts;
}

/** Where a cgroup path of /proc/self/cgroup lives on this mount, or null when the mount does not show it. */
function onMount(mount: CgroupMount, path: string): string | null {
  const root = mount.root === '/' ? '' : mount.root;
  if (path !== root && !path.startsWith(`${root}/`)) return null;
  // resolve: no trailing slash (a run cgroup's dirname must equal it).
  return resolve(mount.mountPoint, `.${path.slice(root.length)}`);
}

/** A throwaway child proves we may create cgroups here and set the limit files. */
function probe(parent: string, files: Array<[file: string, value: string]>): string | null {
  const dir = join(parent, `${PREFIX}probe-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    mkdirSync(dir);
  } catch (error) {
    return `cannot create a cgroup in ${parent}: ${(error as Error).message}`;
  }
  try {
    for (const [file, value] of files) writeFileSync(join(dir, file), value);
    return null;
  } catch (error) {
    return `cannot set limits in ${parent}: ${(error as Error).message}`;
  } finally {
    try {
      rmdirSync(dir);
    } catch {
      // an empty cgroup that could not be removed now is removed by the kernel's release or never used
    }
  }
}

function detectV1(lines: string[], mounts: CgroupMount[]): CgroupHost | string {
  if (process.getuid?.() !== 0) return 'cgroup v1 hierarchies belong to root and this process does not run as root';
  const host: CgroupHost = { version: 1, pids: null, memory: null, problems: [] };
  for (const controller of ['pids', 'memory'] as const) {
    const line = lines.find((l) => l.split(':')[1]?.split(',').includes(controller));
    const mount = mounts.find((m) => m.fsType === 'cgroup' && m.superOptions.includes(controller));
    if (!line || !mount) {
      host.problems.push(`the ${controller} controller is not mounted (cgroup v1)`);
      continue;
    }
    const own = line.slice(line.indexOf(':', line.indexOf(':') + 1) + 1);
    const parent = onMount(mount, own);
    if (parent === null) {
      host.problems.push(`this process's ${controller} cgroup ${own} is outside ${mount.mountPoint}`);
      continue;
    }
    const problem = probe(parent, [controller === 'pids' ? ['pids.max', 'max'] : ['memory.limit_in_bytes', '-1']]);
    if (problem !== null) host.problems.push(problem);
    else host[controller] = parent;
  }
  return host.pids === null && host.memory === null ? host.problems.join('; ') : host;
}

function detectV2(own: string, mounts: CgroupMount[]): CgroupHost | string {
  const mount = mounts.find((m) => m.fsType === 'cgroup2');
  const dir = mount ? onMount(mount, own) : null;
  if (!mount || dir === null) return 'no cgroup v2 mount shows this process\'s cgroup';
  const wanted = ['pids', 'memory'];
  const has = (file: string) => (readText(join(dir, file)) ?? '').trim().split(/\s+/);
  const missing = wanted.filter((c) => !has('cgroup.controllers').includes(c));
  if (missing.length > 0) return `cgroup v2: ${dir} does not offer the ${missing.join(' and ')} controller${missing.length > 1 ? 's' : ''}`;
  // Children can only get controllers from a cgroup without processes of its own (the root
  // excepted): this process's cgroup when it may delegate, otherwise its parent when this process
  // sits in a leaf of a delegated subtree (systemd DelegateSubgroup=, a container's /init).
  const reasons: string[] = [];
  for (const candidate of [dir, dirname(dir)]) {
    if (candidate !== dir && !candidate.startsWith(mount.mountPoint)) break;
    const enabled = (readText(join(candidate, 'cgroup.subtree_control')) ?? '').trim().split(/\s+/);
    const toEnable = wanted.filter((c) => !enabled.includes(c));
    try {
      accessSync(candidate, constants.W_OK);
      if (toEnable.length > 0) writeFileSync(join(candidate, 'cgroup.subtree_control'), toEnable.map((c) => `+${c}`).join(' '));
    } catch (error) {
      reasons.push(`${candidate}: ${(error as Error).message}`);
      continue;
    }
    const problem = probe(candidate, [
      ['pids.max', 'max'],
      ['memory.max', 'max'],
    ]);
    if (problem === null) return { version: 2, pids: candidate, memory: candidate, problems: [] };
    reasons.push(problem);
  }
  return `cgroup v2: no delegated cgroup to create run cgroups in (${reasons.join('; ')})`;
}

let detected: CgroupHost | string | undefined;

/** What this host offers, checked once per process: a CgroupHost, or why there are no run cgroups. */
export function detectCgroups(): CgroupHost | string {
  if (detected !== undefined) return detected;
  const lines = (readText('/proc/self/cgroup') ?? '').split('\n').filter(Boolean);
  if (lines.length === 0) return (detected = 'no /proc/self/cgroup (not Linux, or cgroups are not enabled)');
  const mounts = cgroupMounts();
  const v1 = lines.some((l) => /^\d+:[^:]*\b(pids|memory)\b[^:]*:/.test(l)) ? detectV1(lines, mounts) : null;
  if (v1 !== null && typeof v1 !== 'string') return (detected = v1);
  const unified = lines.find((l) => l.startsWith('0::'));
  const v2 = unified !== undefined ? detectV2(unified.slice(3), mounts) : 'no cgroup v2 hierarchy';
  detected = typeof v2 !== 'string' || v1 === null ? v2 : `${v1}; ${v2}`;
  return detected;
}

/** Cgroup names are made from execution ids; anything outside a safe set is hashed instead. */
export function cgroupName(executionId: string): string {
  return /^[A-Za-z0-9_-]{1,100}$/.test(executionId)
    ? `${PREFIX}${executionId}`
    : `${PREFIX}${createHash('sha256').update(executionId).digest('hex').slice(0, 32)}`;
}

function shQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** One run's cgroup (one directory per controller under v1, one under v2). */
export class RunCgroup {
  private watcher: NodeJS.Timeout | null = null;
  private removed = false;

  private constructor(
    private readonly host: CgroupHost,
    /** pids first: it is where processes are listed for killing. */
    private readonly dirs: string[],
  ) {}

  /**
   * Creates the cgroup (replacing a leftover of the same name) with its limits set. `joiner`: the
   * unprivileged user that will move itself in (v1 only): its cgroup.procs is handed to that user,
   * who can then join but not change the limits or leave (the kernel checks the writer owns the
   * process it moves, and the files of other cgroups stay root's).
   */
  static async create(host: CgroupHost, executionId: string, limits: CgroupLimits, joiner?: { uid: number; gid: number }): Promise<RunCgroup> {
    const name = cgroupName(executionId);
    const dirs = [...new Set([host.pids, host.memory].filter((d): d is string => d !== null).map((d) => join(d, name)))];
    const cgroup = new RunCgroup(host, dirs);
    for (const dir of dirs) {
      try {
        await mkdir(dir);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        await removeCgroupDir(dir);
        await mkdir(dir);
      }
    }
    const set = (dir: string | null, file: string, value: number | string) => (dir === null ? undefined : writeFile(join(dir, name, file), String(value)));
    try {
      if (limits.maxProcesses !== null) await set(host.pids, 'pids.max', limits.maxProcesses);
      if (limits.memoryBytes !== null && host.version === 1) {
        await set(host.memory, 'memory.limit_in_bytes', limits.memoryBytes);
        // With swap, memory + swap: the run gets no more by swapping. Absent without swap accounting.
        await set(host.memory, 'memory.memsw.limit_in_bytes', limits.memoryBytes)?.catch(() => undefined);
      }
      if (host.version === 2 && limits.memoryBytes !== null) {
        await set(host.memory, 'memory.max', limits.memoryBytes);
        await set(host.memory, 'memory.swap.max', 0)?.catch(() => undefined);
      }
      // One OOM kill takes the whole run (v1 has no such switch: the watcher does it there).
      if (host.version === 2) await set(host.memory, 'memory.oom.group', 1);
      if (joiner && host.version === 1) {
        for (const dir of dirs) await chown(join(dir, 'cgroup.procs'), joiner.uid, joiner.gid);
      }
    } catch (error) {
      await cgroup.remove().catch(() => undefined);
      throw error;
    }
    return cgroup;
  }

  /**
   * argv that moves itself into this cgroup and then execs its arguments: the script is inside
   * before its first instruction, so no fork can slip out. It runs as root, as the delegated user,
   * or (v1) as the `joiner` given at creation.
   */
  joinArgs(): string[] {
    const writes = this.dirs.map((dir) => `echo $$ > ${shQuote(join(dir, 'cgroup.procs'))}`).join(' && ');
    // unset: the shell exports PWD (and OLDPWD) of its own; the script's environment stays the allowlist.
    const script = `${writes} || { echo '[scriptrunner] could not join the run cgroup' >&2; exit 125; }; unset PWD OLDPWD; exec "$@"`;
    return ['/bin/sh', '-c', script, 'sh'];
  }

  outcome(): CgroupOutcome {
    const pidsDir = this.pidsDir();
    return {
      oomKills: this.oomKills(),
      pidsMaxHits: pidsDir === undefined ? 0 : counter(readText(join(pidsDir, 'pids.events')), 'max'),
    };
  }

  private oomKills(): number {
    const memoryDir = this.memoryDir();
    if (memoryDir === undefined) return 0;
    return counter(readText(join(memoryDir, this.host.version === 2 ? 'memory.events' : 'memory.oom_control')), 'oom_kill');
  }

  /** Calls `onOom` once, soon after the kernel OOM-killed a process of the run. */
  watchOom(onOom: () => void): void {
    if (this.memoryDir() === undefined || this.watcher !== null) return;
    this.watcher = setInterval(() => {
      if (this.oomKills() === 0) return;
      this.stopWatching();
      onOom();
    }, OOM_POLL_MS);
    this.watcher.unref();
  }

  /** SIGKILL to every process in the cgroup until none is left (bounded). */
  async killAll(): Promise<void> {
    this.stopWatching();
    for (const dir of this.dirs) await killCgroup(dir);
  }

  /** Kills what is left and removes the cgroup. */
  /**
   * Kills what is left and removes the cgroup. A process that does not die in time (stuck in the
   * kernel, e.g. on I/O) keeps it: removal is tried again later in the background, and the error
   * is thrown for the caller to report.
   */
  async remove(): Promise<void> {
    if (this.removed) return;
    this.stopWatching();
    this.removed = true;
    let failure: unknown = null;
    for (const dir of this.dirs) {
      try {
        await removeCgroupDir(dir);
      } catch (error) {
        failure ??= error;
        retryLater(dir);
      }
    }
    if (failure !== null) throw failure;
  }

  private pidsDir(): string | undefined {
    return this.host.pids === null ? undefined : this.dirs.find((d) => dirname(d) === this.host.pids);
  }

  private memoryDir(): string | undefined {
    return this.host.memory === null ? undefined : this.dirs.find((d) => dirname(d) === this.host.memory);
  }

  private stopWatching(): void {
    if (this.watcher !== null) clearInterval(this.watcher);
    this.watcher = null;
  }
}

async function listProcesses(dir: string): Promise<number[]> {
  const text = await readFile(join(dir, 'cgroup.procs'), 'utf8').catch(() => '');
  return text.split('\n').filter(Boolean).map(Number);
}

/** Kills every process of a cgroup, again and again while a fork loop refills it (bounded). */
async function killCgroup(dir: string): Promise<void> {
  // v2 kills the whole subtree at once, race-free.
  await writeFile(join(dir, 'cgroup.kill'), '1').catch(() => undefined);
  const deadline = Date.now() + KILL_BOUND_MS;
  for (;;) {
    const pids = await listProcesses(dir);
    if (pids.length === 0 || Date.now() > deadline) return;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Kills what is in a cgroup directory and removes it; a cgroup still emptying is retried (bounded). */
async function removeCgroupDir(dir: string): Promise<void> {
  await killCgroup(dir);
  const deadline = Date.now() + KILL_BOUND_MS;
  for (;;) {
    try {
      await rmdir(dir);
      return;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY' || Date.now() > deadline) throw error;
    }
    await killCgroup(dir);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const RETRY_DELAYS_MS = [10_000, 60_000, 600_000];

function retryLater(dir: string, attempt = 0): void {
  const delay = RETRY_DELAYS_MS[attempt];
  if (delay === undefined) return;
  setTimeout(() => void removeCgroupDir(dir).catch(() => retryLater(dir, attempt + 1)), delay).unref();
}

/** Cgroups this old with no process in them belong to no live run (one is set up in seconds). */
const STALE_MS = 10 * 60_000;

/**
 * Removes run cgroups that were left empty under this process's cgroups by runners that died (or
 * whose store does not know their executions, like a memory store's): at most once per process.
 */
let swept = false;
export async function sweepStaleCgroups(host: CgroupHost): Promise<void> {
  if (swept) return;
  swept = true;
  for (const parent of new Set([host.pids, host.memory])) {
    if (parent === null) continue;
    const names = await readdir(parent).catch(() => [] as string[]);
    for (const name of names.filter((n) => n.startsWith(PREFIX))) {
      const dir = join(parent, name);
      try {
        if (Date.now() - (await stat(dir)).mtimeMs < STALE_MS || (await listProcesses(dir)).length > 0) continue;
        await rmdir(dir);
      } catch {
        // gone meanwhile, or busy: not stale after all
      }
    }
  }
}

/**
 * Removes the cgroups a dead runner left for an execution (with whatever still runs in them), under
 * this process's cgroups: where a runner restarted in the same service or container left them.
 */
export async function removeLeftoverCgroups(host: CgroupHost, executionId: string): Promise<void> {
  const name = cgroupName(executionId);
  for (const parent of new Set([host.pids, host.memory])) {
    if (parent !== null) await removeCgroupDir(join(parent, name)).catch(() => undefined);
  }
}
