/**
 * Hooks for a script's past: its executions page by page (live), one execution's artifacts, and a
 * script's source.
 */
import type { ScriptRunnerClient } from '@scriptrunner/client';
import type { Artifact, Execution } from '@scriptrunner/core';
import { useCallback, useEffect, useRef, useState } from 'react';
import { useScriptRunnerClient } from './context.js';

export interface UseExecutionsOptions {
  client?: ScriptRunnerClient;
  /** Executions per page. Default 20. */
  pageSize?: number;
  /** A safety net beside the socket's live events (and the only source without a socket). Default 5,000 ms. */
  pollMs?: number;
}

/**
 * One script's executions, newest first: the first `pageSize`, more with `loadMore()`. Kept current
 * by the lifecycle events (a new run appears at the top, a running one turns into its end) and a
 * light poll; the pages already loaded are read again as one.
 */
export function useExecutions(scriptId: string | null, options: UseExecutionsOptions = {}) {
  const client = useScriptRunnerClient(options.client);
  const pageSize = options.pageSize ?? 20;
  const [executions, setExecutions] = useState<Execution[]>([]);
  const [nextCursor, setNextCursor] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<Error | null>(null);
  /** How many rows the reader has asked to see: a refresh reads that many again. */
  const wanted = useRef(pageSize);
  const latest = useRef(0);

  const refresh = useCallback(async () => {
    if (!scriptId) return;
    const request = ++latest.current;
    try {
      const page = await client.listExecutions({ scriptId, limit: Math.min(wanted.current, 1000) });
      if (request !== latest.current) return;
      setExecutions(page.items);
      setNextCursor(page.nextCursor);
      setError(null);
    } catch (e) {
      if (request === latest.current) setError(e as Error);
    } finally {
      if (request === latest.current) setLoading(false);
    }
  }, [client, scriptId]);

  const loadMore = useCallback(async () => {
    if (!scriptId || nextCursor === null) return;
    const request = ++latest.current;
    try {
      const page = await client.listExecutions({ scriptId, limit: pageSize, cursor: nextCursor });
      if (request !== latest.current) return;
      setExecutions((current) => {
        wanted.current = current.length + page.items.length;
        return [...current, ...page.items];
      });
      setNextCursor(page.nextCursor);
    } catch (e) {
      if (request === latest.current) setError(e as Error);
    }
  }, [client, scriptId, nextCursor, pageSize]);

  useEffect(() => {
    wanted.current = pageSize;
    setExecutions([]);
    setNextCursor(null);
    setLoading(true);
    setError(null);
    if (!scriptId) return;
    void refresh();
    const mine = (e: Execution) => e.scriptId === scriptId && void refresh();
    const stop = client.subscribeScripts({ onExecutionQueued: mine, onExecutionStarted: mine, onExecutionFinished: mine });
    const timer = setInterval(() => void refresh(), options.pollMs ?? 5000);
    return () => {
      stop();
      clearInterval(timer);
      latest.current++;
    };
  }, [client, scriptId, pageSize, refresh, options.pollMs]);

  return { executions, loading, error, hasMore: nextCursor !== null, loadMore, refresh };
}

/** The artifacts of one execution, read again when `version` changes (e.g. when it finished). */
export function useArtifacts(executionId: string | null, version: unknown = 0, options: { client?: ScriptRunnerClient } = {}) {
  const client = useScriptRunnerClient(options.client);
  const [artifacts, setArtifacts] = useState<Artifact[] | null>(null);
  const [error, setError] = useState<Error | null>(null);
  useEffect(() => {
    setError(null);
    if (!executionId) return setArtifacts(null);
    let active = true;
    client.listArtifacts(executionId).then(
      (list) => active && setArtifacts(list),
      (e: Error) => active && setError(e),
    );
    return () => {
      active = false;
    };
  }, [client, executionId, version]);
  return { artifacts, error };
}

/** A script's source as text. */
export function useScriptSource(scriptId: string | null, options: { client?: ScriptRunnerClient } = {}) {
  const client = useScriptRunnerClient(options.client);
  const [source, setSource] = useState<string | null>(null);
  const [error, setError] = useState<Error | null>(null);
  useEffect(() => {
    setSource(null);
    setError(null);
    if (!scriptId) return;
    let active = true;
    client.getScriptContent(scriptId).then(
      (text) => active && setSource(text),
      (e: Error) => active && setError(e),
    );
    return () => {
      active = false;
    };
  }, [client, scriptId]);
  return { source, error };
}
