#!/usr/bin/env -S GLIBC_TUNABLES=glibc.malloc.mmap_threshold=131072 node
// The process-wide memory settings, as bin/mailark.js of the CLI makes them (see there): glibc's mmap
// threshold in the #! line (the unit file and the Containerfile set the same), V8's heap growth before
// the agent's code loads.
import { limitHeapGrowth } from '@mailark/core/heap-growth';

limitHeapGrowth();
const { main } = await import('../dist/main.js');
await main();
