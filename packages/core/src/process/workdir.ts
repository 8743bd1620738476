import { chmod, chown, mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { OUTPUT_DIR_NAME } from '../artifacts/collect.js';
import { ScriptRunnerError } from '../errors.js';

/**
 * A script running as another user reaches its run directory only if every directory above the
 * work root lets that user through; say which one does not instead of failing with EACCES later.
 */
async function checkReachable(dir: string, owner: { uid: number; gid: number }): Promise<void> {
  for (let current = dir; ; current = dirname(current)) {
    const info = await stat(current);
    const mode = info.mode;
    const through =
      info.uid === owner.uid ? (mode & 0o100) !== 0 : info.gid === owner.gid ? (mode & 0o010) !== 0 : (mode & 0o001) !== 0;
    if (!through) {
      throw new ScriptRunnerError(
        'validation',
        `workDir: ${current} does not let uid ${owner.uid} (runAs) through; allow it (chmod o+x) or choose another workDir`,
      );
    }
    if (dirname(current) === current) return;
  }
}

export interface RunDirectory {
  /** The child's cwd and HOME; holds the copy of the script. */
  path: string;
  /** The child's TMPDIR. */
  tmp: string;
  /** Absolute path of the script copy. */
  scriptPath: string;
  /** The output directory (`SCRIPTRUNNER_OUTPUT_DIR`): what the script leaves here is kept as artifacts. */
  out: string;
}

/**
 * A fresh directory per execution with a private copy of the script, so runs cannot clobber each
 * other or the stored original.
 */
export async function createRunDirectory(
  root: string,
  executionId: string,
  filename: string,
  content: Uint8Array,
  owner?: { uid: number; gid: number },
  /** The root is the library's own default directory, whose mode it may set. */
  ownsRoot = false,
  /** Called with the new, still empty directory (e.g. to mount a size-capped filesystem on it). */
  prepare?: (path: string) => Promise<void>,
): Promise<RunDirectory> {
  // A script running as another user must get through the root to its own directory, but not
  // list it: the other runs' directory names stay unknown to it. Only directories created here
  // (or the default root) are given that mode; a caller's (say /var/tmp) is checked, never changed.
  const created = await mkdir(root, { recursive: true, mode: owner ? 0o711 : 0o700 });
  if (owner) {
    if (created !== undefined || ownsRoot) await chmod(root, 0o711);
    await checkReachable(root, owner);
  }
  const path = await mkdtemp(join(root, `${executionId}-`));
  await prepare?.(path);
  const tmp = join(path, '.tmp');
  await mkdir(tmp, { mode: 0o700 });
  const out = join(path, OUTPUT_DIR_NAME);
  await mkdir(out, { mode: 0o700 });
  const scriptPath = join(path, filename);
  await writeFile(scriptPath, content, { mode: 0o600 });
  if (owner) {
    for (const p of [path, tmp, out, scriptPath]) await chown(p, owner.uid, owner.gid);
  }
  return { path, tmp, scriptPath, out };
}

export async function removeRunDirectory(dir: RunDirectory): Promise<void> {
  await rm(dir.path, { recursive: true, force: true, maxRetries: 3 });
}

/**
 * Removes what a runner that died left of an execution's run directories under `root` (when it ran
 * on this machine): nothing else removes them. Best effort; never throws.
 */
export async function removeLeftRunDirectories(root: string, executionId: string): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(root);
  } catch {
    return;
  }
  await Promise.all(
    entries
      .filter((name) => name.startsWith(`${executionId}-`))
      .map((name) => rm(join(root, name), { recursive: true, force: true, maxRetries: 3 }).catch(() => undefined)),
  );
}
