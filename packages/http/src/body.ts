/**
 * Reading request bodies: bounded in bytes (cut off past the cap, never buffered past it) and in
 * time (a body that trickles in ends with 408 instead of holding a connection and a buffer).
 */
import { HttpError } from './errors.js';

const TIMED_OUT = Symbol('timed out');

/**
 * The body's chunks, failing with 408 when the whole body has not arrived by the deadline. The
 * source is closed (`return()`) when the reader stops early, so a Node request stops reading.
 */
export async function* readWithin(body: AsyncIterable<Uint8Array>, deadlineMs: number): AsyncGenerator<Uint8Array> {
  const iterator = body[Symbol.asyncIterator]();
  const deadline = Date.now() + deadlineMs;
  let timer: NodeJS.Timeout | undefined;
  try {
    for (;;) {
      const timeout = new Promise<typeof TIMED_OUT>((resolve) => {
        timer = setTimeout(() => resolve(TIMED_OUT), Math.max(0, deadline - Date.now()));
      });
      const next = await Promise.race([iterator.next(), timeout]);
      clearTimeout(timer);
      if (next === TIMED_OUT) {
        throw new HttpError(408, 'request_timeout', `the request body did not arrive within ${deadlineMs} ms`, { Connection: 'close' });
      }
      if (next.done) return;
      yield next.value;
    }
  } finally {
    clearTimeout(timer);
    // Fire and forget: a stalled Node stream's return() would wait for the data that never comes.
    void Promise.resolve(iterator.return?.()).catch(() => undefined);
  }
}

/** The whole body as text, at most `maxBytes` (413 beyond, without reading further). */
export async function readText(body: AsyncIterable<Uint8Array> | null, maxBytes: number, deadlineMs: number): Promise<string> {
  if (body === null) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of readWithin(body, deadlineMs)) {
    size += chunk.byteLength;
    if (size > maxBytes) throw new HttpError(413, 'too_large', 'the request body is too large', { Connection: 'close' });
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The media type of a Content-Type header, lower-cased, without parameters. */
export function mediaType(contentType: string | null): string {
  return (contentType ?? '').split(';')[0]!.trim().toLowerCase();
}

export function isJsonType(contentType: string | null): boolean {
  const type = mediaType(contentType);
  return type === 'application/json' || (type.startsWith('application/') && type.endsWith('+json'));
}
