/**
 * Reading a request's query and path parameters, and naming a download: bad input is a 400 that
 * says which parameter and why, never a guess.
 */
import { isScriptRunnerError } from '@scriptrunner/core';
import { badRequest } from './errors.js';

const MAX_ID_LENGTH = 200;

/** A single query value; repeated parameters are rejected rather than guessed at. */
export function queryString(query: URLSearchParams, name: string): string | undefined {
  const values = query.getAll(name);
  if (values.length === 0) return undefined;
  if (values.length > 1) throw badRequest(`query parameter "${name}" must be given once`);
  return values[0];
}

export function queryInt(query: URLSearchParams, name: string, min: number, max: number): number | undefined {
  const value = queryString(query, name);
  if (value === undefined || value === '') return undefined;
  if (!/^\d+$/.test(value)) throw badRequest(`query parameter "${name}" must be a whole number`);
  const number = Number(value);
  if (number < min || number > max) throw badRequest(`query parameter "${name}" must be between ${min} and ${max}`);
  return number;
}

export function queryEnum<T extends string>(query: URLSearchParams, name: string, allowed: readonly T[]): T | undefined {
  const value = queryString(query, name);
  if (value === undefined || value === '') return undefined;
  if (!allowed.includes(value as T)) throw badRequest(`query parameter "${name}" must be one of ${allowed.join(', ')}`);
  return value as T;
}

/** A comma-separated list (`level=warn,error`), also accepted as repeated parameters. */
export function queryList<T extends string>(query: URLSearchParams, name: string, allowed: readonly T[]): T[] | undefined {
  const raw = query.getAll(name);
  if (raw.length === 0) return undefined;
  const parts = raw.flatMap((v) => v.split(',')).map((p) => p.trim());
  if (parts.some((p) => !allowed.includes(p as T))) throw badRequest(`query parameter "${name}" must be a list of ${allowed.join(', ')}`);
  return [...new Set(parts as T[])];
}

/** An id from the path or the query, with its length named when it is too long. */
export function checkedId(value: string, what: string): string {
  if (value.length === 0) throw badRequest(`the ${what} id is empty`);
  if (value.length > MAX_ID_LENGTH) throw badRequest(`the ${what} id is ${value.length} characters long; ids are at most ${MAX_ID_LENGTH}`);
  return value;
}

/** A malformed cursor is bad input of this request: 400, like every other query parameter. */
export async function withCursor<T>(list: () => Promise<T>): Promise<T> {
  try {
    return await list();
  } catch (error) {
    if (isScriptRunnerError(error) && error.code === 'validation' && error.details?.field === 'cursor') throw badRequest(error.message);
    throw error;
  }
}

export function attachment(filename: string): string {
  // RFC 6266: a plain ASCII fallback plus the exact UTF-8 name.
  const ascii = filename.replace(/[^\x20-\x7e]|["\\]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(filename)}`;
}
