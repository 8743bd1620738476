/**
 * Who scripts run as. When the host runs as root and scripts are sandboxed (isolation resolves to
 * bubblewrap), they run as an unprivileged user by default: root inside the sandbox could read
 * what is mounted in, and the kernel exempts root from RLIMIT_NPROC. `runAs: null` opts out.
 */
import { statSync } from 'node:fs';
import { dirname } from 'node:path';
import { describeError } from '../errors.js';
import { resolveIsolation, warnOnce, type IsolationMode, type IsolationWrapper, type ResolvedIsolation, type SandboxOptions } from './isolation.js';
import { validateRunAs } from './limits.js';

/** nobody:nogroup on Debian, Ubuntu, Alpine and in most containers. */
export const DEFAULT_RUN_AS: Readonly<{ uid: number; gid: number }> = Object.freeze({ uid: 65534, gid: 65534 });

export interface SandboxUserInput {
  isolation: IsolationMode | IsolationWrapper | undefined;
  /** The option as given: undefined takes the default, null opts out. */
  runAs: unknown;
  sandbox: SandboxOptions;
  workDir: string;
  /** workDir is the library's default, whose mode the runner sets (see createRunDirectory). */
  ownsWorkDir: boolean;
  logger: { warn(message: string): void };
  runtimeCommands: string[];
}

/**
 * The first directory on the way to `workDir` that does not let `user` through, or null. Directories
 * not made yet are created passable (0711), and the runner's own default root is made so too.
 */
function blockingDirectory(workDir: string, ownsWorkDir: boolean, user: { uid: number; gid: number }): string | null {
  for (let current = ownsWorkDir ? dirname(workDir) : workDir; ; current = dirname(current)) {
    try {
      const { mode, uid, gid } = statSync(current);
      const through = uid === user.uid ? (mode & 0o100) !== 0 : gid === user.gid ? (mode & 0o010) !== 0 : (mode & 0o001) !== 0;
      if (!through) return current;
    } catch {
      // not there yet
    }
    if (dirname(current) === current) return null;
  }
}

/**
 * Resolves the isolation wrapper together with the user scripts run as. The default user applies
 * when bubblewrap works for it and it can reach workDir; otherwise scripts run as root in the
 * sandbox and the runner says why once (pass `runAs: null` to choose that explicitly). Options are
 * checked now (throwing); the probes run in the background and the promise carries their answer.
 */
export function resolveSandboxUser(
  input: SandboxUserInput,
): Promise<{ isolation: ResolvedIsolation; runAs: { uid: number; gid: number } | undefined }> {
  const explicit = validateRunAs(input.runAs);
  const { isolation: mode, sandbox, logger, runtimeCommands } = input;
  const candidate = input.runAs === undefined && process.getuid?.() === 0 && typeof mode !== 'function' && mode !== 'none';
  if (!candidate) return resolveIsolation(mode, sandbox, explicit, logger, runtimeCommands).then((isolation) => ({ isolation, runAs: explicit }));

  // First as the default user, quietly: its warnings are only said if it is the one used.
  const said: string[] = [];
  const asDefault = resolveIsolation(mode, sandbox, DEFAULT_RUN_AS, { warn: (message) => said.push(message) }, runtimeCommands);
  const resolved = (async () => {
    let why: string;
    try {
      const isolation = await asDefault;
      const blocked = isolation.kind === 'bwrap' ? blockingDirectory(input.workDir, input.ownsWorkDir, DEFAULT_RUN_AS) : null;
      if (isolation.kind === 'bwrap' && blocked === null) {
        for (const message of said) warnOnce(logger, message);
        return { isolation, runAs: { ...DEFAULT_RUN_AS } };
      }
      why =
        blocked !== null
          ? `workDir: ${blocked} does not let uid ${DEFAULT_RUN_AS.uid} through (allow it with chmod o+x)`
          : (said.find((m) => m.includes('WITHOUT isolation')) ?? 'bubblewrap does not work for it');
    } catch (error) {
      why = describeError(error);
    }
    const isolation = await resolveIsolation(mode, sandbox, undefined, logger, runtimeCommands);
    if (isolation.kind === 'bwrap') {
      warnOnce(
        logger,
        `[scriptrunner] scripts run as ROOT inside the sandbox, not as uid ${DEFAULT_RUN_AS.uid} (the default when the host is root): ` +
          `${why.replace(/^\[scriptrunner\] /, '')}. Fix that, set runAs to a user that works, or pass runAs: null to accept root.`,
      );
    }
    return { isolation, runAs: undefined };
  })();
  resolved.catch(() => undefined);
  return resolved;
}
