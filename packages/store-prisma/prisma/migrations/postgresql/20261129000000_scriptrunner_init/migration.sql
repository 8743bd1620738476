-- CreateTable
CREATE TABLE "scriptrunner_scripts" (
    "id" TEXT NOT NULL,
    "filename" TEXT NOT NULL,
    "runtime" TEXT NOT NULL,
    "sizeBytes" INTEGER NOT NULL,
    "sha256" TEXT NOT NULL,
    "description" TEXT,
    "metadata" JSONB NOT NULL,
    "status" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    "lastRunAt" TIMESTAMP(3),
    "totalRuns" INTEGER NOT NULL DEFAULT 0,
    "content" BYTEA NOT NULL,

    CONSTRAINT "scriptrunner_scripts_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "scriptrunner_executions" (
    "id" TEXT NOT NULL,
    "scriptId" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "args" JSONB NOT NULL,
    "exitCode" INTEGER,
    "signal" TEXT,
    "queuedAt" TIMESTAMP(3) NOT NULL,
    "startedAt" TIMESTAMP(3),
    "finishedAt" TIMESTAMP(3),
    "durationMs" INTEGER,
    "lineCount" INTEGER NOT NULL DEFAULT 0,
    "errorMessage" TEXT,
    "truncated" BOOLEAN NOT NULL DEFAULT false,

    CONSTRAINT "scriptrunner_executions_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "scriptrunner_log_chunks" (
    "executionId" TEXT NOT NULL,
    "firstSeq" INTEGER NOT NULL,
    "lastSeq" INTEGER NOT NULL,
    "infoCount" INTEGER NOT NULL,
    "warnCount" INTEGER NOT NULL,
    "errorCount" INTEGER NOT NULL,
    "lines" TEXT NOT NULL,

    CONSTRAINT "scriptrunner_log_chunks_pkey" PRIMARY KEY ("executionId","firstSeq")
);

-- CreateIndex
CREATE INDEX "scriptrunner_scripts_status_createdAt_id_idx" ON "scriptrunner_scripts"("status", "createdAt", "id");

-- CreateIndex
CREATE INDEX "scriptrunner_scripts_createdAt_id_idx" ON "scriptrunner_scripts"("createdAt", "id");

-- CreateIndex
CREATE INDEX "scriptrunner_executions_queuedAt_id_idx" ON "scriptrunner_executions"("queuedAt", "id");

-- CreateIndex
CREATE INDEX "scriptrunner_executions_scriptId_queuedAt_id_idx" ON "scriptrunner_executions"("scriptId", "queuedAt", "id");

-- CreateIndex
CREATE INDEX "scriptrunner_executions_status_queuedAt_idx" ON "scriptrunner_executions"("status", "queuedAt");

-- CreateIndex
CREATE INDEX "scriptrunner_log_chunks_executionId_lastSeq_idx" ON "scriptrunner_log_chunks"("executionId", "lastSeq");

-- AddForeignKey
ALTER TABLE "scriptrunner_executions" ADD CONSTRAINT "scriptrunner_executions_scriptId_fkey" FOREIGN KEY ("scriptId") REFERENCES "scriptrunner_scripts"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "scriptrunner_log_chunks" ADD CONSTRAINT "scriptrunner_log_chunks_executionId_fkey" FOREIGN KEY ("executionId") REFERENCES "scriptrunner_executions"("id") ON DELETE CASCADE ON UPDATE CASCADE;
