/** Builders of scripts, executions and lines as the runner would create them, for store tests. */
import { createHash } from 'node:crypto';
import type { CreateScriptInput } from '../store.js';
import type { Execution, LogLevel, LogLine, LogStream, Script } from '../types.js';

let counter = 0;
function uniqueId(prefix: string): string {
  counter += 1;
  return `${prefix}${Date.now().toString(36)}${counter.toString(36).padStart(4, '0')}`;
}

/** A script as the runner would create it. */
export function sampleScript(overrides: Partial<CreateScriptInput> = {}): CreateScriptInput {
  const content = overrides.content ?? Buffer.from('print("héllo ✓")\n', 'utf8');
  const now = new Date();
  return {
    id: uniqueId('s'),
    filename: 'test_sample.py',
    runtime: 'python',
    sizeBytes: content.byteLength,
    sha256: createHash('sha256').update(content).digest('hex'),
    description: null,
    metadata: {},
    environment: null,
    status: 'active',
    createdAt: now,
    updatedAt: now,
    lastRunAt: null,
    totalRuns: 0,
    ...overrides,
    content,
  };
}

/** A queued execution as the runner would create it. */
export function sampleExecution(scriptId: string, overrides: Partial<Execution> = {}): Execution {
  return {
    id: uniqueId('e'),
    scriptId,
    status: 'queued',
    args: [],
    exitCode: null,
    signal: null,
    queuedAt: new Date(),
    startedAt: null,
    finishedAt: null,
    durationMs: null,
    lineCount: 0,
    errorMessage: null,
    truncated: false,
    artifactCount: 0,
    environment: null,
    ...overrides,
  };
}

/** Lines `from..to` (inclusive) with a deterministic level/stream pattern. */
export function sampleLines(executionId: string, from: number, to: number): LogLine[] {
  const lines: LogLine[] = [];
  const time = new Date();
  for (let seq = from; seq <= to; seq++) {
    const stream: LogStream = seq % 10 === 0 ? 'stderr' : seq % 25 === 0 ? 'system' : 'stdout';
    const level: LogLevel = seq % 10 === 0 ? 'error' : seq % 7 === 0 ? 'warn' : 'info';
    lines.push({ executionId, seq, stream, level, text: `line ${seq} ✓ \u001b[32mok\u001b[0m`, time });
  }
  return lines;
}

export function stripContent(input: CreateScriptInput): Script {
  const { content: _content, ...script } = input;
  return script;
}
