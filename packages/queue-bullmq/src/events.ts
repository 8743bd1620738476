/**
 * Runner events on the wire: JSON with ISO dates, revived on the way in so listeners on every node
 * get the same `Date` objects a local runner would give them.
 */
import type { RunnerEvent } from '@scriptrunner/core';

const SCRIPT_DATES = ['createdAt', 'updatedAt', 'lastRunAt'] as const;
const EXECUTION_DATES = ['queuedAt', 'startedAt', 'finishedAt'] as const;

function revive(record: Record<string, unknown>, keys: readonly string[]): void {
  for (const key of keys) {
    const value = record[key];
    if (typeof value === 'string') record[key] = new Date(value);
  }
}

export function encodeEvent(node: string, event: RunnerEvent): string {
  return JSON.stringify({ n: node, e: event });
}

/** The event and the node that published it, or null for anything that is not one. */
export function decodeEvent(message: string): { node: string; event: RunnerEvent } | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(message);
  } catch {
    return null;
  }
  const { n, e } = (parsed ?? {}) as { n?: unknown; e?: { type?: unknown; data?: unknown } };
  if (typeof n !== 'string' || !e || typeof e.type !== 'string' || !e.data || typeof e.data !== 'object') return null;
  const data = e.data as Record<string, unknown>;
  switch (e.type) {
    case 'script:created':
    case 'script:archived':
    case 'script:restored':
      revive(data, SCRIPT_DATES);
      break;
    case 'execution:queued':
    case 'execution:started':
    case 'execution:finished':
      revive(data, EXECUTION_DATES);
      break;
    case 'execution:log':
      if (!Array.isArray(data.lines)) return null;
      for (const line of data.lines as Array<Record<string, unknown>>) revive(line, ['time']);
      break;
    case 'execution:progress':
      revive(data, ['time']);
      break;
    default:
      return null;
  }
  return { node: n, event: e as RunnerEvent };
}
