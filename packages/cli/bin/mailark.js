#!/usr/bin/env node
// The installed entry point. npm run build writes ../dist: mailark.cjs is the bundle of dist/main.js
// and its dependencies (scripts/bundle.mjs), compiled with a code cache (src/compile-cache.ts).
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { compileCacheDir, enableCompileCache } from '../dist/compile-cache.js';

enableCompileCache(fileURLToPath(new URL('../dist/', import.meta.url)), compileCacheDir(process.env));
const { main } = createRequire(import.meta.url)('../dist/mailark.cjs');
await main();
