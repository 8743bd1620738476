/**
 * Property test over a real Socket.IO server (issue 7, item 4): whatever a client sends — any event
 * name, any payload (JSON, huge strings, binary, values socket.io-client cannot serialise, raw
 * packets no client library would write), with no ack callback, one, or a function in a payload
 * position, alone or pipelined, hanging up mid-request — the server:
 *
 * - neither crashes nor leaves an unhandled error, and reports no failure to the host's logger;
 * - answers each protocol request with exactly the documented ack (`{ ok: true, ... }` or
 *   `{ ok: false, error: { code, message } }`, the code predicted from the payload as it arrives
 *   after JSON) and never answers an event it does not serve;
 * - changes nothing in the store;
 * - delivers no lines of an execution the socket did not subscribe to, nor after an unsubscribe;
 * - drops the connection only where Socket.IO itself must (a frame over maxHttpBufferSize, a packet
 *   its parser refuses);
 * - afterwards still serves a well-behaved client a complete log, and holds no room for a socket
 *   that is gone.
 *
 * Every wait here is bounded by our own timer, raced with the socket's `disconnect`, because three
 * things make an unbounded wait hang:
 * - socket.io-client keeps an emit made while disconnected in its send buffer until a reconnection;
 *   with reconnection off (the helpers' default) that is forever, so `emitWithAck` without a timeout
 *   (the helpers' `subscribe` and `roundTrip`) never settles once the server has dropped the
 *   connection — which it does for a frame over maxHttpBufferSize or a packet its parser refuses.
 * - After a raw DISCONNECT packet the server ends its socket but keeps the connection, and silently
 *   ignores packets that arrived with it: no answer and no `disconnect` ever reach the client.
 * - An event nobody serves is never answered: `timeout(ms)` settles it, but each costs the whole
 *   timeout, and fast-check's shrinking multiplies that by every shrink step.
 * Hence: no answer is awaited for an event the adapter does not serve (a probe request behind it
 * proves the server went past it), the server's side of the socket is watched, and each run uses a
 * fresh socket.
 */
import type { Execution } from '@scriptrunner/core';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { executionRoom, SCRIPTS_ROOM } from '../src/index.js';
import {
  checkSequence,
  client,
  closeAll,
  finishedAfterLastLine,
  fixture,
  LINE_TEXT,
  raw,
  Recorder,
  startServer,
  waitUntil,
  type Client,
  type Harness,
} from './helpers.js';

/** Longest any single answer may take; far above the few milliseconds a healthy server needs. */
const ANSWER_MS = 5_000;
const KNOWN_LINES = 300;
const NSP = '/scriptrunner';
/** Socket.IO's default maxHttpBufferSize, the websocket frame limit: frames clearly under it must pass. */
const SAFE_FRAME_BYTES = 900_000;
const PROBE_ID = 'properties-test-probe';

const PROTOCOL_EVENTS = new Set(['execution:subscribe', 'execution:unsubscribe', 'scripts:subscribe', 'scripts:unsubscribe']);
/** socket.io-client refuses to emit these (it throws); only a raw packet gets them to the server. */
const CLIENT_RESERVED = new Set(['connect', 'connect_error', 'disconnect', 'disconnecting', 'newListener', 'removeListener']);

// ------------------------------------------------------------------ bounded waits

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

// ------------------------------------------------------------------ generated values

/** A value built when the command runs: huge, binary, unserialisable or deep values print as a short label. */
class Special {
  constructor(
    readonly label: string,
    readonly make: () => unknown,
    /** socket.io-client throws on it (BigInt, cycles): 'always'; may throw (its recursion meets the stack): 'maybe'. */
    readonly clientThrows: 'never' | 'maybe' | 'always' = 'never',
  ) {}
  [fc.toStringMethod](): string {
    return this.label;
  }
}

/** In an argument position: a function (the ack when it is the last argument, else sent as null). */
const FN = new Special('<function>', () => () => {});

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

function materialise(value: unknown): unknown {
  if (value instanceof Special) return value.make();
  if (Array.isArray(value)) return value.map(materialise);
  if (isPlainObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, materialise(v)]));
  return value;
}

function someSpecial(value: unknown, test: (s: Special) => boolean): boolean {
  if (value instanceof Special) return test(value);
  if (Array.isArray(value)) return value.some((v) => someSpecial(v, test));
  if (isPlainObject(value)) return Object.values(value).some((v) => someSpecial(v, test));
  return false;
}

function isBinary(value: unknown): boolean {
  return value instanceof ArrayBuffer || ArrayBuffer.isView(value);
}

/**
 * An upper bound of the largest websocket frame the emit becomes (JSON text; each binary attachment
 * is a frame of its own), and whether its binary attachments meet an object that looks like a
 * placeholder (socket.io-parser then refuses the packet and closes the connection).
 */
function measure(values: unknown[]): { maxFrameBytes: number; placeholderWithBinary: boolean } {
  let text = 64;
  let maxBinary = 0;
  let binary = false;
  let placeholder = false;
  const stack: unknown[] = [...values];
  while (stack.length > 0) {
    const value = stack.pop();
    if (typeof value === 'string') text += 6 * value.length + 2;
    else if (isBinary(value)) {
      binary = true;
      maxBinary = Math.max(maxBinary, (value as ArrayBufferLike | ArrayBufferView).byteLength);
      text += 40;
    } else if (Array.isArray(value)) {
      text += 2;
      stack.push(...value);
    } else if (typeof value === 'object' && value !== null) {
      if ((value as { _placeholder?: unknown })._placeholder === true) placeholder = true;
      for (const [key, v] of Object.entries(value)) {
        text += 6 * key.length + 4;
        stack.push(v);
      }
    } else text += 25;
  }
  return { maxFrameBytes: Math.max(text, maxBinary), placeholderWithBinary: placeholder && binary };
}

/** A value as the server sees it after Socket.IO's JSON (binary arrives as a Buffer: an object). */
function wire(value: unknown): unknown {
  if (value === undefined || typeof value === 'function' || typeof value === 'symbol') return null;
  if (typeof value === 'number') return Number.isFinite(value) ? value + 0 : null;
  if (isBinary(value)) return { binary: true };
  if (typeof value === 'object' && value !== null && typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    return wire((value as { toJSON(): unknown }).toJSON());
  }
  return value;
}

/** An own property as the server sees it; absent when JSON drops it. */
function wireProperty(record: Record<string, unknown>, key: string): unknown {
  if (!Object.prototype.hasOwnProperty.call(record, key)) return undefined;
  const value = record[key];
  if (value === undefined || typeof value === 'function' || typeof value === 'symbol') return undefined;
  return wire(value);
}

type Expected = { code: 'validation' | 'not_found' } | { ok: true; executionId?: string };

/** The documented answer, from the protocol's rules (protocol.ts), for the first argument as sent. */
function expectedAnswer(event: string, first: unknown, known: ReadonlySet<string>): { answer: Expected; executionId: string | null } {
  if (event === 'scripts:subscribe' || event === 'scripts:unsubscribe') return { answer: { ok: true }, executionId: null };
  const payload = wire(first);
  if (!isPlainObject(payload)) return { answer: { code: 'validation' }, executionId: null };
  const id = wireProperty(payload, 'executionId');
  if (typeof id !== 'string' || id.length === 0 || id.length > 200) return { answer: { code: 'validation' }, executionId: null };
  if (event === 'execution:unsubscribe') return { answer: { ok: true }, executionId: id };
  const afterSeq = wireProperty(payload, 'afterSeq') ?? 0;
  if (typeof afterSeq !== 'number' || !Number.isSafeInteger(afterSeq) || afterSeq < 0) {
    return { answer: { code: 'validation' }, executionId: null };
  }
  return { answer: known.has(id) ? { ok: true, executionId: id } : { code: 'not_found' }, executionId: id };
}

// ------------------------------------------------------------------ commands

type Command =
  | { kind: 'emit'; event: string | number; args: unknown[]; withAck: boolean }
  | { kind: 'raw'; frames: Array<string | Special> };

interface Sent {
  index: number;
  label: string;
  /** Socket.IO may close the connection over it (oversized frame, refused packet). */
  mayDrop: boolean;
  /** The server must answer, with this. */
  answer: Expected | null;
  ack: Promise<unknown[]> | null;
  /** A valid subscribe / unsubscribe, for this execution id. */
  subscribes: string | null;
  unsubscribes: string | null;
  event: string | null;
}

function describeCommand(command: Command): string {
  return fc.stringify(command).slice(0, 300);
}

let linesToFuzzers = 0;
/** One fuzzing socket: what it may receive follows from what it sent. */
class Fuzzer {
  goneReason: string | null = null;
  readonly gone: Promise<null>;
  private sendIndex = 0;
  /** Execution id → send index of the last valid subscribe; removed once an unsubscribe sent later was processed. */
  private readonly subscribedAt = new Map<string, number>();
  private readonly pendingUnsubscribes: Array<{ id: string; index: number }> = [];
  private sentScriptsSubscribe = false;

  private constructor(
    readonly socket: Client,
    private readonly violations: string[],
    private readonly knownLines: ReadonlyMap<string, number | null>,
    serverHas: (socketId: string) => boolean,
  ) {
    let markGone: (value: null) => void = () => {};
    this.gone = new Promise((resolve) => (markGone = resolve));
    // A raw DISCONNECT packet ends the server's socket but not the connection, and the server then
    // ignores whatever arrived with it (a probe included) without a word: watch the server's side too.
    const watch = setInterval(() => {
      if (socket.id !== undefined && !serverHas(socket.id)) {
        this.goneReason ??= 'the server ended the namespace socket';
        socket.disconnect();
      }
    }, 10);
    socket.on('disconnect', (reason) => {
      clearInterval(watch);
      this.goneReason ??= reason;
      markGone(null);
    });
    socket.onAny((event: string, ...args: unknown[]) => this.received(event, args[0]));
  }

  static async open(
    url: string,
    violations: string[],
    knownLines: ReadonlyMap<string, number | null>,
    serverHas: (socketId: string) => boolean,
  ): Promise<Fuzzer> {
    return new Fuzzer(await within(client(url), ANSWER_MS, 'connecting a fuzzing client'), violations, knownLines, serverHas);
  }

  private received(event: string, body: unknown): void {
    const record = (isPlainObject(body) ? body : {}) as { executionId?: unknown; id?: unknown; lines?: unknown };
    const id = event === 'execution:finished' ? record.id : record.executionId;
    const allowed = typeof id === 'string' && this.subscribedAt.has(id);
    if (!['execution:log', 'execution:finished', 'execution:progress'].includes(event) || !allowed) {
      this.violations.push(`socket ${this.socket.id} received ${event} for ${String(id)}, not subscribed`);
      return;
    }
    if (event !== 'execution:log') return;
    linesToFuzzers += Array.isArray(record.lines) ? record.lines.length : 0;
    const max = this.knownLines.get(id);
    for (const line of Array.isArray(record.lines) ? (record.lines as Array<{ seq?: unknown; text?: unknown }>) : [null]) {
      const seq = line?.seq;
      if (typeof seq !== 'number' || seq < 1 || (typeof max === 'number' && seq > max) || line?.text !== LINE_TEXT(seq)) {
        this.violations.push(`socket ${this.socket.id} received a wrong line of ${id}: ${JSON.stringify(line)}`);
      }
    }
  }

  /** Rooms the server may have this socket in: its own, the lifecycle room if it asked, a running execution it follows. */
  mayBeIn(room: string): boolean {
    if (room === this.socket.id) return true;
    if (room === SCRIPTS_ROOM) return this.sentScriptsSubscribe;
    // Subscriptions are follows of their own now: the adapter puts a socket in no execution room.
    return false;
  }

  /** Applies an unsubscribe the server has processed: lines of that execution must stop, unless subscribed again since. */
  private unsubscribed(id: string, index: number): void {
    if ((this.subscribedAt.get(id) ?? Infinity) < index) this.subscribedAt.delete(id);
  }

  send(command: Command, known: ReadonlySet<string>): Sent {
    const index = ++this.sendIndex;
    const label = describeCommand(command);
    if (command.kind === 'raw') {
      for (const frame of command.frames) {
        if (typeof frame === 'string' && frame.includes('"scripts:subscribe"')) this.sentScriptsSubscribe = true;
        this.socket.io.engine.write((typeof frame === 'string' ? frame : frame.make()) as string);
      }
      return { index, label, mayDrop: true, answer: null, ack: null, subscribes: null, unsubscribes: null, event: null };
    }
    const event = command.event;
    const values = command.args.map(materialise);
    const lastIsFunction = command.args.length > 0 && command.args[command.args.length - 1] === FN;
    const hasAck = command.withAck || lastIsFunction;
    const payloadArgs = lastIsFunction && !command.withAck ? values.slice(0, -1) : values;
    const served = typeof event === 'string' && PROTOCOL_EVENTS.has(event);
    const refused =
      (typeof event === 'string' && CLIENT_RESERVED.has(event)) || command.args.some((a) => someSpecial(a, (s) => s.clientThrows === 'always'));
    const mayRefuse = refused || command.args.some((a) => someSpecial(a, (s) => s.clientThrows === 'maybe'));

    const expectation = served ? expectedAnswer(event, payloadArgs[0], known) : { answer: null, executionId: null };
    let ack: Promise<unknown[]> | null = null;
    const sendArgs = [...payloadArgs];
    if (hasAck) {
      ack = new Promise((resolve) => {
        sendArgs.push((...response: unknown[]) => {
          if (!served) this.violations.push(`an answer to ${String(event)}, which the adapter does not serve: ${JSON.stringify(response).slice(0, 200)}`);
          resolve(response);
        });
      });
    }
    const subscribes = event === 'execution:subscribe' && !refused ? expectation.executionId : null;
    const unsubscribes = event === 'execution:unsubscribe' && !refused ? expectation.executionId : null;
    let threw: unknown = null;
    try {
      raw(this.socket).emit(event as string, ...sendArgs);
    } catch (error) {
      threw = error;
    }
    if (threw !== null ? !mayRefuse : refused) {
      this.violations.push(`socket.io-client ${refused ? 'accepted' : `threw ${String(threw)} on`} ${label}`);
    }
    if (refused || threw !== null) {
      return { index, label, mayDrop: false, answer: null, ack: null, subscribes: null, unsubscribes: null, event: null };
    }
    // Lines may come from here on (nothing arrives while emit runs synchronously).
    if (subscribes !== null) this.subscribedAt.set(subscribes, index);
    if (event === 'scripts:subscribe') this.sentScriptsSubscribe = true;
    if (unsubscribes !== null && !hasAck) this.pendingUnsubscribes.push({ id: unsubscribes, index });
    const { maxFrameBytes, placeholderWithBinary } = measure(sendArgs);
    return {
      index,
      label,
      mayDrop: maxFrameBytes > SAFE_FRAME_BYTES || placeholderWithBinary,
      answer: hasAck ? expectation.answer : null,
      ack: hasAck && served ? ack : null,
      subscribes,
      unsubscribes,
      event: served ? event : null,
    };
  }

  /** The server's answer, or null when the connection went first. */
  async answer(sent: Sent): Promise<unknown[] | null> {
    if (sent.ack === null) return null;
    const response = await within(Promise.race([sent.ack, this.gone]), ANSWER_MS, `the answer to ${sent.label}`);
    if (response !== null && sent.unsubscribes !== null && isPlainObject(response[0]) && response[0].ok === true) {
      this.unsubscribed(sent.unsubscribes, sent.index);
    }
    return response;
  }

  /** A request behind everything sent so far: once answered, the server has processed all of it. */
  async probe(): Promise<boolean> {
    const answered = await within(
      Promise.race([
        // Rejected ("socket has been disconnected") when the connection goes first.
        raw(this.socket)
          .emitWithAck('execution:unsubscribe', { executionId: PROBE_ID })
          .then(
            () => true,
            () => false,
          ),
        this.gone.then(() => false),
      ]),
      ANSWER_MS,
      'the probe behind the commands',
    );
    if (answered) {
      for (const { id, index } of this.pendingUnsubscribes.splice(0)) this.unsubscribed(id, index);
    }
    return answered;
  }
}

// ------------------------------------------------------------------ the test

let h: Harness;
let known: Execution;
let secret: Execution;
let live: Execution;
let witness: Client;
let witnessRecorder: Recorder;
const processErrors: string[] = [];
const onProcessError = (error: unknown) => processErrors.push(error instanceof Error ? (error.stack ?? error.message) : String(error));

async function snapshot(): Promise<string> {
  const { runner } = h;
  const scripts = await runner.listScripts({ status: 'all', limit: 1000 });
  // The live run keeps writing its own record and lines; everything else must stay as it was.
  const executions = (await runner.listExecutions({ limit: 1000 })).items.filter((e) => e.id !== live.id);
  const logs = [await runner.readLogs(known.id, { limit: 10_000 }), await runner.readLogs(secret.id, { limit: 10_000 })];
  return JSON.stringify({ scripts: scripts.items, executions, logs });
}

beforeAll(async () => {
  process.on('uncaughtException', onProcessError);
  process.on('unhandledRejection', onProcessError);
  // Small catch-up pages, so a subscribe to the known run crosses page boundaries (and hang-ups land mid catch-up).
  h = await startServer({ attach: { replayPageSize: 64 } });
  const many = await h.runner.uploadScript({ filename: 'test_many_lines.py', content: fixture('test_many_lines.py') });
  const slow = await h.runner.uploadScript({ filename: 'test_slow_lines.py', content: fixture('test_slow_lines.py') });
  known = await h.runner.run(many.id, { args: [String(KNOWN_LINES)] });
  secret = await h.runner.run(many.id, { args: ['40'] });
  await Promise.all([h.runner.waitFor(known.id), h.runner.waitFor(secret.id)]);
  // About 200 lines a second for as long as the test runs: live batches keep reaching its room.
  live = await h.runner.run(slow.id, { args: ['1000000', '5000', '1'] });
  witness = await within(client(h.url), ANSWER_MS, 'connecting the witness');
  witnessRecorder = new Recorder(witness);
  expect(await within(witness.timeout(ANSWER_MS).emitWithAck('execution:subscribe', { executionId: live.id }), ANSWER_MS, 'witness subscribe')).toMatchObject({ ok: true });
  await waitUntil(() => witnessRecorder.lastSeq(live.id) >= 2, 'the live run printing', 20_000);
}, 60_000);

afterAll(async () => {
  await closeAll();
  process.off('uncaughtException', onProcessError);
  process.off('unhandledRejection', onProcessError);
});

describe('Socket.IO input properties', () => {
  it('random events, payloads, acks and raw packets: documented answers only, nothing stored changes, no foreign lines, still serving', { timeout: 120_000 }, async () => {
    const knownIds = new Set([known.id, live.id]);
    const knownLines = new Map<string, number | null>([
      [known.id, KNOWN_LINES],
      [live.id, null],
    ]);
    const violations: string[] = [];
    /** What the random phase exercised: asserted at the end, so that no generator change makes the test pass vacuously. */
    const seen = { followedKnown: 0, followedLive: 0, validation: 0, notFound: 0, dropped: 0, hungUp: 0 };
    const serverHas = (socketId: string) => h.attached.namespace.sockets.has(socketId);

    // -------------------------------------------------------------- arbitraries
    const hugeString = fc
      .record({ char: fc.constantFrom('x', 'é', '😀', '\u0000', '"'), count: fc.constantFrom(1_000, 100_000, 1_200_000) })
      .map(({ char, count }) => new Special(`${JSON.stringify(char)} x ${count}`, () => char.repeat(count)));
    const binary = fc.oneof(
      fc.constantFrom(0, 3, 65_536, 1_200_000).map((n) => new Special(`Buffer(${n})`, () => Buffer.alloc(n, 7))),
      fc.constantFrom(
        new Special('Int16Array', () => new Int16Array([1, -2, 3])),
        new Special('Float64Array', () => new Float64Array([Number.NaN, 1.5])),
        new Special('ArrayBuffer', () => new ArrayBuffer(8)),
        new Special('DataView', () => new DataView(new ArrayBuffer(4))),
      ),
    );
    const oddValue = fc.oneof(
      hugeString,
      binary,
      fc.bigInt().map((n) => new Special(`${n}n`, () => n, 'always')),
      fc.constant(
        new Special(
          'circular',
          () => {
            const o: Record<string, unknown> = { executionId: 'x' };
            o.self = o;
            return o;
          },
          'always',
        ),
      ),
      fc.constantFrom(50, 3_000).map(
        (depth) =>
          new Special(`nested(${depth})`, () => {
            let v: unknown = { executionId: 'deep' };
            for (let i = 0; i < depth; i++) v = i % 2 === 0 ? [v] : { executionId: v };
            return v;
          }, depth > 1_000 ? 'maybe' : 'never'),
      ),
      fc.constant(new Special('wide(20000)', () => Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`k${i}`, i])))),
      fc.constant(new Special('Date(0)', () => new Date(0))),
      fc.nat({ max: 4 }).map((num) => ({ _placeholder: true, num })),
    );
    const anyValue = fc.oneof(
      { weight: 4, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
      { weight: 2, arbitrary: fc.constantFrom<unknown>(undefined, null, Number.NaN, Infinity, -Infinity, -0, '', true, [], {}) },
      { weight: 1, arbitrary: oddValue },
    );
    const executionId = fc.oneof(
      { weight: 5, arbitrary: fc.constantFrom(known.id, live.id) },
      { weight: 2, arbitrary: fc.string({ maxLength: 24 }) },
      {
        weight: 2,
        arbitrary: fc.constantFrom<unknown>(
          '',
          ' ',
          'x'.repeat(200),
          'x'.repeat(201),
          `${known.id} `,
          ` ${known.id}`,
          known.id.toUpperCase(),
          `${known.id}\u0000`,
          `../${known.id}`,
          '__proto__',
          'constructor',
          'scriptrunner:scripts',
          executionRoom(known.id),
          '*',
          [known.id],
          { toString: known.id },
        ),
      },
      { weight: 1, arbitrary: anyValue },
      { weight: 1, arbitrary: fc.constant(new Special('Buffer(known id)', () => Buffer.from(known.id))) },
    );
    const afterSeq = fc.oneof(
      { weight: 4, arbitrary: fc.integer({ min: 0, max: KNOWN_LINES + 20 }) },
      { weight: 2, arbitrary: fc.integer({ min: -3, max: -1 }) },
      { weight: 2, arbitrary: fc.double() },
      {
        weight: 3,
        arbitrary: fc.constantFrom<unknown>(
          -1,
          -0,
          0.5,
          1e21,
          2 ** 53 - 1,
          2 ** 53,
          2 ** 53 + 2,
          1e300,
          Number.NaN,
          Infinity,
          -Infinity,
          Number.MIN_VALUE,
          '0',
          '10',
          'NaN',
          '1e3',
          '0x10',
          ' 5',
          '',
          '-1',
          null,
          undefined,
          true,
          [],
          [5],
          {},
        ),
      },
      { weight: 1, arbitrary: anyValue },
    );
    const subscribePayload = fc
      .tuple(
        fc.record({ executionId, afterSeq, extra: anyValue }, { requiredKeys: [] }),
        fc.dictionary(fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }),
      )
      .map(([own, extra]) => ({ ...extra, ...own }));
    // Often right, so that real subscriptions (catch-up, live, hand-over) run among the garbage.
    const wellFormed = fc.record(
      {
        executionId: fc.constantFrom(known.id, live.id, 'no-such-execution'),
        afterSeq: fc.oneof({ weight: 3, arbitrary: fc.nat({ max: KNOWN_LINES + 5 }) }, { weight: 1, arbitrary: afterSeq }),
      },
      { requiredKeys: ['executionId'] },
    );
    const argument = fc.oneof(
      { weight: 3, arbitrary: anyValue },
      { weight: 1, arbitrary: fc.constant(FN) },
    );
    const args = fc.oneof(
      {
        weight: 8,
        arbitrary: fc
          .tuple(fc.oneof({ weight: 4, arbitrary: wellFormed }, { weight: 4, arbitrary: subscribePayload }, { weight: 2, arbitrary: argument }), fc.array(argument, { maxLength: 2 }))
          .map(([first, rest]) => [first, ...rest]),
      },
      { weight: 1, arbitrary: fc.constant<unknown[]>([]) },
      { weight: 1, arbitrary: fc.array(argument, { maxLength: 3 }) },
    );
    const eventName = fc.oneof(
      { weight: 6, arbitrary: fc.constant('execution:subscribe') },
      { weight: 3, arbitrary: fc.constant('execution:unsubscribe') },
      { weight: 2, arbitrary: fc.constantFrom('scripts:subscribe', 'scripts:unsubscribe') },
      {
        weight: 3,
        arbitrary: fc.constantFrom<string | number>(
          'subscribe',
          'unsubscribe',
          'error',
          'execution:log',
          'execution:finished',
          'execution:error',
          'EXECUTION:SUBSCRIBE',
          'execution:subscribe ',
          '__proto__',
          'constructor',
          'toString',
          'hasOwnProperty',
          '',
          42,
          ...CLIENT_RESERVED,
        ),
      },
      { weight: 1, arbitrary: fc.string({ maxLength: 30 }) },
    );
    const emit = fc.record({
      kind: fc.constant('emit' as const),
      event: eventName,
      args,
      withAck: fc.boolean(),
    });
    // What no Socket.IO client library would send: socket.io-parser packets written straight onto the engine.
    const rawFrame = fc.oneof(
      fc
        .tuple(
          fc.constantFrom('disconnect', 'connect', 'newListener', 'error', 'execution:subscribe', 'execution:unsubscribe', 'scripts:subscribe'),
          fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 2 }),
          fc.option(fc.nat(1_000)),
        )
        .map(([event, args, id]) => `2${NSP},${id ?? ''}${JSON.stringify([event, ...args])}`),
      fc.constantFrom(
        `1${NSP},`,
        `0${NSP},{}`,
        '0/,{}',
        '0/nope,{}',
        '2/nope,["x"]',
        `3${NSP},99[{"ok":true}]`,
        `4${NSP},{"message":"x"}`,
        `5${NSP},1-["execution:subscribe",{"_placeholder":true,"num":0}]`,
        `5${NSP},99999999-["execution:subscribe"]`,
        `2${NSP},["execution:subscribe",{`,
        `2${NSP},[]`,
        `2${NSP},{}`,
        `2${NSP},[null]`,
        `2${NSP},[1e999]`,
        `2${NSP},-1["execution:subscribe",{"executionId":"x"}]`,
        '',
        '9',
        'garbage',
      ),
      fc.constant(new Special('binary frame', () => Buffer.from([4, 1, 2, 3]))),
      fc.string({ maxLength: 40 }),
    );
    const rawCommand = fc.record({ kind: fc.constant('raw' as const), frames: fc.array(rawFrame, { minLength: 1, maxLength: 2 }) });
    const command: fc.Arbitrary<Command> = fc.oneof({ weight: 12, arbitrary: emit }, { weight: 1, arbitrary: rawCommand });
    const run = fc.record({
      commands: fc.array(command, { minLength: 1, maxLength: 6 }),
      // Sequential: each answer awaited before the next request. Pipelined: all sent, then all answers awaited.
      pipelined: fc.boolean(),
      // Hang up right after sending, or a few milliseconds later (mid catch-up), instead of awaiting answers.
      hangUp: fc.oneof({ weight: 12, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.constantFrom(0, 1, 3, 8) }),
    });

    function checkAnswer(sent: Sent, response: unknown[], cancellable: boolean): void {
      const expected = sent.answer!;
      expect(response.length, `one answer argument to ${sent.label}`).toBe(1);
      const [body] = response;
      if (cancellable && isPlainObject(body) && body.ok === false && isPlainObject(body.error) && body.error.code === 'cancelled') {
        expect(body, sent.label).toEqual({ ok: false, error: { code: 'cancelled', message: expect.stringMatching(/^\[scriptrunner\] \S/) } });
        return;
      }
      if ('ok' in expected) {
        if (expected.executionId === undefined) {
          expect(body, sent.label).toEqual({ ok: true });
        } else {
          const isKnown = expected.executionId === known.id;
          expect(body, sent.label).toEqual({ ok: true, execution: expect.objectContaining({ id: expected.executionId, status: isKnown ? 'succeeded' : 'running' }) });
          seen[isKnown ? 'followedKnown' : 'followedLive']++;
        }
      } else {
        expect(body, sent.label).toEqual({
          ok: false,
          error: { code: expected.code, message: expect.stringMatching(/^\[scriptrunner\] \S/) },
        });
        seen[expected.code === 'validation' ? 'validation' : 'notFound']++;
      }
    }

    const before = await snapshot();
    await fc.assert(
      fc.asyncProperty(run, async ({ commands, pipelined, hangUp }) => {
        // Judged per run, and each run on a fresh socket, so that a counterexample stands on its own.
        const marks = { violations: violations.length, errors: h.errors.length, process: processErrors.length };
        const fuzzer = await Fuzzer.open(h.url, violations, knownLines, serverHas);
        const socketId = fuzzer.socket.id!;
        try {
          const sent: Sent[] = [];
          for (const c of commands) {
            const s = fuzzer.send(c, knownIds);
            sent.push(s);
            if (!pipelined && hangUp === null) {
              const response = await fuzzer.answer(s);
              if (response !== null) {
                checkAnswer(s, response, false);
              }
              if (fuzzer.goneReason !== null) break;
            }
          }
          if (hangUp !== null) {
            // Mid-request: subscribes may still be authorizing, reading or catching up.
            seen.hungUp++;
            if (hangUp > 0) await new Promise((r) => setTimeout(r, hangUp));
            fuzzer.socket.disconnect();
          } else {
            if (pipelined) {
              await Promise.all(
                sent.map(async (s, i) => {
                  // A later subscribe/unsubscribe of the same execution (or scripts:*) legitimately cancels a pending subscribe.
                  const later = sent.slice(i + 1);
                  // Raw frames carry such requests too, unparsed by this model (e.g. a raw
                  // ["scripts:subscribe"] after an acknowledged one): any later raw command may overtake.
                  const laterRaw = later.some((l) => l.label.includes('"kind":"raw"'));
                  const cancellable =
                    (s.subscribes !== null && (laterRaw || later.some((l) => l.subscribes === s.subscribes || l.unsubscribes === s.subscribes))) ||
                    (s.event === 'scripts:subscribe' && (laterRaw || later.some((l) => l.event === 'scripts:subscribe' || l.event === 'scripts:unsubscribe')));
                  const response = await fuzzer.answer(s);
                  if (response !== null) {
                    checkAnswer(s, response, cancellable);
                  }
                }),
              );
            }
            if (fuzzer.goneReason === null && (await fuzzer.probe())) {
              // Everything sent is processed: no room the socket did not ask for (a finished run's room included).
              const rooms = [...(h.attached.namespace.adapter.sids.get(socketId) ?? [])];
              expect(rooms.filter((room) => !fuzzer.mayBeIn(room))).toEqual([]);
            }
            if (fuzzer.goneReason !== null) {
              seen.dropped++;
              expect(
                sent.some((s) => s.mayDrop),
                `the server dropped the connection (${fuzzer.goneReason}) though nothing sent exceeds a limit: ${sent.map((s) => s.label).join(' | ')}`,
              ).toBe(true);
            }
          }
          expect(violations.slice(marks.violations)).toEqual([]);
        } finally {
          fuzzer.socket.disconnect();
        }
        // The server lets go of the socket: gone from the namespace and from every room.
        await within(
          (async () => {
            while (h.attached.namespace.sockets.has(socketId) || h.attached.namespace.adapter.sids.has(socketId)) {
              await new Promise((r) => setTimeout(r, 2));
            }
          })(),
          ANSWER_MS,
          `the server forgetting socket ${socketId}`,
        );
        expect(h.errors.slice(marks.errors)).toEqual([]);
        expect(processErrors.slice(marks.process)).toEqual([]);
      }),
      { numRuns: 300, plugins: [fc.interruptAfterTimeLimit(60_000, { failOnInterrupt: true })] },
    );
    expect(violations).toEqual([]);
    expect(h.errors).toEqual([]);
    expect(processErrors).toEqual([]);
    expect(await snapshot()).toBe(before);

    // ---------------------------------------------------------- still serving
    const healthy = await within(client(h.url), ANSWER_MS, 'connecting the well-behaved client');
    const recorder = new Recorder(healthy);
    const ack = await within(healthy.timeout(ANSWER_MS).emitWithAck('execution:subscribe', { executionId: known.id, afterSeq: 0 }), ANSWER_MS, 'subscribe');
    expect(ack).toMatchObject({ ok: true, execution: { id: known.id, status: 'succeeded', lineCount: KNOWN_LINES } });
    await waitUntil(() => recorder.finishedOf(known.id).length > 0, 'execution:finished of the known run', 10_000);
    expect(checkSequence(recorder.linesOf(known.id), KNOWN_LINES)).toEqual({ duplicates: 0, problems: [] });
    expect(finishedAfterLastLine(recorder, known.id)).toBe(true);
    // The live run: caught up from the store, then live lines follow without a gap.
    expect(await within(healthy.timeout(ANSWER_MS).emitWithAck('execution:subscribe', { executionId: live.id }), ANSWER_MS, 'subscribe live')).toMatchObject({ ok: true });
    const target = witnessRecorder.lastSeq(live.id) + 3;
    await waitUntil(() => recorder.lastSeq(live.id) >= target, `live line ${target}`, 10_000);
    const caughtUp = recorder.linesOf(live.id);
    expect(checkSequence(caughtUp, caughtUp.length)).toEqual({ duplicates: 0, problems: [] });
    // The witness followed the live run through all of it without a gap.
    const witnessed = witnessRecorder.linesOf(live.id);
    expect(witnessed.length).toBeGreaterThanOrEqual(target - 3);
    expect(checkSequence(witnessed, witnessed.length)).toEqual({ duplicates: 0, problems: [] });
    expect(witnessRecorder.events.every((e) => e.executionId === live.id)).toBe(true);

    // No room holds a socket that is gone; only the two well-behaved sockets remain, and the only
    // follows still open are theirs (the fuzzers' ended with their sockets).
    const nsp = h.attached.namespace;
    await waitUntil(() => nsp.sockets.size === 2, 'the fuzzing sockets to be gone', 10_000);
    const rooms = Object.fromEntries([...nsp.adapter.rooms].map(([room, members]) => [room, [...members].sort()]));
    expect(rooms).toEqual({
      [witness.id!]: [witness.id],
      [healthy.id!]: [healthy.id],
    });
    const follows = () => (h.runner as unknown as { follows: { size: number } }).follows.size;
    await waitUntil(() => follows() === 2, 'only the two live follows to remain', 10_000);
    expect(h.errors).toEqual([]);
    expect(processErrors).toEqual([]);
    expect(violations).toEqual([]);
    for (const [what, count] of Object.entries(seen)) expect(count, `the random phase exercised ${what}`).toBeGreaterThan(0);
    expect(linesToFuzzers, 'lines delivered to fuzzing sockets').toBeGreaterThan(0);
  });
});
