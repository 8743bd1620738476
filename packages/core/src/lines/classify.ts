import type { LogLevel } from '../types.js';

// "ValueError:", "ERROR:", "Traceback (most recent call last):" but not "0 errors" or "error_rate".
const ERROR_PATTERN = /(?:error|exception)(?![a-z0-9_])|\b(?:traceback|fatal|critical)\b/i;
const WARN_PATTERN = /warn(?:ing)?(?![a-z0-9_])/i;

/**
 * The default level of a line: text that reads as an error (error, exception, traceback, fatal,
 * critical) is `error`; a warning is `warn`, even on stderr, because Python writes its warnings
 * there; anything else on stderr is `error`; the rest is `info`.
 */
export function defaultClassifyLine(text: string, stream: 'stdout' | 'stderr'): LogLevel {
  if (ERROR_PATTERN.test(text)) return 'error';
  if (WARN_PATTERN.test(text)) return 'warn';
  return stream === 'stderr' ? 'error' : 'info';
}
