import { defineConfig } from 'tsup';

export default defineConfig({
  entry: { index: 'src/index.ts', testing: 'src/testing/index.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  // nanoid 5 is ESM-only; bundling it keeps the CommonJS build loadable with plain require().
  noExternal: ['nanoid'],
});
