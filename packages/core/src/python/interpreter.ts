/**
 * Facts about a Python interpreter, asked of the interpreter itself (a version manager's shim or a
 * venv link resolves to whatever it runs). Asked once per command and PATH per process, without
 * blocking the event loop.
 */
import { execFile } from 'node:child_process';
import { realpath } from 'node:fs/promises';
import { dirname } from 'node:path';
import { satisfies } from '@renovatebot/pep440';

const versions = new Map<string, Promise<string | null>>();

/** `3.11.7`, or null when the command does not run. */
export function pythonVersion(command: string, path: string): Promise<string | null> {
  const key = `${command}\0${path}`;
  let version = versions.get(key);
  if (!version) {
    version = new Promise((resolve) => {
      execFile(
        command,
        ['-I', '-c', 'import sys; print("%d.%d.%d" % sys.version_info[:3])'],
        // -I and cwd /: nothing in the runner's directory can shadow a module of the probe.
        { timeout: 20_000, env: { PATH: path }, encoding: 'utf8', cwd: '/' },
        (error, stdout) => resolve(error ? null : stdout.trim() || null),
      );
    });
    versions.set(key, version);
    // A failure is not remembered: the interpreter may be installed later.
    void version.then((v) => v === null && versions.delete(key));
  }
  return version;
}

/**
 * Why `command` does not meet the script's `requires-python`, or null when it does. `known`: its
 * version when the runner resolved the interpreter already (no second process to ask).
 */
export async function checkRequiresPython(command: string, path: string, requiresPython: string, known?: string): Promise<string | null> {
  const version = known ?? (await pythonVersion(command, path));
  if (version === null) return `could not ask "${command}" for its version (the script declares requires-python "${requiresPython}")`;
  if (satisfies(version, requiresPython)) return null;
  return `the script requires Python ${requiresPython}; "${command}" is Python ${version}: run it in an environment whose Python matches (environments, or runtimes.python.command)`;
}

/** What the sandbox needs to run the same interpreter as the host. */
export interface ResolvedInterpreter {
  /** What to execute: the interpreter itself (a shim or alias resolved), or a venv's own `bin/python`. */
  command: string;
  /** Its installation (prefix, a venv's base prefix) outside /usr, to show read-only. */
  readPaths: string[];
  version: string;
}

const PROBE = [
  'import json, sys',
  'print(json.dumps({"executable": sys.executable, "prefixes": [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix],',
  '  "venv": sys.prefix != sys.base_prefix,',
  '  "version": "%d.%d.%d" % sys.version_info[:3]}))',
].join('\n');

/** Directories a sandbox must never show as a whole, even read-only (their subdirectories may be). */
const HIDDEN = ['/', '/root', '/home', '/var', '/tmp', '/srv', '/mnt', '/media', '/opt'];
/** Trees none of which a sandbox may show: the host's configuration, devices and kernel state. */
const HIDDEN_TREES = ['/etc', '/proc', '/sys', '/dev', '/run', '/boot'];

const within = (path: string, dir: string) => path === dir || path.startsWith(dir === '/' ? '/' : `${dir}/`);

/**
 * Asks `command` (as the host resolves it on `path`) where it lives. Rejects with the reason the
 * sandbox cannot show it (its installation would expose `workDir` or a directory that must stay
 * hidden), resolves null when the command does not run here (a run then says so as it does today).
 */
export async function resolveInterpreter(
  command: string,
  path: string,
  workDir: string,
  /** The option that named `command`, for the message. */
  setting = 'runtimes.python.command',
): Promise<ResolvedInterpreter | null> {
  const facts = await new Promise<{ executable: string; prefixes: string[]; venv: boolean; version: string } | null>((resolve) => {
    // -I (no user site, as in a run, whose HOME is its directory; no PYTHON* variables) and cwd /:
    // nothing in the runner's directory can shadow a module of the probe.
    execFile(command, ['-I', '-c', PROBE], { timeout: 20_000, env: { PATH: path }, encoding: 'utf8', cwd: '/' }, (error, stdout) => {
      try {
        resolve(error ? null : JSON.parse(stdout));
      } catch {
        resolve(null);
      }
    });
  });
  if (facts === null || !facts.executable) return null;
  // A venv is recognised by where its interpreter is called from: keep its own bin/python.
  const executable = facts.venv ? facts.executable : await realpath(facts.executable).catch(() => facts.executable);
  const candidates = new Set<string>();
  // The installation only (its prefixes and the directory of what runs), not every sys.path entry:
  // a .pth file or an editable install can point anywhere, e.g. at an application's source tree.
  for (const dir of [...facts.prefixes, dirname(executable)]) {
    const real = await realpath(dir).catch(() => null);
    if (real !== null && !within(real, '/usr')) candidates.add(real);
    // The path as Python names it too, where a link leads elsewhere (both must resolve inside).
    if (!within(dir, '/usr') && real !== dir) candidates.add(dir);
  }
  // The outermost directories only: a site directory inside its prefix comes with it.
  const roots = [...candidates].filter((dir) => ![...candidates].some((other) => other !== dir && within(dir, other))).sort();
  const work = await realpath(workDir).catch(() => workDir);
  for (const root of roots) {
    const holdsWork = within(workDir, root) || within(work, root);
    const hidden = HIDDEN.includes(root) || /^\/home\/[^/]+$/.test(root) || HIDDEN_TREES.some((tree) => within(root, tree)) || holdsWork;
    if (hidden) {
      throw new Error(
        `"${command}" is ${executable}, whose installation ${root} the sandbox must not show (${holdsWork ? 'it holds workDir, with other runs' : 'it would expose more of the host'}): ` +
          `install the interpreter in its own directory (e.g. /opt/python/3.12 or a venv under /opt/venvs) and set ${setting}, or run with isolation: 'none'`,
      );
    }
  }
  return { command: executable, readPaths: roots, version: facts.version };
}
