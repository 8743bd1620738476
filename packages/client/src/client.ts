/**
 * createScriptRunnerClient: typed calls for every route of @scriptrunner/adapter-express, and
 * exactly-once log following over Socket.IO (when given a socket) or Server-Sent Events.
 */
import type { Artifact, Execution, ExecutionStatus, JsonObject, LogLevel, LogLine, LogStream, Page, Script } from '@scriptrunner/core';
import { ScriptRunnerClientError } from './errors.js';
import { countScriptFollowers, followOverSocket, followOverSse, type FollowOptions, type LogSource, type SocketLike } from './follow.js';
import { reviveArtifact, reviveExecution, reviveLine, reviveScript, type ScriptWithLastExecution } from './wire.js';

export interface ScriptRunnerClientOptions {
  /** Where the router is mounted, e.g. `/api/scripts-runner` (relative works in browsers). */
  baseUrl: string;
  /**
   * A socket.io-client socket on the `/scriptrunner` namespace, or — better where the client is
   * created in a module that also runs on a server (Next.js, any SSR) — a function returning one,
   * e.g. `() => io('/scriptrunner')`: it is called once, lazily, the first time a log or the
   * lifecycle events are followed, so nothing connects while a page renders on the server. Without
   * a socket, logs are followed over Server-Sent Events.
   */
  socket?: SocketLike | (() => SocketLike);
  /** Headers for every request (auth), or a function returning them. */
  headers?: Record<string, string> | (() => Record<string, string>);
  /** Defaults to the global fetch. */
  fetch?: typeof fetch;
}

export interface ReadLogsQuery {
  after?: number;
  limit?: number;
  levels?: LogLevel[];
  streams?: LogStream[];
}

export interface LogsPage {
  lines: LogLine[];
  nextAfter: number;
  done: boolean;
}

export interface ScriptLifecycleHandlers {
  onScriptCreated?: (script: Script) => void;
  onScriptArchived?: (script: Script) => void;
  onScriptRestored?: (script: Script) => void;
  onExecutionQueued?: (execution: Execution) => void;
  onExecutionStarted?: (execution: Execution) => void;
  onExecutionFinished?: (execution: Execution) => void;
}

export type ScriptRunnerClient = ReturnType<typeof createScriptRunnerClient>;

function query(params: Record<string, string | number | undefined | null>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value !== undefined && value !== null && value !== '') search.set(key, String(value));
  const text = search.toString();
  return text ? `?${text}` : '';
}

export function createScriptRunnerClient(options: ScriptRunnerClientOptions) {
  const base = options.baseUrl.replace(/\/+$/, '');
  const doFetch = options.fetch ?? ((input: RequestInfo | URL, init?: RequestInit) => fetch(input, init));
  const headers = () => (typeof options.headers === 'function' ? options.headers() : (options.headers ?? {}));
  let socketInstance: SocketLike | undefined = typeof options.socket === 'function' ? undefined : options.socket;
  /** The socket, created on first use when given as a factory (only follows call this: never during SSR). */
  const socket = (): SocketLike | undefined => {
    if (socketInstance === undefined && typeof options.socket === 'function') socketInstance = options.socket();
    return socketInstance;
  };

  async function send(method: string, path: string, accept: string, body?: BodyInit, contentType?: string): Promise<Response> {
    try {
      return await doFetch(`${base}${path}`, {
        method,
        headers: { accept, ...(contentType ? { 'content-type': contentType } : {}), ...headers() },
        ...(body === undefined ? {} : { body }),
      });
    } catch (error) {
      throw new ScriptRunnerClientError('network', error instanceof Error ? error.message : String(error), 0);
    }
  }

  async function request<T>(method: string, path: string, body?: BodyInit, contentType?: string): Promise<T> {
    const response = await send(method, path, 'application/json', body, contentType);
    return parse<T>(response, await response.text());
  }

  function parse<T>(response: Response, text: string): T {
    let json: unknown = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      // A proxy's HTML error page, say: reported below with the status.
    }
    if (!response.ok) {
      const error = (json as { error?: { code?: string; message?: string } } | null)?.error;
      const retryAfter = response.headers.get('retry-after');
      throw new ScriptRunnerClientError(
        error?.code ?? 'http',
        error?.message ?? `HTTP ${response.status} ${response.statusText}`,
        response.status,
        retryAfter ? Number(retryAfter) : null,
      );
    }
    return json as T;
  }

  const client = {
    /** `environment`: the named Python environment the script runs in (else the one its metadata names, else the default). */
    async uploadScript(
      file: Blob,
      extra: { filename?: string; description?: string; metadata?: JsonObject; environment?: string } = {},
    ): Promise<ScriptWithLastExecution> {
      const form = new FormData();
      const filename = extra.filename ?? (file as File).name;
      if (!filename) throw new ScriptRunnerClientError('validation', 'a file name is needed: pass a File or { filename }', 0);
      form.append('file', file, filename);
      if (extra.description) form.append('description', extra.description);
      if (extra.metadata) form.append('metadata', JSON.stringify(extra.metadata));
      if (extra.environment) form.append('environment', extra.environment);
      const { script } = await request<{ script: unknown }>('POST', '/scripts', form);
      return reviveScript(script);
    },

    async listScripts(q: { status?: 'active' | 'archived' | 'all'; limit?: number; cursor?: string | null } = {}): Promise<Page<ScriptWithLastExecution>> {
      const page = await request<{ items: unknown[]; nextCursor: string | null }>('GET', `/scripts${query(q)}`);
      return { items: page.items.map(reviveScript), nextCursor: page.nextCursor };
    },

    async getScript(id: string): Promise<ScriptWithLastExecution> {
      return reviveScript((await request<{ script: unknown }>('GET', `/scripts/${encodeURIComponent(id)}`)).script);
    },

    /** The URL that downloads the script's bytes (for a link or a fetch of your own). */
    scriptContentUrl(id: string): string {
      return `${base}/scripts/${encodeURIComponent(id)}/content`;
    },

    /** The script's source as text (UTF-8, as uploaded). */
    async getScriptContent(id: string): Promise<string> {
      const response = await send('GET', `/scripts/${encodeURIComponent(id)}/content`, '*/*');
      const text = await response.text();
      return response.ok ? text : parse<never>(response, text);
    },

    async archiveScript(id: string): Promise<ScriptWithLastExecution> {
      return reviveScript((await request<{ script: unknown }>('DELETE', `/scripts/${encodeURIComponent(id)}`)).script);
    },

    /** Makes an archived script active again. */
    async restoreScript(id: string): Promise<ScriptWithLastExecution> {
      return reviveScript((await request<{ script: unknown }>('POST', `/scripts/${encodeURIComponent(id)}/restore`)).script);
    },

    /** Resolves once the execution is queued. `environment` overrides the script's named Python environment. */
    async run(scriptId: string, runOptions: { args?: string[]; environment?: string } = {}): Promise<Execution> {
      const { execution } = await request<{ execution: unknown }>(
        'POST',
        `/scripts/${encodeURIComponent(scriptId)}/executions`,
        JSON.stringify({ args: runOptions.args ?? [], ...(runOptions.environment ? { environment: runOptions.environment } : {}) }),
        'application/json',
      );
      return reviveExecution(execution);
    },

    async listExecutions(q: { scriptId?: string; status?: ExecutionStatus; limit?: number; cursor?: string | null } = {}): Promise<Page<Execution>> {
      const page = await request<{ items: unknown[]; nextCursor: string | null }>('GET', `/executions${query(q)}`);
      return { items: page.items.map(reviveExecution), nextCursor: page.nextCursor };
    },

    async getExecution(id: string): Promise<Execution> {
      return reviveExecution((await request<{ execution: unknown }>('GET', `/executions/${encodeURIComponent(id)}`)).execution);
    },

    async cancel(id: string): Promise<Execution> {
      return reviveExecution((await request<{ execution: unknown }>('POST', `/executions/${encodeURIComponent(id)}/cancel`)).execution);
    },

    async readLogs(executionId: string, q: ReadLogsQuery = {}): Promise<LogsPage> {
      const page = await request<{ lines: unknown[]; nextAfter: number; done: boolean }>(
        'GET',
        `/executions/${encodeURIComponent(executionId)}/logs${query({
          after: q.after,
          limit: q.limit,
          level: q.levels?.join(','),
          stream: q.streams?.join(','),
        })}`,
      );
      return { lines: page.lines.map(reviveLine), nextAfter: page.nextAfter, done: page.done };
    },

    /** The files kept from the execution's output directory (`SCRIPTRUNNER_OUTPUT_DIR`), by name. */
    async listArtifacts(executionId: string): Promise<Artifact[]> {
      const { artifacts } = await request<{ artifacts: unknown[] }>('GET', `/executions/${encodeURIComponent(executionId)}/artifacts`);
      return artifacts.map(reviveArtifact);
    },

    /** The URL that downloads one artifact (`Content-Disposition: attachment`), for a link. */
    artifactUrl(executionId: string, name: string): string {
      return `${base}/executions/${encodeURIComponent(executionId)}/artifacts/${encodeURIComponent(name)}`;
    },

    /** One artifact's bytes, fetched with the client's headers (where a link cannot carry them). */
    async downloadArtifact(executionId: string, name: string): Promise<Uint8Array> {
      const response = await send('GET', `/executions/${encodeURIComponent(executionId)}/artifacts/${encodeURIComponent(name)}`, '*/*');
      if (!response.ok) return parse<never>(response, await response.text());
      return new Uint8Array(await response.arrayBuffer());
    },

    /** The URL of the whole log as plain text (for a download link). */
    logsTextUrl(executionId: string): string {
      return `${base}/executions/${encodeURIComponent(executionId)}/logs.txt`;
    },

    /**
     * Delivers every line of the execution after `afterSeq` exactly once and in order, then
     * `onFinished`; over the socket when the client has one, else over SSE. Returns a function that
     * stops following.
     */
    followExecution(executionId: string, follow: FollowOptions): () => void {
      const source: LogSource = {
        readLogs: (id, q) => client.readLogs(id, { after: q.after, limit: q.limit }),
        getExecution: (id) => client.getExecution(id),
      };
      const live = options.socket ? socket() : undefined;
      if (live) return followOverSocket(live, source, executionId, follow);
      return followOverSse(
        (afterSeq) => `${base}/executions/${encodeURIComponent(executionId)}/logs/stream${query({ after: afterSeq })}`,
        (url, signal) => doFetch(url, { headers: { accept: 'text/event-stream', ...headers() }, signal }),
        source,
        executionId,
        follow,
      );
    },

    /**
     * Script and execution lifecycle events for list views (needs the socket). Returns a function
     * that stops them; without a socket it returns a no-op, and callers poll `listScripts`.
     */
    subscribeScripts(handlers: ScriptLifecycleHandlers): () => void {
      const live = options.socket ? socket() : undefined;
      if (!live) return () => {};
      const target = live;
      const listeners: Array<[string, (payload: unknown) => void]> = [
        ['script:created', (p) => handlers.onScriptCreated?.(reviveScript(p))],
        ['script:archived', (p) => handlers.onScriptArchived?.(reviveScript(p))],
        ['script:restored', (p) => handlers.onScriptRestored?.(reviveScript(p))],
        ['execution:queued', (p) => handlers.onExecutionQueued?.(reviveExecution(p))],
        ['execution:started', (p) => handlers.onExecutionStarted?.(reviveExecution(p))],
        ['execution:finished', (p) => handlers.onExecutionFinished?.(reviveExecution(p))],
      ];
      const subscribe = () => target.emit('scripts:subscribe');
      for (const [event, listener] of listeners) target.on(event, listener);
      target.on('connect', subscribe);
      countScriptFollowers(target, 1);
      if (target.connected) subscribe();
      let stopped = false;
      return () => {
        if (stopped) return;
        stopped = true;
        for (const [event, listener] of listeners) target.off(event, listener);
        target.off('connect', subscribe);
        // Another list on the same socket still wants the events: only the last one unsubscribes.
        if (countScriptFollowers(target, -1) === 0 && target.connected) target.emit('scripts:unsubscribe');
      };
    },
  };
  return client;
}
