/**
 * The guard of `Store.updateExecution`, shared by the built-in stores and offered to store
 * authors, so every store applies the same rule in its one conditional write.
 */
import type { ExecutionPatch, UpdateExecutionOptions } from '../store.js';
import type { ExecutionStatus } from '../types.js';

/** The statuses that are not terminal: the only ones an update may start from. */
const OPEN: readonly ExecutionStatus[] = ['queued', 'running'];

/**
 * The current statuses from which `updateExecution(id, patch, options)` may apply `patch`: the
 * `WHERE status IN (…)` of its conditional write. Never a terminal status; only `queued` for a
 * patch that sets `queued`; only those in `options.expect` when given. Empty means nothing may
 * change.
 */
export function updatableStatuses(patch: ExecutionPatch, options?: UpdateExecutionOptions): ExecutionStatus[] {
  const from: readonly ExecutionStatus[] = patch.status === 'queued' ? ['queued'] : OPEN;
  const expect = options?.expect;
  return from.filter((status) => expect === undefined || expect.includes(status));
}
