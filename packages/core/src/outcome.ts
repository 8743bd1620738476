/**
 * The outcome of a run: from what happened (exit, stop reason, caps, store failure, spawn error)
 * to the final record's status and message. `succeeded` means exit code 0 and nothing else.
 */
import { describeError } from './errors.js';
import type { ResolvedLimits } from './process/limits.js';
import type { Execution, ExecutionStatus } from './types.js';

export type StopReason = 'cancelled' | 'timed_out' | 'interrupted' | 'output_limit';

export interface RunFacts {
  /** Why the run was asked to stop (the first reason wins), with the message that goes with it. */
  stop: { reason: StopReason; message: string } | null;
  exit: { exitCode: number | null; signal: string | null } | null;
  spawnError: Error | null;
  /** Why the run's preparation failed before the script could start (e.g. its dependencies did not install). */
  setupError: string | null;
  command: string;
  /** The store gave up on log lines. */
  storeError: unknown;
  storeAttempts: number;
  /** maxLogLines / maxLogBytes was reached. */
  outputLimit: string | null;
  truncated: boolean;
  stderrTail: string[];
  lineCount: number;
  artifactCount: number;
  limits: ResolvedLimits;
  /** Why a whole-run cap (cgroup, run directory size) stopped the run, as " (… reached: limits.X)", or ''. */
  capHint: string;
}

export type FinalPatch = Pick<
  Execution,
  'status' | 'exitCode' | 'signal' | 'finishedAt' | 'durationMs' | 'lineCount' | 'errorMessage' | 'truncated' | 'artifactCount'
>;

export function finalRecord(facts: RunFacts, startedAt: Date | null, finishedAt = new Date()): FinalPatch {
  let status: ExecutionStatus;
  let errorMessage: string | null;
  const exitCode = facts.exit?.exitCode ?? null;
  const signal = facts.exit?.signal ?? null;
  const tail = facts.stderrTail.length > 0 ? `\n${facts.stderrTail.join('\n')}` : '';
  const stop = facts.stop;
  if (facts.storeError !== null) {
    status = 'failed';
    errorMessage = `could not store log lines after ${facts.storeAttempts} attempts: ${describeError(facts.storeError)}`;
  } else if (stop !== null && stop.reason !== 'output_limit') {
    status = stop.reason;
    errorMessage = stop.message;
  } else if (facts.outputLimit !== null) {
    // Also when the script had already exited: what it printed past the cap is lost.
    status = 'failed';
    errorMessage = `stopped: ${facts.outputLimit}`;
  } else if (facts.setupError !== null) {
    status = 'failed';
    errorMessage = facts.setupError;
  } else if (facts.spawnError !== null) {
    status = 'failed';
    errorMessage = `could not start "${facts.command}": ${facts.spawnError.message}`;
  } else if (exitCode === 0 && signal === null) {
    status = 'succeeded';
    errorMessage = null;
  } else {
    status = 'failed';
    const hint = limitHint(facts);
    errorMessage = signal !== null ? `killed by signal ${signal}${hint}${tail}` : `exited with code ${String(exitCode)}${hint}${tail}`;
  }
  return {
    status,
    exitCode,
    signal,
    finishedAt,
    durationMs: startedAt ? finishedAt.getTime() - startedAt.getTime() : 0,
    lineCount: facts.lineCount,
    errorMessage,
    truncated: facts.truncated,
    artifactCount: facts.artifactCount,
  };
}

/**
 * Names the resource limit behind a failure when the evidence points to one, so "exited with
 * code 152" reads as "CPU time limit". bubblewrap reports death by signal N as exit code 128 + N.
 */
export function limitHint(facts: Pick<RunFacts, 'exit' | 'limits' | 'stderrTail' | 'command' | 'capHint'>): string {
  const { limits } = facts;
  const signal = facts.exit?.signal ?? null;
  if (signal === 'SIGXCPU' && limits.cpuSeconds !== null) return ` (CPU time limit of ${limits.cpuSeconds} s reached: limits.cpuSeconds)`;
  if (signal === 'SIGXFSZ' && limits.maxFileBytes !== null) return ` (file size limit of ${limits.maxFileBytes} bytes reached: limits.maxFileBytes)`;
  if (facts.capHint !== '') return facts.capHint;
  const said = facts.stderrTail.join('\n');
  if (/^bwrap: execvp /m.test(said)) {
    return ` (the interpreter "${facts.command}" is not visible inside the sandbox: install it under /usr or add its directory to readPaths)`;
  }
  if (limits.memoryBytes !== null && /\bMemoryError\b|Cannot allocate memory|std::bad_alloc/.test(said)) {
    return ` (memory limit of ${limits.memoryBytes} bytes reached: limits.memoryBytes)`;
  }
  if (limits.maxFileBytes !== null && /File too large/.test(said)) {
    return ` (file size limit of ${limits.maxFileBytes} bytes reached: limits.maxFileBytes)`;
  }
  if (limits.maxProcesses !== null && /Resource temporarily unavailable|BlockingIOError/.test(said)) {
    return ` (process limit of ${limits.maxProcesses} reached?: limits.maxProcesses)`;
  }
  return '';
}
