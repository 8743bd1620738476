import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const demo = fileURLToPath(new URL('../demo.mjs', import.meta.url));

describe('the CLI demo (built package)', () => {
  it('uploads the sample script, prints its lines live and ends succeeded', async () => {
    const { stdout } = await run(process.execPath, [demo], { timeout: 20_000 });
    const lines = stdout.split('\n');
    const output = lines.filter((l) => / #\s*\d+ stdout /.test(l)).map((l) => l.replace(/^.* stdout {1,}/, ''));
    expect(output[0]).toBe('Model name: sample check');
    expect(output.at(-1)).toBe('Execution completed successfully');
    expect(output).toHaveLength(7);
    expect(stdout).toContain('[scriptrunner] artifact "day_ahead_prices.csv" kept');
    expect(stdout).toMatch(/succeeded — exit code 0, 8 lines in \d+ ms/);
  });

  it('exits non-zero with a clear message for a file name the runner refuses', async () => {
    const error = await run(process.execPath, [demo, fileURLToPath(new URL('../package.json', import.meta.url))]).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 1 });
    expect((error as { stderr: string }).stderr).toMatch(/\[scriptrunner\] filename "package.json" is not accepted/);
  });
});
