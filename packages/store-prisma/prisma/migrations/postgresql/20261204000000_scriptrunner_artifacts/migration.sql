-- Artifacts: files a run wrote to its output directory, kept in chunks of up to 1 MiB.
-- AlterTable
ALTER TABLE "scriptrunner_executions" ADD COLUMN "artifactCount" INTEGER NOT NULL DEFAULT 0;

-- CreateTable
CREATE TABLE "scriptrunner_artifacts" (
    "id" TEXT NOT NULL,
    "executionId" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "sizeBytes" INTEGER NOT NULL,
    "sha256" TEXT NOT NULL,
    "chunkCount" INTEGER NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "scriptrunner_artifacts_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "scriptrunner_artifact_chunks" (
    "artifactId" TEXT NOT NULL,
    "index" INTEGER NOT NULL,
    "executionId" TEXT NOT NULL,
    "data" BYTEA NOT NULL,

    CONSTRAINT "scriptrunner_artifact_chunks_pkey" PRIMARY KEY ("artifactId","index")
);

-- CreateIndex
CREATE UNIQUE INDEX "scriptrunner_artifacts_executionId_name_key" ON "scriptrunner_artifacts"("executionId", "name");

-- CreateIndex
CREATE INDEX "scriptrunner_artifact_chunks_executionId_idx" ON "scriptrunner_artifact_chunks"("executionId");

-- AddForeignKey
ALTER TABLE "scriptrunner_artifacts" ADD CONSTRAINT "scriptrunner_artifacts_executionId_fkey" FOREIGN KEY ("executionId") REFERENCES "scriptrunner_executions"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "scriptrunner_artifact_chunks" ADD CONSTRAINT "scriptrunner_artifact_chunks_executionId_fkey" FOREIGN KEY ("executionId") REFERENCES "scriptrunner_executions"("id") ON DELETE CASCADE ON UPDATE CASCADE;
