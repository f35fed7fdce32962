/**
 * Bundles the built CLI (dist/main.js, from tsc) with @mailark/core and the third-party packages into
 * dist/mailark.cjs plus lazily loaded chunks (dist/chunks/), which bin/mailark.js runs.
 *
 * Why: every command starts a process, and Node 20 spends most of a short command's CPU loading
 * ~250 small modules (resolution, stats, package.json reads, one compile per file): the bundle cuts a
 * no-change backup's CPU by ~0.4 s. The sources stay the source of truth (tests and typecheck use
 * them; dist/*.js from tsc remains the package's library entry); this is only the executable's form.
 *
 * Rules it keeps:
 * - what core loads lazily (imapflow, the AWS SDK, archive libraries) stays in chunks of its own, so
 *   a command loads only what it uses (test/startup-imports.test.ts guards this);
 * - not minified, module paths kept as comments: stack traces (--verbose) stay readable, and the
 *   start-up guard can tell which packages a chunk holds;
 * - dist/mailark.cjs sits beside main.js, so `new URL('../package.json', import.meta.url)` in main.ts
 *   still finds packages/cli/package.json;
 * - CommonJS, not ESM: Node 20 keeps no code cache, and compiles CommonJS through a step that
 *   src/compile-cache.ts can feed one (ESM has none); `import.meta.url` becomes the file's URL.
 */
import { rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { build } from 'rolldown';

const dist = fileURLToPath(new URL('../dist/', import.meta.url));
// Module paths in the bundle's comments are relative to the repository root: node_modules/<pkg>/...
const root = fileURLToPath(new URL('../../../', import.meta.url));

// Chunks of an earlier build would pile up (their names carry content hashes).
await rm(`${dist}chunks`, { recursive: true, force: true });
await rm(`${dist}mailark.js`, { force: true }); // the ESM bundle of earlier builds
await build({
  input: { mailark: `${dist}main.js` },
  cwd: root,
  platform: 'node',
  logLevel: 'warn',
  onLog(level, log, handler) {
    // yargs reads import.meta.resolve only to follow `extends` in a yargs config file, a feature
    // mailark does not use: in CommonJS that import.meta is {}, as rolldown warns, and harmlessly so.
    if (log.code === 'EMPTY_IMPORT_META' && /[\\/]node_modules[\\/]yargs[\\/]/.test(log.id ?? '')) return;
    handler(level, log);
  },
  // Node built-ins stay imports; everything else (workspace and npm packages) is bundled.
  external: [/^node:/],
  output: {
    dir: dist,
    format: 'cjs',
    entryFileNames: '[name].cjs',
    chunkFileNames: 'chunks/[name]-[hash].cjs',
    sourcemap: false,
    minify: false,
  },
});
