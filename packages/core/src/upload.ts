import { createHash } from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import { extname } from 'node:path';
import { ScriptRunnerError } from './errors.js';
import { parseInlineMetadata } from './python/inline-metadata.js';
import { checkEnvironmentName, type PythonEnvironments } from './python/named-environments.js';
import type { JsonObject, RuntimeConfig } from './types.js';

export interface UploadOptions {
  /** Accepted file names. Default `^(test|experiment)_[A-Za-z0-9_-]+\.py$`. */
  pattern?: RegExp;
  /** Largest accepted content in bytes. Default 5 MiB. */
  maxBytes?: number;
}

export interface UploadInput {
  filename: string;
  /** The script's bytes; a string is encoded as UTF-8. */
  content: Uint8Array | string;
  description?: string | null;
  metadata?: JsonObject;
  /**
   * A Python script's named environment (`ScriptRunnerOptions.environments`); wins over the one its
   * inline metadata names (`[tool.scriptrunner] environment`). Absent: that one, else the default.
   */
  environment?: string | null;
}

export interface ValidatedUpload {
  filename: string;
  content: Buffer;
  runtime: string;
  sha256: string;
  description: string | null;
  metadata: JsonObject;
  environment: string | null;
}

export const DEFAULT_FILENAME_PATTERN = /^(test|experiment)_[A-Za-z0-9_-]+\.py$/;
export const DEFAULT_MAX_UPLOAD_BYTES = 5 * 1024 * 1024;
const MAX_FILENAME_BYTES = 255;
const MAX_DESCRIPTION_CHARS = 10_000;
const MAX_METADATA_BYTES = 64 * 1024;

function invalid(message: string, field: string): ScriptRunnerError {
  return new ScriptRunnerError('validation', message, { details: { field } });
}

/**
 * Checks an upload against the configured rules and the known runtimes. Every rejection is a
 * `validation` error whose message tells the uploader what to change.
 */
export function validateUpload(
  input: UploadInput,
  options: Required<UploadOptions>,
  runtimes: Readonly<Record<string, RuntimeConfig>>,
  environments: PythonEnvironments,
): ValidatedUpload {
  if (input === null || typeof input !== 'object') {
    throw invalid('upload must be an object with filename and content', 'input');
  }
  const { filename } = input;
  if (typeof filename !== 'string' || filename.length === 0) {
    throw invalid('filename is required', 'filename');
  }
  if (filename.includes('\0')) throw invalid('filename must not contain NUL bytes', 'filename');
  if (filename.includes('/') || filename.includes('\\')) {
    throw invalid(
      `filename "${filename}" must be a bare file name without "/" or "\\" (no directories)`,
      'filename',
    );
  }
  if (Buffer.byteLength(filename, 'utf8') > MAX_FILENAME_BYTES) {
    throw invalid(`filename is longer than ${MAX_FILENAME_BYTES} bytes`, 'filename');
  }
  if (!options.pattern.test(filename)) {
    throw invalid(
      `filename "${filename}" is not accepted: it must match ${options.pattern} ` +
        '(for example test_prices.py or experiment_wind-2.py)',
      'filename',
    );
  }
  const extension = extname(filename).toLowerCase();
  const runtime = Object.entries(runtimes).find(([, config]) =>
    config.extensions.some((e) => e.toLowerCase() === extension),
  )?.[0];
  if (runtime === undefined) {
    throw invalid(`no runtime is configured for "${extension}" files`, 'filename');
  }

  const raw = input.content;
  let content: Buffer;
  if (typeof raw === 'string') content = Buffer.from(raw, 'utf8');
  else if (raw instanceof Uint8Array) content = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  else throw invalid('content must be a string or bytes (Uint8Array / Buffer)', 'content');
  if (content.byteLength === 0) throw invalid('the file is empty: upload a script with some code in it', 'content');
  if (content.byteLength > options.maxBytes) {
    throw invalid(
      `the file is ${content.byteLength} bytes; the limit is ${options.maxBytes} bytes`,
      'content',
    );
  }
  if (content.includes(0)) {
    throw invalid('the file contains NUL bytes: upload a text script, not a binary file', 'content');
  }
  if (!isUtf8(content)) throw invalid('the file is not valid UTF-8 text: save it as UTF-8 and upload again', 'content');
  // A malformed `# /// script` block (PEP 723) or requirement is refused now, naming its line,
  // rather than failing every run later; so is an environment this runner does not have.
  const declared = runtime === 'python' ? parseInlineMetadata(content.toString('utf8')) : null;
  let environment: string | null = null;
  if (input.environment !== undefined && input.environment !== null) {
    environment = checkEnvironmentName(environments, input.environment, runtime, 'environment');
  } else if (declared?.environment) {
    // Refused naming its line, as the block's other mistakes are.
    environment = checkEnvironmentName(environments, declared.environment, runtime, '[tool.scriptrunner] environment', declared.environmentLine!);
  }

  const description = input.description ?? null;
  if (description !== null && typeof description !== 'string') {
    throw invalid('description must be a string', 'description');
  }
  if (description !== null && description.length > MAX_DESCRIPTION_CHARS) {
    throw invalid(`description is longer than ${MAX_DESCRIPTION_CHARS} characters`, 'description');
  }
  const metadata = validateMetadata(input.metadata);

  // Copy so that a caller reusing its buffer cannot change what is stored.
  const owned = Buffer.from(content);
  return {
    filename,
    content: owned,
    runtime,
    sha256: createHash('sha256').update(owned).digest('hex'),
    description,
    metadata,
    environment,
  };
}

function validateMetadata(metadata: unknown): JsonObject {
  if (metadata === undefined || metadata === null) return {};
  if (typeof metadata !== 'object' || Array.isArray(metadata)) {
    throw invalid('metadata must be a JSON object', 'metadata');
  }
  let json: string;
  try {
    json = JSON.stringify(metadata);
  } catch {
    throw invalid('metadata must be serialisable as JSON', 'metadata');
  }
  if (Buffer.byteLength(json, 'utf8') > MAX_METADATA_BYTES) {
    throw invalid(`metadata is larger than ${MAX_METADATA_BYTES} bytes as JSON`, 'metadata');
  }
  // A JSON round trip drops functions, undefined and class instances, so the store gets plain data.
  return JSON.parse(json) as JsonObject;
}
