import { createHash } from 'node:crypto';

/**
 * The largest piece a store keeps an artifact's bytes in: a 50 MiB file becomes 50 rows, and a
 * download holds about one in memory.
 */
export const ARTIFACT_CHUNK_BYTES = 1024 * 1024;

export interface ArtifactChunks {
  /** The bytes again, cut into fresh pieces of `chunkBytes` (the last may be shorter; none empty). */
  chunks: AsyncGenerator<Uint8Array, void, undefined>;
  /** Size and sha256 of what `chunks` yielded; final once it is exhausted. */
  totals(): { sizeBytes: number; sha256: string };
}

/**
 * For store authors: cuts an artifact's content as it streams in into the pieces a store keeps
 * (`Store.putArtifact`), counting its size and sha256 on the way, so that no store holds a whole
 * file or hashes it twice.
 */
export function artifactChunks(content: AsyncIterable<Uint8Array>, chunkBytes = ARTIFACT_CHUNK_BYTES): ArtifactChunks {
  const hash = createHash('sha256');
  let sizeBytes = 0;
  let digest: string | null = null;
  async function* cut(): AsyncGenerator<Uint8Array, void, undefined> {
    let piece = new Uint8Array(chunkBytes);
    let filled = 0;
    for await (const input of content) {
      hash.update(input);
      sizeBytes += input.byteLength;
      let offset = 0;
      while (offset < input.byteLength) {
        const take = Math.min(chunkBytes - filled, input.byteLength - offset);
        piece.set(input.subarray(offset, offset + take), filled);
        filled += take;
        offset += take;
        if (filled === chunkBytes) {
          yield piece;
          piece = new Uint8Array(chunkBytes);
          filled = 0;
        }
      }
    }
    if (filled > 0) yield piece.slice(0, filled);
    digest = hash.digest('hex');
  }
  return {
    chunks: cut(),
    totals() {
      if (digest === null) throw new Error('artifactChunks: totals() before the chunks were read to the end');
      return { sizeBytes, sha256: digest };
    },
  };
}
