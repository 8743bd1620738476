/**
 * Artifacts: after a run, the regular files its script wrote to `SCRIPTRUNNER_OUTPUT_DIR` are kept
 * through the store, within caps. Everything that is not kept is named in a `system` line: a file
 * over a cap, a symbolic link (never followed), a device or pipe, an unsafe name.
 */
import { constants, type Stats } from 'node:fs';
import { open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describeError, ScriptRunnerError } from '../errors.js';
import type { Store } from '../store.js';

/** The environment variable that tells a script where to write what should be kept. */
export const OUTPUT_DIR_ENV = 'SCRIPTRUNNER_OUTPUT_DIR';
/** The output directory's name inside the run directory. */
export const OUTPUT_DIR_NAME = 'out';

export interface ArtifactOptions {
  /** Files kept per run; more are skipped, each named in the log. Default 100. */
  maxFiles?: number;
  /** Bytes per file; a bigger file is skipped. Default 50 MiB. */
  maxFileBytes?: number;
  /** Bytes per run, all files together; a file that would pass it is skipped. Default 200 MiB. */
  maxBytes?: number;
}

export type ArtifactSettings = Required<ArtifactOptions>;

/** Names of skipped files the log lists one by one; the rest are counted. */
const NAMED_SKIPS = 20;
/** Directory levels below the output directory that are searched. */
const MAX_DEPTH = 16;
/** `Artifact.name` is at most this many UTF-8 bytes. */
export const MAX_ARTIFACT_NAME_BYTES = 1024;
const READ_BYTES = 1024 * 1024;
/** Sizes (and byte counts in messages) are JavaScript numbers: keep them exact. */
const MAX_ARTIFACT_BYTES = 2 ** 31 - 1;

function cap(value: number | undefined, fallback: number, name: string, max: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 0 || value > max) {
    throw new ScriptRunnerError('validation', `artifacts.${name} must be a whole number from 0 to ${max}, got ${String(value)}`);
  }
  return value;
}

export function resolveArtifactOptions(options: ArtifactOptions | undefined): ArtifactSettings {
  const given = options ?? {};
  if (typeof given !== 'object') throw new ScriptRunnerError('validation', 'artifacts must be an object like { maxFiles: 100 }');
  return {
    maxFiles: cap(given.maxFiles, 100, 'maxFiles', 100_000),
    maxFileBytes: cap(given.maxFileBytes, 50 * 1024 ** 2, 'maxFileBytes', MAX_ARTIFACT_BYTES),
    maxBytes: cap(given.maxBytes, 200 * 1024 ** 2, 'maxBytes', Number.MAX_SAFE_INTEGER),
  };
}

/**
 * Why a name cannot be an artifact's, or null. The name travels into URLs, `Content-Disposition`
 * and a browser's downloads folder: no control characters, no traversal, bounded length.
 */
export function artifactNameProblem(name: string): string | null {
  if (name.length === 0) return 'the name is empty';
  if (Buffer.byteLength(name) > MAX_ARTIFACT_NAME_BYTES) return `the name is longer than ${MAX_ARTIFACT_NAME_BYTES} bytes`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f\\]/.test(name)) return 'the name has a control character or a backslash';
  if (name.includes('\uFFFD')) return 'the name is not valid UTF-8';
  if (name.split('/').some((part) => part === '' || part === '.' || part === '..')) return 'the name has an empty, . or .. segment';
  return null;
}

const formatBytes = (n: number) => (n < 1024 ? `${n} B` : n < 1024 ** 2 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1024 ** 2).toFixed(1)} MiB`);

interface Found {
  name: string;
  path: string;
}

export interface CollectContext {
  outDir: string;
  executionId: string;
  store: Store;
  settings: ArtifactSettings;
  /** A `system` line of the run. */
  say(level: 'info' | 'warn' | 'error', text: string): void;
  /** How many files were not kept (over a cap, or a store without artifacts), once, when > 0. */
  skipped?(count: number): void;
}

/** Keeps what the run left in its output directory; resolves with how many files were stored. Never rejects. */
export async function collectArtifacts(ctx: CollectContext): Promise<number> {
  const { settings, store, say } = ctx;
  const skipped: string[] = [];
  const skip = (name: string, why: string) => {
    if (skipped.length < NAMED_SKIPS) say('warn', `artifact "${name}" not kept: ${why}`);
    skipped.push(name);
  };
  const found: Found[] = [];
  await walk(ctx.outDir, '', 0, found, skip);
  if (found.length === 0) return reportSkips(skipped, ctx, 0);
  if (!store.putArtifact) {
    say('warn', `${found.length} file(s) in ${OUTPUT_DIR_ENV} not kept: the store keeps no artifacts (it has no putArtifact)`);
    ctx.skipped?.(found.length + skipped.length);
    return 0;
  }
  let kept = 0;
  let total = 0;
  for (const file of found) {
    if (kept >= settings.maxFiles) {
      skip(file.name, `over the cap of ${settings.maxFiles} files per run (artifacts.maxFiles)`);
      continue;
    }
    const stored = await keep(ctx, file, settings.maxBytes - total, skip);
    if (stored === null) continue;
    kept += 1;
    total += stored;
  }
  return reportSkips(skipped, ctx, kept);
}

function reportSkips(skipped: string[], ctx: CollectContext, kept: number): number {
  if (skipped.length > NAMED_SKIPS) ctx.say('warn', `${skipped.length - NAMED_SKIPS} more artifact(s) not kept (over the caps above)`);
  if (skipped.length > 0) ctx.skipped?.(skipped.length);
  return kept;
}

/** Regular files under `dir`, sorted by name at each level (so caps cut the same files every time). */
async function walk(dir: string, prefix: string, depth: number, found: Found[], skip: (name: string, why: string) => void): Promise<void> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    // The script removed (or made unreadable) its own output directory: nothing to keep there.
    if (prefix !== '') skip(prefix.slice(0, -1), `the directory could not be read (${describeError(error)})`);
    return;
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    const name = prefix + entry.name;
    const path = join(dir, entry.name);
    if (entry.isSymbolicLink()) skip(name, 'a symbolic link (links are not followed)');
    else if (entry.isDirectory()) {
      if (depth + 1 >= MAX_DEPTH) skip(name, `deeper than ${MAX_DEPTH} directory levels`);
      else await walk(path, `${name}/`, depth + 1, found, skip);
    } else if (!entry.isFile()) skip(name, 'not a regular file');
    else {
      const problem = artifactNameProblem(name);
      if (problem === null) found.push({ name, path });
      else skip(JSON.stringify(name).slice(1, -1), problem);
    }
  }
}

/** Stores one file; resolves with its size, or null when it was skipped or failed (said in the log). */
async function keep(ctx: CollectContext, file: Found, budget: number, skip: (name: string, why: string) => void): Promise<number | null> {
  const { settings, say } = ctx;
  let handle;
  try {
    // O_NOFOLLOW: a file swapped for a link since the listing is refused; O_NONBLOCK: a pipe swapped
    // in cannot hang the open.
    handle = await open(file.path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    skip(file.name, `it could not be opened (${describeError(error)})`);
    return null;
  }
  try {
    const info: Stats = await handle.stat();
    if (!info.isFile()) return skip(file.name, 'not a regular file'), null;
    // A hard link may name a file the script could not read itself but the runner can.
    if (info.nlink > 1) return skip(file.name, 'a hard link (only files with one name are kept)'), null;
    if (info.size > settings.maxFileBytes) {
      return skip(file.name, `${formatBytes(info.size)} is over the cap of ${formatBytes(settings.maxFileBytes)} per file (artifacts.maxFileBytes)`), null;
    }
    if (info.size > budget) {
      return skip(file.name, `${formatBytes(info.size)} would pass the cap of ${formatBytes(settings.maxBytes)} per run (artifacts.maxBytes)`), null;
    }
    // Exactly the size checked above, even if something still writes to it.
    const size = info.size;
    async function* content(): AsyncGenerator<Uint8Array> {
      let position = 0;
      while (position < size) {
        const buffer = Buffer.allocUnsafe(Math.min(READ_BYTES, size - position));
        const { bytesRead } = await handle!.read(buffer, 0, buffer.byteLength, position);
        if (bytesRead === 0) return;
        position += bytesRead;
        yield buffer.subarray(0, bytesRead);
      }
    }
    const artifact = await ctx.store.putArtifact!({ executionId: ctx.executionId, name: file.name, createdAt: new Date() }, content());
    say('info', `artifact "${file.name}" kept (${formatBytes(artifact.sizeBytes)})`);
    return artifact.sizeBytes;
  } catch (error) {
    say('error', `artifact "${file.name}" could not be stored: ${describeError(error)}`);
    return null;
  } finally {
    await handle.close().catch(() => undefined);
  }
}
