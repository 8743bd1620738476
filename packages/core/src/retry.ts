/**
 * Retrying store calls: a store that is briefly away (a restarted database, a dropped connection)
 * must not end a run, and one that never answers must not hold it forever.
 */
import { sleep } from './util.js';

export interface RetryPolicy {
  /** Attempts per write, including the first. */
  attempts: number;
  /** Delay before the second attempt; doubles each time up to `maxDelayMs`. */
  minDelayMs: number;
  maxDelayMs: number;
  /** An attempt that has not settled after this long counts as failed. */
  attemptTimeoutMs: number;
}

export class DeadlineError extends Error {
  constructor(ms: number, what = 'the store') {
    super(`${what} did not answer within ${ms} ms`);
  }
}

/** Rejects when `promise` has not settled after `ms`; the promise itself keeps running. */
export function withDeadline<T>(promise: Promise<T>, ms: number, what?: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineError(ms, what)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/**
 * Runs `fn` until it succeeds or `policy.attempts` attempts failed, waiting with exponential
 * backoff in between. An attempt that does not settle within `policy.attemptTimeoutMs` counts as
 * failed (a hung connection must not hold a run forever). The abandoned attempt keeps running and
 * may land later: log writes are idempotent on seq, and status writes are guarded transitions
 * (`Store.updateExecution` with `expect`), so a late write cannot undo a later one. Rejects with
 * the last error.
 */
export async function withRetry<T>(
  fn: () => Promise<T>,
  policy: RetryPolicy,
  onRetry?: (error: unknown, attempt: number) => void,
): Promise<T> {
  let delay = policy.minDelayMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await withDeadline(fn(), policy.attemptTimeoutMs);
    } catch (error) {
      if (attempt >= policy.attempts) throw error;
      onRetry?.(error, attempt);
      await sleep(delay);
      delay = Math.min(delay * 2, policy.maxDelayMs);
    }
  }
}
