/**
 * Who receives what: isolation between executions, authorization, bad input, lifecycle events, detach.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Socket } from 'socket.io';
import {
  checkSequence,
  client,
  closeAll,
  fixture,
  raw,
  Recorder,
  roundTrip,
  startServer,
  waitUntil,
} from './helpers.js';
import { SCRIPTS_ROOM, type SocketAction } from '../src/index.js';

afterEach(closeAll);

describe('who receives what', () => {
  it('a client receives only the execution it subscribed to; a client that subscribed to nothing receives nothing', { timeout: 60_000 }, async () => {
    const { runner, url } = await startServer();
    const script = await runner.uploadScript({ filename: 'test_many_lines.py', content: fixture('test_many_lines.py') });
    const [a, b, c] = await Promise.all([client(url), client(url), client(url)]);
    const [ra, rb, rc] = [new Recorder(a!), new Recorder(b!), new Recorder(c!)];

    const first = await runner.run(script.id, { args: ['3000'] });
    const second = await runner.run(script.id, { args: ['2000'] });
    expect((await a!.emitWithAck('execution:subscribe', { executionId: first.id })).ok).toBe(true);
    expect((await b!.emitWithAck('execution:subscribe', { executionId: second.id })).ok).toBe(true);

    await waitUntil(() => ra.finishedOf(first.id).length > 0 && rb.finishedOf(second.id).length > 0, 'both execution:finished');
    await Promise.all([roundTrip(a!), roundTrip(b!), roundTrip(c!)]);
    expect(checkSequence(ra.linesOf(first.id), 3000)).toEqual({ duplicates: 0, problems: [] });
    expect(checkSequence(rb.linesOf(second.id), 2000)).toEqual({ duplicates: 0, problems: [] });
    expect(ra.events.every((e) => e.executionId === first.id)).toBe(true);
    expect(rb.events.every((e) => e.executionId === second.id)).toBe(true);
    expect(rc.events).toEqual([]);
  });

  it('refuses a subscribe that authorize denies, throws on or rejects, and that socket then receives none of its lines', { timeout: 60_000 }, async () => {
    const asked: Array<[SocketAction, string | null]> = [];
    const authorize = (socket: Socket, action: SocketAction, executionId: string | null) => {
      asked.push([action, executionId]);
      const user = (socket.handshake.auth as { user?: string }).user;
      if (user === 'thrower') throw new Error('authorization backend down');
      if (user === 'rejecter') return Promise.reject(new Error('nope'));
      if (user === 'slow-no') return new Promise<boolean>((r) => setTimeout(() => r(false), 50));
      if (user === 'truthy') return 'yes' as unknown as boolean;
      return user === 'alice';
    };
    const { runner, url, errors } = await startServer({ attach: { authorize } });
    const script = await runner.uploadScript({ filename: 'test_many_lines.py', content: fixture('test_many_lines.py') });
    const users = ['alice', 'bob', 'thrower', 'rejecter', 'slow-no', 'truthy'];
    const sockets = await Promise.all(users.map((user) => client(url, { auth: { user } })));
    const recorders = sockets.map((s) => new Recorder(s));

    const run = await runner.run(script.id, { args: ['3000'] });
    const acks = await Promise.all(sockets.map((s) => s.emitWithAck('execution:subscribe', { executionId: run.id })));
    expect(acks[0]!.ok).toBe(true);
    for (const ack of acks.slice(1)) {
      expect(ack.ok).toBe(false);
      if (!ack.ok) expect(ack.error.code).toBe('forbidden');
    }
    expect(asked).toContainEqual(['execution:subscribe', run.id]);

    // The refused ones also cannot follow lifecycle events.
    const lifecycle = await sockets[1]!.emitWithAck('scripts:subscribe');
    expect(lifecycle).toMatchObject({ ok: false, error: { code: 'forbidden' } });
    expect(asked).toContainEqual(['scripts:subscribe', null]);

    await waitUntil(() => recorders[0]!.finishedOf(run.id).length > 0, 'execution:finished for alice');
    // A finished execution is refused too.
    const late = await sockets[1]!.emitWithAck('execution:subscribe', { executionId: run.id });
    expect(late).toMatchObject({ ok: false, error: { code: 'forbidden' } });
    await Promise.all(sockets.map((s) => roundTrip(s)));
    expect(checkSequence(recorders[0]!.linesOf(run.id), 3000)).toEqual({ duplicates: 0, problems: [] });
    for (const recorder of recorders.slice(1)) expect(recorder.events).toEqual([]);
    // The throwing and rejecting authorizers were reported to the host, not to the client.
    expect(errors.filter((e) => e.includes('authorize threw'))).toHaveLength(2);
  });

  it('answers invalid requests with errors or ignores them, and keeps working', { timeout: 60_000 }, async () => {
    const { runner, url, errors } = await startServer();
    const script = await runner.uploadScript({ filename: 'test_many_lines.py', content: fixture('test_many_lines.py') });
    const run = await runner.run(script.id, { args: ['300'] });
    await runner.waitFor(run.id);
    const socket = await client(url);
    const recorder = new Recorder(socket);
    const rawSocket = raw(socket);

    const invalid: unknown[] = [
      undefined,
      null,
      42,
      'x',
      [],
      [run.id],
      {},
      { executionId: 5 },
      { executionId: '' },
      { executionId: 'x'.repeat(201) },
      { executionId: run.id, afterSeq: -1 },
      { executionId: run.id, afterSeq: 1.5 },
      { executionId: run.id, afterSeq: '10' },
      { executionId: run.id, afterSeq: 1e300 },
      { executionId: run.id, afterSeq: Number.MAX_SAFE_INTEGER + 2 },
      { executionId: { toString: 'boom' } },
    ];
    for (const payload of invalid) {
      const ack = await rawSocket.emitWithAck('execution:subscribe', payload);
      expect({ payload, ack }).toMatchObject({ payload, ack: { ok: false, error: { code: 'validation' } } });
    }
    expect(await rawSocket.emitWithAck('execution:subscribe', { executionId: 'nope' })).toMatchObject({
      ok: false,
      error: { code: 'not_found' },
    });
    for (const payload of [undefined, 7, { executionId: 7 }]) {
      expect(await rawSocket.emitWithAck('execution:unsubscribe', payload)).toMatchObject({ ok: false, error: { code: 'validation' } });
    }
    // An ack callback in place of the payload.
    expect(await new Promise((resolve) => rawSocket.emit('execution:subscribe', resolve))).toMatchObject({
      ok: false,
      error: { code: 'validation' },
    });
    // No ack callback at all, valid or not.
    rawSocket.emit('execution:subscribe');
    rawSocket.emit('execution:subscribe', 42);
    rawSocket.emit('execution:subscribe', { executionId: 'nope' });
    rawSocket.emit('execution:subscribe', { executionId: run.id, afterSeq: -5 });
    rawSocket.emit('execution:unsubscribe', 'x');
    rawSocket.emit('scripts:subscribe', { garbage: true }, 1, 2, 3);
    rawSocket.emit('scripts:unsubscribe', null);
    await roundTrip(socket);
    expect(recorder.events).toEqual([]);

    // Still serving: a valid subscribe without an ack replays, one with an ack answers.
    rawSocket.emit('execution:subscribe', { executionId: run.id, afterSeq: 100 });
    await waitUntil(() => recorder.finishedOf(run.id).length > 0, 'execution:finished');
    expect(recorder.linesOf(run.id).map((l) => l.seq)).toEqual(Array.from({ length: 200 }, (_, i) => 101 + i));
    const ack = await socket.emitWithAck('execution:subscribe', { executionId: run.id, afterSeq: 299 });
    expect(ack).toMatchObject({ ok: true, execution: { id: run.id, status: 'succeeded', lineCount: 300 } });
    await waitUntil(() => recorder.finishedOf(run.id).length === 2, 'the second execution:finished');
    expect(recorder.linesOf(run.id).at(-1)?.seq).toBe(300);
    expect(errors).toEqual([]);
  });

  it('scripts:subscribe receives script and execution lifecycle events until scripts:unsubscribe', { timeout: 60_000 }, async () => {
    const { runner, url } = await startServer();
    const [watcher, bystander] = await Promise.all([client(url), client(url)]);
    const [rw, rb] = [new Recorder(watcher!), new Recorder(bystander!)];
    expect(await watcher!.emitWithAck('scripts:subscribe')).toEqual({ ok: true });

    const script = await runner.uploadScript({ filename: 'test_many_lines.py', content: fixture('test_many_lines.py') });
    const run = await runner.run(script.id, { args: ['50'] });
    await runner.waitFor(run.id);
    await runner.archiveScript(script.id);
    await waitUntil(() => rw.lifecycle.some((e) => e.event === 'script:archived'), 'script:archived');

    expect(rw.lifecycle).toEqual([
      { event: 'script:created', id: script.id },
      { event: 'execution:queued', id: run.id },
      { event: 'execution:started', id: run.id },
      { event: 'execution:finished', id: run.id },
      { event: 'script:archived', id: script.id },
    ]);
    // Lifecycle only: no lines for the lifecycle room.
    expect(rw.linesOf(run.id)).toEqual([]);

    expect(await watcher!.emitWithAck('scripts:unsubscribe')).toEqual({ ok: true });
    await runner.uploadScript({ filename: 'test_other.py', content: 'print(1)\n' });
    await Promise.all([roundTrip(watcher!), roundTrip(bystander!)]);
    expect(rw.lifecycle).toHaveLength(5);
    expect(rb.events).toEqual([]);
  });

  it('detach() removes the runner listeners and stops serving', { timeout: 60_000 }, async () => {
    const { runner, url, attached, io } = await startServer();
    const events = ['execution:finished', 'execution:queued', 'script:created'] as const;
    const follows = () => (runner as unknown as { follows: { size: number } }).follows.size;
    const socket = await client(url);
    expect(await socket.emitWithAck('scripts:subscribe')).toEqual({ ok: true });
    const script = await runner.uploadScript({ filename: 'test_many_lines.py', content: fixture('test_many_lines.py') });
    const run = await runner.run(script.id, { args: ['10'] });
    expect((await socket.emitWithAck('execution:subscribe', { executionId: run.id })).ok).toBe(true);
    const rooms = io.of('/scriptrunner').adapter.rooms;
    expect(rooms.get(SCRIPTS_ROOM)?.size).toBe(1);

    const before = events.map((e) => runner.listenerCount(e));
    expect(follows()).toBe(1);
    attached.detach();
    expect(events.map((e) => runner.listenerCount(e))).toEqual(before.map((n) => n - 1));
    expect(rooms.has(SCRIPTS_ROOM)).toBe(false);
    expect(follows()).toBe(0);
    await expect(socket.timeout(300).emitWithAck('scripts:subscribe')).rejects.toThrow();
  });
});
