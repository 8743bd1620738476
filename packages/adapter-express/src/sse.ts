/**
 * The Server-Sent Events log stream of one execution.
 *
 * The stream is a cursor over the store (`lastSent`): live batches are written straight through
 * when they continue the cursor and the client keeps up; otherwise (a gap, a slow client, the start
 * of the stream) the cursor catches up by reading the store, which already holds every published
 * line (persist, then publish). So a client gets each line exactly once, in order, from any
 * starting point, and a slow client costs store reads instead of server memory.
 */
import type { Execution, LogBatchEvent, LogLine, ScriptRunner } from '@scriptrunner/core';
import type { Request, Response } from 'express';

export interface SseOptions {
  /** Lines with seq <= this are not sent. */
  afterSeq: number;
  /** True when the client is an EventSource reconnecting (it sent Last-Event-ID). */
  reconnect: boolean;
  heartbeatMs: number;
  pageSize: number;
}

/** Resolves when the socket buffer drained, or the client went away (no 'drain' will ever come). */
export function drained(res: Response): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

function logEvent(lines: LogLine[]): string {
  return `id: ${lines[lines.length - 1]!.seq}\nevent: log\ndata: ${JSON.stringify(lines)}\n\n`;
}

export async function streamLogs(
  runner: ScriptRunner,
  executionId: string,
  req: Request,
  res: Response,
  options: SseOptions,
): Promise<void> {
  let lastSent = options.afterSeq;
  let closed = false;
  let catchingUp = true;
  let dirty = true;
  let loop: Promise<void> | null = null;
  let finished: Execution | null = null;
  let heartbeat: NodeJS.Timeout | null = null;

  const cleanup = () => {
    closed = true;
    runner.off('execution:log', onLog);
    runner.off('execution:finished', onFinished);
    if (heartbeat) clearInterval(heartbeat);
  };

  const write = (chunk: string): boolean => res.write(chunk);

  const wake = () => {
    dirty = true;
    loop ??= catchUp().finally(() => {
      loop = null;
    });
  };

  function onLog(batch: LogBatchEvent): void {
    if (batch.executionId !== executionId || closed) return;
    const first = batch.lines[0];
    if (!catchingUp && first && first.seq === lastSent + 1) {
      lastSent = batch.lines[batch.lines.length - 1]!.seq;
      // A full socket buffer: stop writing live, and let the cursor catch up once it drains.
      if (!write(logEvent(batch.lines))) {
        catchingUp = true;
        wake();
      }
      return;
    }
    if (!catchingUp && first && first.seq <= lastSent) return;
    catchingUp = true;
    wake();
  }

  function onFinished(execution: Execution): void {
    if (execution.id !== executionId || closed) return;
    finished = execution;
    catchingUp = true;
    wake();
  }

  async function catchUp(): Promise<void> {
    try {
      while (dirty && !closed) {
        dirty = false;
        for (;;) {
          if (res.writableNeedDrain) await drained(res);
          if (closed) return;
          const page = await runner.readLogs(executionId, { afterSeq: lastSent, limit: options.pageSize });
          if (closed) return;
          const fresh = page.filter((line) => line.seq > lastSent);
          if (fresh.length === 0) break;
          lastSent = fresh[fresh.length - 1]!.seq;
          write(logEvent(fresh));
          if (page.length < options.pageSize) break;
        }
      }
      if (closed) return;
      if (finished) {
        // finished is published after the last batch, so the store is complete: the cursor is at the end.
        write(`event: end\ndata: ${JSON.stringify(finished)}\n\n`);
        cleanup();
        res.end();
        return;
      }
      catchingUp = false;
    } catch (error) {
      // The store failed mid-stream: tell the client and close; it resumes with Last-Event-ID.
      if (!closed) {
        write(`event: error\ndata: ${JSON.stringify({ code: 'store', message: error instanceof Error ? error.message : String(error) })}\n\n`);
        cleanup();
        res.end();
      }
    }
  }

  // Listen before reading anything, so nothing published from now on can be missed.
  runner.on('execution:log', onLog);
  runner.on('execution:finished', onFinished);
  req.on('close', cleanup);
  res.on('close', cleanup);

  let execution: Execution;
  try {
    execution = await runner.getExecution(executionId);
  } catch (error) {
    cleanup();
    throw error;
  }
  if (execution.status !== 'queued' && execution.status !== 'running') {
    finished ??= execution;
    // An EventSource that reconnects after the end would loop forever; 204 tells it to stop.
    if (options.reconnect && lastSent >= execution.lineCount) {
      cleanup();
      res.status(204).end();
      return;
    }
  }

  res.writeHead(200, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-cache, no-transform',
    Connection: 'keep-alive',
    // Proxies such as nginx would otherwise buffer the stream and break liveness.
    'X-Accel-Buffering': 'no',
  });
  write(`retry: 2000\n\n`);
  heartbeat = setInterval(() => {
    if (!closed && !res.writableNeedDrain) write(`: keepalive ${Date.now()}\n\n`);
  }, options.heartbeatMs);
  heartbeat.unref();
  wake();
}
