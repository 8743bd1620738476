/**
 * prismaStore's retention methods (the Store contract's optional group): which executions expire,
 * deleting one in slices of rows, and purging an archived script.
 *
 * Why slices: the schema cascades from an execution to its log chunks and artifact chunks, so one
 * `DELETE` of the execution row would remove a million-line log in one statement and hold SQLite's
 * write lock (or PostgreSQL's row locks and WAL) for as long as that takes, while the runs writing
 * at the same time wait. Deleting `maxRows` rows per call keeps every statement short.
 */
import { TERMINAL_STATUSES, isTerminalStatus, type DeleteProgress, type ExpiredExecutionsQuery } from '@scriptrunner/core';
import type { PrismaClientLike } from './client.js';

const terminal = { in: [...TERMINAL_STATUSES] };

/**
 * Executions beyond the newest `keep` of their script that are terminal, oldest first, as the
 * strings of a tagged template (values: keep, limit). A window function (SQLite ≥ 3.25,
 * PostgreSQL) ranks each script's executions by the (scriptId, queuedAt, id) index's order.
 * Tables unqualified, as the SQL of `applyMigrations` creates them; the statuses are constants.
 */
function beyondKeepSql(): TemplateStringsArray {
  const statuses = TERMINAL_STATUSES.map((s) => `'${s}'`).join(', ');
  const parts = [
    'SELECT "id" FROM (SELECT "id", "status", "queuedAt", ROW_NUMBER() OVER (PARTITION BY "scriptId" ' +
      'ORDER BY "queuedAt" DESC, "id" DESC) AS "rank" FROM "scriptrunner_executions") ranked ' +
      `WHERE "rank" > `,
    ` AND "status" IN (${statuses}) ORDER BY "queuedAt" ASC, "id" ASC LIMIT `,
    '',
  ];
  return Object.assign([...parts], { raw: parts });
}

export function retentionMethods(prisma: PrismaClientLike) {
  const executions = prisma.scriptRunnerExecution;
  const logChunks = prisma.scriptRunnerLogChunk;
  const artifacts = prisma.scriptRunnerArtifact;
  const artifactChunks = prisma.scriptRunnerArtifactChunk;

  /** Deletes up to `budget` of the execution's log chunks, first seqs first; returns how many. */
  async function deleteLogSlice(executionId: string, budget: number): Promise<number> {
    const keys = (await logChunks.findMany({
      where: { executionId },
      orderBy: { firstSeq: 'asc' },
      take: budget,
      select: { firstSeq: true },
    })) as Array<{ firstSeq: number }>;
    if (keys.length === 0) return 0;
    const { count } = (await logChunks.deleteMany({
      where: { executionId, firstSeq: { lte: keys[keys.length - 1]!.firstSeq } },
    })) as { count: number };
    return count;
  }

  /** Deletes up to `budget` of the execution's artifact chunks, a prefix of each artifact's. */
  async function deleteArtifactSlice(executionId: string, budget: number): Promise<number> {
    const keys = (await artifactChunks.findMany({
      where: { executionId },
      orderBy: [{ artifactId: 'asc' }, { index: 'asc' }],
      take: budget,
      select: { artifactId: true, index: true },
    })) as Array<{ artifactId: string; index: number }>;
    const upTo = new Map<string, number>();
    for (const key of keys) upTo.set(key.artifactId, key.index);
    let deleted = 0;
    for (const [artifactId, index] of upTo) {
      const { count } = (await artifactChunks.deleteMany({ where: { executionId, artifactId, index: { lte: index } } })) as { count: number };
      deleted += count;
    }
    return deleted;
  }

  return {
    async listExpiredExecutions(query: ExpiredExecutionsQuery): Promise<string[]> {
      const { finishedBefore, keepPerScript, limit } = query;
      const ids = new Set<string>();
      if (finishedBefore !== undefined) {
        const rows = (await executions.findMany({
          where: { status: terminal, finishedAt: { lt: finishedBefore } },
          orderBy: [{ queuedAt: 'asc' }, { id: 'asc' }],
          take: limit,
          select: { id: true },
        })) as Array<{ id: string }>;
        for (const row of rows) ids.add(row.id);
      }
      if (keepPerScript !== undefined) {
        const rows = (await prisma.$queryRaw(beyondKeepSql(), keepPerScript, limit)) as Array<{ id: string }>;
        for (const row of rows) ids.add(row.id);
      }
      if (ids.size === 0) return [];
      // Both rules' oldest `limit`, merged into one oldest-first list.
      const ordered = (await executions.findMany({
        where: { id: { in: [...ids] } },
        orderBy: [{ queuedAt: 'asc' }, { id: 'asc' }],
        take: limit,
        select: { id: true },
      })) as Array<{ id: string }>;
      return ordered.map((row) => row.id);
    },

    async deleteExecution(id: string, options: { maxRows: number }): Promise<DeleteProgress> {
      const row = (await executions.findUnique({ where: { id }, select: { status: true } })) as { status: string } | null;
      if (row === null) return 'absent';
      if (!isTerminalStatus(row.status as never)) return 'active';
      let budget = Math.max(1, options.maxRows);
      budget -= await deleteLogSlice(id, budget);
      if (budget <= 0) return 'more';
      budget -= await deleteArtifactSlice(id, budget);
      if (budget <= 0) return 'more';
      // What is left are a few artifact rows and the execution itself (terminal is final, so the
      // guard only matters for an id reused by nobody; it keeps the delete from ever hitting a run).
      await artifacts.deleteMany({ where: { executionId: id } });
      const { count } = (await executions.deleteMany({ where: { id, status: terminal } })) as { count: number };
      // Another sweep (a node whose sweep overlapped) took the row first.
      return count > 0 ? 'deleted' : 'absent';
    },

    async deleteScript(id: string): Promise<boolean> {
      // One conditional statement: archived and without executions at the moment of the delete.
      const { count } = (await prisma.scriptRunnerScript.deleteMany({
        where: { id, status: 'archived', executions: { none: {} } },
      })) as { count: number };
      return count > 0;
    },
  };
}
