/**
 * One run of one script on this machine, from a stored `queued` execution to its final record:
 * run directory, `queued → running`, the process (process/child.ts) feeding the line pipeline
 * (lines/pipeline.ts), timeout and stop, the final record (outcome.ts). `run()` never rejects:
 * every failure ends the execution with a status and a reason.
 *
 * Status writes are guarded transitions (`Store.updateExecution` with `expect`): a run whose
 * execution was ended elsewhere meanwhile (cancelled while it waited, marked `interrupted` by
 * another node) does not start, or does not overwrite that end.
 */
import type { DropKind } from './observe.js';
import { collectArtifacts, OUTPUT_DIR_ENV } from './artifacts/collect.js';
import { describeError, ScriptRunnerError } from './errors.js';
import { LinePipeline } from './lines/pipeline.js';
import { LineSplitter } from './lines/splitter.js';
import type { RunSettings, Sandbox } from './options.js';
import { finalRecord, type StopReason } from './outcome.js';
import { ScriptProcess, SpawnFailure } from './process/child.js';
import { buildChildEnv } from './process/env.js';
import type { IsolationContext, SpawnSpec } from './process/isolation.js';
import type { RunCaps } from './process/run-caps.js';
import { createRunDirectory, removeRunDirectory, type RunDirectory } from './process/workdir.js';
import type { InstallStep, PreparedEnvironment } from './python/environments.js';
import { checkRequiresPython, type ResolvedInterpreter } from './python/interpreter.js';
import { parseInlineMetadata } from './python/inline-metadata.js';
import { scriptLaunch } from './python/live.js';
import { withRetry } from './retry.js';
import type { Execution, LogLine, ProgressEvent, RuntimeConfig, Script } from './types.js';

export interface RunHooks {
  started(execution: Execution): void;
  /** A persisted batch; a promise holds the next batch back until it settles. */
  log(lines: LogLine[]): void | Promise<void>;
  progress(progress: ProgressEvent): void;
  error(error: Error): void;
  /** Output the run did not keep whole (see `RunnerObserver.dropped`). */
  dropped(what: DropKind, count: number): void;
}

export interface RunRequest {
  execution: Execution;
  script: Script;
  /** Its command is the environment's interpreter for a Python script. */
  runtime: RuntimeConfig;
  /** The named Python environment it runs in; null for other runtimes. */
  environment: string | null;
  env: Record<string, string> | undefined;
  /** 0 = no timeout. */
  timeoutMs: number;
}

export interface RunResult {
  execution: Execution;
  /**
   * False when the store holds an end written by someone else (the run was cancelled before it
   * started, another node marked it interrupted): that writer published it.
   */
  endedHere: boolean;
  /** False when the store refused the final record even after retries. */
  saved: boolean;
}

export class ExecutionRun {
  private stopInfo: { reason: StopReason; message: string } | null = null;
  private proc: ScriptProcess | null = null;
  private exit: { exitCode: number | null; signal: string | null } | null = null;
  private spawnError: Error | null = null;
  /** Why the run could not be prepared (its dependencies, its Python version): it ends failed with this. */
  private setupError: string | null = null;
  /** The cached environment the script runs in, when it declares dependencies. */
  private environment: PreparedEnvironment | null = null;
  private timeout: NodeJS.Timeout | null = null;
  /** Whole-run caps of this run (cgroup, size-capped run directory), once the sandbox is known. */
  private caps: RunCaps | null = null;
  /** The child is gone (or never came): stops are ignored from here on. */
  private ending = false;
  private readonly pipeline: LinePipeline;

  constructor(
    private readonly request: RunRequest,
    private readonly settings: RunSettings,
    private readonly hooks: RunHooks,
  ) {
    const { id } = request.execution;
    this.pipeline = new LinePipeline(id, settings, (lines) => hooks.log(lines));
    this.pipeline.on('pause', (paused) => this.proc?.setPaused(paused));
    this.pipeline.on('progress', (progress) => hooks.progress(progress));
    this.pipeline.on('overLimit', (reason) => {
      hooks.dropped('output_over_cap', 1);
      this.stop('output_limit', `stopped: ${reason}`);
    });
    this.pipeline.on('cut', () => hooks.dropped('line_cut', 1));
    this.pipeline.on('storeRetry', (error, attempt) =>
      hooks.error(
        new ScriptRunnerError('store', `storing log lines of ${id} failed (attempt ${attempt}), retrying: ${describeError(error)}`, {
          cause: error,
          details: { executionId: id, attempt },
        }),
      ),
    );
    this.pipeline.on('storeFailed', (error) => {
      hooks.error(
        new ScriptRunnerError(
          'store',
          `could not store log lines of execution ${id} after ${settings.storeRetry.attempts} attempts; stopping it: ${describeError(error)}`,
          { cause: error, details: { executionId: id } },
        ),
      );
      // Nothing more can be recorded: end the run rather than let it produce output nobody keeps.
      this.stop('cancelled', 'the store failed');
    });
  }

  /** Lines the store has accepted so far. */
  get persistedLineCount(): number {
    return this.pipeline.persistedSeq;
  }

  /**
   * Asks the run to end. Before the spawn it never starts; while running, the whole process group
   * gets SIGTERM, then SIGKILL after killGraceMs. The first reason wins.
   */
  stop(reason: StopReason, message: string): void {
    // Once the child has exited (or the run failed before it had one) the outcome is settled.
    if (this.stopInfo !== null || this.ending || this.proc?.exited) return;
    this.stopInfo = { reason, message };
    if (this.proc !== null) this.terminate();
  }

  async run(): Promise<RunResult> {
    const { execution } = this.request;
    const { store, storeRetry } = this.settings;
    let runDir: RunDirectory | null = null;
    let current: Execution = execution;
    try {
      const sandbox = this.stopInfo === null ? await this.settings.sandbox : null;
      // A stop that arrived meanwhile: the run never starts.
      if (sandbox !== null && this.stopInfo === null) {
        // Claim it before anything is made for it: only the runner whose `queued → running` write
        // applied (ours carries our start) goes on. An end written elsewhere while it waited, or
        // another runner given the same execution (a duplicate delivery), stands.
        const startedAt = new Date();
        const stored = await withRetry(
          () => store.updateExecution(execution.id, { status: 'running', startedAt }, { expect: ['queued'] }),
          storeRetry,
        );
        if (stored !== null && (stored.status !== 'running' || stored.startedAt?.getTime() !== startedAt.getTime())) {
          return { execution: stored, endedHere: false, saved: true };
        }
        current = stored ?? { ...execution, status: 'running', startedAt };
        this.hooks.started(current);
        this.caps = sandbox.caps.forRun(execution.id, (text) => this.pipeline.system('error', text));
        const prepared = await this.prepare(sandbox, this.caps);
        runDir = prepared.runDir;
        if (this.stopInfo === null) await this.setUp(prepared.content, sandbox);
        if (this.stopInfo === null && this.setupError === null) await this.spawnAndWait(runDir, sandbox);
      }
    } catch (error) {
      this.spawnError ??= error instanceof Error ? error : new Error(String(error));
      this.pipeline.system('error', `could not run the script: ${describeError(error)}`);
    }
    this.ending = true;
    await this.environment?.release();
    if (this.timeout !== null) clearTimeout(this.timeout);
    // What the script left in its output directory, before the directory goes (and its lines
    // before the last batch): the process group is gone, nothing writes there any more.
    const artifactCount = runDir !== null && this.pipeline.storeError === null ? await this.keepArtifacts(runDir) : 0;
    await this.pipeline.drain();
    const final = finalRecord(
      {
        stop: this.stopInfo,
        exit: this.exit,
        spawnError: this.spawnError,
        setupError: this.setupError,
        command: this.request.runtime.command,
        storeError: this.pipeline.storeError,
        storeAttempts: storeRetry.attempts,
        outputLimit: this.pipeline.outputLimit,
        truncated: this.pipeline.truncated,
        stderrTail: this.pipeline.stderrTail,
        lineCount: this.pipeline.persistedSeq,
        artifactCount,
        limits: this.settings.limits,
        capHint: this.caps?.hint(this.pipeline.stderrTail.join('\n')) ?? '',
      },
      current.startedAt,
    );
    // Before the record says the run is over: whoever waits for it finds its processes, cgroup and
    // mount gone (the run directory's files too, unless keepWorkDir copied them out).
    await this.caps?.release(this.settings.keepWorkDir).catch((error: unknown) => this.hooks.error(error instanceof Error ? error : new Error(String(error))));
    const stored = await withRetry(
      () => store.updateExecution(execution.id, final, { expect: ['queued', 'running'] }),
      storeRetry,
    ).catch((error: unknown) => {
      this.hooks.error(
        new ScriptRunnerError('store', `could not store the result of execution ${execution.id}: ${describeError(error)}`, {
          cause: error,
          details: { executionId: execution.id },
        }),
      );
      return null;
    });
    await this.cleanUp(runDir);
    if (stored === null) return { execution: { ...current, ...final }, endedHere: true, saved: false };
    // Refused: another node ended it first (e.g. marked it interrupted when this one looked dead).
    const ours = stored.status === final.status && stored.finishedAt?.getTime() === final.finishedAt?.getTime();
    return { execution: stored, endedHere: ours, saved: true };
  }

  private async prepare(sandbox: Sandbox, caps: RunCaps): Promise<{ runDir: RunDirectory; content: Uint8Array }> {
    const { script, execution } = this.request;
    const content = await this.settings.store.getScriptContent(script.id);
    if (content === null) throw new ScriptRunnerError('not_found', `the content of script ${script.id} is missing from the store`);
    const { workDir, ownsWorkDir } = this.settings;
    const runDir = await createRunDirectory(workDir, execution.id, script.filename, content, sandbox.runAs, ownsWorkDir, (path) => caps.setUp(path));
    return { runDir, content };
  }

  /**
   * What a Python script declares in its `# /// script` block: the Python version it needs, and
   * dependencies, installed (or found in the cache) before it starts. A failure ends the run
   * `failed` with the reason, the installer's output already in the log as `system` lines.
   */
  private async setUp(content: Uint8Array, sandbox: Sandbox): Promise<void> {
    const { script } = this.request;
    const fail = (message: string) => {
      this.setupError = message;
      this.pipeline.system('error', message);
    };
    const { environment } = this.request;
    if (environment === null) return;
    const interpreter = sandbox.interpreters.get(environment);
    if (interpreter instanceof Error) return fail(interpreter.message);
    const command = interpreter?.command ?? this.request.runtime.command;
    try {
      const metadata = parseInlineMetadata(Buffer.from(content).toString('utf8'));
      if (metadata === null) return;
      const path = process.env.PATH ?? '';
      if (metadata.requiresPython !== null) {
        const mismatch = await checkRequiresPython(command, path, metadata.requiresPython, interpreter?.version);
        if (mismatch !== null) return fail(mismatch);
      }
      if (metadata.dependencies.length === 0) return;
      if (sandbox.isolation.kind !== 'bwrap' && sandbox.runAs !== undefined) {
        // Unsandboxed, every run's scripts are the same user as the install: one could change a
        // cached environment other runs then use.
        return fail('declared dependencies need the sandbox when scripts run as another user (runAs): install bubblewrap, or unset runAs');
      }
      this.environment = await this.settings.environments.prepare(command, path, metadata.dependencies, {
        say: (level, text) => this.pipeline.system(level, text),
        step: (command, step) => this.installStep(command, step, sandbox),
        owner: sandbox.runAs,
        stopped: () => this.stopInfo !== null,
      });
    } catch (error) {
      // A stop during the install says why itself; this would only repeat it.
      if (this.stopInfo === null) fail(describeError(error).replace(/^\[scriptrunner\] /, ''));
    }
  }

  /**
   * One install step in the run's sandbox, caps and user, with the network on and only the new
   * environment writable; its output becomes `system` lines. Resolves with why it failed, or null.
   */
  private async installStep(command: string, step: InstallStep, sandbox: Sandbox): Promise<string | null> {
    const caps = this.caps!;
    const env = buildChildEnv(process.env, step.env.HOME ?? step.writable, step.env.TMPDIR ?? step.writable, step.env);
    const output = new StepOutput(this.settings.maxLineBytes, (level, text) => this.pipeline.system(level, text));
    const proc = await this.start(
      sandbox,
      { command, args: step.args, cwd: step.writable, env },
      { runDir: step.writable, tmpDir: env.TMPDIR!, network: step.network, readPaths: [...(this.interpreter(sandbox)?.readPaths ?? []), ...step.readPaths] },
      output,
    );
    if (proc instanceof SpawnFailure) return `could not start "${command}": ${proc.message}`;
    // While it runs, a stop (cancel, runner closing) ends the install the way it would end the script.
    this.proc = proc;
    const { timeoutMs } = this.settings.environments.settings;
    const timer = setTimeout(() => {
      output.timedOut = true;
      proc.terminate(this.settings.killGraceMs);
    }, timeoutMs);
    if (this.stopInfo !== null) this.terminate();
    const exit = await proc.done;
    clearTimeout(timer);
    this.proc = null;
    await caps.killAll();
    if (output.timedOut) return `the install took longer than ${timeoutMs} ms (dependencies.timeoutMs)`;
    if (exit.exitCode === 0 && exit.signal === null) return null;
    return output.reason() ?? (exit.signal !== null ? `killed by signal ${exit.signal}` : `exited with code ${String(exit.exitCode)}`);
  }

  private keepArtifacts(runDir: RunDirectory): Promise<number> {
    return collectArtifacts({
      outDir: runDir.out,
      executionId: this.request.execution.id,
      store: this.settings.store,
      settings: this.settings.artifacts,
      say: (level, text) => this.pipeline.system(level, text),
      skipped: (count) => this.hooks.dropped('artifact_skipped', count),
    });
  }

  private async cleanUp(runDir: RunDirectory | null): Promise<void> {
    if (runDir === null || this.settings.keepWorkDir) return;
    await removeRunDirectory(runDir).catch((error: unknown) => this.hooks.error(error instanceof Error ? error : new Error(String(error))));
  }

  private terminate(): void {
    const { reason, message } = this.stopInfo!;
    this.pipeline.system(reason === 'timed_out' ? 'error' : 'warn', `${message}; stopping the process group (SIGTERM)`);
    this.proc!.terminate(this.settings.killGraceMs);
  }

  /** The interpreter as the host resolves the runtime's command (a shim or alias resolved), if it did. */
  private interpreter(sandbox: Sandbox): ResolvedInterpreter | null {
    const { environment } = this.request;
    const interpreter = environment === null ? undefined : sandbox.interpreters.get(environment);
    return interpreter && !(interpreter instanceof Error) ? interpreter : null;
  }

  /**
   * Starts a process of this run (the script, or an install step): inside out, the sandbox, prlimit
   * around it, then joining the run's cgroup (as root) first; its output goes to `output`.
   */
  private start(
    sandbox: Sandbox,
    command: SpawnSpec,
    context: IsolationContext,
    output: { push(stream: 'stdout' | 'stderr', chunk: Buffer): void; end(stream: 'stdout' | 'stderr'): void },
  ): Promise<ScriptProcess | SpawnFailure> {
    const { isolation } = sandbox;
    const caps = this.caps!;
    return ScriptProcess.start(caps.wrap(sandbox.applyLimits(isolation.wrap(command, context))), {
      runAs: caps.spawnAs,
      sandboxLeader: isolation.kind === 'bwrap',
      signalsAsExitCodes: isolation.signalsAsExitCodes,
      checkCommand: isolation.kind === 'none' ? { command: command.command, path: command.env.PATH ?? '' } : null,
      drainTimeoutMs: this.settings.drainTimeoutMs,
      onData: (stream, chunk) => output.push(stream, chunk),
      onEnd: (stream) => output.end(stream),
      onNotice: (level, text) => this.pipeline.system(level, text),
      onError: (error) => this.hooks.error(error),
    });
  }

  private async spawnAndWait(runDir: RunDirectory, sandbox: Sandbox): Promise<void> {
    const { runtime, execution } = this.request;
    const caps = this.caps!;
    // The output directory is the runner's to name: no layer overrides it.
    const launch = scriptLaunch(runtime, runDir.scriptPath, execution.args);
    const env = buildChildEnv(process.env, runDir.path, runDir.tmp, launch.env, this.settings.env, this.request.env, { [OUTPUT_DIR_ENV]: runDir.out });
    // The script's own environment (its declared dependencies) when it has one, shown read-only.
    const interpreter = this.interpreter(sandbox);
    const command = this.environment?.python ?? interpreter?.command ?? runtime.command;
    const readPaths = [...(interpreter?.readPaths ?? []), ...(this.environment ? [this.environment.dir] : [])];
    const proc = await this.start(
      sandbox,
      { command, args: launch.args, cwd: runDir.path, env },
      { runDir: runDir.path, tmpDir: runDir.tmp, readPaths },
      this.pipeline,
    );
    if (proc instanceof SpawnFailure) {
      this.spawnError = proc;
      this.pipeline.system('error', `could not start "${command}": ${proc.message}`);
      return;
    }
    this.proc = proc;
    const { timeoutMs } = this.request;
    if (timeoutMs > 0) this.timeout = setTimeout(() => this.stop('timed_out', `timed out after ${timeoutMs} ms`), timeoutMs);
    // A stop requested while the process was being started takes effect now.
    if (this.stopInfo !== null) this.terminate();
    this.exit = await proc.done;
    // Processes that left the process group (setsid) are still in the run's cgroup.
    await caps.killAll();
  }
}

/**
 * An install step's output as `system` lines (split as the script's are: \r redraws drop, long
 * lines are cut), and the line that says why it failed: pip's last `ERROR:` line, else the last
 * line on stderr.
 */
class StepOutput {
  private readonly splitters: Record<'stdout' | 'stderr', LineSplitter>;
  private lastError: string | null = null;
  private lastStderr: string | null = null;
  timedOut = false;

  constructor(
    maxLineBytes: number,
    private readonly say: (level: 'info' | 'warn' | 'error', text: string) => void,
  ) {
    const sink = (stream: 'stdout' | 'stderr') => ({ line: (text: string) => this.line(stream, text), progress: () => undefined });
    this.splitters = { stdout: new LineSplitter(maxLineBytes, sink('stdout')), stderr: new LineSplitter(maxLineBytes, sink('stderr')) };
  }

  push(stream: 'stdout' | 'stderr', chunk: Buffer): void {
    this.splitters[stream].push(chunk);
  }

  end(stream: 'stdout' | 'stderr'): void {
    this.splitters[stream].end();
  }

  reason(): string | null {
    // "ERROR: Exception:" heads a traceback, whose last line says what happened.
    if (this.lastError !== null && this.lastError.endsWith(':') && this.lastStderr !== null) return `${this.lastError} ${this.lastStderr}`;
    return this.lastError ?? this.lastStderr;
  }

  private line(stream: 'stdout' | 'stderr', raw: string): void {
    const text = raw.trimEnd();
    if (text === '') return;
    if (text.startsWith('ERROR:')) this.lastError = text;
    if (stream === 'stderr') this.lastStderr = text;
    this.say(text.startsWith('ERROR:') ? 'error' : stream === 'stderr' ? 'warn' : 'info', text);
  }
}
