import { defineConfig } from 'tsup';

export default defineConfig({
  entry: { index: 'src/index.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  target: 'es2022',
  platform: 'browser',
  external: ['react', 'react-dom', '@scriptrunner/client', '@scriptrunner/core'],
});
