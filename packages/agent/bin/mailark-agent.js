#!/usr/bin/env -S GLIBC_TUNABLES=glibc.malloc.mmap_threshold=131072 node
// glibc's mmap threshold, set as bin/mailark.js of the CLI sets it (see there; the unit file and the
// Containerfile set the same).
import { main } from '../dist/main.js';

await main();
