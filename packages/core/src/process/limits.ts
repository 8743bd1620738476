/**
 * Resource limits for every run, in every isolation mode: set with prlimit(1) (util-linux) around
 * the spawned command, so they hold for the script and everything it starts. Where the host allows,
 * maxProcesses, memoryBytes and runDirBytes also bind the run as a whole (see run-caps.ts).
 */
import { ScriptRunnerError } from '../errors.js';
import type { SpawnSpec } from './isolation.js';

export interface ResourceLimits {
  /**
   * Memory of the whole run, in bytes: the memory limit of the run's cgroup (binds root too; the
   * kernel OOM-kills past it and the runner then stops the whole run), where the host has cgroups.
   * Also, on every host, the address space of each process (RLIMIT_AS: Python raises MemoryError).
   * Default 4 GiB.
   */
  memoryBytes?: number | null;
  /**
   * Processes and threads of the whole run: pids.max of the run's cgroup (binds root too), where
   * the host has cgroups. Elsewhere RLIMIT_NPROC, which counts every process of the run's user on
   * the machine and which the kernel does not apply to root. Default 256.
   */
  maxProcesses?: number | null;
  /** Largest file a script may write (RLIMIT_FSIZE), in bytes. Default 1 GiB. */
  maxFileBytes?: number | null;
  /** Open file descriptors per process (RLIMIT_NOFILE). Default 1,024. */
  maxOpenFiles?: number | null;
  /** CPU time per process (RLIMIT_CPU), in seconds; SIGXCPU past it. Default none (`timeoutMs` bounds wall time). */
  cpuSeconds?: number | null;
  /** bubblewrap only: size of the private /tmp and of /dev/shm, each in RAM. Default 512 MiB. */
  tmpBytes?: number | null;
  /**
   * Size of the run directory, all files together (a filesystem image of this size is mounted on
   * it; see rundir-cap.ts). Default 2 GiB: twice `maxFileBytes`, so one largest file fits with room
   * to spare, while a run can never take more than this of the host's disk.
   */
  runDirBytes?: number | null;
}

export type ResolvedLimits = { [K in keyof ResourceLimits]-?: number | null };

export const DEFAULT_LIMITS: Readonly<ResolvedLimits> = Object.freeze({
  memoryBytes: 4 * 1024 ** 3,
  maxProcesses: 256,
  maxFileBytes: 1024 ** 3,
  maxOpenFiles: 1024,
  cpuSeconds: null,
  tmpBytes: 512 * 1024 ** 2,
  runDirBytes: 2 * 1024 ** 3,
});

/** Limits that are not prlimit flags: mount options (tmpBytes) and the run directory's size. */
const OTHER_LIMITS = ['tmpBytes', 'runDirBytes'] as const;

/** The limits prlimit sets (tmpBytes and runDirBytes are sizes of mounts instead). */
const FLAGS: Record<Exclude<keyof ResolvedLimits, (typeof OTHER_LIMITS)[number]>, string> = {
  memoryBytes: 'as',
  maxProcesses: 'nproc',
  maxFileBytes: 'fsize',
  maxOpenFiles: 'nofile',
  cpuSeconds: 'cpu',
};

export function resolveLimits(limits: unknown): ResolvedLimits {
  if (limits !== undefined && (limits === null || typeof limits !== 'object' || Array.isArray(limits))) {
    throw new ScriptRunnerError('validation', 'limits must be an object');
  }
  const given = (limits ?? {}) as Record<string, unknown>;
  const result: ResolvedLimits = { ...DEFAULT_LIMITS };
  for (const [name, value] of Object.entries(given)) {
    if (!(name in FLAGS) && !(OTHER_LIMITS as readonly string[]).includes(name)) {
      throw new ScriptRunnerError('validation', `limits.${name} is not a limit (use ${[...Object.keys(FLAGS), ...OTHER_LIMITS].join(', ')})`);
    }
    if (value === undefined) continue;
    if (value !== null && (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1)) {
      throw new ScriptRunnerError('validation', `limits.${name} must be a positive integer or null (no limit), got ${String(value)}`);
    }
    result[name as keyof ResolvedLimits] = value;
  }
  return result;
}

/**
 * Puts prlimit in front of the command. Soft and hard limits are equal, except CPU: the kernel
 * sends SIGKILL at the hard limit, so the hard one is a second later and the script is told why
 * (SIGXCPU) first.
 */
export function limitsWrapper(limits: ResolvedLimits, prlimitPath: string): (spec: SpawnSpec) => SpawnSpec {
  const flags: string[] = [];
  for (const [name, flag] of Object.entries(FLAGS) as Array<[keyof typeof FLAGS, string]>) {
    const value = limits[name];
    if (value === null) continue;
    flags.push(name === 'cpuSeconds' ? `--${flag}=${value}:${value + 1}` : `--${flag}=${value}`);
  }
  if (flags.length === 0) return (spec) => spec;
  return (spec) => ({ ...spec, command: prlimitPath, args: [...flags, '--', spec.command, ...spec.args] });
}

export function validateRunAs(runAs: unknown): { uid: number; gid: number } | undefined {
  if (runAs === undefined || runAs === null) return undefined;
  const value = runAs as { uid?: unknown; gid?: unknown };
  const isId = (id: unknown): id is number => typeof id === 'number' && Number.isInteger(id) && id >= 0 && id < 2 ** 32 - 1;
  if (typeof runAs !== 'object' || !isId(value.uid) || !isId(value.gid)) {
    throw new ScriptRunnerError('validation', 'runAs must be { uid, gid } with non-negative integer ids');
  }
  if (value.uid === 0 || value.gid === 0) {
    throw new ScriptRunnerError('validation', 'runAs exists so scripts do not run as root: use a uid and gid other than 0 (e.g. 65534, nobody)');
  }
  const hostUid = process.getuid?.();
  if (hostUid !== 0 && hostUid !== value.uid) {
    throw new ScriptRunnerError('validation', `runAs needs the host to run as root (it runs as uid ${String(hostUid)})`);
  }
  return { uid: value.uid, gid: value.gid };
}
