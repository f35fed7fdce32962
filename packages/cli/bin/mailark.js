#!/usr/bin/env -S GLIBC_TUNABLES=glibc.malloc.mmap_threshold=131072 node
// The installed entry point. npm run build writes ../dist: mailark.cjs is the bundle of dist/main.js
// and its dependencies (scripts/bundle.mjs), compiled with a code cache (src/compile-cache.ts).
// The #! line has env(1) set glibc's mmap threshold before node starts (glibc reads it only then):
// buffers of 128 KiB and more go back to the system when freed, instead of raising the threshold and
// staying in the heap. 2 GB initial backup: ~20-25 MiB less peak RSS, ~0.5 s more system time. It
// replaces a GLIBC_TUNABLES of the caller's; `node bin/mailark.js` runs without it.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { limitHeapGrowth } from '@mailark/core/heap-growth';
import { compileCacheDir, enableCompileCache } from '../dist/compile-cache.js';

// V8 flags first: a code cache is only accepted under the flags it was made with, so a flag set after
// the bundle was compiled would make every run reject the cache and write it again.
limitHeapGrowth();
enableCompileCache(fileURLToPath(new URL('../dist/', import.meta.url)), compileCacheDir(process.env));
const { main } = createRequire(import.meta.url)('../dist/mailark.cjs');
await main();
