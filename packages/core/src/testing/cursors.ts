/** Cursors no store issued, and the rejection the Store contract asks for. Part of the store conformance suite (conformance.ts). */
import { expect } from 'vitest';
import { isScriptRunnerError } from '../errors.js';

const base64url = (text: string) => Buffer.from(text, 'utf8').toString('base64url');

/** Garbage, and well-formed base64url of JSON that is not a (time, id) position. */
export const FOREIGN_CURSORS: readonly string[] = [
  'garbage',
  'not-a-cursor!!',
  base64url('[1,2]'),
  base64url('{"time":1,"id":"x"}'),
  // A time no Date has: a SQL store would fail on it as a store error instead.
  base64url('[1e300,"x"]'),
];

/** The list call rejects with the contract's error: `validation`, naming the `cursor` field. */
export async function expectCursorRefused(call: Promise<unknown>, cursor: string): Promise<void> {
  const error: unknown = await call.then(
    (page) => {
      throw new Error(`cursor ${JSON.stringify(cursor)} was answered with a page instead of an error: ${JSON.stringify(page)}`);
    },
    (reason: unknown) => reason,
  );
  expect(isScriptRunnerError(error), `cursor ${JSON.stringify(cursor)} rejected with ${String(error)}`).toBe(true);
  expect(error).toMatchObject({ code: 'validation', details: { field: 'cursor' } });
  expect((error as Error).message).toContain('is not a cursor this store issued; pass nextCursor from a previous page');
}
