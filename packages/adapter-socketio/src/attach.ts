/**
 * attachScriptRunner: routes the runner's events into Socket.IO rooms and catches each subscriber up
 * from the store, handing over from catch-up to live delivery without a gap or a duplicate.
 *
 * The hand-over, per subscription:
 * 1. After authorization, and before anything is read, the subscription starts *capturing*: the
 *    one set of runner listeners passes it this execution's batches and its `execution:finished`.
 * 2. The execution is read (unknown → `not_found`), the ack is sent.
 * 3. Catch-up reads the store page by page from the client's `afterSeq`, remembering the last seq
 *    sent, until a page comes back short.
 * 4. In the same tick as that last read: the captured lines past the last sent seq are sent, then
 *    the socket joins the execution's room and capturing stops.
 *
 * Why this is exact: the runner stores a batch before it publishes it, and publishes synchronously.
 * A batch published before step 4 was captured (step 1 came before every read); a batch published
 * after it reaches the socket through the room. The one window left — a batch already stored (so
 * catch-up sent it) but not yet published — is closed by `published`: if the runner has not yet
 * published up to the last sent seq, the socket stays *direct* (batches are sent to it, filtered
 * by seq) until a batch reaches that seq, and joins the room right after that batch went to the room.
 */
import {
  isScriptRunnerError,
  isTerminalStatus,
  ScriptRunnerError,
  type Execution,
  type LogBatchEvent,
  type LogLine,
  type Logger,
  type ProgressEvent,
  type Script,
  type ScriptRunner,
} from '@scriptrunner/core';
import type { Namespace, Server, Socket } from 'socket.io';
import {
  DEFAULT_NAMESPACE,
  SCRIPTS_ROOM,
  executionRoom,
  parseSubscribe,
  parseUnsubscribe,
  type AckError,
  type AckErrorCode,
  type SocketAction,
} from './protocol.js';

export interface AttachScriptRunnerOptions {
  /** The Socket.IO namespace the protocol lives on. Default `/scriptrunner`. */
  namespace?: string;
  /**
   * Decides whether `socket` may follow an execution (`executionId` set) or the lifecycle events
   * (`executionId` null). Only `true` grants; anything else, a throw or a rejection refuses with
   * `forbidden`. Default: everyone may. Use `socket.handshake.auth` / `socket.data` for the user.
   */
  authorize?(socket: Socket, action: SocketAction, executionId: string | null): boolean | Promise<boolean>;
  /** Lines per store read while catching a subscriber up, 1 to 10,000 (core's page cap). Default 2,000. */
  replayPageSize?: number;
  /** Where failures a client cannot fix go: store errors during catch-up, a throwing `authorize`. Default `console`. */
  logger?: Pick<Logger, 'error'>;
}

/** What `attachScriptRunner` returns. */
export interface AttachedScriptRunner {
  /** The namespace the protocol runs on, e.g. to add middleware (`namespace.use(...)`) for authentication. */
  namespace: Namespace;
  /** Removes the runner listeners and this adapter's socket handlers, ends every subscription. Sockets stay connected. */
  detach(): void;
}

const DEFAULT_REPLAY_PAGE_SIZE = 2_000;
/** core's `readLogs` refuses larger pages (a short page means "caught up"). */
const MAX_REPLAY_PAGE_SIZE = 10_000;
/**
 * One Socket.IO packet carries at most about this many characters of line text, so a batch of
 * 2,000 lines of 64 KiB each is sent as many packets rather than one of 128 MB.
 */
const MAX_PACKET_CHARS = 1_000_000;
/** Per-line overhead (seq, stream, level, time, executionId) counted against MAX_PACKET_CHARS. */
const LINE_OVERHEAD_CHARS = 120;

type State = 'authorizing' | 'replaying' | 'direct' | 'joined' | 'ended';

interface Subscription {
  readonly socket: Socket;
  readonly executionId: string;
  state: State;
  /** The highest seq this socket has (sent by us, or the client's afterSeq). */
  lastSent: number;
  /** Batches published while replaying, kept until the hand-over. */
  captured: LogLine[][];
  capturedLines: number;
  /** The captured batches were dropped because there were too many; catch-up must read once more. */
  overflowed: boolean;
  /** The final record, once known (captured, or terminal when the subscription started). */
  finished: Execution | null;
  /** Ends a wait for the engine to drain. */
  wake: (() => void) | null;
}

interface Connection {
  readonly socket: Socket;
  readonly subscriptions: Map<string, Subscription>;
  /** Bumped by every scripts:(un)subscribe, so a slow authorize cannot undo a later unsubscribe. */
  scriptsRequest: number;
  readonly handlers: Array<[string, (...args: unknown[]) => void]>;
}

type Reply = (response: unknown) => void;

/** Engine.io keeps packets the transport has not taken yet here; not part of its typings. */
function bufferedPackets(socket: Socket): number {
  const buffer = (socket.conn as unknown as { writeBuffer?: unknown[] }).writeBuffer;
  return Array.isArray(buffer) ? buffer.length : 0;
}

/** Read through a call: TypeScript keeps a narrowed `state` across awaits that may change it. */
function isEnded(sub: Subscription): boolean {
  return sub.state === 'ended';
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function failure(code: AckErrorCode, message: string): { ok: false; error: AckError } {
  return { ok: false, error: { code, message: message.startsWith('[scriptrunner]') ? message : `[scriptrunner] ${message}` } };
}

const cancelled = () => failure('cancelled', 'the subscription was cancelled by a later request or a disconnect');

/** Splits a batch so that no packet gets huge; the common case (short lines) is one piece, not copied. */
function packets(lines: LogLine[]): LogLine[][] {
  let chars = 0;
  for (const line of lines) chars += line.text.length + LINE_OVERHEAD_CHARS;
  if (chars <= MAX_PACKET_CHARS) return [lines];
  const out: LogLine[][] = [];
  let current: LogLine[] = [];
  chars = 0;
  for (const line of lines) {
    const size = line.text.length + LINE_OVERHEAD_CHARS;
    if (current.length > 0 && chars + size > MAX_PACKET_CHARS) {
      out.push(current);
      current = [];
      chars = 0;
    }
    current.push(line);
    chars += size;
  }
  if (current.length > 0) out.push(current);
  return out;
}

/**
 * Serves the scriptrunner protocol on `io.of(namespace)`: `execution:subscribe` /
 * `execution:unsubscribe` (one execution's lines, caught up from the store, then live) and
 * `scripts:subscribe` / `scripts:unsubscribe` (lifecycle events). All behaviour stays in core.
 *
 * Exactly-once hand-over holds for executions run by `runner` itself. With several servers (e.g.
 * the Redis adapter) and an execution running elsewhere, its batches still reach the room from
 * the server that runs it, but the hand-over there is best effort: clients de-duplicate by seq.
 */
export function attachScriptRunner(
  io: Server,
  runner: ScriptRunner,
  options: AttachScriptRunnerOptions = {},
): AttachedScriptRunner {
  const name = options.namespace ?? DEFAULT_NAMESPACE;
  if (typeof name !== 'string' || !name.startsWith('/')) {
    throw new ScriptRunnerError('validation', `namespace must be a string starting with "/", got ${String(name)}`);
  }
  const pageSize = options.replayPageSize ?? DEFAULT_REPLAY_PAGE_SIZE;
  if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > MAX_REPLAY_PAGE_SIZE) {
    throw new ScriptRunnerError('validation', `replayPageSize must be an integer from 1 to ${MAX_REPLAY_PAGE_SIZE}, got ${String(pageSize)}`);
  }
  // Anything captured beyond this is in the store anyway: drop it and read once more instead.
  const captureLimit = 10 * pageSize;
  const authorize = options.authorize;
  const logger = options.logger ?? console;
  const nsp = io.of(name);

  /** Subscriptions past authorization, by execution id. */
  const subscriptions = new Map<string, Set<Subscription>>();
  /**
   * The highest seq published so far for executions this runner runs (0 once queued or started);
   * removed when they finish. No entry: not ours, or nothing of it seen since we attached.
   */
  const published = new Map<string, number>();
  const connections = new Map<Socket, Connection>();
  let detached = false;

  const report = (message: string, error?: unknown) => {
    try {
      logger.error(`[scriptrunner] socket.io: ${message}${error === undefined ? '' : `: ${describe(error)}`}`);
    } catch {
      // A broken logger must not break delivery.
    }
  };

  const subscriptionsOf = (executionId: string): Subscription[] => [...(subscriptions.get(executionId) ?? [])];

  // ------------------------------------------------------------ sending to one socket

  function sendLines(sub: Subscription, lines: LogLine[]): void {
    let fresh = lines;
    if (fresh.length > 0 && fresh[0]!.seq <= sub.lastSent) fresh = fresh.filter((line) => line.seq > sub.lastSent);
    const last = fresh[fresh.length - 1];
    if (last === undefined) return;
    for (const part of packets(fresh)) {
      sub.socket.emit('execution:log', { executionId: sub.executionId, lines: part });
    }
    sub.lastSent = last.seq;
  }

  function end(sub: Subscription): void {
    if (sub.state === 'ended') return;
    const wasJoined = sub.state === 'joined';
    sub.state = 'ended';
    sub.captured = [];
    sub.capturedLines = 0;
    const set = subscriptions.get(sub.executionId);
    set?.delete(sub);
    if (set?.size === 0) subscriptions.delete(sub.executionId);
    const connection = connections.get(sub.socket);
    if (connection?.subscriptions.get(sub.executionId) === sub) connection.subscriptions.delete(sub.executionId);
    if (wasJoined) leave(sub.socket, executionRoom(sub.executionId));
    sub.wake?.();
  }

  function join(socket: Socket, room: string): void {
    // The in-memory and Redis adapters join synchronously; a promise only reports a late failure.
    const result = socket.join(room);
    if (result) result.catch((error: unknown) => report(`socket ${socket.id} could not join ${room}`, error));
  }

  function leave(socket: Socket, room: string): void {
    const result = socket.leave(room);
    if (result) result.catch((error: unknown) => report(`socket ${socket.id} could not leave ${room}`, error));
  }

  /** Step 4. Synchronous on purpose: nothing may be published between the last read and the join. */
  function handOver(sub: Subscription): void {
    const captured = sub.captured;
    sub.captured = [];
    sub.capturedLines = 0;
    for (const batch of captured) sendLines(sub, batch);
    if (sub.finished !== null) {
      sub.socket.emit('execution:finished', sub.finished);
      end(sub);
      return;
    }
    goLive(sub);
  }

  function goLive(sub: Subscription): void {
    if (!sub.socket.connected) {
      end(sub);
      return;
    }
    const seen = published.get(sub.executionId);
    if (seen !== undefined && seen < sub.lastSent) {
      // Catch-up sent lines the runner has stored but not yet published: joining now would repeat them.
      sub.state = 'direct';
      return;
    }
    join(sub.socket, executionRoom(sub.executionId));
    sub.state = 'joined';
  }

  /** Resolves at once unless the engine still holds packets; then when it hands them on, or the socket goes. */
  function drained(sub: Subscription): Promise<void> {
    const engine = sub.socket.conn;
    if (bufferedPackets(sub.socket) === 0 || !sub.socket.connected) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        engine.off('drain', done);
        engine.off('close', done);
        sub.wake = null;
        resolve();
      };
      engine.on('drain', done);
      engine.on('close', done);
      sub.wake = done;
    });
  }

  async function replay(sub: Subscription): Promise<void> {
    try {
      for (;;) {
        sub.overflowed = false;
        const page = await runner.readLogs(sub.executionId, { afterSeq: sub.lastSent, limit: pageSize });
        if (sub.state !== 'replaying') return;
        sendLines(sub, page);
        if (sub.captured.length > 0) {
          sub.captured = sub.captured.filter((batch) => (batch[batch.length - 1]?.seq ?? 0) > sub.lastSent);
          sub.capturedLines = sub.captured.reduce((n, batch) => n + batch.length, 0);
        }
        if (page.length < pageSize && !sub.overflowed) {
          handOver(sub);
          return;
        }
        // Pace a big catch-up by the client's reading speed instead of queueing it all in memory.
        await drained(sub);
        if (sub.state !== 'replaying') return;
      }
    } catch (error) {
      if (sub.state === 'ended') return;
      const code = isScriptRunnerError(error) ? error.code : 'internal';
      report(`catching socket ${sub.socket.id} up on execution ${sub.executionId} failed`, error);
      sub.socket.emit('execution:error', {
        executionId: sub.executionId,
        error: failure(code, 'catching up from the store failed; subscribe again with the last seq you have').error,
      });
      end(sub);
    }
  }

  // ------------------------------------------------------------------ runner listeners

  const onLog = (batch: LogBatchEvent) => {
    const last = batch.lines[batch.lines.length - 1];
    if (last === undefined) return;
    published.set(batch.executionId, last.seq);
    // The room first: a direct subscription that joins below must not get this batch again.
    const room = nsp.to(executionRoom(batch.executionId));
    for (const part of packets(batch.lines)) room.emit('execution:log', { executionId: batch.executionId, lines: part });
    for (const sub of subscriptionsOf(batch.executionId)) {
      if (sub.state === 'replaying') {
        sub.captured.push(batch.lines);
        sub.capturedLines += batch.lines.length;
        if (sub.capturedLines > captureLimit) {
          sub.captured = [];
          sub.capturedLines = 0;
          sub.overflowed = true;
        }
      } else if (sub.state === 'direct') {
        sendLines(sub, batch.lines);
        if (last.seq >= sub.lastSent) goLive(sub);
      }
    }
  };

  const onProgress = (progress: ProgressEvent) => {
    nsp.to(executionRoom(progress.executionId)).emit('execution:progress', progress);
    for (const sub of subscriptionsOf(progress.executionId)) {
      if (sub.state === 'direct') sub.socket.emit('execution:progress', progress);
    }
  };

  const onFinished = (execution: Execution) => {
    published.delete(execution.id);
    const subs = subscriptionsOf(execution.id);
    // Sockets still catching up get theirs after their last line, so they get exactly one.
    const catchingUp = subs.filter((s) => s.state === 'replaying' || s.state === 'direct').map((s) => s.socket.id);
    const target = nsp.to([executionRoom(execution.id), SCRIPTS_ROOM]);
    (catchingUp.length > 0 ? target.except(catchingUp) : target).emit('execution:finished', execution);
    for (const sub of subs) {
      if (sub.state === 'replaying') {
        sub.finished = execution;
      } else if (sub.state === 'direct') {
        sub.socket.emit('execution:finished', execution);
        end(sub);
      } else if (sub.state === 'joined') {
        end(sub);
      }
    }
  };

  const onQueued = (execution: Execution) => {
    published.set(execution.id, 0);
    nsp.to(SCRIPTS_ROOM).emit('execution:queued', execution);
  };

  const onStarted = (execution: Execution) => {
    if (!published.has(execution.id)) published.set(execution.id, 0);
    nsp.to(SCRIPTS_ROOM).emit('execution:started', execution);
  };

  const onScriptCreated = (script: Script) => nsp.to(SCRIPTS_ROOM).emit('script:created', script);
  const onScriptArchived = (script: Script) => nsp.to(SCRIPTS_ROOM).emit('script:archived', script);

  // ------------------------------------------------------------------ client requests

  async function allowed(socket: Socket, action: SocketAction, executionId: string | null): Promise<boolean> {
    if (authorize === undefined) return true;
    try {
      return (await authorize(socket, action, executionId)) === true;
    } catch (error) {
      report(`authorize threw for ${action} ${executionId ?? ''} (socket ${socket.id}); refused`, error);
      return false;
    }
  }

  function refusal(error: unknown, executionId: string): { ok: false; error: AckError } {
    if (isScriptRunnerError(error)) {
      if (error.code === 'validation' || error.code === 'not_found' || error.code === 'closed') return failure(error.code, error.message);
      report(`reading execution ${executionId} failed`, error);
      return failure(error.code, 'the server could not read this execution; try again');
    }
    report(`reading execution ${executionId} failed`, error);
    return failure('internal', 'the server could not read this execution; try again');
  }

  async function subscribe(connection: Connection, payload: unknown, reply: Reply): Promise<void> {
    const parsed = parseSubscribe(payload);
    if (!parsed.ok) return reply(failure('validation', parsed.message));
    const { executionId, afterSeq } = parsed.value;
    const { socket } = connection;
    const previous = connection.subscriptions.get(executionId);
    if (previous) end(previous);
    // A recovered connection (connectionStateRecovery) may still be in the room: start from outside it.
    leave(socket, executionRoom(executionId));
    const sub: Subscription = {
      socket,
      executionId,
      state: 'authorizing',
      lastSent: afterSeq,
      captured: [],
      capturedLines: 0,
      overflowed: false,
      finished: null,
      wake: null,
    };
    connection.subscriptions.set(executionId, sub);

    const ok = await allowed(socket, 'execution:subscribe', executionId);
    if (isEnded(sub)) return reply(cancelled());
    if (!ok) {
      end(sub);
      return reply(failure('forbidden', `not allowed to follow execution ${executionId}`));
    }

    // Step 1: capture before the first read.
    sub.state = 'replaying';
    let set = subscriptions.get(executionId);
    if (!set) subscriptions.set(executionId, (set = new Set()));
    set.add(sub);

    let execution: Execution;
    try {
      execution = await runner.getExecution(executionId);
    } catch (error) {
      if (isEnded(sub)) return reply(cancelled());
      end(sub);
      return reply(refusal(error, executionId));
    }
    if (isEnded(sub)) return reply(cancelled());
    if (isTerminalStatus(execution.status)) sub.finished ??= execution;
    reply({ ok: true, execution });
    await replay(sub);
  }

  function unsubscribe(connection: Connection, payload: unknown, reply: Reply): void {
    const parsed = parseUnsubscribe(payload);
    if (!parsed.ok) return reply(failure('validation', parsed.message));
    const { executionId } = parsed.value;
    const sub = connection.subscriptions.get(executionId);
    if (sub) end(sub);
    leave(connection.socket, executionRoom(executionId));
    reply({ ok: true });
  }

  async function subscribeScripts(connection: Connection, _payload: unknown, reply: Reply): Promise<void> {
    const request = ++connection.scriptsRequest;
    const ok = await allowed(connection.socket, 'scripts:subscribe', null);
    if (request !== connection.scriptsRequest || !connection.socket.connected || detached) return reply(cancelled());
    if (!ok) return reply(failure('forbidden', 'not allowed to follow script and execution events'));
    join(connection.socket, SCRIPTS_ROOM);
    reply({ ok: true });
  }

  function unsubscribeScripts(connection: Connection, _payload: unknown, reply: Reply): void {
    connection.scriptsRequest++;
    leave(connection.socket, SCRIPTS_ROOM);
    reply({ ok: true });
  }

  function disconnected(connection: Connection): void {
    for (const sub of [...connection.subscriptions.values()]) end(sub);
    connections.delete(connection.socket);
  }

  /** Whatever a client sends, a handler neither throws nor leaves a rejected promise behind. */
  function handle(
    connection: Connection,
    event: string,
    handler: (connection: Connection, payload: unknown, reply: Reply) => void | Promise<void>,
  ): void {
    const listener = (...args: unknown[]) => {
      // Socket.IO passes the client's ack callback, when there is one, as the last argument.
      const ack = typeof args[args.length - 1] === 'function' ? (args.pop() as (response: unknown) => void) : null;
      let replied = false;
      const reply: Reply = (response) => {
        if (replied || ack === null) return;
        replied = true;
        try {
          ack(response);
        } catch (error) {
          report(`acknowledging ${event} failed`, error);
        }
      };
      try {
        const result = handler(connection, args[0], reply);
        if (result) {
          result.catch((error: unknown) => {
            report(`${event} from socket ${connection.socket.id} failed`, error);
            reply(failure('internal', `${event} failed`));
          });
        }
      } catch (error) {
        report(`${event} from socket ${connection.socket.id} failed`, error);
        reply(failure('internal', `${event} failed`));
      }
    };
    connection.socket.on(event, listener);
    connection.handlers.push([event, listener]);
  }

  const onConnection = (socket: Socket) => {
    if (detached || connections.has(socket)) return;
    const connection: Connection = { socket, subscriptions: new Map(), scriptsRequest: 0, handlers: [] };
    connections.set(socket, connection);
    handle(connection, 'execution:subscribe', subscribe);
    handle(connection, 'execution:unsubscribe', unsubscribe);
    handle(connection, 'scripts:subscribe', subscribeScripts);
    handle(connection, 'scripts:unsubscribe', unsubscribeScripts);
    handle(connection, 'disconnect', disconnected);
  };

  runner.on('execution:log', onLog);
  runner.on('execution:progress', onProgress);
  runner.on('execution:finished', onFinished);
  runner.on('execution:queued', onQueued);
  runner.on('execution:started', onStarted);
  runner.on('script:created', onScriptCreated);
  runner.on('script:archived', onScriptArchived);
  nsp.on('connection', onConnection);
  for (const socket of nsp.sockets.values()) onConnection(socket);

  return {
    namespace: nsp,
    detach() {
      if (detached) return;
      detached = true;
      runner.off('execution:log', onLog);
      runner.off('execution:progress', onProgress);
      runner.off('execution:finished', onFinished);
      runner.off('execution:queued', onQueued);
      runner.off('execution:started', onStarted);
      runner.off('script:created', onScriptCreated);
      runner.off('script:archived', onScriptArchived);
      nsp.off('connection', onConnection);
      for (const connection of [...connections.values()]) {
        for (const [event, listener] of connection.handlers) connection.socket.off(event, listener);
        for (const sub of [...connection.subscriptions.values()]) end(sub);
        leave(connection.socket, SCRIPTS_ROOM);
      }
      connections.clear();
      subscriptions.clear();
      published.clear();
    },
  };
}
