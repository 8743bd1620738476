/**
 * Servers that the test suites and the bench start — PostgreSQL (pg_ctl daemonizes it),
 * redis-server, demo and web-node processes — must not outlive the process that started them when
 * it is interrupted: Ctrl-C, SIGTERM from a time limit, even SIGKILL. Node runs no cleanup in those
 * cases, so each process gets one watchdog: a detached `sh` that waits for it to end and then runs
 * the cleanup commands still registered. After a clean shutdown every server has unregistered
 * itself and the watchdog only removes its own directory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const WATCHDOG = `
while kill -0 "$1" 2>/dev/null; do sleep 0.5; done
[ -f "$2" ] && sh "$2" >/dev/null 2>&1
rm -rf "$3"
`;

let file: string | null = null;
const commands = new Map<number, string>();
let nextId = 1;

const quote = (arg: string) => `'${arg.replaceAll("'", `'\\''`)}'`;

function save(): void {
  writeFileSync(file!, [...commands.values(), 'wait'].join('\n') + '\n');
}

function ensureWatchdog(): void {
  if (file !== null) return;
  const dir = mkdtempSync(join(tmpdir(), 'sr-reaper-'));
  file = join(dir, 'cleanup.sh');
  save();
  spawn('sh', ['-c', WATCHDOG, 'sr-reaper', String(process.pid), file, dir], { detached: true, stdio: 'ignore' }).unref();
}

/** Cleanup steps, each an argv (quoted, no shell), run one after the other. */
export type Steps = string[][];

export interface Guard {
  /** Replaces the steps (e.g. a stopped server needs only its directory removed). */
  set(steps: Steps): void;
  /** Nothing left to clean up. */
  release(): void;
}

/**
 * Runs `steps` if this process dies before `release()`. Each guard's steps run in order; the
 * guards of one process run side by side.
 */
export function onAbnormalExit(steps: Steps): Guard {
  ensureWatchdog();
  const id = nextId++;
  const guard: Guard = {
    set(next) {
      commands.set(id, `(${next.map((argv) => argv.map(quote).join(' ')).join('; ')}) &`);
      save();
    },
    release() {
      if (commands.delete(id)) save();
    },
  };
  guard.set(steps);
  return guard;
}

/**
 * A child server that ends with this process: SIGTERM (it may stop its own children), then SIGKILL
 * two seconds later. Unregistered by itself when the child exits.
 */
export function reapWithParent(child: ChildProcess): ChildProcess {
  if (child.pid === undefined) return child;
  const pid = String(child.pid);
  const guard = onAbnormalExit([['kill', '-TERM', pid], ['sleep', '2'], ['kill', '-KILL', pid]]);
  child.once('exit', () => guard.release());
  return child;
}
