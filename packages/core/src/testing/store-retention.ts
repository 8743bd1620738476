/** Retention: which executions expire, deleting one in slices, purging archived scripts. Part of the store conformance suite (conformance.ts). */
import { describe, expect, it } from 'vitest';
import type { Execution, ExecutionStatus } from '../types.js';
import type { StoreSuite } from './conformance.js';
import { sampleExecution, sampleLines } from './samples.js';

const MINUTE = 60_000;

export function retentionTests(suite: StoreSuite): void {
  const { store, createScript } = suite;

  describe('retention', () => {
    const now = Date.now();
    /** An execution queued `agoMin` minutes ago; a terminal one finished a minute later. */
    async function execution(scriptId: string, agoMin: number, status: ExecutionStatus): Promise<Execution> {
      const queuedAt = new Date(now - agoMin * MINUTE);
      const terminal = status !== 'queued' && status !== 'running';
      return store.createExecution(
        sampleExecution(scriptId, {
          status,
          queuedAt,
          startedAt: status === 'queued' ? null : queuedAt,
          finishedAt: terminal ? new Date(queuedAt.getTime() + MINUTE) : null,
        }),
      );
    }

    it('expires terminal executions finished before the cutoff, oldest first, never a queued or running one', async () => {
      const script = await createScript();
      const old1 = await execution(script.id, 300, 'succeeded');
      const old2 = await execution(script.id, 200, 'failed');
      const old3 = await execution(script.id, 150, 'interrupted');
      await execution(script.id, 400, 'running'); // older than all, still running
      await execution(script.id, 500, 'queued');
      await execution(script.id, 10, 'cancelled'); // finished 9 minutes ago
      const finishedBefore = new Date(now - 60 * MINUTE);
      expect(await store.listExpiredExecutions!({ finishedBefore, limit: 100 })).toEqual([old1.id, old2.id, old3.id]);
      expect(await store.listExpiredExecutions!({ finishedBefore, limit: 2 })).toEqual([old1.id, old2.id]);
      expect(await store.listExpiredExecutions!({ limit: 100 })).toEqual([]);
    });

    it('keeps the newest executions of each script, counting running ones, and expires the rest', async () => {
      const a = await createScript();
      const b = await createScript();
      const a1 = await execution(a.id, 50, 'succeeded');
      const a2 = await execution(a.id, 40, 'running'); // beyond the newest 2 but running: kept
      const a3 = await execution(a.id, 30, 'timed_out');
      await execution(a.id, 20, 'failed');
      await execution(a.id, 10, 'running');
      await execution(b.id, 45, 'succeeded');
      const b2 = await execution(b.id, 5, 'succeeded');
      expect(await store.listExpiredExecutions!({ keepPerScript: 2, limit: 100 })).toEqual([a1.id, a3.id]);
      expect(a2.status).toBe('running');
      expect((await store.listExpiredExecutions!({ keepPerScript: 0, limit: 100 })).length).toBe(5);
      // Either rule expires: b's older run finished 44 minutes ago.
      const both = await store.listExpiredExecutions!({ keepPerScript: 2, finishedBefore: new Date(now - 30 * MINUTE), limit: 100 });
      expect(new Set(both)).toEqual(new Set([a1.id, a3.id, (await store.listExecutions({ scriptId: b.id, limit: 10 })).items[1]!.id]));
      expect(both).not.toContain(b2.id);
    });

    it('deletes an execution with its log and artifacts in slices, leaving its neighbours whole', async () => {
      const script = await createScript();
      const doomed = await execution(script.id, 60, 'succeeded');
      const neighbour = await execution(script.id, 50, 'succeeded');
      for (const e of [doomed, neighbour]) {
        for (let batch = 0; batch < 40; batch++) await store.appendLogs(e.id, sampleLines(e.id, batch * 25 + 1, batch * 25 + 25));
        if (store.putArtifact) {
          await store.putArtifact(
            { executionId: e.id, name: 'out.bin', createdAt: new Date() },
            (async function* () {
              yield new Uint8Array(300_000).fill(7);
            })(),
          );
        }
      }
      let calls = 0;
      for (;;) {
        const progress = await store.deleteExecution!(doomed.id, { maxRows: 5 });
        calls++;
        if (progress === 'deleted') break;
        expect(progress).toBe('more');
        // Listed until all of it is gone, so an interrupted sweep finds it again.
        expect(await store.getExecution(doomed.id)).not.toBeNull();
        expect(calls).toBeLessThan(1000);
      }
      expect(await store.getExecution(doomed.id)).toBeNull();
      expect(await store.readLogs(doomed.id, { limit: 100 })).toEqual([]);
      if (store.putArtifact) {
        expect(await store.listArtifacts!(doomed.id)).toEqual([]);
        expect(await store.readArtifact!(doomed.id, 'out.bin')).toBeNull();
        expect((await store.listArtifacts!(neighbour.id)).map((a) => a.sizeBytes)).toEqual([300_000]);
      }
      const kept = await store.readLogs(neighbour.id, { limit: 10_000 });
      expect(kept.map((l) => l.seq)).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
      expect(await store.getExecution(neighbour.id)).not.toBeNull();
      expect(await store.deleteExecution!(doomed.id, { maxRows: 5 })).toBe('absent'); // nothing left to do
    });

    it('never deletes a queued or running execution', async () => {
      const script = await createScript();
      for (const status of ['queued', 'running'] as const) {
        const live = await execution(script.id, 600, status);
        await store.appendLogs(live.id, sampleLines(live.id, 1, 10));
        expect(await store.deleteExecution!(live.id, { maxRows: 100 })).toBe('active');
        expect((await store.getExecution(live.id))?.status).toBe(status);
        expect(await store.readLogs(live.id, { limit: 100 })).toHaveLength(10);
      }
    });

    it('deletes an archived script only once it has no executions', async () => {
      const script = await createScript();
      const run = await execution(script.id, 60, 'succeeded');
      expect(await store.deleteScript!(script.id)).toBe(false); // active
      await store.updateScript(script.id, { status: 'archived', updatedAt: new Date() });
      expect(await store.deleteScript!(script.id)).toBe(false); // still has an execution
      expect(await store.getScript(script.id)).not.toBeNull();
      while ((await store.deleteExecution!(run.id, { maxRows: 100 })) !== 'deleted');
      expect(await store.deleteScript!(script.id)).toBe(true);
      expect(await store.getScript(script.id)).toBeNull();
      expect(await store.getScriptContent(script.id)).toBeNull();
      expect(await store.deleteScript!(script.id)).toBe(false);
    });
  });
}
