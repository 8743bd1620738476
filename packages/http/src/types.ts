/**
 * The framework-neutral request and response the routes work on. A face (Express, fetch) builds an
 * `HttpRequest` from its framework's request and writes the `HttpResponse` back; nothing else.
 */

/** What authorize is asked about. */
export type ScriptRunnerAction =
  | 'script:upload'
  | 'script:list'
  | 'script:read'
  | 'script:download'
  | 'script:archive'
  | 'script:restore'
  | 'script:run'
  | 'execution:list'
  | 'execution:read'
  | 'execution:cancel'
  | 'execution:logs'
  /** List an execution's artifacts and download them. */
  | 'execution:artifacts'
  /** `GET /metrics` (only mounted with the `metrics` option). */
  | 'metrics:read'
  /** `GET /health`. */
  | 'health:read';

/** What a route acts on: the ids in its path or query, when it has them. */
export interface ScriptRunnerResource {
  scriptId?: string;
  executionId?: string;
}

export interface HttpRequest<Native> {
  method: string;
  /** The path below the mount point, e.g. `/scripts/abc/content` (not decoded). */
  path: string;
  query: URLSearchParams;
  headers: { get(name: string): string | null };
  /** The raw body, read only by the routes that take one. */
  body: AsyncIterable<Uint8Array> | null;
  /** A JSON body a framework middleware already parsed (Express with `express.json()` in front). */
  parsedJson?: unknown;
  /** Aborts when the client goes away. */
  signal: AbortSignal;
  /** The mount point as the client sees it (`/api/scripts-runner`), for `Location` headers. */
  baseUrl: string;
  /** The framework's own request, handed to `authorize`. */
  native: Native;
}

/**
 * A response. A streamed body is pulled one chunk at a time, only when the client took the last
 * one (the face waits for its socket to drain), and `return()`ed when the client goes away.
 */
export interface HttpResponse {
  status: number;
  headers: Record<string, string>;
  body: string | Uint8Array | AsyncIterable<string | Uint8Array> | null;
}

/** Options shared by both faces; `Native` is the framework's request type. */
export interface RouteOptions<Native> {
  /**
   * Decides every request (sync or async). Return false to answer 403. Default: allow all — mount
   * the routes behind your own authentication, or decide here.
   */
  authorize?: (request: Native, action: ScriptRunnerAction, resource: ScriptRunnerResource) => boolean | Promise<boolean>;
  upload?: {
    /** Largest file accepted, enforced while the upload streams in. Default 5 MiB (core's default). */
    maxBytes?: number;
  };
  /**
   * Origins allowed to make state-changing requests (upload, run, cancel, archive, restore) besides the
   * page's own origin, e.g. `['https://dashboard.example.com']` for a front end served elsewhere;
   * or a function deciding. A browser request whose `Origin` / `Sec-Fetch-Site` says cross-site is
   * refused with 403 `cross_site` otherwise: running a script is code execution. Default none.
   */
  trustedOrigins?: readonly string[] | ((origin: string) => boolean);
  /** Comment lines on idle SSE streams keep proxies from closing them. Default 15,000 ms. */
  heartbeatMs?: number;
  /** Seconds in the Retry-After header of a 429 (queue full). Default 5. */
  retryAfterSeconds?: number;
  /** A request body (upload, run) must arrive within this time; a trickling one gets 408. Default 60,000 ms. */
  bodyTimeoutMs?: number;
  /**
   * Serve `GET /metrics` with these (e.g. `scriptRunnerMetrics()` from @scriptrunner/metrics, the
   * same object given to `createScriptRunner({ observers })`), behind `authorize` ('metrics:read').
   * Without it there is no /metrics route.
   */
  metrics?: { render(): Promise<{ contentType: string; body: string }> };
  /** `GET /health` answers 200 or 503 within this time (ms, 1..60,000). Default 2,000. */
  healthTimeoutMs?: number;
  /** Where unexpected (5xx) errors are reported. Default console. */
  logger?: { error(message: string): void };
}
