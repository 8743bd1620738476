/**
 * Runs the bench's network consumers in worker threads, so their decoding competes with the
 * server for CPU cores (as remote clients would not at all) but never for its event loop.
 * The worker is client-thread.ts, loaded through tsx's loader.
 */
import type { EventLoopUtilization } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { CorrectnessError } from '../../lib.js';
import type { ClientTask, FromWorker, ToWorker } from './client-thread.js';

export interface ClientThread {
  send(message: ToWorker): void;
  /** The next message of this type (an `error` message from the worker rejects instead). */
  next<T extends FromWorker['type']>(type: T, timeoutMs: number): Promise<Extract<FromWorker, { type: T }>>;
  /** The worker's event-loop utilisation since `since` (as performance.eventLoopUtilization). */
  eventLoopUtilization(since?: EventLoopUtilization): EventLoopUtilization;
  close(): Promise<void>;
}

const TSX_API = import.meta.resolve('tsx/esm/api');
const ENTRY = new URL('./client-thread.ts', import.meta.url).href;

export async function startClientThread(task: ClientTask): Promise<ClientThread> {
  const worker = new Worker(
    `import(${JSON.stringify(TSX_API)}).then(({ register }) => { register(); return import(${JSON.stringify(ENTRY)}); });`,
    { eval: true, workerData: task },
  );
  const inbox: FromWorker[] = [];
  let failure: Error | null = null;
  let waiter: (() => void) | null = null;
  const wake = () => {
    const w = waiter;
    waiter = null;
    w?.();
  };
  worker.on('message', (message: FromWorker) => {
    if (message.type === 'error') {
      failure ??= message.name === 'CorrectnessError' ? new CorrectnessError(message.message) : new Error(message.message);
    } else {
      inbox.push(message);
    }
    wake();
  });
  worker.on('error', (error) => {
    failure ??= error;
    wake();
  });
  worker.on('exit', (code) => {
    failure ??= new Error(`client thread exited (code ${code})`);
    wake();
  });
  const thread: ClientThread = {
    send: (message) => worker.postMessage(message),
    eventLoopUtilization: (since) => (since ? worker.performance.eventLoopUtilization(since) : worker.performance.eventLoopUtilization()),
    async next(type, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const index = inbox.findIndex((m) => m.type === type);
        if (index !== -1) return inbox.splice(index, 1)[0] as Extract<FromWorker, { type: typeof type }>;
        if (failure) throw failure;
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`client thread (${task.task}): no "${type}" within ${timeoutMs} ms`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          waiter = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    },
    async close() {
      // Let the worker disconnect its sockets and abort its requests, then end it regardless.
      worker.postMessage({ type: 'close' } satisfies ToWorker);
      await thread.next('closed', 3_000).catch(() => undefined);
      worker.removeAllListeners('exit');
      await worker.terminate();
    },
  };
  try {
    await thread.next('ready', 60_000);
  } catch (error) {
    await thread.close();
    throw error;
  }
  return thread;
}
