/**
 * Starts web-node.ts and worker.ts as their own OS processes (`node --import tsx`), used by the
 * scale test and by the bench's scaleout row. Each prints JSON lines on stdout; the first with a
 * `port` or `ready: true` means it is up.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { reapWithParent } from '../../../../scripts/test-support/reaper.js';

const here = dirname(fileURLToPath(import.meta.url));

export type NodeMessage = Record<string, unknown>;

export interface NodeProcess {
  name: string;
  process: ChildProcess;
  /** JSON lines the process printed. */
  messages: NodeMessage[];
  stderr: string[];
  exited: Promise<void>;
  /** Calls `listener` with every JSON line printed from now on; returns the unsubscribe. */
  onMessage(listener: (message: NodeMessage) => void): () => void;
}

/** Starts `file` (`web-node.ts` or `worker.ts`, next to this file) with `env` over this process's env. */
export function startNode(name: string, file: string, env: Record<string, string>, timeoutMs = 30_000): Promise<NodeProcess> {
  const child = reapWithParent(
    spawn(process.execPath, ['--import', 'tsx', join(here, file)], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  const listeners = new Set<(message: NodeMessage) => void>();
  const node: NodeProcess = {
    name,
    process: child,
    messages: [],
    stderr: [],
    exited: new Promise((resolve) => child.once('exit', () => resolve())),
    onMessage(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
  createInterface({ input: child.stderr! }).on('line', (line) => node.stderr.push(line));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} did not start within ${timeoutMs} ms: ${node.stderr.join('\n')}`));
    }, timeoutMs);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let message: NodeMessage;
      try {
        message = JSON.parse(line) as NodeMessage;
      } catch {
        return;
      }
      node.messages.push(message);
      for (const listener of listeners) listener(message);
      if (message.port !== undefined || message.ready === true) {
        clearTimeout(timer);
        resolve(node);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with ${code}: ${node.stderr.join('\n')}`));
    });
  });
}

/** SIGTERM (the node closes its runner), SIGKILL if it is still there after `graceMs`. */
export async function stopNode(node: NodeProcess | undefined, graceMs = 10_000): Promise<void> {
  if (!node || node.process.exitCode !== null || node.process.signalCode !== null) return;
  node.process.kill('SIGTERM');
  const timer = setTimeout(() => node.process.kill('SIGKILL'), graceMs);
  await node.exited;
  clearTimeout(timer);
}

/** `http://127.0.0.1:<port>` of a started web node. */
export function originOf(node: NodeProcess): string {
  const port = node.messages.find((m) => m.port !== undefined)?.port;
  if (port === undefined) throw new Error(`${node.name} has not printed its port`);
  return `http://127.0.0.1:${String(port)}`;
}
