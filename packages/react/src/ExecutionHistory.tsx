/**
 * One script's run history, newest first and live: status, arguments, environment, start,
 * duration, exit code, lines and artifacts per run; open a run's log, run it again with the same
 * arguments, view the script's source. Pages with "Show older runs".
 */
import type { ScriptRunnerClient } from '@scriptrunner/client';
import type { Execution } from '@scriptrunner/core';
import { useState } from 'react';
import { humanMessage, useScriptRunnerClient } from './context.js';
import { useExecutions, useScriptSource } from './history.js';
import { formatDuration } from './time.js';

const ended = (execution: Execution) => execution.status !== 'queued' && execution.status !== 'running';

export interface ExecutionHistoryProps {
  scriptId: string;
  /** Shown in the heading, e.g. the script's file name. */
  title?: string;
  client?: ScriptRunnerClient;
  /** Called when a run is opened, and with the new run after "Run again". */
  onOpenExecution?: (execution: Execution) => void;
  /** The run shown beside the history, marked in the list. */
  selectedExecutionId?: string | null;
  pageSize?: number;
  className?: string;
}

const quoteArg = (arg: string) => (arg === '' || /[\s"']/.test(arg) ? JSON.stringify(arg) : arg);

export function ExecutionHistory({ scriptId, title, client: clientProp, onOpenExecution, selectedExecutionId, pageSize, className }: ExecutionHistoryProps) {
  const client = useScriptRunnerClient(clientProp);
  const { executions, loading, error, hasMore, loadMore } = useExecutions(scriptId, { client, ...(pageSize ? { pageSize } : {}) });
  const [showSource, setShowSource] = useState(false);
  const [actionError, setActionError] = useState<string | null>(null);

  const rerun = async (execution: Execution) => {
    setActionError(null);
    try {
      const again = await client.run(scriptId, { args: execution.args, ...(execution.environment ? { environment: execution.environment } : {}) });
      onOpenExecution?.(again);
    } catch (e) {
      setActionError(humanMessage(e));
    }
  };

  return (
    <section className={['sr-history', className].filter(Boolean).join(' ')} aria-label={`Run history${title ? ` of ${title}` : ''}`}>
      <header className="sr-history__header">
        <h2 className="sr-history__title">Runs{title ? ` of ${title}` : ''}</h2>
        <button type="button" className="sr-button" aria-expanded={showSource} onClick={() => setShowSource((s) => !s)}>
          {showSource ? 'Hide source' : 'View source'}
        </button>
        <a className="sr-button" href={client.scriptContentUrl(scriptId)} download>
          Download script
        </a>
      </header>
      {showSource ? <ScriptSource scriptId={scriptId} client={client} /> : null}
      {error ? <div className="sr-error" role="alert">Could not load the runs: {humanMessage(error)}</div> : null}
      {actionError ? <div className="sr-error" role="alert">{actionError}</div> : null}
      {loading ? <div className="sr-muted">Loading…</div> : null}
      {!loading && !error && executions.length === 0 ? <div className="sr-muted">This script has not run yet.</div> : null}
      {executions.length > 0 ? (
        <table className="sr-history__table">
          <thead>
            <tr>
              <th scope="col">Status</th>
              <th scope="col">Started</th>
              <th scope="col">Duration</th>
              <th scope="col">Exit</th>
              <th scope="col">Lines</th>
              <th scope="col">Artifacts</th>
              <th scope="col">Arguments</th>
              <th scope="col">Environment</th>
              <th scope="col">
                <span className="sr-visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {executions.map((execution) => (
              <tr key={execution.id} data-execution={execution.id} aria-current={execution.id === selectedExecutionId ? 'true' : undefined}>
                <td>
                  <span className={`sr-status sr-status--${execution.status}`}>{execution.status.replace('_', ' ')}</span>
                </td>
                <td>{(execution.startedAt ?? execution.queuedAt).toLocaleString()}</td>
                <td>{formatDuration(execution.durationMs)}</td>
                <td>{execution.exitCode ?? execution.signal ?? '—'}</td>
                {/* Counted when the run ends: a running run's record does not have them yet. */}
                <td>{ended(execution) ? execution.lineCount : '—'}</td>
                <td>{ended(execution) ? execution.artifactCount : '—'}</td>
                <td className="sr-history__args">{execution.args.map(quoteArg).join(' ') || '—'}</td>
                <td>{execution.environment ?? '—'}</td>
                <td className="sr-history__actions">
                  <button type="button" className="sr-button" onClick={() => onOpenExecution?.(execution)} aria-label={`Open the log of the run of ${(execution.startedAt ?? execution.queuedAt).toLocaleString()}`}>
                    Log
                  </button>
                  <button type="button" className="sr-button" onClick={() => void rerun(execution)} aria-label={`Run again with the same arguments (${execution.args.join(' ') || 'none'})`}>
                    Run again
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      {hasMore ? (
        <button type="button" className="sr-button sr-history__more" onClick={() => void loadMore()}>
          Show older runs
        </button>
      ) : null}
    </section>
  );
}

/** The script's source with line numbers. */
export function ScriptSource({ scriptId, client: clientProp }: { scriptId: string; client?: ScriptRunnerClient }) {
  const client = useScriptRunnerClient(clientProp);
  const { source, error } = useScriptSource(scriptId, { client });
  if (error) return <div className="sr-error" role="alert">Could not load the source: {humanMessage(error)}</div>;
  if (source === null) return <div className="sr-muted">Loading the source…</div>;
  const lines = source.replace(/\n$/, '').split('\n');
  return (
    <pre className="sr-source" tabIndex={0} aria-label="Script source">
      {lines.map((line, i) => (
        <span key={i} className="sr-source__line">
          <span className="sr-source__number" aria-hidden="true">
            {i + 1}
          </span>
          {line}
          {'\n'}
        </span>
      ))}
    </pre>
  );
}
