/**
 * attachScriptRunner: the scriptrunner protocol on a Socket.IO namespace. Each `execution:subscribe`
 * is one `runner.follow()` — core's exactly-once primitive (capture, catch-up from the store in
 * slices that yield to the event loop, live hand-over, bounded buffer) — and this adapter keeps only
 * the framing: events, acks, packet sizes, and pacing by the socket's own write buffer, so a slow
 * client slows its own store reads and nobody else's. Lifecycle events go to the sockets that
 * subscribed to them (`scripts:subscribe`, authorized).
 *
 * Browsers do not apply CORS to WebSockets, so a page on another site could otherwise connect with
 * the analyst's cookies: the namespace refuses cross-site handshakes (`trustedOrigins` to allow a
 * front end elsewhere), the same rule the HTTP faces apply to writes.
 */
import {
  isScriptRunnerError,
  ScriptRunnerError,
  type Execution,
  type LogFollow,
  type LogLine,
  type Logger,
  type Script,
  type ScriptRunner,
} from '@scriptrunner/core';
import { crossSiteReason, type RouteOptions } from '@scriptrunner/http';
import type { Namespace, Server, Socket } from 'socket.io';
import {
  DEFAULT_NAMESPACE,
  SCRIPTS_ROOM,
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
  /**
   * Origins besides the server's own whose pages may connect (a front end served elsewhere), or a
   * function deciding. A handshake whose `Origin` / `Sec-Fetch-Site` says cross-site is refused
   * with `connect_error` `{ data: { code: 'cross_site' } }`; clients that send neither (Node) pass.
   */
  trustedOrigins?: RouteOptions<unknown>['trustedOrigins'];
  /** Executions one socket may follow at once; beyond, the ack says `too_many_subscriptions`. Default 20. */
  maxSubscriptionsPerSocket?: number;
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
const DEFAULT_MAX_SUBSCRIPTIONS = 20;
/** core's `readLogs` refuses larger pages. */
const MAX_REPLAY_PAGE_SIZE = 10_000;
/**
 * One Socket.IO packet carries at most about this many characters of line text, so a batch of
 * 2,000 lines of 64 KiB each is sent as many packets rather than one of 128 MB.
 */
const MAX_PACKET_CHARS = 1_000_000;
/** Per-line overhead (seq, stream, level, time, executionId) counted against MAX_PACKET_CHARS. */
const LINE_OVERHEAD_CHARS = 120;

interface Subscription {
  readonly executionId: string;
  readonly controller: AbortController;
  follow: LogFollow | null;
  /** The engine's drain wait of this subscription, ended early by `end`. */
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

/** Subscriptions set up per event-loop turn (see `Turns`). */
const SETUPS_PER_TURN = 16;

/**
 * Takes turns with everyone else on the event loop. A burst of subscriptions arrives as a few
 * socket reads holding thousands of packets; handled as they come, their set-up (authorize, the
 * follow's first store read, the ack) would run in one loop turn and keep every other request of
 * the server waiting for all of it (measured: a ping waited 0.77 s behind 10,000 subscribes). So
 * set-ups queue here and run `perTurn` at a time, with the loop free for I/O between turns.
 */
class Turns {
  private readonly queue: Array<() => void> = [];
  private scheduled = false;

  constructor(private readonly perTurn: number) {}

  /** Resolves when it is this caller's turn. */
  wait(): Promise<void> {
    return new Promise((resolve) => {
      this.queue.push(resolve);
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(this.run);
      }
    });
  }

  private readonly run = (): void => {
    for (const resolve of this.queue.splice(0, this.perTurn)) resolve();
    // Scheduled from the check phase, the next slice runs on the next loop turn, after I/O.
    if (this.queue.length > 0) setImmediate(this.run);
    else this.scheduled = false;
  };
}

/** Engine.io keeps packets the transport has not taken yet here; not part of its typings. */
function bufferedPackets(socket: Socket): number {
  const buffer = (socket.conn as unknown as { writeBuffer?: unknown[] }).writeBuffer;
  return Array.isArray(buffer) ? buffer.length : 0;
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
 * `execution:unsubscribe` (one execution's lines from the client's `afterSeq`, exactly once, then
 * live) and `scripts:subscribe` / `scripts:unsubscribe` (lifecycle events). With several servers,
 * each follows through its own runner, which receives every event of a distributed dispatcher.
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
  const maxSubscriptions = options.maxSubscriptionsPerSocket ?? DEFAULT_MAX_SUBSCRIPTIONS;
  if (!Number.isInteger(maxSubscriptions) || maxSubscriptions < 1) {
    throw new ScriptRunnerError('validation', `maxSubscriptionsPerSocket must be a positive integer, got ${String(maxSubscriptions)}`);
  }
  const authorize = options.authorize;
  const logger = options.logger ?? console;
  const nsp = io.of(name);
  const connections = new Map<Socket, Connection>();
  /** Socket ids following each execution: they get its `execution:finished` from their follow, not twice. */
  const followers = new Map<string, Set<string>>();
  const turns = new Turns(SETUPS_PER_TURN);
  let detached = false;

  const report = (message: string, error?: unknown) => {
    try {
      logger.error(`[scriptrunner] socket.io: ${message}${error === undefined ? '' : `: ${describe(error)}`}`);
    } catch {
      // A broken logger must not break delivery.
    }
  };

  // ------------------------------------------------------------ cross-site handshakes

  const refuseCrossSite = (socket: Socket, next: (error?: Error) => void) => {
    const headers = socket.handshake.headers;
    const reason = crossSiteReason(
      {
        get: (header) => {
          const value = headers[header.toLowerCase()];
          return typeof value === 'string' ? value : (value?.[0] ?? null);
        },
      },
      options.trustedOrigins,
    );
    if (reason === null) return next();
    const message = `[scriptrunner] cross-site connection refused: ${reason}. A front end on another origin must be listed in trustedOrigins`;
    next(Object.assign(new Error(message), { data: { code: 'cross_site', message } }));
  };
  nsp.use(refuseCrossSite);

  // ------------------------------------------------------------ subscriptions

  function end(connection: Connection, sub: Subscription): void {
    if (connection.subscriptions.get(sub.executionId) === sub) connection.subscriptions.delete(sub.executionId);
    const set = followers.get(sub.executionId);
    set?.delete(connection.socket.id);
    if (set?.size === 0) followers.delete(sub.executionId);
    sub.controller.abort();
    sub.follow?.close();
    sub.wake?.();
  }

  /** Resolves at once unless the engine still holds packets; then when it hands them on, or the subscription ends. */
  function drained(socket: Socket, sub: Subscription): Promise<void> {
    const engine = socket.conn;
    if (bufferedPackets(socket) === 0 || !socket.connected || sub.controller.signal.aborted) return Promise.resolve();
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

  /** Sends what the follow yields, one item at a time once the client took the last one. */
  async function pump(connection: Connection, sub: Subscription, follow: LogFollow): Promise<void> {
    const { socket } = connection;
    try {
      for await (const item of follow) {
        if (item.type === 'lines') {
          for (const part of packets(item.lines)) socket.emit('execution:log', { executionId: sub.executionId, lines: part });
          await drained(socket, sub);
        } else if (item.type === 'progress') {
          socket.emit('execution:progress', item.progress);
        } else {
          socket.emit('execution:finished', item.execution);
        }
      }
    } catch (error) {
      if (!sub.controller.signal.aborted) {
        const code = isScriptRunnerError(error) ? error.code : 'internal';
        report(`following execution ${sub.executionId} for socket ${socket.id} failed`, error);
        socket.emit('execution:error', {
          executionId: sub.executionId,
          error: failure(code, 'catching up from the store failed; subscribe again with the last seq you have').error,
        });
      }
    } finally {
      end(connection, sub);
    }
  }

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
    if (previous) end(connection, previous);
    if (connection.subscriptions.size >= maxSubscriptions) {
      // Even a refusal takes its turn: thousands of them are a burst too.
      await turns.wait();
      return reply(
        failure('too_many_subscriptions', `a socket may follow at most ${maxSubscriptions} executions at once; unsubscribe from one first`),
      );
    }
    const sub: Subscription = { executionId, controller: new AbortController(), follow: null, wake: null };
    connection.subscriptions.set(executionId, sub);
    const isCurrent = () => connection.subscriptions.get(executionId) === sub && !detached;

    await turns.wait();
    if (!isCurrent()) return reply(cancelled());
    const ok = await allowed(socket, 'execution:subscribe', executionId);
    if (!isCurrent()) return reply(cancelled());
    if (!ok) {
      end(connection, sub);
      return reply(failure('forbidden', `not allowed to follow execution ${executionId}`));
    }

    // Counted as following from here: a finish published while follow() reads is the follow's to send.
    let set = followers.get(executionId);
    if (!set) followers.set(executionId, (set = new Set()));
    set.add(socket.id);
    let follow: LogFollow;
    try {
      // Capturing starts inside follow(), before it reads the execution: nothing published is missed.
      follow = await runner.follow(executionId, { afterSeq, signal: sub.controller.signal, pageSize });
    } catch (error) {
      if (!isCurrent()) return reply(cancelled());
      end(connection, sub);
      return reply(refusal(error, executionId));
    }
    if (!isCurrent() || !socket.connected) {
      follow.close();
      end(connection, sub);
      return reply(cancelled());
    }
    sub.follow = follow;
    reply({ ok: true, execution: follow.execution });
    await pump(connection, sub, follow);
  }

  function unsubscribe(connection: Connection, payload: unknown, reply: Reply): void {
    const parsed = parseUnsubscribe(payload);
    if (!parsed.ok) return reply(failure('validation', parsed.message));
    const sub = connection.subscriptions.get(parsed.value.executionId);
    if (sub) end(connection, sub);
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

  function join(socket: Socket, room: string): void {
    // The in-memory and Redis adapters join synchronously; a promise only reports a late failure.
    const result = socket.join(room);
    if (result) result.catch((error: unknown) => report(`socket ${socket.id} could not join ${room}`, error));
  }

  function leave(socket: Socket, room: string): void {
    const result = socket.leave(room);
    if (result) result.catch((error: unknown) => report(`socket ${socket.id} could not leave ${room}`, error));
  }

  function disconnected(connection: Connection): void {
    for (const sub of [...connection.subscriptions.values()]) end(connection, sub);
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

  // ------------------------------------------------------------ lifecycle events

  const toScripts = () => nsp.to(SCRIPTS_ROOM);
  const onQueued = (execution: Execution) => toScripts().emit('execution:queued', execution);
  const onStarted = (execution: Execution) => toScripts().emit('execution:started', execution);
  const onFinished = (execution: Execution) => {
    // Sockets following it get theirs from their follow, after their last line: exactly one.
    const following = [...(followers.get(execution.id) ?? [])];
    (following.length > 0 ? toScripts().except(following) : toScripts()).emit('execution:finished', execution);
  };
  const onScriptCreated = (script: Script) => toScripts().emit('script:created', script);
  const onScriptArchived = (script: Script) => toScripts().emit('script:archived', script);
  const onScriptRestored = (script: Script) => toScripts().emit('script:restored', script);

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

  runner.on('execution:queued', onQueued);
  runner.on('execution:started', onStarted);
  runner.on('execution:finished', onFinished);
  runner.on('script:created', onScriptCreated);
  runner.on('script:archived', onScriptArchived);
  runner.on('script:restored', onScriptRestored);
  nsp.on('connection', onConnection);
  for (const socket of nsp.sockets.values()) onConnection(socket);

  return {
    namespace: nsp,
    detach() {
      if (detached) return;
      detached = true;
      runner.off('execution:queued', onQueued);
      runner.off('execution:started', onStarted);
      runner.off('execution:finished', onFinished);
      runner.off('script:created', onScriptCreated);
      runner.off('script:archived', onScriptArchived);
      runner.off('script:restored', onScriptRestored);
      nsp.off('connection', onConnection);
      // Socket.IO has no way to remove one middleware: it stays, and keeps refusing cross-site handshakes.
      for (const connection of [...connections.values()]) {
        for (const [event, listener] of connection.handlers) connection.socket.off(event, listener);
        for (const sub of [...connection.subscriptions.values()]) end(connection, sub);
        leave(connection.socket, SCRIPTS_ROOM);
      }
      connections.clear();
      followers.clear();
    },
  };
}
