/**
 * The live log of one execution: status header (status, environment, exit code, elapsed time or
 * duration, lines), Cancel, download of the full log, level filter, text search, line timestamps
 * (absolute or since the start), deep links to a line (select it, copy its link), the live `\r`
 * progress as a bar when it carries a percentage, the virtualised lines and the run's artifacts.
 * Works when the viewer joins mid-run and across dropped connections.
 */
import type { ScriptRunnerClient } from '@scriptrunner/client';
import type { LogLevel } from '@scriptrunner/core';
import { useState } from 'react';
import { AnsiText, stripAnsi } from './ansi.js';
import { ArtifactList } from './ArtifactList.js';
import { humanMessage, useScriptRunnerClient } from './context.js';
import { useExecutionLogs } from './hooks.js';
import { LogLines } from './LogLines.js';
import { formatDuration, progressPercent, useElapsed, type TimestampMode } from './time.js';

export interface ExecutionLogViewProps {
  executionId: string;
  client?: ScriptRunnerClient;
  /** Shown in the header, e.g. the script's file name. */
  title?: string;
  height?: number;
  className?: string;
  /**
   * The selected line (e.g. from the URL's `#L123`); with `onSelectLine` the caller keeps it (in
   * the URL, so a reload shows the same line). Without them the view keeps its own.
   */
  selectedLine?: number | null;
  onSelectLine?: (seq: number) => void;
  /** The shareable link of a line. Default: this page's URL with `#L<seq>`. */
  lineLink?: (seq: number) => string;
  /** Show the run's artifacts under the log. Default true. */
  showArtifacts?: boolean;
}

const LEVELS: LogLevel[] = ['info', 'warn', 'error'];

const defaultLineLink = (seq: number) =>
  typeof location === 'undefined' ? `#L${seq}` : `${location.href.replace(/#.*$/, '')}#L${seq}`;

/** What went wrong, in words for the person looking at the page. */
function describeLoadError(error: Error): string {
  const code = (error as { code?: string }).code;
  if (code === 'not_found') return 'This run does not exist (any more): it may have been removed, or the link is wrong.';
  if (code === 'forbidden') return 'You are not allowed to see this run.';
  if (code === 'network') return `The server cannot be reached (${error.message}); the log resumes when it is back.`;
  return `The log could not be loaded: ${humanMessage(error)}`;
}

export function ExecutionLogView({
  executionId,
  client: clientProp,
  title,
  height = 480,
  className,
  selectedLine: selectedProp,
  onSelectLine,
  lineLink = defaultLineLink,
  showArtifacts = true,
}: ExecutionLogViewProps) {
  const client = useScriptRunnerClient(clientProp);
  const logs = useExecutionLogs(executionId, { client });
  const [levels, setLevels] = useState<LogLevel[]>([...LEVELS]);
  const [search, setSearch] = useState('');
  const [timestamps, setTimestamps] = useState<TimestampMode>('none');
  const [ownSelection, setOwnSelection] = useState<number | null>(null);
  const [copied, setCopied] = useState<string | null>(null);
  const [cancelling, setCancelling] = useState(false);
  const [actionError, setActionError] = useState<string | null>(null);
  const execution = logs.execution;
  const status = execution?.status ?? (logs.error ? 'unknown' : 'loading');
  const active = status === 'queued' || status === 'running';
  const elapsed = useElapsed(execution?.startedAt ?? null, status === 'running');
  const selected = selectedProp !== undefined ? selectedProp : ownSelection;
  const select = onSelectLine ?? setOwnSelection;
  const percent = logs.progress ? progressPercent(stripAnsi(logs.progress.text)) : null;

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

  const copyLink = async (seq: number) => {
    const link = lineLink(seq);
    try {
      await navigator.clipboard.writeText(link);
      setCopied(`Link to line ${seq} copied`);
    } catch {
      // No clipboard (an insecure origin, a denied permission): show the link to copy by hand.
      setCopied(link);
    }
  };

  const emptyText =
    status === 'queued' ? 'Waiting for the run to start…' : active || status === 'loading' ? 'No output yet.' : logs.error ? '' : 'The run printed nothing.';

  return (
    <section className={['sr-logview', className].filter(Boolean).join(' ')} aria-label="Execution log">
      <header className="sr-logview__header">
        <h2 className="sr-logview__title">{title ?? `Execution ${executionId}`}</h2>
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
        {status === 'running' ? (
          <span className="sr-logview__meta">
            elapsed <b data-testid="elapsed">{formatDuration(elapsed === null ? null : Math.floor(elapsed / 1000) * 1000)}</b>
          </span>
        ) : (
          <span className="sr-logview__meta">
            duration <b data-testid="duration">{formatDuration(execution?.durationMs ?? null)}</b>
          </span>
        )}
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
      <div className="sr-logview__toolbar" role="group" aria-label="Log display">
        {LEVELS.map((level) => (
          <label key={level} className={`sr-filter sr-filter--${level}`}>
            <input type="checkbox" checked={levels.includes(level)} onChange={() => toggle(level)} /> {level}
          </label>
        ))}
        <label className="sr-filter">
          time{' '}
          <select className="sr-input" value={timestamps} onChange={(e) => setTimestamps(e.target.value as TimestampMode)} aria-label="Line timestamps">
            <option value="none">hidden</option>
            <option value="absolute">clock</option>
            <option value="relative">since start</option>
          </select>
        </label>
        <input
          type="search"
          className="sr-input sr-logview__search"
          placeholder="Search the log"
          aria-label="Search the log"
          value={search}
          onChange={(e) => setSearch(e.target.value)}
        />
        {selected !== null ? (
          <span className="sr-logview__selection">
            line <b data-testid="selected-line">{selected}</b>{' '}
            <button type="button" className="sr-button" onClick={() => void copyLink(selected)}>
              Copy link
            </button>
          </span>
        ) : null}
      </div>
      {copied ? (
        <div className="sr-logview__note" role="status">
          {copied}
        </div>
      ) : null}
      {execution?.errorMessage && !active ? <div className="sr-logview__reason">{execution.errorMessage}</div> : null}
      {actionError ? <div className="sr-error" role="alert">{actionError}</div> : null}
      {logs.error && !logs.finished ? (
        <div className="sr-error sr-logview__load-error" role="alert" data-testid="load-error">
          {describeLoadError(logs.error)}
        </div>
      ) : null}
      {logs.progress ? (
        <div className="sr-logview__progress" data-testid="progress">
          {percent !== null ? (
            <progress className="sr-logview__bar" max={100} value={percent} aria-label={`Progress ${Math.round(percent)}%`} />
          ) : null}
          <span className="sr-logview__progress-text">
            <AnsiText text={logs.progress.text} />
          </span>
        </div>
      ) : null}
      <LogLines
        lines={logs.lines}
        version={logs.version}
        levels={levels}
        search={search}
        height={height}
        emptyText={emptyText}
        timestamps={timestamps}
        startTime={execution?.startedAt ?? null}
        selectedSeq={selected}
        onSelectLine={select}
      />
      {showArtifacts && execution && !active ? <ArtifactList executionId={executionId} client={client} version={execution.status} /> : null}
    </section>
  );
}
