/**
 * Facts about a Python interpreter, asked of the interpreter itself (a version manager's shim or a
 * venv link resolves to whatever it runs). Asked once per command and PATH per process, without
 * blocking the event loop.
 */
import { execFile } from 'node:child_process';
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
