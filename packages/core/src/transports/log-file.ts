/**
 * The `logDir` option as an ordinary transport: each execution run here also writes
 * `<logDir>/<executionId>.log` as plain text (stdout lines as they are, others prefixed with
 * `[stderr]` / `[system]`).
 *
 * It is paced: when the disk is slower than the script, the promise `publish` returns holds the
 * execution's next batch back, so the runner stops reading the script's output (backpressure)
 * instead of buffering the file's backlog in memory.
 */
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { describeError, ScriptRunnerError } from '../errors.js';
import type { Transport } from '../transport.js';
import type { LogLine, RunnerEvent } from '../types.js';

interface OpenFile {
  stream: WriteStream;
  /** The first write error; the file is given up and the error reported once. */
  error: Error | null;
  reported: boolean;
}

function render(lines: LogLine[]): string {
  let text = '';
  for (const line of lines) text += line.stream === 'stdout' ? `${line.text}\n` : `[${line.stream}] ${line.text}\n`;
  return text;
}

export function logFileTransport(dir: string): Transport {
  const files = new Map<string, OpenFile>();

  /** The file's error, once: the runner reports it, later batches are skipped quietly. */
  const failure = (file: OpenFile): Error | null => {
    if (file.error === null || file.reported) return null;
    file.reported = true;
    file.stream.destroy();
    return new ScriptRunnerError('store', `could not write the log file: ${file.error.message}`, { cause: file.error });
  };

  const open = (executionId: string): OpenFile | Error => {
    try {
      mkdirSync(dir, { recursive: true });
      const file: OpenFile = { stream: createWriteStream(join(dir, `${executionId}.log`)), error: null, reported: false };
      // Errors surface through the write that meets them; without a listener one would throw.
      file.stream.on('error', (error) => {
        file.error ??= error;
      });
      files.set(executionId, file);
      return file;
    } catch (error) {
      return new ScriptRunnerError('store', `could not open the log file: ${describeError(error)}`, { cause: error });
    }
  };

  const write = (file: OpenFile, text: string): Promise<void> | void => {
    if (file.error !== null) {
      const error = failure(file);
      return error ? Promise.reject(error) : undefined;
    }
    if (file.stream.write(text)) return;
    // The stream's buffer is full: the next batch waits until the disk has taken this one.
    return new Promise<void>((resolve, reject) => {
      const done = () => {
        file.stream.off('drain', done);
        file.stream.off('close', done);
        const error = failure(file);
        if (error) reject(error);
        else resolve();
      };
      file.stream.on('drain', done);
      file.stream.on('close', done);
    });
  };

  const end = (executionId: string): Promise<void> => {
    const file = files.get(executionId);
    files.delete(executionId);
    if (!file) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const settle = () => {
        const error = failure(file);
        if (error) reject(error);
        else resolve();
      };
      if (file.error !== null || file.stream.destroyed) settle();
      else file.stream.end(settle);
    });
  };

  return {
    paced: true,
    publish(event: RunnerEvent): void | Promise<void> {
      if (event.type === 'execution:started') {
        const opened = open(event.data.id);
        if (opened instanceof Error) throw opened;
        return;
      }
      if (event.type === 'execution:log') {
        const file = files.get(event.data.executionId);
        if (file) return write(file, render(event.data.lines));
        return;
      }
      // After the last batch: the file is complete when the run's end is published.
      if (event.type === 'execution:finished') return end(event.data.id);
    },
    async close() {
      await Promise.all([...files.keys()].map((id) => end(id).catch(() => undefined)));
    },
  };
}
