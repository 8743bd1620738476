import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';

/** The absolute path of an executable on the host's PATH (or the path itself), or null. */
export function findExecutable(name: string, path = process.env.PATH ?? ''): string | null {
  const candidates = isAbsolute(name) ? [name] : path.split(delimiter).filter(Boolean).map((dir) => join(dir, name));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

/**
 * Why `command` cannot be executed with this PATH: ENOENT (nowhere), EACCES (found, not
 * executable), or null when it can. Relative paths with a slash resolve against `cwd`, as exec does.
 */
export function commandProblem(command: string, path: string, cwd: string): 'ENOENT' | 'EACCES' | null {
  const candidates = command.includes('/')
    ? [isAbsolute(command) ? command : join(cwd, command)]
    : path.split(delimiter).filter(Boolean).map((dir) => join(dir, command));
  let found = false;
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      if (statSync(candidate).isFile()) return null;
      found = true;
    } catch {
      try {
        statSync(candidate);
        found = true;
      } catch {
        // not here
      }
    }
  }
  return found ? 'EACCES' : 'ENOENT';
}

/** System tools (mount, mkfs.ext4, setpriv) live in sbin, which a non-login PATH may lack. */
export const SYSTEM_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'].join(delimiter);

/** A system tool on PATH or in the usual system directories, or null. */
export function findSystemTool(name: string): string | null {
  return findExecutable(name, `${process.env.PATH ?? ''}${delimiter}${SYSTEM_PATH}`);
}
