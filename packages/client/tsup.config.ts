import { defineConfig } from 'tsup';

export default defineConfig({
  entry: { index: 'src/index.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  // Runs in browsers and in Node: no Node built-ins in this package.
  platform: 'neutral',
  target: 'es2022',
});
