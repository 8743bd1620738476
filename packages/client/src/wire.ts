/**
 * JSON turns Dates into ISO strings; the client turns them back, so callers get the same types
 * as @scriptrunner/core.
 */
import type { Artifact, Execution, LogLine, Script } from '@scriptrunner/core';

/** A script as the REST routes return it: with its most recent execution. */
export interface ScriptWithLastExecution extends Script {
  lastExecution: Execution | null;
}

const date = (value: unknown): Date => new Date(value as string);
const maybeDate = (value: unknown): Date | null => (value === null || value === undefined ? null : new Date(value as string));

export function reviveExecution(raw: unknown): Execution {
  const e = raw as Record<string, unknown>;
  return {
    ...(e as unknown as Execution),
    queuedAt: date(e.queuedAt),
    startedAt: maybeDate(e.startedAt),
    finishedAt: maybeDate(e.finishedAt),
    // A server older than named environments sends none.
    environment: (e.environment as string | null | undefined) ?? null,
    artifactCount: (e.artifactCount as number | undefined) ?? 0,
  };
}

export function reviveArtifact(raw: unknown): Artifact {
  const a = raw as Record<string, unknown>;
  return { ...(a as unknown as Artifact), createdAt: date(a.createdAt) };
}

export function reviveScript(raw: unknown): ScriptWithLastExecution {
  const s = raw as Record<string, unknown>;
  return {
    ...(s as unknown as Script),
    createdAt: date(s.createdAt),
    updatedAt: date(s.updatedAt),
    lastRunAt: maybeDate(s.lastRunAt),
    environment: (s.environment as string | null | undefined) ?? null,
    lastExecution: s.lastExecution ? reviveExecution(s.lastExecution) : null,
  };
}

export function reviveLine(raw: unknown): LogLine {
  const l = raw as Record<string, unknown>;
  return { ...(l as unknown as LogLine), time: date(l.time) };
}
