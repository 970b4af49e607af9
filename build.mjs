// Builds dist/ with esbuild: src/cli.ts and what it imports, bundled into a few files, with a
// chunk for each command and for the heavy parts they load lazily. Loading dozens of small
// dependency files one by one was a fifth of `dcp up`'s start-up. Type checking is tsc's job
// (`npm run typecheck`). The terminal UI, the prompts and `open` stay outside the
// bundle: they load only when used, and `open` ships helper files of its own.
import { rmSync } from 'node:fs';
import { build } from 'esbuild';

rmSync(new URL('./dist', import.meta.url), { recursive: true, force: true });
await build({
  entryPoints: ['src/cli.ts'],
  outdir: 'dist',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20.19',
  chunkNames: 'chunks/[name]-[hash]',
  jsx: 'automatic',
  external: ['open', 'ink', 'ink-spinner', 'react', 'react/jsx-runtime', '@inquirer/prompts'],
  // ES modules first, so the AWS SDK shakes down to the commands dcp sends (CommonJS would not).
  mainFields: ['module', 'main'],
  // Bundled CommonJS (node-forge, proper-lockfile) calls require(); ESM has none of its own.
  banner: {
    js: "import { createRequire as __dcpCreateRequire } from 'node:module';\nconst require = __dcpCreateRequire(import.meta.url);",
  },
  logLevel: 'warning',
});
