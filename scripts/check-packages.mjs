#!/usr/bin/env node
// `npm run check:packages`: packs every published package as npm would and checks the tarball with
// publint (package.json fields, files, exports) and @arethetypeswrong/cli (types resolve for every
// consumer: node10, node16 CJS and ESM, bundlers). Fails on any error. Run after the build.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = (name) => join(root, 'node_modules', '.bin', name);

/** Per package: how attw should judge it, and why. */
const ATTW = {
  // The conformance suites import vitest, which cannot be required: ./testing is ESM only on purpose.
  core: ['--exclude-entrypoints', './testing'],
  // ESM only (Prisma 7's generated clients are ESM): CommonJS consumers are told so in its README.
  'store-prisma': ['--profile', 'esm-only', '--exclude-entrypoints', './prisma/*'],
  // A stylesheet, not a module: attw can only report it as untyped.
  react: ['--exclude-entrypoints', './styles.css'],
};

const work = mkdtempSync(join(tmpdir(), 'scriptrunner-packs-'));
const failures = [];
try {
  for (const name of readdirSync(join(root, 'packages')).sort()) {
    const dir = join(root, 'packages', name);
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    if (pkg.private) continue;
    const [packed] = JSON.parse(execFileSync('npm', ['pack', '--json', '--pack-destination', work], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }));
    const tarball = join(work, packed.filename);
    const files = packed.files.map((f) => f.path);
    for (const required of ['LICENSE', 'README.md', 'package.json']) {
      if (!files.includes(required)) failures.push(`${pkg.name}: the tarball has no ${required}`);
    }
    for (const [tool, args] of [
      ['publint', [tarball, '--strict']],
      ['attw', [tarball, '--format', 'ascii', ...(ATTW[name] ?? [])]],
    ]) {
      try {
        execFileSync(bin(tool), args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
        console.log(`ok    ${pkg.name}: ${tool}`);
      } catch (error) {
        failures.push(`${pkg.name}: ${tool}\n${String(error.stdout ?? '')}${String(error.stderr ?? '')}`);
        console.log(`FAIL  ${pkg.name}: ${tool}`);
      }
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
if (failures.length > 0) {
  console.error(`\n${failures.join('\n\n')}`);
  process.exit(1);
}
