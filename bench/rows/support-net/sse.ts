/**
 * The fetch-based Server-Sent Events reader of packages/client/src/sse.ts (copied: the client
 * package does not export it), for the bench's SSE consumers.
 */
export interface SseMessage {
  id: string | undefined;
  event: string;
  data: string;
}

/** Reads one connection until it ends or `signal` aborts; calls `onMessage` per event. */
export async function readEventStream(response: Response, onMessage: (message: SseMessage) => void, signal: AbortSignal): Promise<void> {
  if (!response.body) return;
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  const abort = () => void reader.cancel().catch(() => undefined);
  signal.addEventListener('abort', abort, { once: true });
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done || signal.aborted) return;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, '\n');
      let end: number;
      while ((end = buffer.indexOf('\n\n')) !== -1) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let id: string | undefined;
        let event = 'message';
        const data: string[] = [];
        for (const line of block.split('\n')) {
          if (line === '' || line.startsWith(':')) continue;
          const colon = line.indexOf(':');
          const field = colon === -1 ? line : line.slice(0, colon);
          const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
          if (field === 'id') id = value;
          else if (field === 'event') event = value;
          else if (field === 'data') data.push(value);
        }
        if (data.length > 0) onMessage({ id, event, data: data.join('\n') });
        if (signal.aborted) return;
      }
    }
  } finally {
    signal.removeEventListener('abort', abort);
  }
}
