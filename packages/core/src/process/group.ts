import { readdirSync, readFileSync } from 'node:fs';

/**
 * Signals a whole process group. The child is spawned `detached`, which makes it the leader of a new
 * group (and session), so its children and grandchildren share the group id = its pid.
 * Returns false when the group no longer exists (or cannot be signalled); never throws, because a
 * kill is always best effort on the way to ending a run.
 */
export function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

/**
 * Signals every process of a group except one. A sandbox's outer bubblewrap process dies of
 * SIGTERM and takes the sandbox with it at once (SIGKILL, --die-with-parent), so a graceful stop
 * sends SIGTERM to the script's processes around it and leaves bwrap to exit when they have.
 * Returns false when no process was signalled. Linux only (reads /proc); never throws.
 */
export function signalGroupExcept(pgid: number, signal: NodeJS.Signals, except: number): boolean {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return signalGroup(pgid, signal);
  }
  let sent = false;
  for (const entry of entries) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === except) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    // pid (comm) state ppid pgrp …; comm may contain spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) !== pgid) continue;
    try {
      process.kill(pid, signal);
      sent = true;
    } catch {
      // gone meanwhile
    }
  }
  return sent;
}
