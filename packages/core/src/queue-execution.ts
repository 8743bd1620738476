/**
 * The second half of `run()`: the execution is stored as `queued` and handed to the dispatcher,
 * with every failure in between leaving a record that ends (never one that waits forever) and the
 * dispatcher's claim released. The runner has validated the request before.
 */
import { nanoid } from 'nanoid';
import type { Dispatcher, DispatchRequest } from './dispatch.js';
import { LocalDispatcher } from './dispatchers/local.js';
import { describeError, ScriptRunnerError } from './errors.js';
import type { Executor } from './executor.js';
import type { Store } from './store.js';
import type { Execution, RunnerEvent } from './types.js';

export interface QueueContext {
  store: Store;
  dispatcher: Dispatcher;
  executor: Pick<Executor, 'endQueued' | 'queuedHere'>;
  /** A store call whose failure becomes a `store` error. */
  call<T>(fn: () => Promise<T>): Promise<T>;
  publish(event: RunnerEvent): Promise<void>;
  isClosed(): boolean;
}

export interface QueueInput {
  scriptId: string;
  args: string[];
  environment: string | null;
  env: Record<string, string> | undefined;
  timeoutMs: number | undefined;
}

export async function queueExecution(ctx: QueueContext, input: QueueInput): Promise<Execution> {
  // Claim the waiting place before anything is stored, so a full queue leaves no trace.
  await ctx.dispatcher.admit?.();
  let execution: Execution;
  const queuedAt = new Date();
  try {
    execution = await ctx.call(() =>
      ctx.store.createExecution({
        id: nanoid(),
        scriptId: input.scriptId,
        status: 'queued',
        args: input.args,
        exitCode: null,
        signal: null,
        queuedAt,
        startedAt: null,
        finishedAt: null,
        durationMs: null,
        lineCount: 0,
        errorMessage: null,
        truncated: false,
        environment: input.environment,
        artifactCount: 0,
      }),
    );
  } catch (error) {
    ctx.dispatcher.release?.();
    throw error;
  }
  try {
    await ctx.call(() => ctx.store.recordRun(input.scriptId, queuedAt));
    if (ctx.isClosed()) throw new ScriptRunnerError('closed', 'the runner was closed before the execution was queued');
  } catch (error) {
    // The row exists but will never run: end it so nobody waits on it.
    ctx.dispatcher.release?.();
    const closed = error instanceof ScriptRunnerError && error.code === 'closed';
    await ctx.executor.endQueued(
      execution,
      closed ? 'interrupted' : 'failed',
      closed ? 'the runner was closed before it started' : `could not record the run: ${describeError(error)}`,
    );
    throw error;
  }
  await ctx.publish({ type: 'execution:queued', data: execution });
  if (ctx.dispatcher instanceof LocalDispatcher) ctx.executor.queuedHere(execution);
  const request: DispatchRequest = { executionId: execution.id };
  // Only a timeout the caller chose travels: otherwise the runner that runs it applies its own.
  if (input.timeoutMs !== undefined) request.timeoutMs = input.timeoutMs;
  if (input.env !== undefined) request.env = input.env;
  try {
    await ctx.dispatcher.dispatch(request);
  } catch (error) {
    await ctx.executor.endQueued(execution, 'failed', `could not dispatch the execution: ${describeError(error)}`);
    if (error instanceof ScriptRunnerError) throw error;
    throw new ScriptRunnerError('unavailable', `could not dispatch execution ${execution.id}: ${describeError(error)}`, { cause: error });
  }
  return execution;
}
