/**
 * Retention through the runner (memory store): what a sweep deletes, what it never touches, the
 * timer, archived scripts, and a sweep while a run streams. The stores' side of it is in the
 * conformance suite; the SQLite and PostgreSQL runs in store-prisma's retention test.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createScriptRunner, memoryStore, ScriptRunnerError, type Store } from '../src/index.js';
import { sampleExecution, sampleLines } from '../src/testing/index.js';
import { closeRunners, makeRunner, runFixture, silentLogger, waitUntil } from './helpers.js';

afterEach(closeRunners);

const HELLO = 'print("hello")\n';

async function gone(runner: ReturnType<typeof makeRunner>, id: string): Promise<boolean> {
  return runner.getExecution(id).then(
    () => false,
    (error: unknown) => error instanceof ScriptRunnerError && error.code === 'not_found',
  );
}

describe('retention', () => {
  it('keeps the newest runs of each script and deletes the others with their logs', async () => {
    const runner = makeRunner({ retention: { keepPerScript: 1, intervalMs: 0 } });
    const runs = [];
    for (let i = 0; i < 3; i++) runs.push((await runFixture(runner, 'test_hello.py', { code: HELLO })).execution);
    const other = (await runFixture(runner, 'test_other.py', { code: HELLO })).execution;
    // Each upload is a script of its own here; run the first one twice more to give it history.
    const first = runs[0]!;
    const again = [await runner.waitFor((await runner.run(first.scriptId)).id), await runner.waitFor((await runner.run(first.scriptId)).id)];
    const result = await runner.sweep();
    expect(result.executionsDeleted).toBe(2);
    expect(await gone(runner, first.id)).toBe(true);
    expect(await gone(runner, again[0]!.id)).toBe(true);
    expect(await gone(runner, again[1]!.id)).toBe(false);
    expect(await runner.readLogs(again[1]!.id)).toHaveLength(1);
    for (const kept of [runs[1]!, runs[2]!, other]) expect(await gone(runner, kept.id)).toBe(false);
    expect((await runner.sweep()).executionsDeleted).toBe(0);
  });

  it('never deletes a running execution, and deletes it once it is over', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sr-retention-'));
    try {
      const go = join(dir, 'go');
      const code = `import os, time\nprint("waiting", flush=True)\nwhile not os.path.exists(${JSON.stringify(go)}):\n    time.sleep(0.02)\nprint("done")\n`;
      // No sandbox: the script must see the go file this test creates in the host's tmp.
      const runner = makeRunner({ isolation: 'none', retention: { maxAgeMs: 1, keepPerScript: 0, intervalMs: 0 } });
      const script = await runner.uploadScript({ filename: 'test_wait.py', content: code });
      const execution = await runner.run(script.id);
      expect(await waitUntil(async () => (await runner.readLogs(execution.id)).length === 1, 20_000)).toBe(true);
      expect((await runner.sweep()).executionsDeleted).toBe(0);
      expect((await runner.getExecution(execution.id)).status).toBe('running');
      writeFileSync(go, '');
      expect((await runner.waitFor(execution.id)).status).toBe('succeeded');
      expect((await runner.sweep()).executionsDeleted).toBe(1);
      expect(await gone(runner, execution.id)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('sweeps by itself every intervalMs', async () => {
    const runner = makeRunner({ retention: { maxAgeMs: 1, intervalMs: 50 } });
    const { execution } = await runFixture(runner, 'test_hello.py', { code: HELLO });
    expect(await waitUntil(() => gone(runner, execution.id), 10_000, 50)).toBe(true);
  });

  it('purges archived scripts with their executions once the delay has passed', async () => {
    const store = memoryStore();
    const runner = makeRunner({ store, retention: { purgeArchivedScriptsAfterMs: 60_000, intervalMs: 0 } });
    const archived = await runFixture(runner, 'test_old.py', { code: HELLO });
    const recent = await runFixture(runner, 'test_recent.py', { code: HELLO });
    const active = await runFixture(runner, 'test_new.py', { code: HELLO });
    await runner.archiveScript(archived.script.id);
    await runner.archiveScript(recent.script.id);
    // Archived two minutes ago (the store's record of it), past the one-minute delay; `recent` just now.
    await store.updateScript(archived.script.id, { updatedAt: new Date(Date.now() - 120_000) });
    const result = await runner.sweep();
    expect(result).toMatchObject({ scriptsDeleted: 1, executionsDeleted: 1 });
    await expect(runner.getScript(archived.script.id)).rejects.toMatchObject({ code: 'not_found' });
    expect(await gone(runner, archived.execution.id)).toBe(true);
    expect((await runner.getScript(active.script.id)).status).toBe('active');
    expect(await gone(runner, active.execution.id)).toBe(false);
    expect((await runner.getScript(recent.script.id)).status).toBe('archived');
    expect(await gone(runner, recent.execution.id)).toBe(false);
  });

  it('loses no line of a run that streams while a sweep deletes big old logs', { timeout: 60_000 }, async () => {
    const store = memoryStore();
    const runner = makeRunner({ store, retention: { maxAgeMs: 1, intervalMs: 0, batchRows: 10 } });
    const old = await runFixture(runner, 'test_old.py', { code: HELLO });
    // Twenty finished executions with 20,000 lines each to delete.
    const finishedAt = new Date(Date.now() - 60_000);
    for (let i = 0; i < 20; i++) {
      const e = await store.createExecution(sampleExecution(old.script.id, { status: 'succeeded', queuedAt: finishedAt, finishedAt }));
      for (let from = 1; from <= 20_000; from += 1000) await store.appendLogs(e.id, sampleLines(e.id, from, from + 999));
    }
    const lines = 50_000;
    const script = await runner.uploadScript({
      filename: 'test_stream.py',
      content: `import time\nfor i in range(${lines}):\n    print(f"line {i}")\n    if i % 5000 == 0: time.sleep(0.01)\n`,
    });
    const execution = await runner.run(script.id);
    expect(await waitUntil(async () => (await runner.readLogs(execution.id, { limit: 1 })).length === 1, 20_000)).toBe(true);
    const swept = await runner.sweep();
    expect(swept.executionsDeleted).toBeGreaterThanOrEqual(20);
    const final = await runner.waitFor(execution.id);
    expect(final.status).toBe('succeeded');
    expect(final.lineCount).toBe(lines);
    const seqs: number[] = [];
    let after = 0;
    for (;;) {
      const page = await runner.readLogs(execution.id, { afterSeq: after, limit: 10_000 });
      if (page.length === 0) break;
      for (const line of page) seqs.push(line.seq);
      after = page[page.length - 1]!.seq;
    }
    expect(seqs).toEqual(Array.from({ length: lines }, (_, i) => i + 1));
  });

  it('refuses options it cannot honour, with a validation error', async () => {
    expect(() => createScriptRunner({ logger: silentLogger, retention: {} })).toThrow(/at least one of/);
    expect(() => createScriptRunner({ logger: silentLogger, retention: { maxAgeMs: -5 } })).toThrow(/maxAgeMs must be/);
    // Longer than a timer can wait (it would fire at once, again and again), and a purge without a delay.
    expect(() => createScriptRunner({ logger: silentLogger, retention: { maxAgeMs: 1000, intervalMs: 30 * 86_400_000 } })).toThrow(/intervalMs must be/);
    expect(() => createScriptRunner({ logger: silentLogger, retention: { purgeArchivedScriptsAfterMs: 0 } })).toThrow(/purgeArchivedScriptsAfterMs must be/);
    const { listExpiredExecutions: _a, deleteExecution: _b, deleteScript: _c, ...bare } = memoryStore();
    expect(() => createScriptRunner({ logger: silentLogger, store: bare as Store, retention: { maxAgeMs: 1000 } })).toThrow(
      expect.objectContaining({ code: 'validation', message: expect.stringContaining('a store that can delete') }),
    );
    const runner = makeRunner();
    await expect(runner.sweep()).rejects.toMatchObject({ code: 'validation' });
  });
});
