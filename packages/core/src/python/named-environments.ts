/**
 * Named Python environments: interpreters a caller configures (`environments: { forecast: { python:
 * '/opt/venvs/forecast/bin/python' } }`), one of them the default. A script names one at upload (the
 * upload option, or `[tool.scriptrunner] environment` in its inline metadata), a run may override
 * it, and the execution records the one it was queued for. Names are checked where they are given,
 * so a typo is a `validation` error at upload or `run()`, not a failed run later.
 */
import { ScriptRunnerError } from '../errors.js';
import type { RuntimeConfig, Script } from '../types.js';

/** One named environment: the interpreter its scripts run on (a venv's `bin/python`, a pyenv build…). */
export interface PythonEnvironment {
  /** An absolute path, or a name looked up on the host's PATH. */
  python: string;
}

/** The environment of scripts that name none, unless `defaultEnvironment` says otherwise. */
export const DEFAULT_ENVIRONMENT = 'default';

/** Short, printable, safe in a URL, a log line and a file name. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export interface PythonEnvironments {
  /** Interpreter command by environment name; always holds the default. */
  readonly commands: ReadonlyMap<string, string>;
  readonly defaultName: string;
}

/** `line`: the name is written in the script's inline metadata, on that line. */
function invalid(message: string, line?: number): ScriptRunnerError {
  if (line === undefined) return new ScriptRunnerError('validation', message, { details: { field: 'environment' } });
  return new ScriptRunnerError('validation', `line ${line}: ${message}`, { details: { field: 'content', line } });
}

/**
 * Validates the options. `default` is the python runtime's command unless `environments` names a
 * `default` of its own.
 */
export function resolvePythonEnvironments(
  environments: Record<string, PythonEnvironment> | undefined,
  defaultEnvironment: string | undefined,
  runtimes: Readonly<Record<string, RuntimeConfig>>,
): PythonEnvironments {
  const commands = new Map<string, string>();
  const python = runtimes.python?.command;
  if (python !== undefined) commands.set(DEFAULT_ENVIRONMENT, python);
  if (environments !== undefined && (environments === null || typeof environments !== 'object' || Array.isArray(environments))) {
    throw new ScriptRunnerError('validation', 'environments must be an object of { python } by name');
  }
  for (const [name, environment] of Object.entries(environments ?? {})) {
    if (!NAME.test(name)) {
      throw new ScriptRunnerError('validation', `environments: "${name}" is not a valid name (letters, digits, ".", "_", "-"; at most 64)`);
    }
    const command = (environment as Partial<PythonEnvironment> | null)?.python;
    if (typeof command !== 'string' || command.length === 0 || command.includes('\0')) {
      throw new ScriptRunnerError('validation', `environments.${name}.python must be the interpreter's path or command name`);
    }
    commands.set(name, command);
  }
  const defaultName = defaultEnvironment ?? DEFAULT_ENVIRONMENT;
  if (!commands.has(defaultName)) {
    throw new ScriptRunnerError(
      'validation',
      commands.size === 0
        ? 'defaultEnvironment needs the python runtime or environments'
        : `defaultEnvironment "${String(defaultName)}" is not one of the environments (${[...commands.keys()].join(', ')})`,
    );
  }
  return { commands, defaultName };
}

/** A name given by a caller (upload, run), checked against the configured ones. */
export function checkEnvironmentName(
  environments: PythonEnvironments,
  name: unknown,
  runtime: string,
  where: string,
  line?: number,
): string {
  if (typeof name !== 'string' || name.length === 0) throw invalid(`${where} must be the name of an environment`, line);
  if (runtime !== 'python') throw invalid(`${where}: environments apply to Python scripts; this is a "${runtime}" script`, line);
  if (!environments.commands.has(name)) {
    const shown = name.length > 64 ? `${name.slice(0, 64)}…` : name;
    throw invalid(`${where}: no environment is named "${shown}"; this runner has ${[...environments.commands.keys()].join(', ')}`, line);
  }
  return name;
}

/** The run's override, else the script's own choice, else the default; null for other runtimes. */
export function chooseEnvironment(environments: PythonEnvironments, script: Script, override: string | undefined): string | null {
  if (override !== undefined) return checkEnvironmentName(environments, override, script.runtime, 'environment');
  if (script.runtime !== 'python') return null;
  if (script.environment === null) return environments.defaultName;
  if (!environments.commands.has(script.environment)) {
    throw new ScriptRunnerError(
      'validation',
      `script ${script.id} (${script.filename}) names the environment "${script.environment}", which this runner does not have ` +
        `(${[...environments.commands.keys()].join(', ')}): configure it, or pass environment to run it in another`,
      { details: { field: 'environment', scriptId: script.id } },
    );
  }
  return script.environment;
}
