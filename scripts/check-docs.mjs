#!/usr/bin/env node
// `npm run check:docs`: every ```ts and ```tsx block of README.md and docs/*.md, type-checked
// against the built packages (strict), so the docs cannot drift from the API. Each block becomes
// one module under docs/check/blocks/ (generated, not committed). Names a block uses without
// defining — the reader's own `runner`, `app`, `buffer` — are declared in docs/check/ambient.d.ts;
// app-specific imports (`@/lib/...`, `./generated/prisma/client`) resolve to docs/check/stubs.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const checkDir = join(root, 'docs', 'check');
const blocksDir = join(checkDir, 'blocks');
rmSync(blocksDir, { recursive: true, force: true });
mkdirSync(blocksDir, { recursive: true });

// `./generated/prisma/client` in the Prisma snippet: an application's generated client (the store's own test client, with an app model).
mkdirSync(join(blocksDir, 'generated', 'prisma'), { recursive: true });
writeFileSync(join(blocksDir, 'generated', 'prisma', 'client.ts'), `export { PrismaClient } from '../../../../../packages/store-prisma/generated/test-app/client.js';\n`);

// `./src/lib/scriptrunner` in the custom-server snippet: the app's module, as in the route snippet.
mkdirSync(join(blocksDir, 'src', 'lib'), { recursive: true });
writeFileSync(join(blocksDir, 'src', 'lib', 'scriptrunner.ts'), `export * from '../../../stubs/lib/scriptrunner.js';\n`);

const sources = ['README.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
const origin = new Map();
let count = 0;
for (const source of sources) {
  const lines = readFileSync(join(root, source), 'utf8').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(ts|tsx)\s*$/.exec(lines[i]);
    if (!open) continue;
    const start = i + 1;
    let end = start;
    while (end < lines.length && !lines[end].startsWith('```')) end++;
    const name = `${source.replace(/[^\w]+/g, '_')}_L${start}.${open[1]}`;
    // `export {}` makes every block a module: its own top-level names shadow the ambient ones.
    writeFileSync(join(blocksDir, name), `${lines.slice(start, end).join('\n')}\nexport {};\n`);
    origin.set(name, { source, line: start + 1 });
    count++;
    i = end;
  }
}

try {
  execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(checkDir, 'tsconfig.json')], {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  console.log(`docs: ${count} TypeScript blocks type-check`);
} catch (error) {
  // Point at the Markdown line, not the generated file.
  const out = String(error.stdout ?? '').replace(/docs\/check\/blocks\/([\w.]+)\((\d+),(\d+)\)/g, (all, file, line, col) => {
    const where = origin.get(file);
    return where ? `${where.source}:${where.line + Number(line) - 1}:${col}` : all;
  });
  console.error(`docs: TypeScript blocks that do not compile:\n${out}${String(error.stderr ?? '')}`);
  process.exit(1);
}
