/**
 * What prismaStore needs from a PrismaClient, typed structurally so that any client generated from
 * a schema that includes `prisma/scriptrunner.prisma` fits — the application's own client, with its
 * own models beside ours. Only the three model delegates and four client methods are used.
 */

// Prisma's delegate methods are generic over their arguments; a structural type cannot name those
// generics, so arguments are loose here and every result is read through the row types below.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Method = (args?: any) => Promise<any>;

export interface ModelDelegateLike {
  findUnique: Method;
  findMany: Method;
  create: Method;
  createMany: Method;
  updateMany: Method;
  deleteMany: Method;
}

export interface PrismaClientLike {
  scriptRunnerScript: ModelDelegateLike;
  scriptRunnerExecution: ModelDelegateLike;
  scriptRunnerLogChunk: ModelDelegateLike;
  scriptRunnerArtifact: ModelDelegateLike;
  scriptRunnerArtifactChunk: ModelDelegateLike;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  $transaction: (arg: any, options?: any) => Promise<any>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  $executeRawUnsafe: (query: string, ...values: any[]) => Promise<number>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  $queryRawUnsafe: (query: string, ...values: any[]) => Promise<any>;
  /** The tag function: Prisma writes each provider's own placeholders for the values. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  $queryRaw: (query: TemplateStringsArray, ...values: any[]) => Promise<any>;
}

export interface ScriptRow {
  id: string;
  filename: string;
  runtime: string;
  sizeBytes: number;
  sha256: string;
  description: string | null;
  metadata: unknown;
  environment: string | null;
  status: string;
  createdAt: Date;
  updatedAt: Date;
  lastRunAt: Date | null;
  totalRuns: number;
}

export interface ExecutionRow {
  id: string;
  scriptId: string;
  status: string;
  args: unknown;
  exitCode: number | null;
  signal: string | null;
  queuedAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  durationMs: number | null;
  lineCount: number;
  errorMessage: string | null;
  truncated: boolean;
  environment: string | null;
  artifactCount: number;
}

export interface ArtifactRow {
  id: string;
  executionId: string;
  name: string;
  sizeBytes: number;
  sha256: string;
  chunkCount: number;
  createdAt: Date;
}

export interface LogChunkRow {
  executionId: string;
  firstSeq: number;
  lastSeq: number;
  infoCount: number;
  warnCount: number;
  errorCount: number;
  lines: string;
}
