/**
 * One run of one script, from a queued execution to its terminal state: run directory, spawn,
 * line pipeline, timeout/cancel, drain, final record. `run()` never rejects: every failure ends the
 * execution with a status and a reason.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { describeError, ScriptRunnerError } from './errors.js';
import { LogBatcher, type RetryPolicy } from './lines/batcher.js';
import { defaultClassifyLine } from './lines/classify.js';
import { LineSplitter } from './lines/splitter.js';
import { buildChildEnv } from './process/env.js';
import { signalGroup, signalGroupExcept } from './process/group.js';
import { commandProblem } from './process/which.js';
import type { ResolvedIsolation, SpawnSpec } from './process/isolation.js';
import type { ResolvedLimits } from './process/limits.js';
import type { RunCaps, RunCapsPolicy } from './process/run-caps.js';
import { createRunDirectory, removeRunDirectory, type RunDirectory } from './process/workdir.js';
import type { Store } from './store.js';
import type {
  Execution,
  ExecutionStatus,
  LineClassifier,
  LogLevel,
  LogLine,
  ProgressEvent,
  RuntimeConfig,
  Script,
} from './types.js';
import { withRetry } from './util.js';

export interface RunSettings {
  store: Store;
  killGraceMs: number;
  drainTimeoutMs: number;
  maxLineBytes: number;
  flushIntervalMs: number;
  maxBatchLines: number;
  progressIntervalMs: number;
  storeRetry: RetryPolicy;
  workDir: string;
  /** workDir is the default `<tmpdir>/scriptrunner`, not the caller's. */
  ownsWorkDir: boolean;
  keepWorkDir: boolean;
  logDir: string | null;
  classifyLine: LineClassifier;
  env: Record<string, string> | undefined;
  isolation: ResolvedIsolation;
  /** prlimit around the (wrapped) command, or identity. */
  applyLimits: (spec: SpawnSpec) => SpawnSpec;
  limits: ResolvedLimits;
  runAs: { uid: number; gid: number } | undefined;
  /** Whole-run caps (cgroup, size-capped run directory): see process/run-caps.ts. */
  caps: RunCapsPolicy;
  maxLogLines: number;
  maxLogBytes: number;
}

export interface RunHooks {
  started(execution: Execution): void;
  log(lines: LogLine[]): void;
  progress(progress: ProgressEvent): void;
  error(error: Error): void;
}

export interface RunRequest {
  execution: Execution;
  script: Script;
  runtime: RuntimeConfig;
  env: Record<string, string> | undefined;
  /** 0 = no timeout. */
  timeoutMs: number;
}

type StopReason = 'cancelled' | 'timed_out' | 'interrupted' | 'output_limit';

const STDERR_TAIL_LINES = 20;
const STDERR_TAIL_LINE_CHARS = 500;
/** After a forced kill, how long to wait for pipes to reach EOF before abandoning them. */
const ABANDON_PIPES_MS = 2000;
/** Signal numbers of Linux (x86, arm), for exit codes a sandbox's init reports as 128 + N. */
const SIGNAL_NAMES = new Map<number, string>(
  Object.entries(osConstants.signals).map(([name, number]) => [number, name]),
);

export class ExecutionRun {
  private stopReason: StopReason | null = null;
  private stopMessage: string | null = null;
  private child: ChildProcess | null = null;
  private pgid: number | null = null;
  private exited = false;
  private exitCode: number | null = null;
  private exitSignal: string | null = null;
  private spawnError: Error | null = null;
  private storeError: unknown = null;
  private truncated = false;
  /** stdout/stderr lines and their bytes kept so far, against maxLogLines / maxLogBytes. */
  private outputLines = 0;
  private outputBytes = 0;
  /** Why output stopped being kept (a cap was hit); the run ends `failed` with this reason. */
  private outputLimit: string | null = null;
  private readonly stderrTail: string[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly batcher: LogBatcher;
  private readTime = new Date();
  private logFile: WriteStream | null = null;
  private readonly progress = new Map<'stdout' | 'stderr', { text: string | null; last: number; timer: NodeJS.Timeout | null }>();
  private finished = false;
  /** False when the store refused the final record even after retries. */
  finalSaved = false;
  /** The child is gone (or never came): stops are ignored from here on. */
  private ending = false;
  private caps: RunCaps | null = null;

  constructor(
    private readonly request: RunRequest,
    private readonly settings: RunSettings,
    private readonly hooks: RunHooks,
  ) {
    const { execution } = request;
    this.batcher = new LogBatcher({
      executionId: execution.id,
      store: settings.store,
      maxBatchLines: settings.maxBatchLines,
      flushIntervalMs: settings.flushIntervalMs,
      retry: settings.storeRetry,
      onPersisted: (lines) => this.published(lines),
      onBackpressure: (paused) => this.setPaused(paused),
      onRetry: (error, attempt) =>
        hooks.error(
          new ScriptRunnerError('store', `storing log lines of ${execution.id} failed (attempt ${attempt}), retrying: ${describeError(error)}`, {
            cause: error,
            details: { executionId: execution.id, attempt },
          }),
        ),
      onFatal: (error) => this.storeFailed(error),
    });
  }

  /** Lines the store has accepted so far. */
  get persistedLineCount(): number {
    return this.batcher.persistedSeq;
  }

  /**
   * Asks the run to end. Before the spawn it never starts; while running, the whole process group
   * gets SIGTERM, then SIGKILL after killGraceMs. The first reason wins.
   */
  stop(reason: StopReason, message: string): void {
    // Once the child has exited (or the run failed before it had one) the outcome is settled.
    if (this.stopReason !== null || this.exited || this.ending) return;
    this.stopReason = reason;
    this.stopMessage = message;
    if (this.pgid === null) return;
    this.systemLine(reason === 'timed_out' ? 'error' : 'warn', `${message}; stopping the process group (SIGTERM)`);
    // In a sandbox the group leader is bwrap itself: SIGTERM goes to the script's processes only.
    if (this.settings.isolation.kind === 'bwrap') signalGroupExcept(this.pgid, 'SIGTERM', this.pgid);
    else signalGroup(this.pgid, 'SIGTERM');
    this.after(this.settings.killGraceMs, () => {
      if (this.pgid !== null && signalGroup(this.pgid, 'SIGKILL') && !this.exited) {
        this.systemLine('warn', `still running ${this.settings.killGraceMs} ms after SIGTERM; sent SIGKILL`);
      }
    });
  }

  async run(): Promise<Execution> {
    const { execution } = this.request;
    let runDir: RunDirectory | null = null;
    let started: Execution = execution;
    const caps = (this.caps = this.settings.caps.forRun(execution.id, (text) => this.systemLine('error', text)));
    try {
      if (this.stopReason === null) {
        const content = await this.settings.store.getScriptContent(this.request.script.id);
        if (content === null) throw new ScriptRunnerError('not_found', `the content of script ${this.request.script.id} is missing from the store`);
        runDir = await createRunDirectory(
          this.settings.workDir,
          execution.id,
          this.request.script.filename,
          content,
          this.settings.runAs,
          this.settings.ownsWorkDir,
          (path) => caps.setUp(path),
        );
      }
      // A stop that arrived while the directory was prepared: the run never starts.
      if (this.stopReason === null) {
        const startedAt = new Date();
        started =
          (await withRetry(
            () => this.settings.store.updateExecution(execution.id, { status: 'running', startedAt }),
            this.settings.storeRetry,
          )) ?? { ...execution, status: 'running', startedAt };
        this.openLogFile();
        this.hooks.started(started);
        if (this.stopReason === null && runDir !== null) await this.spawnAndWait(runDir);
      }
    } catch (error) {
      this.spawnError ??= error instanceof Error ? error : new Error(String(error));
      this.systemLine('error', `could not run the script: ${describeError(error)}`);
    }
    this.ending = true;
    this.clearTimers();
    await this.batcher.drain();
    const final = this.finalRecord(started);
    // Before the record says the run is over: whoever waits for it finds its processes, cgroup and
    // mount gone (the run directory's files too, unless keepWorkDir copied them out).
    await caps.release(this.settings.keepWorkDir).catch((error: unknown) => this.hooks.error(error instanceof Error ? error : new Error(String(error))));
    const stored = await withRetry(
      () => this.settings.store.updateExecution(execution.id, final),
      this.settings.storeRetry,
    ).catch((error: unknown) => {
      this.hooks.error(
        new ScriptRunnerError('store', `could not store the result of execution ${execution.id}: ${describeError(error)}`, {
          cause: error,
          details: { executionId: execution.id },
        }),
      );
      return null;
    });
    this.finished = true;
    this.finalSaved = stored !== null;
    await this.closeLogFile();
    if (runDir !== null && !this.settings.keepWorkDir) {
      await removeRunDirectory(runDir).catch((error: unknown) => this.hooks.error(error instanceof Error ? error : new Error(String(error))));
    }
    return stored ?? { ...started, ...final };
  }

  private async spawnAndWait(runDir: RunDirectory): Promise<void> {
    const { runtime, execution } = this.request;
    const env = buildChildEnv(process.env, runDir.path, runDir.tmp, runtime.env, this.settings.env, this.request.env);
    const caps = this.caps!;
    const spec = caps.wrap(
      this.settings.applyLimits(
        this.settings.isolation.wrap(
          { command: runtime.command, args: [...runtime.args, runDir.scriptPath, ...execution.args], cwd: runDir.path, env },
          { runDir: runDir.path, tmpDir: runDir.tmp },
        ),
      ),
    );
    const runAs = caps.spawnAs;
    if (this.settings.isolation.kind === 'none') {
      // prlimit would exec the interpreter itself and only print why it could not: look it up
      // first, so a missing or non-executable interpreter reads as before (ENOENT, EACCES).
      const problem = commandProblem(runtime.command, env.PATH ?? '', spec.cwd);
      if (problem !== null) {
        this.spawnError = Object.assign(new Error(`spawn ${runtime.command} ${problem}`), { code: problem });
        this.systemLine('error', `could not start "${runtime.command}": ${this.spawnError.message}`);
        return;
      }
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
        ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}),
      });
    } catch (error) {
      // Synchronous spawn failures (invalid arguments) are reported like asynchronous ones.
      this.spawnError = error instanceof Error ? error : new Error(String(error));
      this.systemLine('error', `could not start "${runtime.command}": ${describeError(error)}`);
      return;
    }
    this.child = child;
    // Listen before anything else: an 'error' without a listener would take the host down.
    let spawnFailed: (() => void) | null = null;
    child.on('error', (error) => {
      if (this.pgid === null) {
        this.spawnError = error;
        this.systemLine('error', `could not start "${runtime.command}": ${error.message}`);
        spawnFailed?.();
      } else {
        this.hooks.error(error);
      }
    });
    if (child.pid === undefined || !child.stdout || !child.stderr) {
      // The spawn failed (ENOENT, EACCES, EMFILE ...): Node reports why on the next tick. Without
      // a pid (or without pipes, when out of file descriptors) there is nothing to wait for.
      child.stdout?.destroy();
      child.stderr?.destroy();
      if (this.spawnError === null) {
        await new Promise<void>((resolve) => {
          spawnFailed = resolve;
          setTimeout(resolve, 1000).unref();
        });
      }
      this.spawnError ??= new Error('the process did not start');
      if (child.pid !== undefined) signalGroup(child.pid, 'SIGKILL');
      return;
    }
    this.pgid = child.pid;

    const stdout = child.stdout;
    const stderr = child.stderr;
    let open = 2;
    await new Promise<void>((resolve) => {
      const check = () => {
        if (this.exited && open === 0) resolve();
      };
      const follow = (stream: Readable, name: 'stdout' | 'stderr') => {
        const splitter = new LineSplitter(this.settings.maxLineBytes, {
          line: (text, truncated) => this.line(name, text, truncated),
          progress: (text) => this.progressUpdate(name, text),
        });
        stream.on('data', (chunk: Buffer) => {
          this.readTime = new Date();
          splitter.push(chunk);
          this.batcher.kick();
        });
        stream.on('error', () => {
          // A pipe error ends the stream like EOF; 'close' follows.
        });
        stream.once('close', () => {
          this.readTime = new Date();
          splitter.end();
          this.batcher.kick();
          open--;
          check();
        });
      };
      follow(stdout, 'stdout');
      follow(stderr, 'stderr');

      child.once('exit', (code, signal) => {
        this.exited = true;
        this.exitCode = code;
        this.exitSignal = signal;
        // bubblewrap's init reports a script killed by signal N as exit code 128 + N (the shell
        // convention); read it back as the signal, so the record is the same in every mode.
        const sandboxSignal = code !== null && code > 128 ? SIGNAL_NAMES.get(code - 128) : undefined;
        if (this.settings.isolation.signalsAsExitCodes && sandboxSignal !== undefined) {
          this.exitCode = null;
          this.exitSignal = sandboxSignal;
        }
        this.afterExit(stdout, stderr);
        check();
      });
      if (this.request.timeoutMs > 0) {
        this.after(this.request.timeoutMs, () => this.stop('timed_out', `timed out after ${this.request.timeoutMs} ms`));
      }
      // A stop requested between the start of the spawn and now takes effect immediately.
      if (this.stopReason !== null && this.pgid !== null) {
        const reason = this.stopReason;
        const message = this.stopMessage ?? reason;
        this.stopReason = null;
        this.stop(reason, message);
      }
    });
    this.flushProgressTimers();
    // Whatever is left of the group (background processes that closed their output) goes too:
    // nothing a run started outlives it.
    if (this.pgid !== null) signalGroup(this.pgid, 'SIGKILL');
    await caps.killAll();
  }

  /**
   * The main process exited. Output still in the pipes is read to EOF, but a background process that
   * keeps a pipe open may not hold the execution: after drainTimeoutMs the group is killed, and if a
   * pipe still has not ended (a process escaped the group) it is abandoned.
   */
  private afterExit(stdout: Readable, stderr: Readable): void {
    if (stdout.closed && stderr.closed) return;
    this.after(this.settings.drainTimeoutMs, () => {
      if (stdout.closed && stderr.closed) return;
      if (this.pgid !== null && signalGroup(this.pgid, 'SIGKILL')) {
        this.systemLine(
          'warn',
          `the script exited but a background process kept its output open; killed it after ${this.settings.drainTimeoutMs} ms`,
        );
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

  private line(stream: 'stdout' | 'stderr', text: string, truncated: boolean): void {
    if (this.outputLimit !== null) return;
    const bytes = Buffer.byteLength(text);
    if (this.outputLines + 1 > this.settings.maxLogLines) {
      this.overLimit(`the script printed more than ${this.settings.maxLogLines} lines (maxLogLines)`);
      return;
    }
    if (this.outputBytes + bytes > this.settings.maxLogBytes) {
      this.overLimit(`the script printed more than ${this.settings.maxLogBytes} bytes (maxLogBytes)`);
      return;
    }
    this.outputLines++;
    this.outputBytes += bytes;
    if (truncated) this.truncated = true;
    let level: LogLevel;
    try {
      level = this.settings.classifyLine(text, stream);
      if (level !== 'info' && level !== 'warn' && level !== 'error') level = defaultClassifyLine(text, stream);
    } catch {
      level = defaultClassifyLine(text, stream);
    }
    if (stream === 'stderr') {
      this.stderrTail.push(text.length > STDERR_TAIL_LINE_CHARS ? `${text.slice(0, STDERR_TAIL_LINE_CHARS)}…` : text);
      if (this.stderrTail.length > STDERR_TAIL_LINES) this.stderrTail.shift();
    }
    this.batcher.add(stream, level, text, this.readTime);
    // A finished line supersedes the progress text it may have been built from.
    const progress = this.progress.get(stream);
    if (progress) progress.text = null;
  }

  /** A cap was hit: keep nothing more, say why, and stop the run (it ends `failed`). */
  private overLimit(reason: string): void {
    this.outputLimit = reason;
    this.truncated = true;
    this.systemLine('error', `output limit reached: ${reason}; the rest of the output is not kept`);
    this.stop('output_limit', `stopped: ${reason}`);
  }

  private systemLine(level: LogLevel, text: string): void {
    this.batcher.add('system', level, `[scriptrunner] ${text}`, new Date());
    this.batcher.kick();
  }

  /** Progress events are throttled per stream to one per progressIntervalMs, latest text wins. */
  private progressUpdate(stream: 'stdout' | 'stderr', text: string): void {
    let state = this.progress.get(stream);
    if (!state) {
      state = { text: null, last: 0, timer: null };
      this.progress.set(stream, state);
    }
    state.text = text;
    const now = Date.now();
    const emit = (s: { text: string | null; last: number; timer: NodeJS.Timeout | null }) => {
      s.timer = null;
      if (s.text === null || this.finished) return;
      s.last = Date.now();
      this.hooks.progress({ executionId: this.request.execution.id, stream, text: s.text, time: new Date(s.last) });
      s.text = null;
    };
    if (now - state.last >= this.settings.progressIntervalMs) emit(state);
    else if (state.timer === null) {
      const s = state;
      s.timer = setTimeout(() => emit(s), this.settings.progressIntervalMs - (now - s.last));
    }
  }

  private flushProgressTimers(): void {
    for (const state of this.progress.values()) {
      if (state.timer !== null) clearTimeout(state.timer);
      state.timer = null;
    }
  }

  private setPaused(paused: boolean): void {
    const child = this.child;
    if (!child) return;
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream || stream.destroyed) continue;
      if (paused) stream.pause();
      else stream.resume();
    }
  }

  private storeFailed(error: unknown): void {
    this.storeError = error;
    this.hooks.error(
      new ScriptRunnerError(
        'store',
        `could not store log lines of execution ${this.request.execution.id} after ${this.settings.storeRetry.attempts} attempts; stopping it: ${describeError(error)}`,
        { cause: error, details: { executionId: this.request.execution.id } },
      ),
    );
    // Nothing more can be recorded: end the run rather than let it produce output nobody keeps.
    if (this.pgid !== null && !this.exited) {
      this.stopReason = null;
      this.stop('cancelled', 'the store failed');
    }
  }

  private published(lines: LogLine[]): void {
    if (this.logFile !== null) {
      let text = '';
      for (const line of lines) {
        text += line.stream === 'stdout' ? `${line.text}\n` : `[${line.stream}] ${line.text}\n`;
      }
      this.logFile.write(text);
    }
    this.hooks.log(lines);
  }

  private finalRecord(started: Execution) {
    const finishedAt = new Date();
    let status: ExecutionStatus;
    let errorMessage: string | null;
    const tail = this.stderrTail.length > 0 ? `\n${this.stderrTail.join('\n')}` : '';
    if (this.storeError !== null) {
      status = 'failed';
      errorMessage = `could not store log lines after ${this.settings.storeRetry.attempts} attempts: ${describeError(this.storeError)}`;
    } else if (this.stopReason === 'timed_out' || this.stopReason === 'cancelled' || this.stopReason === 'interrupted') {
      status = this.stopReason;
      errorMessage = this.stopMessage ?? this.stopReason;
    } else if (this.outputLimit !== null) {
      // Also when the script had already exited: what it printed past the cap is lost.
      status = 'failed';
      errorMessage = `stopped: ${this.outputLimit}`;
    } else if (this.spawnError !== null) {
      status = 'failed';
      errorMessage = `could not start "${this.request.runtime.command}": ${this.spawnError.message}`;
    } else if (this.exitCode === 0 && this.exitSignal === null) {
      status = 'succeeded';
      errorMessage = null;
    } else {
      status = 'failed';
      const hint = this.limitHint();
      errorMessage =
        this.exitSignal !== null
          ? `killed by signal ${this.exitSignal}${hint}${tail}`
          : `exited with code ${this.exitCode}${hint}${tail}`;
    }
    const startedAt = started.startedAt;
    return {
      status,
      exitCode: this.exitCode,
      signal: this.exitSignal,
      finishedAt,
      durationMs: startedAt ? finishedAt.getTime() - startedAt.getTime() : 0,
      lineCount: this.batcher.persistedSeq,
      errorMessage,
      truncated: this.truncated,
    } satisfies Partial<Execution>;
  }

  /**
   * Names the resource limit behind a failure when the evidence points to one, so "exited with
   * code 152" reads as "CPU time limit". bubblewrap reports death by signal N as exit code 128 + N.
   */
  private limitHint(): string {
    const { limits } = this.settings;
    const signal = this.exitSignal;
    if (signal === 'SIGXCPU' && limits.cpuSeconds !== null) return ` (CPU time limit of ${limits.cpuSeconds} s reached: limits.cpuSeconds)`;
    if (signal === 'SIGXFSZ' && limits.maxFileBytes !== null) return ` (file size limit of ${limits.maxFileBytes} bytes reached: limits.maxFileBytes)`;
    const said = this.stderrTail.join('\n');
    const capped = this.caps?.hint(said);
    if (capped) return capped;
    if (/^bwrap: execvp /m.test(said)) {
      return ` (the interpreter "${this.request.runtime.command}" is not visible inside the sandbox: install it under /usr or add its directory to readPaths)`;
    }
    if (limits.memoryBytes !== null && /\bMemoryError\b|Cannot allocate memory|std::bad_alloc/.test(said)) {
      return ` (memory limit of ${limits.memoryBytes} bytes reached: limits.memoryBytes)`;
    }
    if (limits.maxFileBytes !== null && /File too large/.test(said)) {
      return ` (file size limit of ${limits.maxFileBytes} bytes reached: limits.maxFileBytes)`;
    }
    if (limits.maxProcesses !== null && /Resource temporarily unavailable|BlockingIOError/.test(said)) {
      return ` (process limit of ${limits.maxProcesses} reached?: limits.maxProcesses)`;
    }
    return '';
  }

  private openLogFile(): void {
    if (this.settings.logDir === null) return;
    try {
      mkdirSync(this.settings.logDir, { recursive: true });
      this.logFile = createWriteStream(join(this.settings.logDir, `${this.request.execution.id}.log`));
      this.logFile.on('error', (error) => {
        this.hooks.error(new ScriptRunnerError('store', `could not write the log file: ${error.message}`, { cause: error }));
        this.logFile = null;
      });
    } catch (error) {
      this.hooks.error(new ScriptRunnerError('store', `could not open the log file: ${describeError(error)}`, { cause: error }));
    }
  }

  private closeLogFile(): Promise<void> {
    const file = this.logFile;
    this.logFile = null;
    if (file === null) return Promise.resolve();
    return new Promise((resolve) => file.end(() => resolve()));
  }

  private after(ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, ms);
    this.timers.add(timer);
  }

  private clearTimers(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.flushProgressTimers();
  }
}
