-- Named Python environments: the one a script asks for, the one an execution ran in.
-- AlterTable
ALTER TABLE "scriptrunner_scripts" ADD COLUMN "environment" TEXT;

-- AlterTable
ALTER TABLE "scriptrunner_executions" ADD COLUMN "environment" TEXT;
