/**
 * The live log of one execution: status header (status, environment, exit code, duration, lines), Cancel,
 * download of the full log, level filter and text search, the current progress line, and the
 * virtualised lines. Works when the viewer joins mid-run and across dropped connections.
 */
import type { ScriptRunnerClient } from '@scriptrunner/client';
import type { LogLevel } from '@scriptrunner/core';
import { useState } from 'react';
import { AnsiText } from './ansi.js';
import { humanMessage, useScriptRunnerClient } from './context.js';
import { useExecutionLogs } from './hooks.js';
import { LogLines } from './LogLines.js';

export interface ExecutionLogViewProps {
  executionId: string;
  client?: ScriptRunnerClient;
  /** Shown in the header, e.g. the script's file name. */
  title?: string;
  height?: number;
  className?: string;
}

const LEVELS: LogLevel[] = ['info', 'warn', 'error'];

function duration(ms: number | null): string {
  if (ms === null) return '—';
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

export function ExecutionLogView({ executionId, client: clientProp, title, height = 480, className }: ExecutionLogViewProps) {
  const client = useScriptRunnerClient(clientProp);
  const logs = useExecutionLogs(executionId, { client });
  const [levels, setLevels] = useState<LogLevel[]>([...LEVELS]);
  const [search, setSearch] = useState('');
  const [cancelling, setCancelling] = useState(false);
  const [actionError, setActionError] = useState<string | null>(null);
  const execution = logs.execution;
  const status = execution?.status ?? 'loading';
  const active = status === 'queued' || status === 'running';

  const toggle = (level: LogLevel) =>
    setLevels((current) => (current.includes(level) ? current.filter((l) => l !== level) : LEVELS.filter((l) => l === level || current.includes(l))));

  const cancel = async () => {
    setCancelling(true);
    setActionError(null);
    try {
      await client.cancel(executionId);
    } catch (e) {
      setActionError(humanMessage(e));
    } finally {
      setCancelling(false);
    }
  };

  return (
    <section className={['sr-logview', className].filter(Boolean).join(' ')} aria-label="Execution log">
      <header className="sr-logview__header">
        <span className="sr-logview__title">{title ?? `Execution ${executionId}`}</span>
        <span className={`sr-status sr-status--${status}`} data-testid="execution-status">
          {status.replace('_', ' ')}
        </span>
        {execution?.environment ? (
          <span className="sr-logview__meta">
            environment <b data-testid="environment">{execution.environment}</b>
          </span>
        ) : null}
        <span className="sr-logview__meta">
          exit code <b data-testid="exit-code">{execution?.exitCode ?? (execution?.signal ? execution.signal : '—')}</b>
        </span>
        <span className="sr-logview__meta">
          duration <b>{duration(execution?.durationMs ?? null)}</b>
        </span>
        <span className="sr-logview__meta">
          lines <b data-testid="line-count">{logs.lines.length}</b>
        </span>
        <span className="sr-logview__actions">
          {active ? (
            <button type="button" className="sr-button sr-button--danger" onClick={() => void cancel()} disabled={cancelling}>
              {cancelling ? 'Cancelling…' : 'Cancel'}
            </button>
          ) : null}
          <a className="sr-button" href={client.logsTextUrl(executionId)} download={`${executionId}.log`}>
            Download log
          </a>
        </span>
      </header>
      <div className="sr-logview__toolbar">
        {LEVELS.map((level) => (
          <label key={level} className={`sr-filter sr-filter--${level}`}>
            <input type="checkbox" checked={levels.includes(level)} onChange={() => toggle(level)} /> {level}
          </label>
        ))}
        <input
          type="search"
          className="sr-input sr-logview__search"
          placeholder="Search the log"
          aria-label="Search the log"
          value={search}
          onChange={(e) => setSearch(e.target.value)}
        />
      </div>
      {execution?.errorMessage && !active ? <div className="sr-logview__reason">{execution.errorMessage}</div> : null}
      {actionError ? <div className="sr-error" role="alert">{actionError}</div> : null}
      {logs.error && !logs.finished ? <div className="sr-error" role="alert">{humanMessage(logs.error)}</div> : null}
      <LogLines lines={logs.lines} version={logs.version} levels={levels} search={search} height={height} />
      {logs.progress ? (
        <div className="sr-logview__progress" data-testid="progress">
          <AnsiText text={logs.progress.text} />
        </div>
      ) : null}
    </section>
  );
}
