#!/usr/bin/env node
// The installed entry point: runs the built CLI (npm run build writes ../dist; mailark.js is the
// bundle of dist/main.js and its dependencies made by scripts/bundle.mjs, which starts faster).
import { main } from '../dist/mailark.js';

await main();
