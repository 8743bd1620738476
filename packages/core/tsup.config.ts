import { defineConfig, type Options } from 'tsup';

const common: Options = {
  dts: true,
  sourcemap: true,
  target: 'node20',
  // nanoid 5 is ESM-only; bundling it keeps the CommonJS build loadable with plain require().
  noExternal: ['nanoid'],
};

export default defineConfig([
  { ...common, entry: { index: 'src/index.ts' }, format: ['esm', 'cjs'] },
  // The conformance suite imports vitest, which cannot be loaded through require(): ESM only.
  { ...common, entry: { testing: 'src/testing/index.ts' }, format: ['esm'] },
]);
