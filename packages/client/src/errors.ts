/** An error answer from the server (or the network), with the server's code and HTTP status. */
export class ScriptRunnerClientError extends Error {
  override name = 'ScriptRunnerClientError';
  constructor(
    /** The server's error code (`validation`, `not_found`, `queue_full`, ...) or `network`. */
    readonly code: string,
    message: string,
    /** HTTP status; 0 when the request never got an answer. */
    readonly status: number,
    /** Seconds from a 429's Retry-After header. */
    readonly retryAfter: number | null = null,
  ) {
    super(message);
  }
}
