/**
 * The process side of a run: spawn the (wrapped) command in a new process group, read its two
 * pipes, stop the whole group (SIGTERM, then SIGKILL after a grace period), and decide when it is
 * over. Knows nothing of lines, stores or records: chunks go to `onData`, notable moments to
 * `onNotice` (the run turns them into system lines).
 *
 * "Over" means the main process exited and both pipes reached EOF — or, when a background process
 * keeps a pipe open after the main process exited, drainTimeoutMs later the group is killed, and
 * a pipe that still does not end (a process escaped the group) is abandoned.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import type { Readable } from 'node:stream';
import { describeError } from '../errors.js';
import { signalGroup, signalGroupExcept } from './group.js';
import type { SpawnSpec } from './isolation.js';
import { commandProblem } from './which.js';

/** After a forced kill, how long to wait for pipes to reach EOF before abandoning them. */
const ABANDON_PIPES_MS = 2000;
/** Signal numbers of this platform, for exit codes a sandbox's init reports as 128 + N. */
const SIGNAL_NAMES = new Map<number, string>(Object.entries(osConstants.signals).map(([name, number]) => [number, name]));

export type OutputStream = 'stdout' | 'stderr';

export interface ProcessOptions {
  runAs: { uid: number; gid: number } | undefined;
  /** The group leader is a sandbox (bubblewrap) that must not get the graceful SIGTERM itself. */
  sandboxLeader: boolean;
  /** The sandbox reports death by signal N as exit code 128 + N: read it back as the signal. */
  signalsAsExitCodes: boolean;
  /** Look the interpreter up first (unwrapped commands), so a missing one reads ENOENT/EACCES. */
  checkCommand: { command: string; path: string } | null;
  drainTimeoutMs: number;
  onData(stream: OutputStream, chunk: Buffer): void;
  /** The stream reached EOF or was abandoned. */
  onEnd(stream: OutputStream): void;
  onNotice(level: 'warn' | 'error', text: string): void;
  /** A failure after the start (not a spawn error); reported, never thrown. */
  onError(error: Error): void;
}

export interface ProcessExit {
  exitCode: number | null;
  signal: string | null;
}

/** Why a spawn failed, with the errno-like code Node gives (ENOENT, EACCES, EMFILE …) when known. */
export class SpawnFailure extends Error {}

export class ScriptProcess {
  private exit: ProcessExit | null = null;
  private readonly timers = new Set<NodeJS.Timeout>();
  private stopping = false;

  private constructor(
    private readonly child: ChildProcess,
    /** Process group id (= the leader's pid). */
    readonly pgid: number,
    private readonly options: ProcessOptions,
    /** Settles when the process exited and both pipes ended (or were abandoned). */
    readonly done: Promise<ProcessExit>,
  ) {}

  /** Spawns `spec`; resolves with the running process or the reason it could not start. Never rejects. */
  static async start(spec: SpawnSpec, options: ProcessOptions): Promise<ScriptProcess | SpawnFailure> {
    if (options.checkCommand) {
      // prlimit would exec the interpreter itself and only print why it could not: look it up
      // first, so a missing or non-executable interpreter reads as it would without limits.
      const { command, path } = options.checkCommand;
      const problem = commandProblem(command, path, spec.cwd);
      if (problem !== null) return Object.assign(new SpawnFailure(`spawn ${command} ${problem}`), { code: problem });
    }
    let child: ChildProcess;
    try {
      child = spawn(spec.command, spec.args, {
        cwd: spec.cwd,
        env: spec.env,
        // A new process group (and session): the whole tree can be signalled at once.
        detached: true,
        shell: false,
        stdio: ['ignore', 'pipe', 'pipe'],
        ...(options.runAs ? { uid: options.runAs.uid, gid: options.runAs.gid } : {}),
      });
    } catch (error) {
      // Synchronous spawn failures (invalid arguments) read like asynchronous ones.
      return new SpawnFailure(describeError(error));
    }
    // Listen before anything else: an 'error' without a listener would take the host down.
    let spawnError: Error | null = null;
    let started = false;
    const failedToStart = new Promise<void>((resolve) => {
      child.on('error', (error) => {
        if (started) options.onError(error);
        else {
          spawnError = error;
          resolve();
        }
      });
    });
    if (child.pid === undefined || !child.stdout || !child.stderr) {
      // The spawn failed (ENOENT, EACCES, EMFILE …): Node reports why on the next tick. Without a
      // pid (or without pipes, when out of file descriptors) there is nothing to wait for.
      child.stdout?.destroy();
      child.stderr?.destroy();
      await Promise.race([failedToStart, new Promise((r) => setTimeout(r, 1000).unref())]);
      if (child.pid !== undefined) signalGroup(child.pid, 'SIGKILL');
      return new SpawnFailure((spawnError as Error | null)?.message ?? 'the process did not start');
    }
    started = true;
    let resolveDone!: (exit: ProcessExit) => void;
    const done = new Promise<ProcessExit>((r) => {
      resolveDone = r;
    });
    const proc = new ScriptProcess(child, child.pid, options, done);
    proc.follow(child.stdout, child.stderr, resolveDone);
    return proc;
  }

  get exited(): boolean {
    return this.exit !== null;
  }

  /** Stops reading the pipes (the child blocks on a full pipe) or reads again. */
  setPaused(paused: boolean): void {
    for (const stream of [this.child.stdout, this.child.stderr]) {
      if (!stream || stream.destroyed) continue;
      if (paused) stream.pause();
      else stream.resume();
    }
  }

  /**
   * SIGTERM to the group, SIGKILL after `graceMs`. In a sandbox the leader is bubblewrap, whose
   * death would SIGKILL the sandbox at once: the graceful signal goes to the processes around it.
   */
  terminate(graceMs: number): void {
    if (this.stopping || this.exit !== null) return;
    this.stopping = true;
    if (this.options.sandboxLeader) signalGroupExcept(this.pgid, 'SIGTERM', this.pgid);
    else signalGroup(this.pgid, 'SIGTERM');
    this.after(graceMs, () => {
      if (signalGroup(this.pgid, 'SIGKILL') && this.exit === null) {
        this.options.onNotice('warn', `still running ${graceMs} ms after SIGTERM; sent SIGKILL`);
      }
    });
  }

  private follow(stdout: Readable, stderr: Readable, resolve: (exit: ProcessExit) => void): void {
    let open = 2;
    const check = () => {
      if (this.exit === null || open > 0) return;
      for (const timer of this.timers) clearTimeout(timer);
      this.timers.clear();
      // Whatever is left of the group (background processes that closed their output) goes too:
      // nothing a run started outlives it.
      signalGroup(this.pgid, 'SIGKILL');
      resolve(this.exit);
    };
    const read = (stream: Readable, name: OutputStream) => {
      stream.on('data', (chunk: Buffer) => this.options.onData(name, chunk));
      stream.on('error', () => {
        // A pipe error ends the stream like EOF; 'close' follows.
      });
      stream.once('close', () => {
        this.options.onEnd(name);
        open--;
        check();
      });
    };
    read(stdout, 'stdout');
    read(stderr, 'stderr');
    this.child.once('exit', (code, signal) => {
      // bubblewrap's init reports a script killed by signal N as exit code 128 + N (the shell
      // convention); read it back as the signal, so the record is the same in every mode.
      const sandboxSignal = code !== null && code > 128 ? SIGNAL_NAMES.get(code - 128) : undefined;
      this.exit =
        this.options.signalsAsExitCodes && sandboxSignal !== undefined
          ? { exitCode: null, signal: sandboxSignal }
          : { exitCode: code, signal };
      this.afterExit(stdout, stderr);
      check();
    });
  }

  /** Output still in the pipes is read to EOF, but a background process may not hold the run. */
  private afterExit(stdout: Readable, stderr: Readable): void {
    if (stdout.closed && stderr.closed) return;
    const { drainTimeoutMs } = this.options;
    this.after(drainTimeoutMs, () => {
      if (stdout.closed && stderr.closed) return;
      if (signalGroup(this.pgid, 'SIGKILL')) {
        this.options.onNotice('warn', `the script exited but a background process kept its output open; killed it after ${drainTimeoutMs} ms`);
      }
      const abandon = () => {
        if (stdout.closed && stderr.closed) return;
        // Paused by backpressure: the data is still being stored, not stuck. Check again later.
        if (stdout.isPaused() || stderr.isPaused()) {
          this.after(ABANDON_PIPES_MS, abandon);
          return;
        }
        stdout.destroy();
        stderr.destroy();
      };
      this.after(ABANDON_PIPES_MS, abandon);
    });
  }

  private after(ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, ms);
    this.timers.add(timer);
  }
}
