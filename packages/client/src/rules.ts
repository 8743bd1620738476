/**
 * The upload rules of a runner with default options, for checking a file in the browser before
 * sending it. The server checks again; these only spare a round trip. (core's test suite asserts
 * they equal core's own defaults, so the two cannot drift apart.)
 */
export const UPLOAD_RULES = {
  pattern: /^(test|experiment)_[A-Za-z0-9_-]+\.py$/,
  maxBytes: 5 * 1024 * 1024,
} as const;

export interface UploadRules {
  pattern: RegExp;
  maxBytes: number;
}

/** A message for the person choosing the file, or null when the file passes the rules. */
export function checkUpload(file: { name: string; size: number }, rules: UploadRules = UPLOAD_RULES): string | null {
  if (!file.name) return 'The file has no name.';
  if (file.name.includes('/') || file.name.includes('\\')) return `"${file.name}" must be a bare file name, without folders.`;
  if (!rules.pattern.test(file.name)) {
    return `"${file.name}" is not accepted: the name must look like test_prices.py or experiment_wind-2.py (${rules.pattern}).`;
  }
  if (file.size === 0) return `"${file.name}" is empty: upload a script with some code in it.`;
  if (file.size > rules.maxBytes) {
    return `"${file.name}" is ${(file.size / 1024 / 1024).toFixed(1)} MiB; the limit is ${(rules.maxBytes / 1024 / 1024).toFixed(1)} MiB.`;
  }
  return null;
}
