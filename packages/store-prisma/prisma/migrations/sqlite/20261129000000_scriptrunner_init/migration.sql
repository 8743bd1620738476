-- CreateTable
CREATE TABLE "scriptrunner_scripts" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "filename" TEXT NOT NULL,
    "runtime" TEXT NOT NULL,
    "sizeBytes" INTEGER NOT NULL,
    "sha256" TEXT NOT NULL,
    "description" TEXT,
    "metadata" JSONB NOT NULL,
    "status" TEXT NOT NULL,
    "createdAt" DATETIME NOT NULL,
    "updatedAt" DATETIME NOT NULL,
    "lastRunAt" DATETIME,
    "totalRuns" INTEGER NOT NULL DEFAULT 0,
    "content" BLOB NOT NULL
);

-- CreateTable
CREATE TABLE "scriptrunner_executions" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "scriptId" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "args" JSONB NOT NULL,
    "exitCode" INTEGER,
    "signal" TEXT,
    "queuedAt" DATETIME NOT NULL,
    "startedAt" DATETIME,
    "finishedAt" DATETIME,
    "durationMs" INTEGER,
    "lineCount" INTEGER NOT NULL DEFAULT 0,
    "errorMessage" TEXT,
    "truncated" BOOLEAN NOT NULL DEFAULT false,
    CONSTRAINT "scriptrunner_executions_scriptId_fkey" FOREIGN KEY ("scriptId") REFERENCES "scriptrunner_scripts" ("id") ON DELETE CASCADE ON UPDATE CASCADE
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

    PRIMARY KEY ("executionId", "firstSeq"),
    CONSTRAINT "scriptrunner_log_chunks_executionId_fkey" FOREIGN KEY ("executionId") REFERENCES "scriptrunner_executions" ("id") ON DELETE CASCADE ON UPDATE CASCADE
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
