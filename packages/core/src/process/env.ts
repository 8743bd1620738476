import { ScriptRunnerError } from '../errors.js';

/**
 * Host variables a script may see. Everything else (DATABASE_URL, tokens, cloud credentials) stays
 * with the host unless the caller passes it explicitly.
 */
const ALLOWED_NAMES = new Set(['PATH', 'LANG', 'LANGUAGE', 'TZ', 'TERM']);
const ALLOWED_PREFIXES = ['LC_'];

/**
 * The child's environment: the host allowlist, HOME and TMPDIR inside the run directory, then the
 * runtime's variables, the runner's `env`, and the run's `env` (later wins).
 */
export function buildChildEnv(
  hostEnv: NodeJS.ProcessEnv,
  runDir: string,
  tmpDir: string,
  ...layers: Array<Record<string, string> | undefined>
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(hostEnv)) {
    if (value === undefined) continue;
    if (ALLOWED_NAMES.has(name) || ALLOWED_PREFIXES.some((p) => name.startsWith(p))) env[name] = value;
  }
  env.HOME = runDir;
  env.TMPDIR = tmpDir;
  for (const layer of layers) Object.assign(env, layer);
  return env;
}

/** Rejects what the OS cannot represent, with a message that names the variable. */
export function validateEnv(env: unknown, where: string): Record<string, string> | undefined {
  if (env === undefined || env === null) return undefined;
  if (typeof env !== 'object' || Array.isArray(env)) {
    throw new ScriptRunnerError('validation', `${where} must be an object of string values`);
  }
  const result: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (name.length === 0 || name.includes('=') || name.includes('\0')) {
      throw new ScriptRunnerError('validation', `${where}: "${name}" is not a valid environment variable name`);
    }
    if (typeof value !== 'string' || value.includes('\0')) {
      throw new ScriptRunnerError('validation', `${where}.${name} must be a string without NUL bytes`);
    }
    result[name] = value;
  }
  return result;
}
