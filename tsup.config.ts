import { defineConfig } from 'tsup';

/**
 * The published package: ESM (`dist/index.js`) and CommonJS (`dist/index.cjs`), each with
 * its own declarations, for Nest apps of either module system. The Lua scripts are inlined
 * as text. Nest's dependency injection needs no emitted decorator metadata here: every
 * constructor parameter of the module's providers names its token with `@Inject()`.
 */
export default defineConfig({
  // The subpaths import the main entry by the package's name, kept external: one copy of its
  // classes (FlowFailureService is a DI token) whichever entry loads first.
  entry: { index: 'lib/index.ts', testing: 'lib/testing/index.ts', terminus: 'lib/terminus/index.ts' },
  external: ['nestjs-flow-failure'],
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
