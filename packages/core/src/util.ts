import type { RetryPolicy } from './lines/batcher.js';

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Largest delay setTimeout honours; longer ones fire after 1 ms. */
export const MAX_TIMER_MS = 2_147_483_647;

class AttemptTimeout extends Error {
  constructor(ms: number) {
    super(`the store did not answer within ${ms} ms`);
  }
}

/** Rejects when `promise` has not settled after `ms`; the promise itself keeps running. */
function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new AttemptTimeout(ms)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/**
 * Runs `fn` until it succeeds or `policy.attempts` attempts failed, waiting with exponential
 * backoff in between. An attempt that does not settle within `policy.attemptTimeoutMs` counts as
 * failed (a hung connection must not hold a run forever; store writes are idempotent, so a late
 * success of an abandoned attempt is harmless). Rejects with the last error.
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
