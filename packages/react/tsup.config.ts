import { defineConfig } from 'tsup';

export default defineConfig({
  entry: { index: 'src/index.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  target: 'es2022',
  platform: 'browser',
  external: ['react', 'react-dom', '@scriptrunner/client', '@scriptrunner/core'],
  // Every export is a hook or a component with state: the whole bundle is client code. A banner,
  // because esbuild drops module-level directives of the sources when it bundles them.
  banner: { js: "'use client';" },
});
