/**
 * The memory store: the default when no store is given. Everything lives in this process and is
 * gone when it exits; use it for tests, demos and short-lived tools.
 */
import type {
  CreateScriptInput,
  ExecutionPatch,
  ExpiredExecutionsQuery,
  InterruptQuery,
  ListExecutionsQuery,
  ListScriptsQuery,
  ReadLogsQuery,
  ScriptPatch,
  Store,
  UpdateExecutionOptions,
} from '../store.js';
import { isTerminalStatus, type Artifact, type Execution, type Page, type Script, type ScriptWithLastExecution } from '../types.js';
import { artifactChunks } from './artifact-chunks.js';
import { compareNewestFirst, decodeCursorOrThrow, encodeCursor, isAfterCursor } from './cursor.js';
import { LogColumns } from './log-columns.js';
import { updatableStatuses } from './transitions.js';

function copyScript(script: Script): Script {
  return {
    ...script,
    metadata: structuredClone(script.metadata),
    createdAt: new Date(script.createdAt),
    updatedAt: new Date(script.updatedAt),
    lastRunAt: script.lastRunAt && new Date(script.lastRunAt),
  };
}

function copyExecution(execution: Execution): Execution {
  return {
    ...execution,
    args: [...execution.args],
    queuedAt: new Date(execution.queuedAt),
    startedAt: execution.startedAt && new Date(execution.startedAt),
    finishedAt: execution.finishedAt && new Date(execution.finishedAt),
  };
}

function page<T>(
  items: T[],
  key: (item: T) => [number, string],
  limit: number,
  cursor: string | null | undefined,
): Page<T> {
  let candidates = items;
  if (cursor) {
    const after = decodeCursorOrThrow(cursor);
    candidates = items.filter((item) => isAfterCursor(...key(item), after));
  }
  candidates.sort((a, b) => compareNewestFirst(...key(a), ...key(b)));
  const slice = candidates.slice(0, limit);
  const last = slice[slice.length - 1];
  const nextCursor =
    candidates.length > limit && last !== undefined ? encodeCursor(new Date(key(last)[0]), key(last)[1]) : null;
  return { items: slice, nextCursor };
}

export function memoryStore(): Store {
  const scripts = new Map<string, Script>();
  const contents = new Map<string, Uint8Array>();
  const executions = new Map<string, Execution>();
  const logs = new Map<string, LogColumns>();
  /** executionId → name → the artifact and its pieces (each a private copy). */
  const artifacts = new Map<string, Map<string, { artifact: Artifact; chunks: Uint8Array[] }>>();
  const copyArtifact = (artifact: Artifact): Artifact => ({ ...artifact, createdAt: new Date(artifact.createdAt) });

  async function listScripts(query: ListScriptsQuery): Promise<Page<Script>> {
    const status = query.status ?? 'active';
    const matching = [...scripts.values()].filter((s) => status === 'all' || s.status === status);
    const result = page(matching, (s) => [s.createdAt.getTime(), s.id], query.limit, query.cursor);
    return { items: result.items.map(copyScript), nextCursor: result.nextCursor };
  }

  return {
    async createScript(input: CreateScriptInput) {
      const { content, ...script } = input;
      scripts.set(script.id, copyScript(script));
      contents.set(script.id, new Uint8Array(content));
      return copyScript(script);
    },

    async getScript(id) {
      const script = scripts.get(id);
      return script ? copyScript(script) : null;
    },

    async getScriptContent(id) {
      const content = contents.get(id);
      return content ? new Uint8Array(content) : null;
    },

    listScripts,

    async listScriptsWithLastExecution(query: ListScriptsQuery): Promise<Page<ScriptWithLastExecution>> {
      const result = await listScripts(query);
      const newest = new Map<string, Execution | null>(result.items.map((s) => [s.id, null]));
      for (const execution of executions.values()) {
        if (!newest.has(execution.scriptId)) continue;
        const current = newest.get(execution.scriptId);
        const { queuedAt, id } = execution;
        if (!current || compareNewestFirst(queuedAt.getTime(), id, current.queuedAt.getTime(), current.id) < 0) {
          newest.set(execution.scriptId, execution);
        }
      }
      return {
        items: result.items.map((script) => {
          const last = newest.get(script.id);
          return { ...script, lastExecution: last ? copyExecution(last) : null };
        }),
        nextCursor: result.nextCursor,
      };
    },

    async updateScript(id, patch: ScriptPatch) {
      const script = scripts.get(id);
      if (!script) return null;
      const updated: Script = { ...script };
      if (patch.status !== undefined) updated.status = patch.status;
      if (patch.description !== undefined) updated.description = patch.description;
      if (patch.metadata !== undefined) updated.metadata = structuredClone(patch.metadata);
      updated.updatedAt = new Date(patch.updatedAt);
      scripts.set(id, updated);
      return copyScript(updated);
    },

    async recordRun(scriptId, at) {
      const script = scripts.get(scriptId);
      if (!script) return null;
      // Synchronous read-modify-write: atomic on the single JS thread.
      script.totalRuns += 1;
      if (script.lastRunAt === null || script.lastRunAt.getTime() < at.getTime()) script.lastRunAt = new Date(at);
      return copyScript(script);
    },

    async createExecution(execution) {
      executions.set(execution.id, copyExecution(execution));
      return copyExecution(execution);
    },

    async updateExecution(id, patch: ExecutionPatch, options?: UpdateExecutionOptions) {
      const execution = executions.get(id);
      if (!execution) return null;
      // Check and write in one synchronous step: no other call runs between them.
      if (!updatableStatuses(patch, options).includes(execution.status)) return copyExecution(execution);
      const defined = Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined));
      const updated = copyExecution({ ...execution, ...defined });
      executions.set(id, updated);
      return copyExecution(updated);
    },

    async getExecution(id) {
      const execution = executions.get(id);
      return execution ? copyExecution(execution) : null;
    },

    async listExecutions(query: ListExecutionsQuery) {
      const matching = [...executions.values()].filter(
        (e) =>
          (query.scriptId === undefined || e.scriptId === query.scriptId) &&
          (query.status === undefined || e.status === query.status),
      );
      const result = page(matching, (e) => [e.queuedAt.getTime(), e.id], query.limit, query.cursor);
      return { items: result.items.map(copyExecution), nextCursor: result.nextCursor };
    },

    async interruptStaleExecutions(query: InterruptQuery) {
      const changed: Execution[] = [];
      for (const execution of executions.values()) {
        if (execution.status !== 'queued' && execution.status !== 'running') continue;
        if (execution.queuedAt.getTime() >= query.queuedBefore.getTime()) continue;
        execution.status = 'interrupted';
        execution.finishedAt = new Date(query.finishedAt);
        execution.errorMessage = query.errorMessage;
        execution.durationMs = execution.startedAt
          ? Math.max(0, query.finishedAt.getTime() - execution.startedAt.getTime())
          : 0;
        changed.push(copyExecution(execution));
      }
      return changed;
    },

    async appendLogs(executionId, lines) {
      let stored = logs.get(executionId);
      if (!stored) {
        stored = new LogColumns();
        logs.set(executionId, stored);
      }
      stored.addBatch(lines);
    },

    async readLogs(executionId, query: ReadLogsQuery) {
      const stored = logs.get(executionId);
      if (!stored) return [];
      const levels = query.levels && query.levels.length > 0 ? new Set(query.levels) : null;
      const streams = query.streams && query.streams.length > 0 ? new Set(query.streams) : null;
      return stored.read(executionId, query.afterSeq ?? 0, query.limit, levels, streams);
    },

    async putArtifact({ executionId, name, createdAt }, content) {
      const cut = artifactChunks(content);
      const chunks: Uint8Array[] = [];
      for await (const chunk of cut.chunks) chunks.push(chunk);
      // Only now, complete, does it replace an earlier one of that name.
      const artifact: Artifact = { executionId, name, ...cut.totals(), createdAt: new Date(createdAt) };
      let ofExecution = artifacts.get(executionId);
      if (!ofExecution) artifacts.set(executionId, (ofExecution = new Map()));
      ofExecution.set(name, { artifact, chunks });
      return copyArtifact(artifact);
    },

    async listArtifacts(executionId) {
      const ofExecution = artifacts.get(executionId);
      if (!ofExecution) return [];
      return [...ofExecution.values()].map((a) => copyArtifact(a.artifact)).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    },

    async readArtifact(executionId, name) {
      const stored = artifacts.get(executionId)?.get(name);
      if (!stored) return null;
      const { chunks } = stored;
      return {
        artifact: copyArtifact(stored.artifact),
        content: (async function* () {
          for (const chunk of chunks) yield new Uint8Array(chunk);
        })(),
      };
    },

    async listExpiredExecutions(query: ExpiredExecutionsQuery) {
      return expiredExecutions([...executions.values()], query);
    },

    async deleteExecution(id) {
      const execution = executions.get(id);
      if (!execution) return 'absent';
      if (!isTerminalStatus(execution.status)) return 'active';
      // Each is one map entry here: nothing to slice.
      logs.delete(id);
      artifacts.delete(id);
      executions.delete(id);
      return 'deleted';
    },

    async deleteScript(id) {
      const script = scripts.get(id);
      if (!script || script.status !== 'archived') return false;
      for (const execution of executions.values()) if (execution.scriptId === id) return false;
      scripts.delete(id);
      contents.delete(id);
      return true;
    },
  };
}

/** `Store.listExpiredExecutions` over a list of executions (the memory store's, or a test's). */
export function expiredExecutions(all: readonly Execution[], query: ExpiredExecutionsQuery): string[] {
  const { finishedBefore, keepPerScript } = query;
  const beyondKeep = new Set<string>();
  if (keepPerScript !== undefined) {
    const byScript = new Map<string, Execution[]>();
    for (const execution of all) {
      const list = byScript.get(execution.scriptId);
      if (list) list.push(execution);
      else byScript.set(execution.scriptId, [execution]);
    }
    for (const list of byScript.values()) {
      list.sort((a, b) => compareNewestFirst(a.queuedAt.getTime(), a.id, b.queuedAt.getTime(), b.id));
      for (const execution of list.slice(keepPerScript)) beyondKeep.add(execution.id);
    }
  }
  return all
    .filter(
      (e) =>
        isTerminalStatus(e.status) &&
        ((finishedBefore !== undefined && e.finishedAt !== null && e.finishedAt.getTime() < finishedBefore.getTime()) || beyondKeep.has(e.id)),
    )
    .sort((a, b) => compareNewestFirst(b.queuedAt.getTime(), b.id, a.queuedAt.getTime(), a.id))
    .slice(0, query.limit)
    .map((e) => e.id);
}
