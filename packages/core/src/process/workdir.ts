import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
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
): Promise<RunDirectory> {
  await mkdir(root, { recursive: true, mode: 0o700 });
  const path = await mkdtemp(join(root, `${executionId}-`));
  const tmp = join(path, '.tmp');
  await mkdir(tmp, { mode: 0o700 });
  const scriptPath = join(path, filename);
  await writeFile(scriptPath, content, { mode: 0o600 });
  return { path, tmp, scriptPath };
}

export async function removeRunDirectory(dir: RunDirectory): Promise<void> {
  await rm(dir.path, { recursive: true, force: true, maxRetries: 3 });
}
