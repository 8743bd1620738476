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
        ['-c', 'import sys; print("%d.%d.%d" % sys.version_info[:3])'],
        { timeout: 20_000, env: { PATH: path }, encoding: 'utf8' },
        (error, stdout) => resolve(error ? null : stdout.trim() || null),
      );
    });
    versions.set(key, version);
    // A failure is not remembered: the interpreter may be installed later.
    void version.then((v) => v === null && versions.delete(key));
  }
  return version;
}

/** Why `command` does not meet the script's `requires-python`, or null when it does. */
export async function checkRequiresPython(command: string, path: string, requiresPython: string): Promise<string | null> {
  const version = await pythonVersion(command, path);
  if (version === null) return `could not ask "${command}" for its version (the script declares requires-python "${requiresPython}")`;
  if (satisfies(version, requiresPython)) return null;
  return `the script requires Python ${requiresPython}; "${command}" is Python ${version}: name an interpreter that matches (runtimes.python.command)`;
}

/** What the sandbox needs to run the same interpreter as the host. */
export interface ResolvedInterpreter {
  /** What to execute: the interpreter itself (a shim or alias resolved), or a venv's own `bin/python`. */
  command: string;
  /** Its installation (prefix, base prefix of a venv, site directories) outside /usr, to show read-only. */
  readPaths: string[];
  version: string;
}

const PROBE = [
  'import json, os, sys',
  'print(json.dumps({"executable": sys.executable, "prefixes": [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix],',
  '  "venv": sys.prefix != sys.base_prefix, "path": [p for p in sys.path if os.path.isabs(p) and os.path.isdir(p)],',
  '  "version": "%d.%d.%d" % sys.version_info[:3]}))',
].join('\n');

/** Directories a sandbox must never show, even read-only: the host's secrets and other runs. */
const HIDDEN = ['/', '/root', '/home', '/etc', '/proc', '/sys', '/dev', '/run', '/var', '/tmp', '/boot', '/srv', '/mnt', '/media', '/opt'];

const within = (path: string, dir: string) => path === dir || path.startsWith(dir === '/' ? '/' : `${dir}/`);

/**
 * Asks `command` (as the host resolves it on `path`) where it lives. Rejects with the reason the
 * sandbox cannot show it (its installation would expose `workDir` or a directory that must stay
 * hidden), resolves null when the command does not run here (a run then says so as it does today).
 */
export async function resolveInterpreter(command: string, path: string, workDir: string): Promise<ResolvedInterpreter | null> {
  const facts = await new Promise<{ executable: string; prefixes: string[]; venv: boolean; path: string[]; version: string } | null>((resolve) => {
    // -s: no user site directory, as in a run (HOME is the run directory there).
    execFile(command, ['-s', '-c', PROBE], { timeout: 20_000, env: { PATH: path }, encoding: 'utf8' }, (error, stdout) => {
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
  for (const dir of [...facts.prefixes, ...facts.path, dirname(executable)]) {
    const real = await realpath(dir).catch(() => null);
    if (real !== null && !within(real, '/usr')) candidates.add(real);
    // The path as Python names it too, where a link leads elsewhere (both must resolve inside).
    if (!within(dir, '/usr') && real !== dir) candidates.add(dir);
  }
  // The outermost directories only: a site directory inside its prefix comes with it.
  const roots = [...candidates].filter((dir) => ![...candidates].some((other) => other !== dir && within(dir, other))).sort();
  for (const root of roots) {
    const hidden = HIDDEN.includes(root) || /^\/home\/[^/]+$/.test(root) || within(workDir, root);
    if (hidden) {
      throw new Error(
        `"${command}" is ${executable}, whose installation ${root} the sandbox must not show (${within(workDir, root) ? 'it holds workDir, with other runs' : 'it would expose more of the host'}): ` +
          `install the interpreter in its own directory (e.g. /opt/python/3.12 or a venv under /opt/venvs) and set runtimes.python.command, or run with isolation: 'none'`,
      );
    }
  }
  return { command: executable, readPaths: roots, version: facts.version };
}
