/**
 * prismaStore: the scriptrunner Store on a PrismaClient whose schema includes
 * `prisma/scriptrunner.prisma`. Works on SQLite and PostgreSQL through Prisma's driver adapters.
 */
import {
  decodeCursorOrThrow,
  encodeCursor,
  updatableStatuses,
  type CreateScriptInput,
  type Execution,
  type ExecutionPatch,
  type ExecutionStatus,
  type JsonObject,
  type LogLevel,
  type LogLine,
  type LogStream,
  type Page,
  type ListScriptsQuery,
  type Script,
  type ScriptStatus,
  type ScriptWithLastExecution,
  type Store,
  type UpdateExecutionOptions,
} from '@scriptrunner/core';
import type { ExecutionRow, LogChunkRow, PrismaClientLike, ScriptRow } from './client.js';
import { artifactMethods } from './artifacts.js';
import { retentionMethods } from './retention.js';
import { decodeChunk, encodeChunks, type ChunkLimits } from './codec.js';
import { sqliteSettingsProblem } from './migrate.js';

export interface PrismaStoreOptions {
  /** Most lines stored in one log row. Default 2,000. */
  maxChunkLines?: number;
  /** Most characters of text in one log row (a few huge lines get rows of their own). Default 1,000,000. */
  maxChunkChars?: number;
  /** Where the store's one-time warnings go (a SQLite database without the settings it needs). Default `console`. */
  logger?: { warn(message: string): void };
}

/**
 * On SQLite, once: says how to fix a connection without WAL / synchronous=NORMAL (Prisma's defaults
 * make every log batch wait for fsync). `applyMigrations` sets them; an app migrating with Prisma
 * Migrate itself may not.
 */
function sqliteCheck(prisma: PrismaClientLike, logger: { warn(message: string): void }): () => void {
  // Prisma's own record of the datasource provider (an underscore field, read defensively).
  const provider = (prisma as { _activeProvider?: unknown })._activeProvider;
  let done = provider !== 'sqlite';
  return () => {
    if (done) return;
    done = true;
    void sqliteSettingsProblem(prisma).then(
      (problem) => {
        if (problem === null) return;
        logger.warn(
          `[scriptrunner] prismaStore: this SQLite connection has ${problem}, so every log batch waits for a disk sync ` +
            `(runs that print a lot slow down several times). Call applyMigrations(prisma, { provider: 'sqlite' }) at start ` +
            `(it sets journal_mode=WAL, synchronous=NORMAL and busy_timeout on this client), or run ` +
            `PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; yourself.`,
        );
      },
      () => undefined,
    );
  };
}

/** The rows' size limits, from the options (shared with sqliteStore's log writer). */
export function chunkLimits(options: PrismaStoreOptions): ChunkLimits {
  return { maxLines: options.maxChunkLines ?? 2_000, maxChars: options.maxChunkChars ?? 1_000_000 };
}

const INT32_MAX = 2_147_483_647;

/**
 * Chunks fetched by the first round trip of a log read, doubling on each further one up to the
 * maximum: a page of 1,000 lines usually sits in one or two chunks (up to 2,000 lines each), and
 * fetching 16 every time meant parsing up to 32,000 lines' JSON to return 1,000; small chunks (a
 * live run's appends) still take few round trips.
 */
const READ_CHUNKS_FIRST = 2;
const READ_CHUNKS_MAX = 16;
/** Executions appendLogs remembers its last write of: more than ever run at once in one process. */
const WRITTEN_UP_TO_MAX = 1024;

/** Prisma's "unique constraint failed" (P2002), on every provider and driver adapter. */
function isUniqueViolation(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 'P2002';
}

function toScript(row: ScriptRow): Script {
  return {
    id: row.id,
    filename: row.filename,
    runtime: row.runtime,
    sizeBytes: row.sizeBytes,
    sha256: row.sha256,
    description: row.description,
    metadata: (row.metadata ?? {}) as JsonObject,
    environment: row.environment ?? null,
    status: row.status as ScriptStatus,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
    lastRunAt: row.lastRunAt,
    totalRuns: row.totalRuns,
  };
}

function toExecution(row: ExecutionRow): Execution {
  return {
    id: row.id,
    scriptId: row.scriptId,
    status: row.status as ExecutionStatus,
    args: Array.isArray(row.args) ? (row.args as string[]) : [],
    exitCode: row.exitCode,
    signal: row.signal,
    queuedAt: row.queuedAt,
    startedAt: row.startedAt,
    finishedAt: row.finishedAt,
    durationMs: row.durationMs,
    lineCount: row.lineCount,
    errorMessage: row.errorMessage,
    truncated: row.truncated,
    environment: row.environment ?? null,
    artifactCount: row.artifactCount ?? 0,
  };
}

/**
 * Keyset condition for "after this cursor" in (time desc, id desc) order. A cursor this store did
 * not issue throws the contract's `validation` error before any query runs.
 */
function afterCursor(field: 'createdAt' | 'queuedAt', cursor: string): object {
  const key = decodeCursorOrThrow(cursor);
  const time = new Date(key.time);
  return { OR: [{ [field]: { lt: time } }, { [field]: time, id: { lt: key.id } }] };
}

function pageOf<T extends { id: string }>(rows: T[], limit: number, time: (row: T) => Date): Page<T> {
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return { items, nextCursor: rows.length > limit && last ? encodeCursor(time(last), last.id) : null };
}

/**
 * `SELECT` of the newest execution id of each given script, one row per script (null id when it
 * never ran), as the strings of a tagged template so Prisma binds the ids with each provider's own
 * placeholders. The correlated `ORDER BY … LIMIT 1` reads one entry of the (scriptId, queuedAt, id)
 * index per script: Prisma's `include: { executions: { take: 1 } }` would fetch every execution of
 * the page's scripts and drop all but one in memory. Tables are named unqualified, as the SQL of
 * `applyMigrations` creates them.
 */
function newestExecutionIdsSql(count: number): TemplateStringsArray {
  const parts = [
    'SELECT (SELECT e."id" FROM "scriptrunner_executions" e WHERE e."scriptId" = s."id" ' +
      'ORDER BY e."queuedAt" DESC, e."id" DESC LIMIT 1) AS "id" FROM "scriptrunner_scripts" s WHERE s."id" IN (',
    ...Array.from({ length: count - 1 }, () => ', '),
    ')',
  ];
  return Object.assign([...parts], { raw: parts });
}

function defined<T extends object>(patch: T): Partial<T> {
  return Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** A store with every optional method of the contract (the joined script list, artifacts, retention). */
export type FullStore = Store &
  Required<
    Pick<
      Store,
      | 'listScriptsWithLastExecution'
      | 'putArtifact'
      | 'listArtifacts'
      | 'readArtifact'
      | 'listExpiredExecutions'
      | 'deleteExecution'
      | 'deleteScript'
      | 'ping'
    >
  >;

/**
 * A Store on your own PrismaClient. The client is yours: the store never connects, disconnects or
 * migrates it (use `applyMigrations` or `prisma migrate deploy` once).
 */
export function prismaStore(
  prisma: PrismaClientLike,
  options: PrismaStoreOptions = {},
): FullStore {
  const limits = chunkLimits(options);
  const checkSqlite = sqliteCheck(prisma, options.logger ?? console);
  const scripts = prisma.scriptRunnerScript;
  const executions = prisma.scriptRunnerExecution;
  const chunks = prisma.scriptRunnerLogChunk;
  const withoutContent = { omit: { content: true } };
  /** Last seq this store wrote per execution, for appendLogs' one-statement path; small and bounded. */
  const writtenUpTo = new Map<string, number>();
  const remember = (executionId: string, seq: number) => {
    writtenUpTo.delete(executionId); // re-inserted last: the Map's order is least recently written first
    writtenUpTo.set(executionId, seq);
    if (writtenUpTo.size > WRITTEN_UP_TO_MAX) writtenUpTo.delete(writtenUpTo.keys().next().value!);
  };
  const insertChunks = async (rows: LogChunkRow[]) => {
    if (rows.length === 1) await chunks.create({ data: rows[0] });
    else if (rows.length > 1) await chunks.createMany({ data: rows });
  };

  async function getScript(id: string): Promise<Script | null> {
    const row = (await scripts.findUnique({ where: { id }, ...withoutContent })) as ScriptRow | null;
    return row ? toScript(row) : null;
  }

  async function listScripts(query: ListScriptsQuery): Promise<Page<Script>> {
    const status = query.status ?? 'active';
    const where: object[] = [];
    if (status !== 'all') where.push({ status });
    if (query.cursor) where.push(afterCursor('createdAt', query.cursor));
    const rows = (await scripts.findMany({
      where: { AND: where },
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      take: query.limit + 1,
      ...withoutContent,
    })) as ScriptRow[];
    const page = pageOf(rows, query.limit, (r) => r.createdAt);
    return { items: page.items.map(toScript), nextCursor: page.nextCursor };
  }

  async function getExecution(id: string): Promise<Execution | null> {
    const row = (await executions.findUnique({ where: { id } })) as ExecutionRow | null;
    return row ? toExecution(row) : null;
  }

  return {
    async createScript(input: CreateScriptInput) {
      const { content, ...script } = input;
      const row = (await scripts.create({
        data: { ...script, content: Uint8Array.from(content) },
        ...withoutContent,
      })) as ScriptRow;
      return toScript(row);
    },

    getScript,

    async getScriptContent(id) {
      const row = (await scripts.findUnique({ where: { id }, select: { content: true } })) as { content: Uint8Array } | null;
      return row ? new Uint8Array(row.content) : null;
    },

    listScripts,

    async listScriptsWithLastExecution(query): Promise<Page<ScriptWithLastExecution>> {
      const page = await listScripts(query);
      if (page.items.length === 0) return { items: [], nextCursor: page.nextCursor };
      const ids = page.items.map((s) => s.id);
      const newest = (await prisma.$queryRaw(newestExecutionIdsSql(ids.length), ...ids)) as Array<{ id: string | null }>;
      const executionIds = newest.flatMap((row) => (row.id === null ? [] : [row.id]));
      const rows =
        executionIds.length === 0
          ? []
          : ((await executions.findMany({ where: { id: { in: executionIds } } })) as ExecutionRow[]);
      const byScript = new Map(rows.map((row) => [row.scriptId, toExecution(row)]));
      return {
        items: page.items.map((script) => ({ ...script, lastExecution: byScript.get(script.id) ?? null })),
        nextCursor: page.nextCursor,
      };
    },

    async updateScript(id, patch) {
      const { count } = (await scripts.updateMany({ where: { id }, data: defined(patch) })) as { count: number };
      return count === 0 ? null : getScript(id);
    },

    async recordRun(scriptId, at) {
      // Both statements are atomic on their row: an increment, and a conditional set that only
      // ever moves lastRunAt forward, so concurrent runs neither lose a count nor go back in time.
      const [incremented] = (await prisma.$transaction([
        scripts.updateMany({ where: { id: scriptId }, data: { totalRuns: { increment: 1 } } }),
        scripts.updateMany({
          where: { id: scriptId, OR: [{ lastRunAt: null }, { lastRunAt: { lt: at } }] },
          data: { lastRunAt: at },
        }),
      ])) as Array<{ count: number }>;
      return incremented && incremented.count > 0 ? getScript(scriptId) : null;
    },

    async createExecution(execution) {
      const row = (await executions.create({ data: { ...execution, args: [...execution.args] } })) as ExecutionRow;
      return toExecution(row);
    },

    async updateExecution(id, patch: ExecutionPatch, options?: UpdateExecutionOptions) {
      const data = defined(patch);
      // The column is a 32-bit Int (about 24.8 days); a longer run must not fail its final write.
      if (typeof data.durationMs === 'number') data.durationMs = Math.min(data.durationMs, INT32_MAX);
      const allowed = updatableStatuses(patch, options);
      // One UPDATE … WHERE id = ? AND status IN (…): the database checks and writes the row under
      // one lock, so of concurrent transitions out of one status only the first can match.
      if (allowed.length > 0 && Object.keys(data).length > 0) {
        await executions.updateMany({ where: { id, status: { in: allowed } }, data });
      }
      return getExecution(id);
    },

    getExecution,

    async listExecutions(query) {
      const where: object[] = [];
      if (query.scriptId !== undefined) where.push({ scriptId: query.scriptId });
      if (query.status !== undefined) where.push({ status: query.status });
      if (query.cursor) where.push(afterCursor('queuedAt', query.cursor));
      const rows = (await executions.findMany({
        where: { AND: where },
        orderBy: [{ queuedAt: 'desc' }, { id: 'desc' }],
        take: query.limit + 1,
      })) as ExecutionRow[];
      const page = pageOf(rows, query.limit, (r) => r.queuedAt);
      return { items: page.items.map(toExecution), nextCursor: page.nextCursor };
    },

    async interruptStaleExecutions(query) {
      const stale = (await executions.findMany({
        where: { status: { in: ['queued', 'running'] }, queuedAt: { lt: query.queuedBefore } },
        select: { id: true, startedAt: true },
      })) as Array<{ id: string; startedAt: Date | null }>;
      const changed: Execution[] = [];
      for (const { id, startedAt } of stale) {
        // Conditional on the status, so an execution that ended meanwhile is left alone.
        const { count } = (await executions.updateMany({
          where: { id, status: { in: ['queued', 'running'] } },
          data: {
            status: 'interrupted',
            finishedAt: query.finishedAt,
            errorMessage: query.errorMessage,
            durationMs: startedAt ? Math.max(0, query.finishedAt.getTime() - startedAt.getTime()) : 0,
          },
        })) as { count: number };
        if (count > 0) {
          const execution = await getExecution(id);
          if (execution) changed.push(execution);
        }
      }
      return changed;
    },

    async appendLogs(executionId, lines) {
      checkSqlite();
      if (lines.length === 0) return;
      const first = lines[0]!.seq;
      const last = lines[lines.length - 1]!.seq;
      // A batch that continues exactly where this store's last write for the execution ended is
      // inserted without the overlap query (one statement per batch instead of two: each Prisma
      // call costs ~0.2 ms of event-loop time, and the runner writes one batch per pipe read). If
      // that earlier write did commit after all and this is its retry, the chunk's primary key
      // (executionId, firstSeq) collides and the overlap path below sorts it out.
      if (writtenUpTo.get(executionId) === first - 1) {
        try {
          await insertChunks(encodeChunks(executionId, lines, limits));
          remember(executionId, last);
          return;
        } catch (error) {
          if (!isUniqueViolation(error)) throw error;
        }
      }
      // Idempotent on seq: a retried batch (or part of one) that is already stored is skipped.
      const stored = (await chunks.findMany({
        where: { executionId, lastSeq: { gte: first }, firstSeq: { lte: last } },
        select: { firstSeq: true, lastSeq: true },
      })) as Array<{ firstSeq: number; lastSeq: number }>;
      const fresh =
        stored.length === 0 ? lines : lines.filter((l) => !stored.some((c) => l.seq >= c.firstSeq && l.seq <= c.lastSeq));
      await insertChunks(encodeChunks(executionId, fresh, limits));
      remember(executionId, last);
    },

    async readLogs(executionId, query) {
      const afterSeq = query.afterSeq ?? 0;
      const levels = query.levels && query.levels.length > 0 ? new Set<LogLevel>(query.levels) : null;
      const streams = query.streams && query.streams.length > 0 ? new Set<LogStream>(query.streams) : null;
      // Chunks whose counts show no line of a wanted level are skipped by the database.
      const levelWhere = levels ? { OR: [...levels].map((level) => ({ [`${level}Count`]: { gt: 0 } })) } : {};
      const out: LogLine[] = [];
      let after = afterSeq;
      let take = READ_CHUNKS_FIRST;
      while (out.length < query.limit) {
        const rows = (await chunks.findMany({
          where: { executionId, lastSeq: { gt: after }, ...levelWhere },
          orderBy: { lastSeq: 'asc' },
          take,
          select: { firstSeq: true, lastSeq: true, lines: true },
        })) as Array<{ firstSeq: number; lastSeq: number; lines: string }>;
        for (const row of rows) {
          // `after` also guards against overlapping rows: no seq is returned twice.
          decodeChunk(executionId, row, after, levels, streams, query.limit, out);
          after = Math.max(after, row.lastSeq);
          if (out.length >= query.limit) break;
        }
        if (rows.length < take) break;
        take = Math.min(take * 2, READ_CHUNKS_MAX);
      }
      return out;
    },

    ...artifactMethods(prisma),
    ...retentionMethods(prisma),

    async ping() {
      await prisma.$queryRaw`SELECT 1`;
    },
  };
}
