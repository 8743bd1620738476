#!/usr/bin/env node
// `prisma generate` for the app's one Prisma client: the app's own models (prisma/schema/app.prisma)
// plus scriptrunner's, copied from the installed package so they never drift from the store's code.
// Prisma's CLI insists on finding its schema engine even for `generate`, which does not use it;
// offline (this workplace), point it at a stub that says so.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
copyFileSync(require.resolve('@scriptrunner/store-prisma/prisma/scriptrunner.prisma'), join(root, 'prisma', 'schema', 'scriptrunner.prisma'));

const env = { ...process.env, PRISMA_HIDE_UPDATE_MESSAGE: '1', CHECKPOINT_DISABLE: '1' };
const work = mkdtempSync(join(tmpdir(), 'example-nextjs-prisma-'));
try {
  if (!env.PRISMA_SCHEMA_ENGINE_BINARY) {
    const stub = join(work, 'schema-engine-stub.sh');
    writeFileSync(stub, '#!/bin/sh\necho "schema engine unavailable offline" >&2\nexit 1\n');
    chmodSync(stub, 0o755);
    env.PRISMA_SCHEMA_ENGINE_BINARY = stub;
  }
  execFileSync(process.execPath, [require.resolve('prisma/build/index.js'), 'generate', '--schema', join(root, 'prisma', 'schema')], {
    cwd: root,
    env,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
} finally {
  rmSync(work, { recursive: true, force: true });
}
