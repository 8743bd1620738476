/**
 * Keyset cursors shared by stores: `(time, id)` of the last item of a page, base64url-encoded so it
 * stays opaque to callers. `decodeCursor` never throws (a cursor that is not one `encodeCursor`
 * made decodes to null); `decodeCursorOrThrow` is what a store's list method calls, because the
 * Store contract answers such a cursor with a `validation` error.
 */
import { ScriptRunnerError } from '../errors.js';

export interface CursorKey {
  time: number;
  id: string;
}

export function encodeCursor(time: Date, id: string): string {
  return Buffer.from(JSON.stringify([time.getTime(), id]), 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string): CursorKey | null {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (!Array.isArray(value) || value.length !== 2) return null;
    const [time, id] = value as unknown[];
    if (typeof time !== 'number' || !Number.isFinite(time) || typeof id !== 'string') return null;
    // Only what encodeCursor itself produces: Buffer's base64 decoder skips characters outside the
    // alphabet, and a time that is no Date's (1.5, 1e300) would fail in a database query as a store
    // error instead of being refused here as the caller's mistake.
    if (encodeCursor(new Date(time), id) !== cursor) return null;
    return { time, id };
  } catch {
    return null;
  }
}

/** The longest part of a rejected cursor quoted back in the error message. */
const QUOTED_CURSOR_CHARS = 40;

/**
 * `decodeCursor` for a store's list methods: a cursor `encodeCursor` did not make is the caller's
 * mistake, so it throws the `validation` error the Store contract asks for instead of returning null.
 */
export function decodeCursorOrThrow(cursor: string): CursorKey {
  const key = decodeCursor(cursor);
  if (key !== null) return key;
  const text = String(cursor);
  const quoted = JSON.stringify(text.length > QUOTED_CURSOR_CHARS ? `${text.slice(0, QUOTED_CURSOR_CHARS)}…` : text);
  throw new ScriptRunnerError(
    'validation',
    `cursor ${quoted} is not a cursor this store issued; pass nextCursor from a previous page`,
    { details: { field: 'cursor' } },
  );
}

/** True when an item at (time, id) comes after the cursor in newest-first order. */
export function isAfterCursor(time: number, id: string, cursor: CursorKey): boolean {
  return time < cursor.time || (time === cursor.time && id < cursor.id);
}

/** Newest first, then id descending. */
export function compareNewestFirst(aTime: number, aId: string, bTime: number, bId: string): number {
  if (aTime !== bTime) return bTime - aTime;
  return aId < bId ? 1 : aId > bId ? -1 : 0;
}
