/**
 * The runner's script records: upload, reads that say `not_found`, archive and restore. The runner
 * checks it is open first; these functions do the store work and publish what changed.
 */
import { nanoid } from 'nanoid';
import { ScriptRunnerError } from './errors.js';
import { checkId, type Settings } from './options.js';
import type { Store } from './store.js';
import type { RunnerEvent, Script, ScriptStatus } from './types.js';
import { validateUpload, type UploadInput } from './upload.js';

export interface ScriptContext {
  settings: Settings;
  store: Store;
  /** A store call whose failure becomes a `store` error. */
  call<T>(fn: () => Promise<T>): Promise<T>;
  publish(event: RunnerEvent): Promise<void>;
}

const notFound = (id: string) => new ScriptRunnerError('not_found', `no script with id ${id}`, { details: { id } });

export async function createScript(ctx: ScriptContext, input: UploadInput): Promise<Script> {
  const { settings } = ctx;
  const upload = validateUpload(input, settings.upload, settings.runtimes, settings.environments);
  const now = new Date();
  const script = await ctx.call(() =>
    ctx.store.createScript({
      id: nanoid(),
      filename: upload.filename,
      runtime: upload.runtime,
      sizeBytes: upload.content.byteLength,
      sha256: upload.sha256,
      description: upload.description,
      metadata: upload.metadata,
      environment: upload.environment,
      status: 'active',
      createdAt: now,
      updatedAt: now,
      lastRunAt: null,
      totalRuns: 0,
      content: upload.content,
    }),
  );
  await ctx.publish({ type: 'script:created', data: script });
  return script;
}

export async function findScript(ctx: ScriptContext, id: string): Promise<Script> {
  checkId(id, 'script');
  const script = await ctx.call(() => ctx.store.getScript(id));
  if (script === null) throw notFound(id);
  return script;
}

export async function findScriptContent(ctx: ScriptContext, id: string): Promise<Uint8Array> {
  checkId(id, 'script');
  const content = await ctx.call(() => ctx.store.getScriptContent(id));
  if (content === null) throw notFound(id);
  return content;
}

/** Archives or restores; a script already in that status is returned as it is, and nothing is published. */
export async function setScriptStatus(ctx: ScriptContext, id: string, status: ScriptStatus): Promise<Script> {
  const script = await findScript(ctx, id);
  if (script.status === status) return script;
  const updated = await ctx.call(() => ctx.store.updateScript(id, { status, updatedAt: new Date() }));
  if (updated === null) throw notFound(id);
  await ctx.publish({ type: status === 'archived' ? 'script:archived' : 'script:restored', data: updated });
  return updated;
}
