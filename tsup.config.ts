import { defineConfig } from 'tsup';

/**
 * The published package: ESM (`dist/index.js`) and CommonJS (`dist/index.cjs`), each with
 * its own declarations, for Nest apps of either module system. The Lua scripts are inlined
 * as text. Nest's dependency injection needs no emitted decorator metadata here: every
 * constructor parameter of the module's providers names its token with `@Inject()`.
 */
export default defineConfig({
  entry: { index: 'lib/index.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  target: 'node20',
  platform: 'node',
  sourcemap: true,
  clean: true,
  outDir: 'dist',
  tsconfig: 'tsconfig.build.json',
  loader: { '.lua': 'text' },
});
