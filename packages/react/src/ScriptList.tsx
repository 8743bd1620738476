/**
 * The scripts with their last status, run count and last run time; Run (with optional arguments),
 * History and Archive per script; archived scripts shown on request, with Restore. Updates live
 * (socket lifecycle events, polling as a safety net).
 */
import type { ScriptRunnerClient, ScriptWithLastExecution } from '@scriptrunner/client';
import type { Execution } from '@scriptrunner/core';
import { useState } from 'react';
import { humanMessage, useScriptRunnerClient } from './context.js';
import { useScripts } from './hooks.js';

export interface ScriptListProps {
  client?: ScriptRunnerClient;
  /** Which scripts to list. Default: active ones, with a "Show archived" toggle that adds the archived. */
  status?: 'active' | 'archived' | 'all';
  /** Called when a script's History is pressed (the button shows only with this). */
  onOpenHistory?: (script: ScriptWithLastExecution) => void;
  /** Called with the queued execution after Run. */
  onRun?: (execution: Execution, script: ScriptWithLastExecution) => void;
  /** Called when a script's last execution is clicked. */
  onOpenExecution?: (execution: Execution, script: ScriptWithLastExecution) => void;
  className?: string;
}

/** `--day "2026 11 30" -v` → ['--day', '2026 11 30', '-v']: spaces separate, quotes group. */
export function parseArgs(text: string): string[] {
  const args: string[] = [];
  const pattern = /"([^"]*)"|'([^']*)'|(\S+)/g;
  for (const match of text.matchAll(pattern)) args.push(match[1] ?? match[2] ?? match[3] ?? '');
  return args;
}

function when(date: Date | null): string {
  if (!date) return 'never run';
  const sameDay = date.toDateString() === new Date().toDateString();
  return sameDay ? date.toLocaleTimeString() : date.toLocaleDateString();
}

export function ScriptList({ client: clientProp, status: statusProp, onRun, onOpenExecution, onOpenHistory, className }: ScriptListProps) {
  const client = useScriptRunnerClient(clientProp);
  const [showArchived, setShowArchived] = useState(false);
  const status = statusProp ?? (showArchived ? 'all' : 'active');
  const { scripts, loading, error, refresh } = useScripts({ client, status });
  const [args, setArgs] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState<string | null>(null);
  const [actionError, setActionError] = useState<string | null>(null);

  const run = async (script: ScriptWithLastExecution) => {
    setBusy(script.id);
    setActionError(null);
    try {
      const execution = await client.run(script.id, { args: parseArgs(args[script.id] ?? '') });
      onRun?.(execution, script);
      await refresh();
    } catch (e) {
      setActionError(humanMessage(e));
    } finally {
      setBusy(null);
    }
  };

  const setArchived = async (script: ScriptWithLastExecution, archived: boolean) => {
    setBusy(script.id);
    setActionError(null);
    try {
      await (archived ? client.archiveScript(script.id) : client.restoreScript(script.id));
      await refresh();
    } catch (e) {
      setActionError(humanMessage(e));
    } finally {
      setBusy(null);
    }
  };

  return (
    <section className={['sr-scripts', className].filter(Boolean).join(' ')} aria-label="Scripts">
      {statusProp === undefined ? (
        <label className="sr-filter sr-scripts__toggle">
          <input type="checkbox" checked={showArchived} onChange={(e) => setShowArchived(e.target.checked)} /> Show archived
        </label>
      ) : null}
      {error ? <div className="sr-error" role="alert">Could not load the scripts: {humanMessage(error)}</div> : null}
      {actionError ? <div className="sr-error" role="alert">{actionError}</div> : null}
      {loading ? <div className="sr-scripts__empty">Loading…</div> : null}
      {!loading && !error && scripts.length === 0 ? <div className="sr-scripts__empty">No scripts yet: upload one.</div> : null}
      {scripts.length > 0 ? (
        <table className="sr-scripts__table">
          <thead>
            <tr>
              <th>Script</th>
              <th>Last status</th>
              <th>Runs</th>
              <th>Arguments</th>
            </tr>
          </thead>
          <tbody>
            {scripts.map((script) => {
              const last = script.lastExecution;
              return (
                <tr key={script.id} data-script={script.filename} data-status={script.status}>
                  <td>
                    <div className="sr-scripts__name">
                      {script.filename}
                      {script.status === 'archived' ? <span className="sr-scripts__archived"> (archived)</span> : null}
                    </div>
                    {script.description ? <div className="sr-scripts__description">{script.description}</div> : null}
                  </td>
                  <td>
                    {last ? (
                      <button type="button" className={`sr-status sr-status--${last.status}`} onClick={() => onOpenExecution?.(last, script)}>
                        {last.status.replace('_', ' ')}
                      </button>
                    ) : (
                      <span className="sr-status sr-status--none">not run</span>
                    )}
                  </td>
                  <td>
                    {script.totalRuns}
                    <div className="sr-scripts__description">{when(script.lastRunAt)}</div>
                  </td>
                  <td>
                    <div className="sr-scripts__actions">
                    <input
                      type="text"
                      className="sr-input sr-scripts__args"
                      placeholder="--flag value"
                      aria-label={`Arguments for ${script.filename}`}
                      value={args[script.id] ?? ''}
                      onChange={(e) => setArgs((current) => ({ ...current, [script.id]: e.target.value }))}
                      disabled={script.status !== 'active'}
                    />
                    <button
                      type="button"
                      className="sr-button sr-button--primary"
                      onClick={() => void run(script)}
                      disabled={busy === script.id || script.status !== 'active'}
                      aria-label={`Run ${script.filename}`}
                    >
                      Run
                    </button>
                    {onOpenHistory ? (
                      <button type="button" className="sr-button" onClick={() => onOpenHistory(script)} aria-label={`History of ${script.filename}`}>
                        History
                      </button>
                    ) : null}
                    {script.status === 'active' ? (
                      <button type="button" className="sr-button" onClick={() => void setArchived(script, true)} disabled={busy === script.id} aria-label={`Archive ${script.filename}`}>
                        Archive
                      </button>
                    ) : (
                      <button type="button" className="sr-button" onClick={() => void setArchived(script, false)} disabled={busy === script.id} aria-label={`Restore ${script.filename}`}>
                        Restore
                      </button>
                    )}
                    </div>
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      ) : null}
    </section>
  );
}
