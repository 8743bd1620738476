/**
 * sqliteStore's appendLogs, off the event loop. better-sqlite3 (under Prisma's adapter) runs every
 * statement synchronously on the thread that calls it: a log batch's insert stopped the runner from
 * reading the child's pipes, the child blocked on a full pipe, and reading and writing took turns.
 * Here the main thread only encodes the chunks (the same rows as prismaStore) and a worker thread
 * with its own connection to the file inserts them; the batch resolves once they are committed,
 * so persist-then-publish holds (the store's Prisma connection sees the commit, WAL).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { LogLine } from '@scriptrunner/core';
import type { LogChunkRow } from './client.js';
import { encodeChunks, type ChunkLimits } from './codec.js';

export interface WriterRequest {
  id: number;
  executionId: string;
  rows: LogChunkRow[];
}

export interface WriterReply {
  id: number;
  /** The insert failed: its message. */
  error?: string;
  /** Nothing was inserted: these stored chunks overlap the rows (a retried batch). */
  stored?: Array<{ firstSeq: number; lastSeq: number }>;
}

export interface LogWriter {
  append(executionId: string, lines: readonly LogLine[]): Promise<void>;
  close(): Promise<void>;
}

/**
 * The worker's file next to this one: `.js` in the built package. Run from the sources (the
 * repository's tests) it is the `.ts` file, loaded through tsx's loader registered in the worker
 * (a worker does not inherit the test runner's TypeScript support).
 */
function startWorker(file: string, busyTimeoutMs: number): Worker {
  const built = new URL('./sqlite-log-writer-worker.js', import.meta.url);
  const options = { workerData: { file, busyTimeoutMs } };
  if (existsSync(fileURLToPath(built))) return new Worker(built, options);
  const source = new URL('./sqlite-log-writer-worker.ts', import.meta.url).href;
  const boot = `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(source)}); })`;
  return new Worker(boot, { ...options, eval: true });
}

export function sqliteLogWriter(file: string, limits: ChunkLimits, busyTimeoutMs = 5000): LogWriter {
  let worker: Worker | null = null;
  let nextId = 1;
  const pending = new Map<number, { resolve(reply: WriterReply): void; reject(error: Error): void }>();

  const failAll = (error: Error) => {
    for (const waiter of pending.values()) waiter.reject(error);
    pending.clear();
  };

  const ensure = (): Worker => {
    if (worker) return worker;
    const started = startWorker(file, busyTimeoutMs);
    started.on('message', (reply: WriterReply) => {
      const waiter = pending.get(reply.id);
      pending.delete(reply.id);
      waiter?.resolve(reply);
    });
    // A crashed worker fails what it held; the next batch starts a new one (the runner retries).
    started.on('error', (error) => {
      if (worker === started) worker = null;
      failAll(new Error(`[scriptrunner] sqliteStore's log writer failed: ${error.message}`));
    });
    started.on('exit', (code) => {
      if (worker === started) worker = null;
      if (pending.size > 0) failAll(new Error(`[scriptrunner] sqliteStore's log writer exited (${code})`));
    });
    // Idle, it must not keep the process alive; a pending batch's promise is the caller's to await.
    started.unref();
    worker = started;
    return started;
  };

  const inflight = new Set<Promise<unknown>>();
  const send = (executionId: string, rows: LogChunkRow[]): Promise<WriterReply> => {
    const sent = new Promise<WriterReply>((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject });
      ensure().postMessage({ id, executionId, rows } satisfies WriterRequest);
    });
    const settled: Promise<unknown> = sent.then(
      (): boolean => inflight.delete(settled),
      (): boolean => inflight.delete(settled),
    );
    inflight.add(settled);
    return sent;
  };

  return {
    async append(executionId, lines) {
      if (lines.length === 0) return;
      let fresh: readonly LogLine[] = lines;
      // Idempotent on seq, as the contract asks: a retried batch (or part of one) already stored is
      // skipped. The worker says which chunks overlap; the second round cannot overlap again.
      for (let round = 0; round < 2; round++) {
        const rows = encodeChunks(executionId, fresh, limits);
        if (rows.length === 0) return;
        const reply = await send(executionId, rows);
        if (reply.error !== undefined) throw new Error(reply.error);
        if (reply.stored === undefined) return;
        const stored = reply.stored;
        fresh = fresh.filter((l) => !stored.some((c) => l.seq >= c.firstSeq && l.seq <= c.lastSeq));
      }
      throw new Error('[scriptrunner] sqliteStore: a log batch still overlapped stored lines after they were skipped');
    },
    async close() {
      // Batches already sent are committed (or fail) before the connection goes.
      await Promise.all([...inflight]);
      const current = worker;
      worker = null;
      if (current) await current.terminate();
      failAll(new Error('[scriptrunner] sqliteStore is closed'));
    },
  };
}
