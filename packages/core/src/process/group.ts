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
