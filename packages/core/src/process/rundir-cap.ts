/**
 * The run directory's size cap: a sparse ext4 image of `runDirBytes`, loop-mounted on the fresh run
 * directory before the script's copy is written into it, unmounted and deleted with the directory.
 * The host's disk holds at most the image (it starts at about 1 MiB and grows as the run writes),
 * so a run stops at ENOSPC instead of filling the host's filesystem. Not tmpfs: that would hold
 * every run's files in RAM.
 *
 * Needs root (mount) and loop devices; the files stay readable by the host until the directory is
 * removed.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statfsSync, truncateSync, writeFileSync } from 'node:fs';
import { chmod, mkdtemp, open, readdir, rename, rm, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { processAlive } from '../util.js';
import { findSystemTool, SYSTEM_PATH } from './which.js';

export interface RunDirCapHost {
  mkfs: string;
  mount: string;
  umount: string;
  cp: string;
}

const TOOL_TIMEOUT_MS = 30_000;
/** Smallest image mkfs.ext4 formats with room for a script: below this the cap is refused. */
export const MIN_RUN_DIR_BYTES = 1024 * 1024;
/** No journal (a run directory does not outlive a crash), no reserved blocks, no discard pass. */
const MKFS_ARGS = ['-q', '-F', '-m', '0', '-O', '^has_journal', '-E', 'nodiscard'];
/** noinit_itable: no background thread zeroing inode tables (it would allocate the image). */
const MOUNT_OPTIONS = 'loop,nosuid,nodev,noinit_itable';

function run(command: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: TOOL_TIMEOUT_MS, env: { PATH: SYSTEM_PATH, LC_ALL: 'C' } }, (error, _stdout, stderr) => {
      if (error) reject(new Error(`${basename(command)} ${args.join(' ')}: ${String(stderr).trim() || error.message}`));
      else resolve();
    });
  });
}

let detected: Promise<RunDirCapHost | string> | undefined;

/**
 * Whether run directories can be capped here, checked once per process by formatting and mounting
 * a small image (in the background: the tools take a while on a loaded host): a RunDirCapHost, or
 * why not.
 */
export function detectRunDirCap(): Promise<RunDirCapHost | string> {
  detected ??= probe();
  return detected;
}

async function probe(): Promise<RunDirCapHost | string> {
  if (process.getuid?.() !== 0) return 'mounting a size-capped filesystem needs root, and this process does not run as root';
  const tools = { mkfs: findSystemTool('mkfs.ext4'), mount: findSystemTool('mount'), umount: findSystemTool('umount'), cp: findSystemTool('cp') };
  const missing = Object.entries(tools).filter(([, path]) => path === null).map(([name]) => (name === 'mkfs' ? 'mkfs.ext4' : name));
  if (missing.length > 0) return `${missing.join(', ')} not found (e2fsprogs, util-linux)`;
  if (!existsSync('/dev/loop-control') && !existsSync('/dev/loop0')) return 'no loop devices (/dev/loop-control)';
  const host = tools as RunDirCapHost;
  // A process that exits while its probe is mounted (a short script, a test worker) leaves it
  // behind: the next probe of any process unmounts those whose process is gone.
  await sweepProbes(host.umount);
  const dir = mkdtempSync(join(tmpdir(), `scriptrunner-probe-${process.pid}-`));
  const image = join(dir, 'probe.img');
  const mountPoint = join(dir, 'mnt');
  const sync = (command: string, args: string[]) =>
    new Promise<string | null>((resolve) => {
      execFile(command, args, { timeout: TOOL_TIMEOUT_MS, env: { PATH: SYSTEM_PATH, LC_ALL: 'C' }, encoding: 'utf8' }, (error, _stdout, stderr) => {
        if (error === null) resolve(null);
        else resolve(`${basename(command)}: ${stderr.trim() || error.message}`);
      });
    });
  try {
    writeFileSync(image, '');
    truncateSync(image, 2 * MIN_RUN_DIR_BYTES);
    let problem = await sync(host.mkfs, [...MKFS_ARGS, image]);
    if (problem !== null) return `cannot format an image: ${problem}`;
    mkdirSync(mountPoint);
    problem = await sync(host.mount, ['-o', MOUNT_OPTIONS, image, mountPoint]);
    if (problem !== null) return `cannot mount a loop device: ${problem}`;
    problem = await sync(host.umount, [mountPoint]);
    if (problem !== null) {
      await sync(host.umount, ['-l', mountPoint]);
      return `cannot unmount a loop device: ${problem}`;
    }
    return host;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Where a run directory's image lives: next to it, named after it (so leftovers are found by id). */
export function imagePath(runDir: string): string {
  return `${runDir}.img`;
}

/** One run directory's capped filesystem. */
export class RunDirCap {
  private mountPoint: string | null = null;
  private image: string | null = null;

  constructor(
    private readonly host: RunDirCapHost,
    readonly bytes: number,
  ) {}

  /**
   * Mounts a fresh filesystem of `bytes` on `dir`, which must be new and empty (the run's files are
   * written after this). Root of the mount: mode 0700, like the directory it covers.
   */
  async mount(dir: string): Promise<void> {
    const image = imagePath(dir);
    // 'wx': never reuse (or follow) something already there.
    const file = await open(image, 'wx', 0o600);
    this.image = image;
    try {
      await file.truncate(this.bytes);
    } finally {
      await file.close();
    }
    await run(this.host.mkfs, [...MKFS_ARGS, image]);
    await run(this.host.mount, ['-o', MOUNT_OPTIONS, image, dir]);
    this.mountPoint = dir;
    await rmdir(join(dir, 'lost+found')).catch(() => undefined);
    await chmod(dir, 0o700);
  }

  /**
   * True when the run directory is (nearly) out of room: with the script's ENOSPC, evidence that
   * this cap (not the sandbox's /tmp) stopped the run. ext4 keeps a little back for its own
   * metadata and still shows it free after ENOSPC (about 2 MiB of 128 MiB).
   */
  full(): boolean {
    if (this.mountPoint === null) return false;
    try {
      const stats = statfsSync(this.mountPoint);
      return stats.bavail * stats.bsize < Math.max(4 * 1024 * 1024, stats.blocks * stats.bsize * 0.05);
    } catch {
      return false;
    }
  }

  /**
   * Unmounts and deletes the image. With `keep` (keepWorkDir), the files are first copied out, so the
   * kept run directory is a plain directory holding them.
   */
  async release(keep: boolean): Promise<void> {
    const mountPoint = this.mountPoint;
    this.mountPoint = null;
    if (mountPoint !== null) await unmountRunDir(this.host, mountPoint, keep);
    if (this.image !== null) await rm(this.image, { force: true });
    this.image = null;
  }
}

async function unmountRunDir(host: Pick<RunDirCapHost, 'umount' | 'cp'>, dir: string, keep: boolean): Promise<void> {
  let copy: string | null = null;
  if (keep) {
    copy = await mkdtemp(`${dir}.kept-`);
    await run(host.cp, ['-a', `${dir}/.`, copy]);
  }
  try {
    await run(host.umount, [dir]);
  } catch {
    // Busy (a process that outlived the run still has it open): detach now, freed when it lets go.
    await run(host.umount, ['-l', dir]);
  }
  if (copy !== null) {
    await rmdir(dir);
    await rename(copy, dir);
  }
}

/** Unmounts and removes probe mounts left by processes that are gone. Best effort. */
async function sweepProbes(umount: string): Promise<void> {
  const pattern = /^scriptrunner-probe-(\d+)-[^/]+$/;
  for (const dir of mountsUnder(tmpdir(), 2)) {
    const match = pattern.exec(basename(dir));
    if (!match || processAlive(Number(match[1]))) continue;
    await run(umount, ['-l', join(dir, 'mnt')]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
}

/**
 * Mount points `depth` levels under `root` (this mount namespace), from /proc/self/mountinfo;
 * with depth 2, the directory one level under root that holds each.
 */
function mountsUnder(root: string, depth: 1 | 2 = 1): string[] {
  let text: string;
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((field): field is string => field !== undefined)
    .map((field) => field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8))))
    .map((path) => (depth === 2 ? dirname(path) : path))
    .filter((path) => dirname(path) === root);
}

/**
 * Unmounts the run directories a dead runner left mounted for an execution under `workDir` and
 * deletes their images (the directories themselves are removed with the other leftovers).
 */
export async function removeLeftoverRunDirCaps(workDir: string, executionId: string, keep: boolean): Promise<void> {
  const prefix = `${executionId}-`;
  const mounted = mountsUnder(workDir).filter((d) => basename(d).startsWith(prefix));
  const umount = mounted.length > 0 ? findSystemTool('umount') : null;
  const cp = findSystemTool('cp');
  for (const dir of mounted) {
    if (umount !== null && cp !== null) await unmountRunDir({ umount, cp }, dir, keep).catch(() => undefined);
  }
  const entries = await readdir(workDir).catch(() => [] as string[]);
  await Promise.all(
    entries
      .filter((name) => name.startsWith(prefix) && name.endsWith('.img'))
      .map((name) => rm(join(workDir, name), { force: true }).catch(() => undefined)),
  );
}
