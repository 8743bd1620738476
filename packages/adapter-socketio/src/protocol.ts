/**
 * The wire protocol between the adapter and its clients: event names, payloads, acks, room names.
 * Shared by the server side (attach.ts) and by clients that want typed sockets.
 */
import type {
  Execution,
  LogBatchEvent,
  ProgressEvent,
  Script,
  ScriptRunnerErrorCode,
} from '@scriptrunner/core';

/** Keeps the protocol's event names apart from the host's own events on the default namespace. */
export const DEFAULT_NAMESPACE = '/scriptrunner';

/**
 * The room of everyone following script and execution lifecycle events (`scripts:subscribe`).
 * Exported so a host can address it too, e.g. `nsp.to(SCRIPTS_ROOM).emit(...)` for its own events.
 */
export const SCRIPTS_ROOM = 'scriptrunner:scripts';

/**
 * The name of a room for one execution, for hosts that address their own per-execution events.
 * The adapter itself no longer puts subscribers in it: each subscription is its own
 * `runner.follow()` and its lines go to that socket alone.
 */
export function executionRoom(executionId: string): string {
  return `scriptrunner:execution:${executionId}`;
}

/** What `authorize` is asked about. */
export type SocketAction = 'execution:subscribe' | 'scripts:subscribe';

/** `execution:subscribe` payload: the execution and the last `seq` the client already has (default 0). */
export interface SubscribePayload {
  executionId: string;
  afterSeq?: number;
}

/** `execution:unsubscribe` payload. */
export interface UnsubscribePayload {
  executionId: string;
}

/**
 * Why a request was refused: core's codes plus `forbidden` (authorize said no or threw),
 * `cancelled` (an unsubscribe, a newer subscribe or a disconnect overtook it),
 * `too_many_subscriptions` (the socket follows `maxSubscriptionsPerSocket` executions already) and
 * `internal`.
 */
export type AckErrorCode = ScriptRunnerErrorCode | 'forbidden' | 'cancelled' | 'too_many_subscriptions' | 'internal';

export interface AckError {
  code: AckErrorCode;
  message: string;
}

/** Answer to `execution:unsubscribe`, `scripts:subscribe` and `scripts:unsubscribe`. */
export type Ack = { ok: true } | { ok: false; error: AckError };

/** Answer to `execution:subscribe`: the execution as it was when the subscription started. */
export type SubscribeAck = { ok: true; execution: Serialized<Execution> } | { ok: false; error: AckError };

/** A value as a client receives it: Socket.IO serialises with JSON, so every `Date` becomes an ISO string. */
export type Serialized<T> = T extends Date
  ? string
  : T extends readonly (infer U)[]
    ? Serialized<U>[]
    : T extends object
      ? { [K in keyof T]: Serialized<T[K]> }
      : T;

/** Sent when a subscription ends because the server failed (e.g. the store); resubscribe with the last seq. */
export interface SubscriptionError {
  executionId: string;
  error: AckError;
}

/** Events a client receives; use as the first type argument of socket.io-client's `io()`. */
export interface ScriptRunnerServerToClientEvents {
  /** Lines with ascending, gap-free `seq`, each exactly once per subscription. */
  'execution:log': (batch: Serialized<LogBatchEvent>) => void;
  'execution:progress': (progress: Serialized<ProgressEvent>) => void;
  /** After the subscription's last line; also a lifecycle event of `scripts:subscribe`. */
  'execution:finished': (execution: Serialized<Execution>) => void;
  'execution:error': (failure: SubscriptionError) => void;
  'execution:queued': (execution: Serialized<Execution>) => void;
  'execution:started': (execution: Serialized<Execution>) => void;
  'script:created': (script: Serialized<Script>) => void;
  'script:archived': (script: Serialized<Script>) => void;
  'script:restored': (script: Serialized<Script>) => void;
}

/** Events a client sends; use as the second type argument of socket.io-client's `io()`. */
export interface ScriptRunnerClientToServerEvents {
  'execution:subscribe': (payload: SubscribePayload, ack: (response: SubscribeAck) => void) => void;
  'execution:unsubscribe': (payload: UnsubscribePayload, ack: (response: Ack) => void) => void;
  'scripts:subscribe': (ack: (response: Ack) => void) => void;
  'scripts:unsubscribe': (ack: (response: Ack) => void) => void;
}

/** Same bound as core's ids: anything else cannot name an execution. */
const MAX_ID_LENGTH = 200;

type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseExecutionId(payload: unknown): Parsed<string> {
  if (!isRecord(payload)) return { ok: false, message: 'the payload must be an object { executionId }' };
  const { executionId } = payload;
  if (typeof executionId !== 'string' || executionId.length === 0 || executionId.length > MAX_ID_LENGTH) {
    return { ok: false, message: `executionId must be a string of 1 to ${MAX_ID_LENGTH} characters` };
  }
  return { ok: true, value: executionId };
}

export function parseSubscribe(payload: unknown): Parsed<{ executionId: string; afterSeq: number }> {
  const id = parseExecutionId(payload);
  if (!id.ok) return id;
  const afterSeq = (payload as Record<string, unknown>).afterSeq ?? 0;
  if (typeof afterSeq !== 'number' || !Number.isSafeInteger(afterSeq) || afterSeq < 0) {
    return { ok: false, message: 'afterSeq must be an integer >= 0 (the last seq the client has)' };
  }
  return { ok: true, value: { executionId: id.value, afterSeq } };
}

export function parseUnsubscribe(payload: unknown): Parsed<{ executionId: string }> {
  const id = parseExecutionId(payload);
  return id.ok ? { ok: true, value: { executionId: id.value } } : id;
}
