import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface RunDirectory {
  /** The child's cwd and HOME; holds the copy of the script. */
  path: string;
  /** The child's TMPDIR. */
  tmp: string;
  /** Absolute path of the script copy. */
  scriptPath: string;
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
): Promise<RunDirectory> {
  await mkdir(root, { recursive: true, mode: 0o700 });
  // A script running as another user must get through the root to its own directory, but not
  // list it: the other runs' directory names stay unknown to it.
  if (owner) await chmod(root, 0o711);
  const path = await mkdtemp(join(root, `${executionId}-`));
  const tmp = join(path, '.tmp');
  await mkdir(tmp, { mode: 0o700 });
  const scriptPath = join(path, filename);
  await writeFile(scriptPath, content, { mode: 0o600 });
  if (owner) {
    for (const p of [path, tmp, scriptPath]) await chown(p, owner.uid, owner.gid);
  }
  return { path, tmp, scriptPath };
}

export async function removeRunDirectory(dir: RunDirectory): Promise<void> {
  await rm(dir.path, { recursive: true, force: true, maxRetries: 3 });
}
