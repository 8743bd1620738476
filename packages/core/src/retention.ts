/**
 * Retention: the sweeper that deletes old executions (with their log lines and artifacts) and,
 * optionally, archived scripts, so a deployment that runs scripts every day does not grow without
 * bound. Off unless `retention` is given.
 *
 * A sweep is many short store calls (`deleteExecution` removes at most `batchRows` rows each), with
 * a turn of the event loop between them: a run writing its log at the same time waits for one
 * short statement at most, never for the whole deletion of a million-line log. Queued and running
 * executions are never touched (the store's contract); a script's executions go before the script.
 *
 * Who sweeps: this runner on a timer, unless its dispatcher schedules sweeps itself (in a BullMQ
 * fleet one repeatable job, so exactly one node sweeps each time).
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Dispatcher } from './dispatch.js';
import { ScriptRunnerError } from './errors.js';
import { MAX_TIMER_MS } from './util.js';
import { notify, type RunnerObserver } from './observe.js';
import type { Store } from './store.js';

export interface RetentionOptions {
  /** Delete executions that finished longer ago than this (ms). */
  maxAgeMs?: number;
  /** Keep only the newest this many executions of each script (queued and running ones count, and are never deleted). */
  keepPerScript?: number;
  /**
   * Delete archived scripts, with all their executions, this long (ms, at least a minute) after
   * they were archived: a run started just before the archive is queued well within that.
   */
  purgeArchivedScriptsAfterMs?: number;
  /** How often the sweeper runs (ms). Default 1 hour; 0: never by itself (call `runner.sweep()`). */
  intervalMs?: number;
  /** Rows one store call deletes at most. Default 500. */
  batchRows?: number;
}

export interface SweepResult {
  /** Executions deleted, with their log lines and artifacts. */
  executionsDeleted: number;
  /** Archived scripts deleted. */
  scriptsDeleted: number;
  durationMs: number;
}

export interface RetentionSettings {
  maxAgeMs: number | null;
  keepPerScript: number | null;
  purgeArchivedScriptsAfterMs: number | null;
  intervalMs: number;
  batchRows: number;
}

const HOUR = 3_600_000;
/** Ids asked of the store at a time (the contract's largest page: each ask may scan the executions). */
const LIST_BATCH = 1000;
/** The shortest purgeArchivedScriptsAfterMs. */
const MIN_PURGE_DELAY_MS = 60_000;

function optionalNumber(value: unknown, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number | null {
  if (value === undefined) return null;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new ScriptRunnerError('validation', `retention.${name} must be an integer from ${min} to ${max}, got ${String(value)}`, {
      details: { field: `retention.${name}` },
    });
  }
  return value;
}

/** Validates `options.retention` against the store; null when retention is off. */
export function resolveRetention(options: RetentionOptions | undefined, store: Store): RetentionSettings | null {
  if (options === undefined) return null;
  if (options === null || typeof options !== 'object') {
    throw new ScriptRunnerError('validation', 'retention must be an object such as { maxAgeMs: 30 * 86_400_000 }', { details: { field: 'retention' } });
  }
  const settings: RetentionSettings = {
    maxAgeMs: optionalNumber(options.maxAgeMs, 'maxAgeMs', 1),
    keepPerScript: optionalNumber(options.keepPerScript, 'keepPerScript', 0),
    purgeArchivedScriptsAfterMs: optionalNumber(options.purgeArchivedScriptsAfterMs, 'purgeArchivedScriptsAfterMs', MIN_PURGE_DELAY_MS),
    // A timer fires at once for anything longer (and the sweeper would never rest).
    intervalMs: optionalNumber(options.intervalMs, 'intervalMs', 0, MAX_TIMER_MS) ?? HOUR,
    batchRows: optionalNumber(options.batchRows, 'batchRows', 1) ?? 500,
  };
  if (settings.maxAgeMs === null && settings.keepPerScript === null && settings.purgeArchivedScriptsAfterMs === null) {
    throw new ScriptRunnerError('validation', 'retention needs at least one of maxAgeMs, keepPerScript, purgeArchivedScriptsAfterMs', {
      details: { field: 'retention' },
    });
  }
  if (!store.listExpiredExecutions || !store.deleteExecution || !store.deleteScript) {
    throw new ScriptRunnerError(
      'validation',
      'retention needs a store that can delete (listExpiredExecutions, deleteExecution, deleteScript); the given store has not all of them',
      { details: { field: 'retention' } },
    );
  }
  return settings;
}

export type RetentionStore = Store & Required<Pick<Store, 'listExpiredExecutions' | 'deleteExecution' | 'deleteScript'>>;

export class Sweeper {
  private running: Promise<SweepResult> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    private readonly settings: RetentionSettings,
    private readonly store: RetentionStore,
    private readonly report: (error: unknown) => void,
    private readonly observers: readonly RunnerObserver[] = [],
  ) {}

  /** One sweep; a call while one runs joins it. */
  sweep(): Promise<SweepResult> {
    if (this.stopped) return Promise.reject(new ScriptRunnerError('closed', 'the runner is closed'));
    this.running ??= this.sweepOnce()
      .then((result) => {
        notify(this.observers, (o) => o.swept?.(result));
        return result;
      })
      .finally(() => {
        this.running = null;
      });
    return this.running;
  }

  /**
   * Once the runner is ready: sweeps every `intervalMs` through the dispatcher's schedule when it
   * has one (a fleet sweeps once per interval), else on this runner's own timer.
   */
  scheduleWhenReady(ready: Promise<void>, dispatcher: Pick<Dispatcher, 'scheduleSweep'>): void {
    if (this.settings.intervalMs === 0) return;
    ready.then(
      () => {
        if (this.stopped) return;
        if (dispatcher.scheduleSweep) dispatcher.scheduleSweep(() => this.sweep(), this.settings.intervalMs);
        else this.startTimer();
      },
      () => undefined, // a runner that failed to start reports it through its calls
    );
  }

  /** Sweeps every `intervalMs` from now on (the first one interval from now). */
  private startTimer(): void {
    if (this.settings.intervalMs === 0 || this.stopped) return;
    this.timer = setTimeout(() => {
      this.sweep()
        .catch((error: unknown) => {
          // A sweep cut short by close() is not a failure.
          if (!(error instanceof ScriptRunnerError && error.code === 'closed')) this.report(error);
        })
        .finally(() => this.startTimer());
    }, this.settings.intervalMs);
    // A sweeper alone never keeps the process alive.
    this.timer.unref();
  }

  /** No sweep starts from now on; resolves when the one in flight stops (at its next store call). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running?.catch(() => undefined);
  }

  private async sweepOnce(): Promise<SweepResult> {
    const started = Date.now();
    const { maxAgeMs, keepPerScript } = this.settings;
    let executionsDeleted = 0;
    let scriptsDeleted = 0;
    if (maxAgeMs !== null || keepPerScript !== null) {
      const query: Parameters<RetentionStore['listExpiredExecutions']>[0] = { limit: LIST_BATCH };
      if (maxAgeMs !== null) query.finishedBefore = new Date(started - maxAgeMs);
      if (keepPerScript !== null) query.keepPerScript = keepPerScript;
      for (;;) {
        const ids = await this.store.listExpiredExecutions(query);
        let gone = 0;
        for (const id of ids) {
          const outcome = await this.deleteExecution(id);
          if (outcome !== 'active') gone++;
          if (outcome === 'deleted') executionsDeleted++;
        }
        // A short page is the end; a page of which nothing could go would come back unchanged.
        if (ids.length < LIST_BATCH || gone === 0) break;
      }
    }
    if (this.settings.purgeArchivedScriptsAfterMs !== null) {
      const purged = await this.purgeArchivedScripts(new Date(started - this.settings.purgeArchivedScriptsAfterMs));
      executionsDeleted += purged.executions;
      scriptsDeleted = purged.scripts;
    }
    return { executionsDeleted, scriptsDeleted, durationMs: Date.now() - started };
  }

  /** Deletes one execution slice by slice: `deleted` by this call, `absent` (gone already), or `active` (kept). */
  private async deleteExecution(id: string): Promise<'deleted' | 'absent' | 'active'> {
    for (;;) {
      this.checkStopped();
      const progress = await this.store.deleteExecution(id, { maxRows: this.settings.batchRows });
      if (progress !== 'more') return progress;
      // Let the runs writing meanwhile have the event loop (and the database) between slices.
      await nextTurn();
    }
  }

  /** Archived scripts archived before `archivedBefore`: their executions, then the script. */
  private async purgeArchivedScripts(archivedBefore: Date): Promise<{ executions: number; scripts: number }> {
    const due: string[] = [];
    let cursor: string | null = null;
    do {
      this.checkStopped();
      const page = await this.store.listScripts({ status: 'archived', limit: LIST_BATCH, cursor });
      for (const script of page.items) if (script.updatedAt.getTime() <= archivedBefore.getTime()) due.push(script.id);
      cursor = page.nextCursor;
    } while (cursor !== null);
    const purged = { executions: 0, scripts: 0 };
    const stillDue = async (scriptId: string) => {
      // Restored (or archived again, later) since the list was read: its runs stay.
      const script = await this.store.getScript(scriptId);
      return script !== null && script.status === 'archived' && script.updatedAt.getTime() <= archivedBefore.getTime();
    };
    for (const scriptId of due) {
      let blocked = false;
      for (;;) {
        if (!(await stillDue(scriptId))) {
          blocked = true;
          break;
        }
        const page = await this.store.listExecutions({ scriptId, limit: LIST_BATCH });
        if (page.items.length === 0) break;
        for (const execution of page.items) {
          const outcome = await this.deleteExecution(execution.id);
          if (outcome === 'deleted') purged.executions++;
          else if (outcome === 'active') blocked = true;
        }
        if (blocked) break; // one is still queued or running: the script waits for a later sweep
      }
      if (!blocked && (await this.store.deleteScript(scriptId))) purged.scripts++;
    }
    return purged;
  }

  private checkStopped(): void {
    if (this.stopped) throw new ScriptRunnerError('closed', 'the runner was closed during the sweep');
  }
}
