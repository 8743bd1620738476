/** Artifacts: exact bytes in bounded chunks, replace by name, nothing half-stored. Part of the store conformance suite (conformance.ts). */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ARTIFACT_CHUNK_BYTES } from '../stores/artifact-chunks.js';
import type { Store } from '../store.js';
import type { Execution } from '../types.js';
import type { StoreSuite } from './conformance.js';
import { sampleExecution } from './samples.js';

/** Bytes that differ at every position (a chunk stored twice or out of order shows). */
function pattern(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bytes[i] = x & 0xff;
  }
  return bytes;
}

/** The bytes as a stream of uneven pieces, as a file read would deliver them. */
async function* pieces(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let offset = 0; offset < bytes.byteLength; offset += size) yield bytes.slice(offset, offset + size);
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

async function readAll(store: Store, executionId: string, name: string): Promise<{ bytes: Uint8Array; chunks: number[] } | null> {
  const found = await store.readArtifact!(executionId, name);
  if (found === null) return null;
  const chunks: Uint8Array[] = [];
  for await (const chunk of found.content) chunks.push(chunk);
  return { bytes: Buffer.concat(chunks), chunks: chunks.map((c) => c.byteLength) };
}

export function artifactTests(suite: StoreSuite): void {
  const { store, createScript } = suite;
  describe('artifacts', () => {
    async function newExecution(): Promise<Execution> {
      const script = await createScript();
      return store.createExecution(sampleExecution(script.id, { status: 'running', startedAt: new Date() }));
    }

    it('has all three artifact methods', () => {
      expect(typeof store.putArtifact).toBe('function');
      expect(typeof store.listArtifacts).toBe('function');
      expect(typeof store.readArtifact).toBe('function');
    });

    it('stores exact bytes, lists by name with size and sha256, reads them back', async () => {
      const execution = await newExecution();
      const createdAt = new Date('2026-12-03T10:00:00.123Z');
      const files: Record<string, Uint8Array> = {
        'wind.csv': new TextEncoder().encode('plant,speed\nNordsee Ost,11.2\n'),
        'plots/b.png': pattern(5_000, 7),
        'Z upper.txt': new TextEncoder().encode('ümlaut ✓ \u{1F600}'),
        'empty.txt': new Uint8Array(0),
      };
      for (const [name, bytes] of Object.entries(files)) {
        const stored = await store.putArtifact!({ executionId: execution.id, name, createdAt }, pieces(bytes, 777));
        expect(stored).toEqual({ executionId: execution.id, name, sizeBytes: bytes.byteLength, sha256: sha256(bytes), createdAt });
      }
      const listed = await store.listArtifacts!(execution.id);
      expect(listed.map((a) => a.name)).toEqual(['Z upper.txt', 'empty.txt', 'plots/b.png', 'wind.csv']);
      for (const artifact of listed) {
        const bytes = files[artifact.name]!;
        expect(artifact).toEqual({ executionId: execution.id, name: artifact.name, sizeBytes: bytes.byteLength, sha256: sha256(bytes), createdAt });
        expect(artifact.createdAt).toBeInstanceOf(Date);
        const read = await readAll(store, execution.id, artifact.name);
        expect(Buffer.from(read!.bytes).equals(Buffer.from(bytes))).toBe(true);
      }
      const found = await store.readArtifact!(execution.id, 'wind.csv');
      expect(found!.artifact).toEqual(listed.find((a) => a.name === 'wind.csv'));
    });

    it('keeps a large artifact in bounded chunks and streams it back in them', async () => {
      const execution = await newExecution();
      const bytes = pattern(3 * ARTIFACT_CHUNK_BYTES + 12_345, 42);
      const stored = await store.putArtifact!({ executionId: execution.id, name: 'big.bin', createdAt: new Date() }, pieces(bytes, 70_001));
      expect(stored.sizeBytes).toBe(bytes.byteLength);
      expect(stored.sha256).toBe(sha256(bytes));
      const read = await readAll(store, execution.id, 'big.bin');
      expect(Buffer.from(read!.bytes).equals(Buffer.from(bytes))).toBe(true);
      // Never the whole file in one piece.
      expect(read!.chunks.length).toBeGreaterThanOrEqual(4);
      expect(Math.max(...read!.chunks)).toBeLessThanOrEqual(ARTIFACT_CHUNK_BYTES);
    });

    it('replaces an artifact of the same name, per execution', async () => {
      const [first, second] = [await newExecution(), await newExecution()];
      const put = (e: Execution, bytes: Uint8Array) => store.putArtifact!({ executionId: e.id, name: 'out.txt', createdAt: new Date() }, pieces(bytes, 3));
      await put(first, new TextEncoder().encode('first version, longer'));
      await put(second, new TextEncoder().encode('other run'));
      await put(first, new TextEncoder().encode('retried'));
      const listed = await store.listArtifacts!(first.id);
      expect(listed.map((a) => [a.name, a.sizeBytes])).toEqual([['out.txt', 7]]);
      expect(new TextDecoder().decode((await readAll(store, first.id, 'out.txt'))!.bytes)).toBe('retried');
      expect(new TextDecoder().decode((await readAll(store, second.id, 'out.txt'))!.bytes)).toBe('other run');
    });

    it('a put that fails midway changes nothing', async () => {
      const execution = await newExecution();
      const original = pattern(10_000, 3);
      await store.putArtifact!({ executionId: execution.id, name: 'kept.bin', createdAt: new Date() }, pieces(original, 4096));
      async function* failing(): AsyncGenerator<Uint8Array> {
        yield pattern(ARTIFACT_CHUNK_BYTES + 10, 9);
        throw new Error('the file could not be read further');
      }
      for (const name of ['kept.bin', 'new.bin']) {
        await expect(store.putArtifact!({ executionId: execution.id, name, createdAt: new Date() }, failing())).rejects.toThrow(/could not be read/);
      }
      const listed = await store.listArtifacts!(execution.id);
      expect(listed.map((a) => a.name)).toEqual(['kept.bin']);
      expect(await store.readArtifact!(execution.id, 'new.bin')).toBeNull();
      expect(Buffer.from((await readAll(store, execution.id, 'kept.bin'))!.bytes).equals(Buffer.from(original))).toBe(true);
    });

    it('answers empty and null for what does not exist', async () => {
      const execution = await newExecution();
      expect(await store.listArtifacts!(execution.id)).toEqual([]);
      expect(await store.listArtifacts!('no-such-execution')).toEqual([]);
      expect(await store.readArtifact!(execution.id, 'missing.csv')).toBeNull();
      expect(await store.readArtifact!('no-such-execution', 'missing.csv')).toBeNull();
    });
  });
}
