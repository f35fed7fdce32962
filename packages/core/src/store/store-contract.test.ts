/** Runs the ObjectStore contract on the stores that need no network: memory and local directories. */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LocalDirStore } from './local-dir-store.js';
import { MemoryStore } from './memory-store.js';
import { RetryingStore } from './retrying-store.js';
import { runStoreContract } from './store-contract.js';

runStoreContract('MemoryStore', async () => ({ store: new MemoryStore() }), {
  atomicNoOverwrite: true,
  sortedList: true,
});

runStoreContract(
  'LocalDirStore',
  async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mailark-store-'));
    // A root that does not exist yet: the first put creates it.
    return {
      store: new LocalDirStore(path.join(dir, 'repo')),
      dispose: () => fs.rm(dir, { recursive: true, force: true }),
    };
  },
  { atomicNoOverwrite: true, sortedList: true },
);

runStoreContract(
  'RetryingStore(LocalDirStore)',
  async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mailark-store-'));
    return {
      store: new RetryingStore(new LocalDirStore(dir), { baseDelayMs: 1 }),
      dispose: () => fs.rm(dir, { recursive: true, force: true }),
    };
  },
  { atomicNoOverwrite: true, sortedList: true },
);
