/**
 * Keyset cursors shared by stores: `(time, id)` of the last item of a page, base64url-encoded so it
 * stays opaque to callers. Decoding never throws; a malformed cursor decodes to null.
 */
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
    return { time, id };
  } catch {
    return null;
  }
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
