/**
 * The Server-Sent Events framing of `runner.follow()`: `id:` = the last seq of each batch (so an
 * EventSource resumes with Last-Event-ID), `event: log` / `progress` / `end` / `error`, comment
 * heartbeats while idle. Everything else — exactly once, catch-up pacing, bounded memory — is the
 * follow's; this generator is pulled by the face one event at a time as the client drains.
 */
import { isScriptRunnerError, type FollowItem, type LogFollow } from '@scriptrunner/core';

const IDLE = Symbol('idle');

export async function* sseEvents(follow: LogFollow, heartbeatMs: number): AsyncGenerator<string> {
  yield 'retry: 2000\n\n';
  let pending: Promise<IteratorResult<FollowItem, undefined>> | null = null;
  let timer: NodeJS.Timeout | undefined;
  try {
    for (;;) {
      pending ??= follow.next();
      const idle = new Promise<typeof IDLE>((resolve) => {
        timer = setTimeout(() => resolve(IDLE), heartbeatMs);
      });
      const result = await Promise.race([pending, idle]);
      clearTimeout(timer);
      if (result === IDLE) {
        // The follow's next() stays pending; it is awaited again on the next turn.
        yield `: keepalive ${Date.now()}\n\n`;
        continue;
      }
      pending = null;
      if (result.done) return;
      const item = result.value;
      if (item.type === 'lines') {
        yield `id: ${item.lines[item.lines.length - 1]!.seq}\nevent: log\ndata: ${JSON.stringify(item.lines)}\n\n`;
      } else if (item.type === 'progress') {
        yield `event: progress\ndata: ${JSON.stringify(item.progress)}\n\n`;
      } else {
        yield `event: end\ndata: ${JSON.stringify(item.execution)}\n\n`;
        return;
      }
    }
  } catch (error) {
    // The store failed mid-stream: tell the client and end; it resumes with Last-Event-ID.
    const code = isScriptRunnerError(error) ? error.code : 'internal';
    yield `event: error\ndata: ${JSON.stringify({ code, message: error instanceof Error ? error.message : String(error) })}\n\n`;
  } finally {
    clearTimeout(timer);
    follow.close();
  }
}
