/**
 * Whole-run caps: what binds a run as a whole (a cgroup for processes and memory, a size-capped run
 * directory), decided once per runner from what the host offers, then applied per run through one
 * small object. A limit that cannot bind is never silently accepted: set explicitly, it is refused
 * (`validation`); left at its default, it is warned about once per process.
 */
import { realpathSync } from 'node:fs';
import { basename } from 'node:path';
import { ScriptRunnerError } from '../errors.js';
import { detectCgroups, removeLeftoverCgroups, RunCgroup, sweepStaleCgroups, type CgroupHost } from './cgroup.js';
import type { SpawnSpec } from './isolation.js';
import type { ResolvedLimits } from './limits.js';
import { detectRunDirCap, MIN_RUN_DIR_BYTES, removeLeftoverRunDirCaps, RunDirCap, type RunDirCapHost } from './rundir-cap.js';
import { findSystemTool, SYSTEM_PATH } from './which.js';

export interface RunCapsInput {
  limits: ResolvedLimits;
  /** The `limits` option as given: which limits the caller set explicitly. */
  given: unknown;
  /** The user scripts are switched to, or undefined (they run as this process's user). */
  runAs: { uid: number; gid: number } | undefined;
  /** prlimit puts the per-process limits around the command. */
  prlimit: boolean;
  /** The sandbox (bwrap as root) switches to runAs itself: the run's processes start as root here. */
  switchedBySandbox?: boolean;
  warn: (message: string) => void;
}

/** One run's caps, in the order the run uses them. */
export interface RunCaps {
  /** Creates the run's cgroup and mounts the capped filesystem on the fresh, empty run directory. */
  setUp(runDir: string): Promise<void>;
  /** The argv that joins the cgroup (then switches to runAs) before it execs the spec. */
  wrap(spec: SpawnSpec): SpawnSpec;
  /** uid/gid for spawn() itself: undefined when wrap() switches the user (after joining). */
  readonly spawnAs: { uid: number; gid: number } | undefined;
  /** SIGKILL to everything still in the run's cgroup (processes that left its process group too). */
  killAll(): Promise<void>;
  /** " (… reached: limits.X)" when a whole-run cap stopped the run, else ''. `stderr`: its last lines. */
  hint(stderr: string): string;
  /** Kills what is left, unmounts (keepRunDir: copying the files out first) and removes the cgroup. */
  release(keepRunDir: boolean): Promise<void>;
}

export interface RunCapsPolicy {
  /** One line for the log at start: which caps bind the whole run and which each process. */
  readonly summary: string;
  /**
   * The limits prlimit still puts on each process: all of them, except maxProcesses when the run's
   * cgroup holds it (RLIMIT_NPROC counts every process of the user on the machine, so runs as the
   * same user would share it).
   */
  readonly processLimits: ResolvedLimits;
  forRun(executionId: string, notice: (text: string) => void): RunCaps;
  /** Removes what a dead runner left of an execution here: its cgroups and mounts (with their images). */
  removeLeftovers(workDir: string, executionId: string, keepRunDir: boolean): Promise<void>;
}

const ENV = findSystemTool('env') ?? '/usr/bin/env';

/** dash (Debian's /bin/sh) adds nothing to the environment once PWD is unset; bash adds SHLVL. */
function shellAddsVariables(): boolean {
  try {
    return basename(realpathSync('/bin/sh')) !== 'dash';
  } catch {
    return true;
  }
}
const SHELL_ADDS_VARIABLES = shellAddsVariables();

/** Warnings about limits that do not bind are said once per process, however many runners it makes. */
const warned = new Set<string>();

function bytes(value: number): string {
  for (const [unit, size] of [['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]] as const) {
    if (value >= size && value % size === 0) return `${value / size} ${unit}`;
  }
  return `${value} bytes`;
}

export async function resolveRunCaps(input: RunCapsInput): Promise<RunCapsPolicy> {
  const { limits } = input;
  const given = (input.given ?? {}) as Record<string, unknown>;
  const explicit = (name: keyof ResolvedLimits) => typeof given[name] === 'number';
  const warnOnce = (message: string) => {
    if (warned.has(message)) return;
    warned.add(message);
    input.warn(message);
  };

  let cgroup: CgroupHost | null = null;
  let setpriv: string | null = null;
  let noCgroup = '';
  const found = detectCgroups();
  if (typeof found === 'string') noCgroup = found;
  else if (found.version === 2 && input.runAs !== undefined && (setpriv = findSystemTool('setpriv')) === null) {
    noCgroup = 'cgroup v2: switching to runAs after joining the run cgroup needs setpriv (util-linux), which is not installed';
  } else {
    cgroup = found;
    noCgroup = found.problems.join('; ');
    void sweepStaleCgroups(found);
  }
  const pidsCapped = cgroup?.pids != null && limits.maxProcesses !== null;
  const memoryCapped = cgroup?.memory != null && limits.memoryBytes !== null;
  const scriptsAsRoot = process.getuid?.() === 0 && input.runAs === undefined;

  if (limits.maxProcesses !== null && !pidsCapped && scriptsAsRoot) {
    const why = `limits.maxProcesses cannot bind: scripts run as root, which the kernel exempts from RLIMIT_NPROC, and runs get no cgroup (${noCgroup})`;
    if (explicit('maxProcesses')) throw new ScriptRunnerError('validation', `${why}; set runAs, or maxProcesses: null`);
    warnOnce(`[scriptrunner] ${why}: a script can start any number of processes. Set runAs to bound it.`);
  }
  const perProcessOnly = [
    ...(limits.maxProcesses !== null && !pidsCapped && !scriptsAsRoot ? ['maxProcesses'] : []),
    ...(limits.memoryBytes !== null && !memoryCapped ? ['memoryBytes'] : []),
  ];
  if (perProcessOnly.length > 0) {
    warnOnce(
      `[scriptrunner] no cgroup per run (${noCgroup}): ${perProcessOnly.map((n) => `limits.${n}`).join(' and ')} bind each process ` +
        `(or user), not the run as a whole: a script can start several processes that each use them.`,
    );
  }

  let runDir: RunDirCapHost | null = null;
  if (limits.runDirBytes !== null) {
    if (limits.runDirBytes < MIN_RUN_DIR_BYTES) {
      throw new ScriptRunnerError('validation', `limits.runDirBytes must be at least ${MIN_RUN_DIR_BYTES} (1 MiB) or null, got ${limits.runDirBytes}`);
    }
    const cap = await detectRunDirCap();
    if (typeof cap !== 'string') runDir = cap;
    else if (explicit('runDirBytes')) {
      throw new ScriptRunnerError('validation', `limits.runDirBytes cannot be enforced on this host: ${cap}; pass runDirBytes: null to run without it`);
    } else {
      warnOnce(
        `[scriptrunner] run directories are not size-capped (limits.runDirBytes): ${cap}. A run can fill the disk under workDir; ` +
          `put workDir on its own filesystem or quota, or pass runDirBytes: null to accept this.`,
      );
    }
  }

  const processLimits: ResolvedLimits = { ...limits, maxProcesses: pidsCapped ? null : limits.maxProcesses };
  const whole = [
    ...(pidsCapped ? [`maxProcesses ${limits.maxProcesses}`] : []),
    ...(memoryCapped ? [`memoryBytes ${bytes(limits.memoryBytes!)}`] : []),
  ];
  const each = input.prlimit
    ? [
        ...(processLimits.maxProcesses !== null
          ? [`maxProcesses ${limits.maxProcesses} (RLIMIT_NPROC, per user${scriptsAsRoot ? ', not for root' : ''})`]
          : []),
        ...(limits.memoryBytes !== null ? [`memoryBytes ${bytes(limits.memoryBytes)} (address space)`] : []),
        ...(limits.maxFileBytes !== null ? [`maxFileBytes ${bytes(limits.maxFileBytes)}`] : []),
        ...(limits.maxOpenFiles !== null ? [`maxOpenFiles ${limits.maxOpenFiles}`] : []),
        ...(limits.cpuSeconds !== null ? [`cpuSeconds ${limits.cpuSeconds}`] : []),
      ]
    : [];
  const summary =
    `[scriptrunner] limits: whole run${cgroup ? ` (cgroup v${cgroup.version})` : ''}: ${whole.join(', ') || 'none'}` +
    `; run directory: ${runDir ? `runDirBytes ${bytes(limits.runDirBytes!)} (ext4 image)` : 'not capped'}` +
    `; per process (prlimit): ${each.join(', ') || 'none'}` +
    `; scripts run as ${input.runAs ? `uid ${input.runAs.uid} gid ${input.runAs.gid}` : `uid ${String(process.getuid?.() ?? '?')} (this process's user)`}`;

  return {
    summary,
    processLimits,
    forRun: (executionId, notice) =>
      new Caps(executionId, notice, limits, cgroup, pidsCapped, memoryCapped, runDir, input.runAs, setpriv, ENV, input.switchedBySandbox === true),
    removeLeftovers: async (workDir, executionId, keepRunDir) => {
      if (cgroup !== null) await removeLeftoverCgroups(cgroup, executionId);
      await removeLeftoverRunDirCaps(workDir, executionId, keepRunDir);
    },
  };
}

class Caps implements RunCaps {
  private cgroup: RunCgroup | null = null;
  private runDir: RunDirCap | null = null;

  constructor(
    private readonly executionId: string,
    private readonly notice: (text: string) => void,
    private readonly limits: ResolvedLimits,
    private readonly cgroupHost: CgroupHost | null,
    private readonly pidsCapped: boolean,
    private readonly memoryCapped: boolean,
    private readonly runDirHost: RunDirCapHost | null,
    private readonly runAs: { uid: number; gid: number } | undefined,
    /** cgroup v2 with runAs: the user is switched after joining, by setpriv. */
    private readonly setpriv: string | null,
    private readonly env: string,
    /** bwrap runs as root and switches inside: nothing here switches, the cgroup is joined as root. */
    private readonly switchedBySandbox: boolean,
  ) {}

  async setUp(runDir: string): Promise<void> {
    if (this.cgroupHost !== null) {
      const cgroup = await RunCgroup.create(
        this.cgroupHost,
        this.executionId,
        { maxProcesses: this.pidsCapped ? this.limits.maxProcesses : null, memoryBytes: this.memoryCapped ? this.limits.memoryBytes : null },
        this.switchesAfterJoin() || this.switchedBySandbox ? undefined : this.runAs,
      );
      this.cgroup = cgroup;
      if (this.memoryCapped) {
        // What cgroup v2's memory.oom.group does: one OOM kill ends the run, rather than leaving
        // the rest waiting for a process that is gone.
        cgroup.watchOom(() => {
          this.notice(
            `the run reached its memory limit of ${this.limits.memoryBytes} bytes (limits.memoryBytes, whole run): ` +
              `the kernel killed a process; stopping the run`,
          );
          void cgroup.killAll();
        });
      }
    }
    if (this.runDirHost !== null && this.limits.runDirBytes !== null) {
      this.runDir = new RunDirCap(this.runDirHost, this.limits.runDirBytes);
      await this.runDir.mount(runDir);
    }
  }

  /**
   * cgroup v1: the spawned process already runs as runAs (spawn switches, as without a cgroup) and
   * joins through the cgroup.procs handed to it. cgroup v2 only lets a process move between
   * cgroups with write access to their common ancestor, which runAs must not get: there the join
   * runs as root and setpriv switches after it.
   */
  private switchesAfterJoin(): boolean {
    return !this.switchedBySandbox && this.cgroup !== null && this.cgroupHost?.version === 2 && this.runAs !== undefined && this.setpriv !== null;
  }

  get spawnAs(): { uid: number; gid: number } | undefined {
    return this.switchesAfterJoin() || this.switchedBySandbox ? undefined : this.runAs;
  }

  wrap(spec: SpawnSpec): SpawnSpec {
    if (this.cgroup === null) return spec;
    const [command, ...join] = this.cgroup.joinArgs();
    if (this.switchesAfterJoin()) {
      // Nothing runs as root with the script's environment (LD_PRELOAD and the like): the root part
      // gets a fixed PATH, and env sets the script's variables once the user is switched.
      const { uid, gid } = this.runAs!;
      const variables = Object.entries(spec.env).map(([name, value]) => `${name}=${value}`);
      return {
        ...spec,
        command: command!,
        args: [...join, this.setpriv!, `--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', '--', this.env, '-i', '--', ...variables, spec.command, ...spec.args],
        env: { PATH: SYSTEM_PATH },
      };
    }
    // A shell other than dash exports variables of its own (bash: SHLVL): env drops them, so the
    // script's environment stays the allowlist (one more exec, spared where /bin/sh is dash).
    const tidy = SHELL_ADDS_VARIABLES ? [this.env, '-u', 'SHLVL', '-u', '_', '--'] : [];
    return { ...spec, command: command!, args: [...join, ...tidy, spec.command, ...spec.args] };
  }

  async killAll(): Promise<void> {
    await this.cgroup?.killAll();
  }

  hint(stderr: string): string {
    const outcome = this.cgroup?.outcome();
    if (outcome && outcome.oomKills > 0 && this.memoryCapped) {
      const n = outcome.oomKills;
      return ` (memory limit of ${this.limits.memoryBytes} bytes for the whole run reached: limits.memoryBytes; the kernel OOM-killed ${n} process${n > 1 ? 'es' : ''} and the run was stopped)`;
    }
    if (outcome && outcome.pidsMaxHits > 0 && this.pidsCapped) {
      return ` (process limit of ${this.limits.maxProcesses} for the whole run reached: limits.maxProcesses)`;
    }
    if (this.runDir?.full() && /No space left on device|ENOSPC|\[Errno 28\]/.test(stderr)) {
      return ` (run directory size limit of ${this.limits.runDirBytes} bytes reached: limits.runDirBytes)`;
    }
    return '';
  }

  async release(keepRunDir: boolean): Promise<void> {
    const errors: unknown[] = [];
    const attempt = async (step: () => Promise<void> | undefined) => {
      try {
        await step();
      } catch (error) {
        errors.push(error);
      }
    };
    // The cgroup first: it is quick, and the run's processes must be gone before the unmount anyway.
    await attempt(() => this.cgroup?.remove());
    await attempt(() => this.runDir?.release(keepRunDir));
    if (errors.length > 0) throw errors[0];
  }
}
