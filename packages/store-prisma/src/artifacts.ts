/**
 * Artifacts on Prisma: one row per stored version (`scriptrunner_artifacts`) and its bytes in
 * chunks of up to 1 MiB (`scriptrunner_artifact_chunks`). Chunks are written first under a fresh
 * id; the row that makes them visible is swapped in afterwards in one transaction, so a put that
 * fails midway leaves nothing listed and an earlier version stays whole.
 */
import { randomUUID } from 'node:crypto';
import { artifactChunks, type Artifact, type ArtifactContent, type Store } from '@scriptrunner/core';
import type { ArtifactRow, PrismaClientLike } from './client.js';

function toArtifact(row: ArtifactRow): Artifact {
  return { executionId: row.executionId, name: row.name, sizeBytes: row.sizeBytes, sha256: row.sha256, createdAt: row.createdAt };
}

const byName = (a: Artifact, b: Artifact) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

export function artifactMethods(prisma: PrismaClientLike): Required<Pick<Store, 'putArtifact' | 'listArtifacts' | 'readArtifact'>> {
  const artifacts = prisma.scriptRunnerArtifact;
  const chunks = prisma.scriptRunnerArtifactChunk;
  const select = { id: true, executionId: true, name: true, sizeBytes: true, sha256: true, chunkCount: true, createdAt: true };

  return {
    async putArtifact({ executionId, name, createdAt }, content) {
      const id = randomUUID();
      const cut = artifactChunks(content);
      let index = 0;
      try {
        // One chunk per statement: the file passes through in 1 MiB pieces.
        for await (const data of cut.chunks) await chunks.create({ data: { artifactId: id, index: index++, executionId, data } });
      } catch (error) {
        await chunks.deleteMany({ where: { artifactId: id } }).catch(() => undefined);
        throw error;
      }
      const { sizeBytes, sha256 } = cut.totals();
      const earlier = (await artifacts.findMany({ where: { executionId, name }, select: { id: true } })) as Array<{ id: string }>;
      const row: ArtifactRow = { id, executionId, name, sizeBytes, sha256, chunkCount: index, createdAt };
      try {
        await prisma.$transaction([
          chunks.deleteMany({ where: { artifactId: { in: earlier.map((e) => e.id) } } }),
          artifacts.deleteMany({ where: { executionId, name } }),
          artifacts.create({ data: row }),
        ]);
      } catch (error) {
        await chunks.deleteMany({ where: { artifactId: id } }).catch(() => undefined);
        throw error;
      }
      return toArtifact(row);
    },

    async listArtifacts(executionId) {
      const rows = (await artifacts.findMany({ where: { executionId }, select })) as ArtifactRow[];
      // Sorted here: PostgreSQL's collation would order names by locale, not by code unit.
      return rows.map(toArtifact).sort(byName);
    },

    async readArtifact(executionId, name): Promise<ArtifactContent | null> {
      const row = (await artifacts.findUnique({ where: { executionId_name: { executionId, name } }, select })) as ArtifactRow | null;
      if (row === null) return null;
      async function* content(): AsyncGenerator<Uint8Array> {
        for (let index = 0; index < row!.chunkCount; index++) {
          const chunk = (await chunks.findUnique({ where: { artifactId_index: { artifactId: row!.id, index } }, select: { data: true } })) as {
            data: Uint8Array;
          } | null;
          // Replaced (or deleted) while it was being read: say so rather than end short.
          if (chunk === null) throw new Error(`[scriptrunner] artifact "${name}" of execution ${executionId} changed while it was read`);
          yield new Uint8Array(chunk.data.buffer, chunk.data.byteOffset, chunk.data.byteLength);
        }
      }
      return { artifact: toArtifact(row), content: content() };
    },
  };
}
