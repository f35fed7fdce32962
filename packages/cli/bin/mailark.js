#!/usr/bin/env node
// The installed entry point: runs the built CLI (npm run build writes ../dist).
import { main } from '../dist/main.js';

await main();
