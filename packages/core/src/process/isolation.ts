/**
 * The isolation seam: how the argv of a run is wrapped before it is spawned. The runner builds a
 * `SpawnSpec`, passes it through exactly one wrapper (none, bubblewrap, or the caller's), then
 * puts the resource limits around whatever the wrapper returned (see limits.ts).
 */
import { execFile } from 'node:child_process';
import { existsSync, lstatSync, readlinkSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { ScriptRunnerError } from '../errors.js';
import { findExecutable, findSystemTool, SYSTEM_PATH } from './which.js';

export interface SpawnSpec {
  command: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
}

/** Where the run lives, for wrappers that need to expose it (bind mounts, volume flags). */
export interface IsolationContext {
  /** The run directory: the child's cwd and HOME, holding the copy of the script. */
  runDir: string;
  /** The child's TMPDIR (inside the run directory). */
  tmpDir: string;
  /** Further host paths this command reads, shown read-only at the same place (a cached environment). */
  readPaths?: string[];
  /** This command needs the network even where scripts do not get it (an install step). */
  network?: boolean;
}

export type IsolationWrapper = (spec: SpawnSpec, context: IsolationContext) => SpawnSpec;

/** `auto` (default): bubblewrap when it works on this host, otherwise unisolated with one warning. */
export type IsolationMode = 'auto' | 'bwrap' | 'none';

/** Runs the command as it is, in its own process group, with the allowlisted environment. */
export const noIsolation: IsolationWrapper = (spec) => spec;

export interface SandboxOptions {
  /** Keep the host's network inside the sandbox. Default false: only a private loopback. */
  allowNetwork: boolean;
  /** Absolute host paths mounted read-only at the same place (a models folder, a virtualenv). */
  readPaths: string[];
  /** Size of the private /tmp and of /dev/shm (each a tmpfs in RAM). */
  tmpBytes: number;
}

/** The wrapper the runner uses, and facts about it the runner reports on. */
export interface ResolvedIsolation {
  kind: 'none' | 'bwrap' | 'custom';
  wrap: IsolationWrapper;
  /**
   * bubblewrap's init reports a child killed by signal N as exit code 128 + N, so the runner can
   * only name the signal as a likely cause.
   */
  signalsAsExitCodes: boolean;
  /**
   * bubblewrap runs as root and switches to the scripts' user inside (see SwitchUser): spawn it as
   * root, and nothing outside it switches the user.
   */
  switchesUser: boolean;
}

/**
 * How a root host runs scripts as another user in bubblewrap: bwrap itself runs as root, without a
 * user namespace (its setuid-style mode), so it can show host paths that user could not open (an
 * interpreter under /root); inside, setpriv switches to the user with no capabilities left before
 * anything of the script runs, and env sets the script's variables only then.
 */
export interface SwitchUser {
  uid: number;
  gid: number;
  setpriv: string;
  env: string;
}

function switchArgs(user: SwitchUser): string[] {
  return [user.setpriv, `--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', '--no-new-privs', '--'];
}

/**
 * Top-level directories of a merged-/usr system are symlinks (`/bin -> usr/bin`); older layouts
 * have real directories. The sandbox mirrors whichever the host has.
 */
const SYSTEM_DIRS = ['/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32'];

/**
 * The parts of /etc programs need to start, resolve names and verify TLS. Not /etc as a whole:
 * it can hold credentials (shadow, ssh host keys, application secrets) a script running as root
 * would otherwise read.
 */
const ETC_FILES = [
  '/etc/alternatives',
  '/etc/ld.so.cache',
  '/etc/ld.so.conf',
  '/etc/ld.so.conf.d',
  '/etc/localtime',
  '/etc/timezone',
  '/etc/passwd',
  '/etc/group',
  '/etc/nsswitch.conf',
  '/etc/hosts',
  '/etc/host.conf',
  '/etc/gai.conf',
  '/etc/resolv.conf',
  '/etc/ssl',
  '/etc/ca-certificates',
  '/etc/ca-certificates.conf',
  '/etc/mime.types',
  '/etc/fonts',
  '/etc/python3',
  '/etc/python3.11',
  '/etc/python3.12',
  '/etc/python3.13',
];

/**
 * The filesystem every sandbox sees: system directories read-only, a fresh /proc with /proc/sys
 * read-only, a read-only /dev with the usual devices, and a private /tmp and /dev/shm of at most
 * `tmpBytes` each (they live in RAM).
 */
function systemMounts(tmpBytes: number, switchesUser: boolean): string[] {
  const args = ['--ro-bind', '/usr', '/usr'];
  for (const dir of SYSTEM_DIRS) {
    let stat;
    try {
      stat = lstatSync(dir);
    } catch {
      continue;
    }
    if (stat.isSymbolicLink()) args.push('--symlink', readlinkSync(dir), dir);
    else if (stat.isDirectory()) args.push('--ro-bind', dir, dir);
  }
  // The /etc bwrap makes for these binds would be root's and 0700 when bwrap runs as root.
  if (switchesUser) args.push('--perms', '0755', '--dir', '/etc');
  for (const path of ETC_FILES) args.push('--ro-bind-try', path, path);
  // A /proc of the new PID namespace: the host's processes (and their environ) are not in it.
  // Its /proc/sys is the kernel's global settings, which a script running as root (root is mapped
  // to root when the host runs as root) could write: the host's own, read-only, goes over it.
  args.push('--proc', '/proc', '--ro-bind', '/proc/sys', '/proc/sys');
  // /dev is a tmpfs: read-only once populated, so a script cannot fill RAM through it.
  const size = String(tmpBytes);
  // Made by root when bwrap switches the user inside: sticky and world-writable, as on a host (in a
  // user namespace they belong to the script's user instead).
  const shared = switchesUser ? ['--perms', '01777'] : [];
  args.push('--dev', '/dev', ...shared, '--size', size, '--tmpfs', '/dev/shm', '--remount-ro', '/dev', ...shared, '--size', size, '--tmpfs', '/tmp');
  return args;
}

/** Mounted by systemMounts: directories made inside them would be made in a read-only bind. */
const SYSTEM_MOUNTS = ['/usr', '/etc', '/proc', '/dev', ...SYSTEM_DIRS];

/**
 * With bwrap as root, the directories it makes on the way to a bind (e.g. /tmp/scriptrunner for a
 * run directory, /root/.pyenv for an interpreter) would be root's and 0700, closed to the script's
 * user: they are made first, 0711 (passable, not listable, like the runner's own work root).
 */
function passableParents(destinations: string[]): string[] {
  const made = new Set<string>();
  const args: string[] = [];
  for (const destination of destinations) {
    const parts = destination.split('/').filter(Boolean);
    for (let i = 1; i < parts.length; i++) {
      const dir = `/${parts.slice(0, i).join('/')}`;
      // /tmp is a fresh tmpfs already (01777): only what is made below it needs the mode.
      if (made.has(dir) || dir === '/tmp' || SYSTEM_MOUNTS.some((m) => dir === m || dir.startsWith(`${m}/`))) continue;
      made.add(dir);
      args.push('--perms', '0711', '--dir', dir);
    }
  }
  return args;
}

function bwrapArgs(options: SandboxOptions, network: boolean, switchesUser: boolean, binds: string[] = []): string[] {
  // No --new-session: the runner already started a new session, and keeping the script in the
  // runner's process group lets the runner's SIGTERM reach it for a graceful stop (the runner
  // spares bwrap itself, whose death would SIGKILL the sandbox at once: see signalGroupExcept).
  let args: string[];
  if (switchesUser) {
    // As root without a user namespace: every namespace but the user one. Of root's capabilities
    // only what setpriv needs for the switch is kept (bwrap's own setup happens before the drop);
    // setpriv drops those with it (switchArgs).
    args = [
      '--unshare-ipc', '--unshare-pid', '--unshare-uts', '--unshare-cgroup-try', ...(network ? [] : ['--unshare-net']),
      '--cap-drop', 'ALL', '--cap-add', 'CAP_SETUID', '--cap-add', 'CAP_SETGID', '--cap-add', 'CAP_SETPCAP',
    ];
  } else {
    // --unshare-all: user, ipc, pid, net, uts and cgroup namespaces. --cap-drop ALL: a host running
    // as root maps root into the new user namespace, and bwrap would leave it every capability
    // there, enough to remount the read-only binds writable.
    args = ['--unshare-all', '--cap-drop', 'ALL', ...(network ? ['--share-net'] : [])];
  }
  args.push('--die-with-parent', '--hostname', 'scriptrunner');
  args.push(...systemMounts(options.tmpBytes, switchesUser));
  if (switchesUser) args.push(...passableParents([...options.readPaths, ...binds]));
  for (const path of options.readPaths) args.push('--ro-bind', path, path);
  return args;
}

/**
 * The end of a bwrap argv: the working directory and the command, behind the user switch when bwrap
 * runs as root. Then root (without CAP_DAC_OVERRIDE) may not enter the user's 0700 run directory:
 * env changes into it after the switch.
 */
function sandboxed(command: string, args: string[], env: Record<string, string>, cwd: string, switchUser: SwitchUser | undefined): { args: string[]; env: Record<string, string> } {
  if (!switchUser) return { args: ['--chdir', cwd, '--', command, ...args], env };
  // Nothing runs as root with the script's environment (LD_PRELOAD and the like).
  const variables = Object.entries(env).map(([name, value]) => `${name}=${value}`);
  return {
    args: ['--chdir', '/', '--clearenv', '--setenv', 'PATH', SYSTEM_PATH, '--', ...switchArgs(switchUser), switchUser.env, '-i', '-C', cwd, '--', ...variables, command, ...args],
    env: { PATH: SYSTEM_PATH },
  };
}

/**
 * bubblewrap: a new PID namespace whose init takes every process of the run with it (even one that
 * called setsid), the run directory as the only writable host path (plus a private /tmp), other
 * runs' directories and the host's /proc invisible, and no network unless `allowNetwork`.
 */
export function bwrapWrapper(bwrapPath: string, options: SandboxOptions, switchUser?: SwitchUser): IsolationWrapper {
  return (spec, context) => {
    const inner = sandboxed(spec.command, spec.args, spec.env, spec.cwd, switchUser);
    const readPaths = context.readPaths ?? [];
    return {
      command: bwrapPath,
      args: [
        ...bwrapArgs(options, options.allowNetwork || context.network === true, switchUser !== undefined, [...readPaths, context.runDir]),
        ...readPaths.flatMap((path) => ['--ro-bind', path, path]),
        '--bind',
        context.runDir,
        context.runDir,
        ...inner.args,
      ],
      cwd: spec.cwd,
      env: inner.env,
    };
  };
}

/** Probes run once per bwrap path and uid per process: namespaces do not come and go. */
const probeCache = new Map<string, Promise<string | null>>();

interface Captured {
  error: Error | null;
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a short probe without blocking the event loop (a loaded host takes seconds). Never rejects. */
function capture(command: string, args: string[], runAs: { uid: number; gid: number } | undefined, env: Record<string, string>): Promise<Captured> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      { timeout: 10_000, env, encoding: 'utf8', ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}) },
      (error, stdout, stderr) => {
        const status = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
        resolve({ error: error !== null && status === null ? error : null, status, stdout, stderr });
      },
    );
  });
}

/**
 * Whether bubblewrap can build a sandbox here (user namespaces may be disabled, or a container's
 * seccomp profile may forbid them). Resolves null when it works, otherwise the reason.
 */
function probeBwrap(bwrapPath: string, runAs: { uid: number; gid: number } | undefined): Promise<string | null> {
  const key = `${bwrapPath}:${runAs?.uid ?? ''}:${runAs?.gid ?? ''}`;
  let probe = probeCache.get(key);
  if (!probe) {
    const args = [...bwrapArgs({ allowNetwork: false, readPaths: [], tmpBytes: 1024 * 1024 }, false, false), '--', 'true'];
    probe = capture(bwrapPath, args, runAs, { PATH: '/usr/bin:/bin' }).then((result) => {
      if (result.error) return result.error.message;
      if (result.status !== 0) return result.stderr.trim() || `exit code ${String(result.status)}`;
      return null;
    });
    probeCache.set(key, probe);
  }
  return probe;
}

/**
 * Whether bubblewrap can run as root without a user namespace and switch to `user` inside (a
 * container may deny root the mounts it needs). Resolves null when it works, otherwise the reason.
 */
function probeSwitch(bwrapPath: string, user: SwitchUser): Promise<string | null> {
  const key = `switch:${bwrapPath}:${user.uid}:${user.gid}`;
  let probe = probeCache.get(key);
  if (!probe) {
    const inner = sandboxed('true', [], {}, '/', user);
    const args = [...bwrapArgs({ allowNetwork: false, readPaths: [], tmpBytes: 1024 * 1024 }, false, true), ...inner.args];
    probe = capture(bwrapPath, args, undefined, inner.env).then((result) => {
      if (result.error) return result.error.message;
      if (result.status !== 0) return result.stderr.trim() || `exit code ${String(result.status)}`;
      return null;
    });
    probeCache.set(key, probe);
  }
  return probe;
}

export function validateSandboxOptions(allowNetwork: unknown, readPaths: unknown, tmpBytes: number): SandboxOptions {
  if (allowNetwork !== undefined && typeof allowNetwork !== 'boolean') {
    throw new ScriptRunnerError('validation', 'allowNetwork must be true or false');
  }
  if (readPaths !== undefined && (!Array.isArray(readPaths) || readPaths.some((p) => typeof p !== 'string' || !isAbsolute(p) || p.includes('\0')))) {
    throw new ScriptRunnerError('validation', 'readPaths must be a list of absolute paths');
  }
  return { allowNetwork: allowNetwork === true, readPaths: [...((readPaths as string[] | undefined) ?? [])], tmpBytes };
}

/**
 * Turns the `isolation` option into a wrapper. `bwrap` without a working bubblewrap is an error
 * now rather than a failed run later; `auto` falls back to no isolation and says so once.
 */
/** Sandbox lookups per bwrap, sandbox options, uid and command list: namespaces do not come and go. */
const lookupCache = new Map<string, Promise<Map<string, string | null>>>();

/**
 * Where each runtime command resolves inside the sandbox (null: not found there — an interpreter
 * under /root, /opt or a virtualenv that is not in readPaths), with the PATH scripts get.
 */
function sandboxLookup(
  bwrapPath: string,
  sandbox: SandboxOptions,
  commands: string[],
  runAs: { uid: number; gid: number } | undefined,
  switchUser: SwitchUser | undefined,
): Promise<Map<string, string | null>> {
  const unique = [...new Set(commands)];
  const key = JSON.stringify([bwrapPath, sandbox, unique, runAs ?? null, switchUser ?? null, process.env.PATH ?? '']);
  let lookup = lookupCache.get(key);
  if (!lookup) {
    const script = 'for c in "$@"; do p=$(command -v "$c" 2>/dev/null) && printf "%s\\t%s\\n" "$c" "$p"; done';
    const inner = sandboxed('sh', ['-c', script, 'sh', ...unique], { PATH: process.env.PATH ?? '/usr/bin:/bin' }, '/', switchUser);
    const args = [...bwrapArgs(sandbox, sandbox.allowNetwork, switchUser !== undefined), ...inner.args];
    lookup = (unique.length === 0 ? Promise.resolve(null) : capture(bwrapPath, args, switchUser ? undefined : runAs, inner.env)).then(
      (result) => {
        const found = new Map<string, string | null>(unique.map((c) => [c, null]));
        for (const line of result?.stdout.split('\n') ?? []) {
          const tab = line.indexOf('\t');
          if (tab > 0) found.set(line.slice(0, tab), line.slice(tab + 1));
        }
        return found;
      },
    );
    lookupCache.set(key, lookup);
  }
  return lookup;
}

/** Warnings said once per process and logger: a suite or a server that creates many runners says each once. */
const said = new WeakMap<object, Set<string>>();

/** Says `message` through `logger.warn` unless this logger already said it in this process. */
export function warnOnce(logger: { warn(message: string): void }, message: string): void {
  let messages = said.get(logger);
  if (!messages) said.set(logger, (messages = new Set()));
  if (messages.has(message)) return;
  messages.add(message);
  logger.warn(message);
}

/**
 * Turns the `isolation` option into a wrapper. Options are checked now (a bad mode, a missing
 * readPath, `bwrap` without bubblewrap installed throw here); whether bubblewrap can build a
 * sandbox on this host is probed in the background, without blocking the event loop: runs wait
 * for the promise. With `bwrap` a failed probe rejects it with `unavailable`; `auto` falls back
 * to no isolation and says so once.
 */
export function resolveIsolation(
  mode: IsolationMode | IsolationWrapper | undefined,
  sandbox: SandboxOptions,
  runAs: { uid: number; gid: number } | undefined,
  logger: { warn(message: string): void },
  runtimeCommands: string[] = [],
): Promise<ResolvedIsolation> {
  if (typeof mode === 'function') return Promise.resolve({ kind: 'custom', wrap: mode, signalsAsExitCodes: false, switchesUser: false });
  const chosen = mode ?? 'auto';
  if (chosen === 'none') return Promise.resolve({ kind: 'none', wrap: noIsolation, signalsAsExitCodes: false, switchesUser: false });
  if (chosen !== 'auto' && chosen !== 'bwrap') {
    throw new ScriptRunnerError('validation', `isolation must be 'auto', 'bwrap', 'none' or a function, got ${String(chosen)}`);
  }
  const bwrapPath = findExecutable('bwrap');
  for (const path of sandbox.readPaths) {
    if (!existsSync(path)) throw new ScriptRunnerError('validation', `readPaths: ${path} does not exist`);
  }
  const unavailable = (reason: string): ResolvedIsolation => {
    if (chosen === 'bwrap') throw new ScriptRunnerError('unavailable', `isolation 'bwrap' cannot run on this host: ${reason}`);
    warnOnce(
      logger,
      `[scriptrunner] scripts run WITHOUT isolation: ${reason}. ` +
        `They can read and write what this process can and reach the network. ` +
        `Install bubblewrap, or pass isolation: 'none' to accept this explicitly.`,
    );
    return { kind: 'none', wrap: noIsolation, signalsAsExitCodes: false, switchesUser: false };
  };
  if (bwrapPath === null) {
    // Known without a probe: refuse (or warn) now.
    return Promise.resolve(unavailable('bubblewrap (bwrap) is not installed (Debian/Ubuntu: apt-get install bubblewrap)'));
  }
  // Where each command resolves on the host, now: PATH is read when the runner is created.
  const onHost = new Map(runtimeCommands.map((command) => [command, command.includes('/') ? command : findExecutable(command)]));
  // A root host switching to another user: bwrap as root, the switch inside, where it works.
  const setpriv = runAs !== undefined && process.getuid?.() === 0 ? findSystemTool('setpriv') : null;
  const envTool = setpriv !== null ? findSystemTool('env') : null;
  const candidate: SwitchUser | undefined = runAs && setpriv && envTool ? { ...runAs, setpriv, env: envTool } : undefined;
  const resolved = (async (): Promise<ResolvedIsolation> => {
    const switchUser = candidate && (await probeSwitch(bwrapPath, candidate)) === null ? candidate : undefined;
    const reason = switchUser ? null : await probeBwrap(bwrapPath, runAs);
    if (reason !== null) return unavailable(reason);
    const inside = await sandboxLookup(bwrapPath, sandbox, runtimeCommands, runAs, switchUser);
    const missing = [...inside].filter(([, path]) => path === null).map(([command]) => command);
    if (missing.length > 0) {
      return unavailable(
        `the runtime command${missing.length > 1 ? 's' : ''} ${missing.map((c) => `"${c}"`).join(', ')} cannot be found inside the sandbox ` +
          `(it sees /usr and readPaths only): install the interpreter under /usr or add its installation to readPaths`,
      );
    }
    // Found, but maybe not the same program: `python3` may be a version manager's shim on the
    // host and Debian's /usr/bin/python3 in the sandbox, with other packages installed.
    for (const [command, path] of inside) {
      const host = onHost.get(command) ?? null;
      if (host !== null && path !== null && host !== path) {
        warnOnce(
          logger,
          `[scriptrunner] inside the sandbox "${command}" is ${path}, not ${host} as on the host: scripts run with that ` +
            `interpreter and its packages. To use the host's, add its installation to readPaths or set the runtime's command.`,
        );
      }
    }
    return { kind: 'bwrap', wrap: bwrapWrapper(bwrapPath, sandbox, switchUser), signalsAsExitCodes: true, switchesUser: switchUser !== undefined };
  })();
  // Observed by the runs that wait for it; never an unhandled rejection meanwhile.
  resolved.catch(() => undefined);
  return resolved;
}
