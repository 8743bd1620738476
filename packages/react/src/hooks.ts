/**
 * Hooks over @scriptrunner/client: scripts with live updates, one execution, one execution's log.
 */
import type { ScriptRunnerClient, ScriptWithLastExecution } from '@scriptrunner/client';
import type { Execution, LogLine, ProgressEvent } from '@scriptrunner/core';
import { useCallback, useEffect, useRef, useState } from 'react';
import { useScriptRunnerClient } from './context.js';

export interface UseScriptsOptions {
  client?: ScriptRunnerClient;
  status?: 'active' | 'archived' | 'all';
  limit?: number;
  /** A safety net beside the socket's live events (and the only source without a socket). Default 5,000 ms. */
  pollMs?: number;
}

export function useScripts(options: UseScriptsOptions = {}) {
  const client = useScriptRunnerClient(options.client);
  const [scripts, setScripts] = useState<ScriptWithLastExecution[]>([]);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<Error | null>(null);
  const status = options.status ?? 'active';
  const limit = options.limit ?? 100;

  // Only the newest request may set the list: answers can arrive out of order, or after unmount.
  const latest = useRef(0);
  const refresh = useCallback(async () => {
    const request = ++latest.current;
    try {
      const page = await client.listScripts({ status, limit });
      if (request !== latest.current) return;
      setScripts(page.items);
      setError(null);
    } catch (e) {
      if (request === latest.current) setError(e as Error);
    } finally {
      if (request === latest.current) setLoading(false);
    }
  }, [client, status, limit]);

  useEffect(() => {
    void refresh();
    // Lifecycle events only say that something changed; the list is read again (cheap, and always right).
    const stop = client.subscribeScripts({
      onScriptCreated: () => void refresh(),
      onScriptArchived: () => void refresh(),
      onScriptRestored: () => void refresh(),
      onExecutionQueued: () => void refresh(),
      onExecutionStarted: () => void refresh(),
      onExecutionFinished: () => void refresh(),
    });
    const timer = setInterval(() => void refresh(), options.pollMs ?? 5000);
    return () => {
      stop();
      clearInterval(timer);
      latest.current++;
    };
  }, [client, refresh, options.pollMs]);

  return { scripts, loading, error, refresh };
}

export interface UseExecutionLogsOptions {
  client?: ScriptRunnerClient;
}

export interface ExecutionLogsState {
  /** Every line so far, in seq order. The array grows in place; `version` changes on every append. */
  lines: LogLine[];
  version: number;
  progress: ProgressEvent | null;
  execution: Execution | null;
  finished: boolean;
  error: Error | null;
}

/**
 * Follows one execution from its first line: the lines arrive exactly once and in order, also when
 * the viewer joins mid-run or the connection drops.
 */
export function useExecutionLogs(executionId: string | null, options: UseExecutionLogsOptions = {}): ExecutionLogsState {
  const client = useScriptRunnerClient(options.client);
  const linesRef = useRef<LogLine[]>([]);
  const [version, setVersion] = useState(0);
  const [progress, setProgress] = useState<ProgressEvent | null>(null);
  const [execution, setExecution] = useState<Execution | null>(null);
  const [finished, setFinished] = useState(false);
  const [error, setError] = useState<Error | null>(null);

  useEffect(() => {
    linesRef.current = [];
    setVersion((v) => v + 1);
    setProgress(null);
    setExecution(null);
    setFinished(false);
    setError(null);
    if (!executionId) return;
    let active = true;
    client.getExecution(executionId).then(
      (e) => active && setExecution((current) => current ?? e),
      (e: Error) => active && setError(e),
    );
    const finishedRef = { current: false };
    // Status changes while running (queued → running) are picked up by a light poll.
    const timer = setInterval(() => {
      client.getExecution(executionId).then(
        (e) => active && !finishedRef.current && setExecution(e),
        () => undefined,
      );
    }, 2000);
    let pending: LogLine[] = [];
    let frame: ReturnType<typeof setTimeout> | null = null;
    // Batches are applied at most every 50 ms: a million-line run must not render a million times.
    const flush = () => {
      frame = null;
      if (!active || pending.length === 0) return;
      for (const line of pending) linesRef.current.push(line);
      pending = [];
      setVersion((v) => v + 1);
    };
    let sawLines = false;
    const stop = client.followExecution(executionId, {
      onLines: (lines) => {
        for (const line of lines) pending.push(line);
        frame ??= setTimeout(flush, 50);
        // Output means it is running: read the record now instead of waiting for the next poll.
        if (!sawLines) {
          sawLines = true;
          client.getExecution(executionId).then(
            (e) => active && !finishedRef.current && setExecution(e),
            () => undefined,
          );
        }
      },
      onProgress: (p) => active && setProgress(p),
      onFinished: (e) => {
        if (!active) return;
        finishedRef.current = true;
        clearInterval(timer);
        flush();
        setProgress(null);
        setExecution(e);
        setFinished(true);
      },
      onError: (e) => active && setError(e),
    });
    return () => {
      active = false;
      stop();
      clearInterval(timer);
      if (frame) clearTimeout(frame);
    };
  }, [client, executionId]);

  return { lines: linesRef.current, version, progress, execution, finished, error };
}

const isTerminal = (status: Execution['status']) => status !== 'queued' && status !== 'running';

/** One execution's record, kept current until it is terminal (light polling; no log lines). */
export function useExecution(executionId: string | null, options: UseExecutionLogsOptions = {}) {
  const client = useScriptRunnerClient(options.client);
  const [execution, setExecution] = useState<Execution | null>(null);
  const [error, setError] = useState<Error | null>(null);
  useEffect(() => {
    setExecution(null);
    setError(null);
    if (!executionId) return;
    let active = true;
    let timer: ReturnType<typeof setTimeout> | null = null;
    const load = async () => {
      try {
        const e = await client.getExecution(executionId);
        if (!active) return;
        setExecution(e);
        if (!isTerminal(e.status)) timer = setTimeout(load, 1000);
      } catch (e) {
        if (!active) return;
        setError(e as Error);
        // A failed request is not the end of the run: try again, slower, unless it cannot succeed.
        const code = (e as { code?: string }).code;
        if (code !== 'not_found' && code !== 'forbidden') timer = setTimeout(load, 3000);
      }
    };
    void load();
    return () => {
      active = false;
      if (timer) clearTimeout(timer);
    };
  }, [client, executionId]);
  return { execution, error };
}
