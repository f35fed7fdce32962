import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fixturesDir } from '../mail/fixture-messages.js';
import { MemoryStore } from '../store/memory-store.js';
import { Repository } from './repository.js';
import { repositoryStats } from './stats.js';
import { saveTestSnapshot, TEST_KDF } from './test-repository.js';

const FIXTURES = fixturesDir();

function fixtures(): Uint8Array[] {
  return readdirSync(FIXTURES)
    .filter((f) => f.endsWith('.eml'))
    .sort()
    .map((f) => readFileSync(join(FIXTURES, f)));
}

describe('repositoryStats', () => {
  it('counts objects, blobs, compression and dedup across users and snapshots', async () => {
    const store = new MemoryStore();
    const repo = await Repository.init(store, 'pw', { kdf: TEST_KDF });
    const msgs = fixtures().slice(0, 20);
    const bytes = msgs.reduce((n, m) => n + m.byteLength, 0);
    // The same 20 messages in two mailboxes, then a second snapshot of the same state.
    await saveTestSnapshot(
      repo,
      { 'a@x': { INBOX: msgs }, 'b@x': { Archive: msgs } },
      '2024-01-01T00:00:00Z',
    );
    const second = await saveTestSnapshot(
      repo,
      { 'a@x': { INBOX: msgs }, 'b@x': { Archive: msgs } },
      '2024-01-02T00:00:00Z',
    );

    const s = await repositoryStats(repo);
    expect(s.snapshots).toBe(2);
    expect(s.objects.snapshots.count).toBe(2);
    expect(s.objects.config.count).toBe(1);
    expect(s.objects.keys.count).toBe(1);
    expect(s.objects.data.count).toBe((await repo.listPacks()).length);
    expect(s.totalBytes).toBe(Object.values(s.objects).reduce((n, o) => n + o.bytes, 0));
    const unique = new Set([...repo.indexEntries()].map((e) => e.id));
    expect(s.blobs.data.count + s.blobs.tree.count).toBe(unique.size);
    expect(s.blobs.duplicates).toBe(0);
    // Mail compresses: raw plaintext is well above what is stored (brotli q0: ~1.81 on these 20).
    expect(s.compressionRatio).toBeGreaterThan(1.8);
    expect(s.logical).toMatchObject({ snapshots: 2, messages: 80, messageBytes: 4 * bytes });
    // Four copies of each message (2 users × 2 snapshots), stored once and compressed.
    expect(s.logical.dedupRatio).toBeGreaterThan(7); // 4 copies × ~1.81 compression
    expect(s.logical.storedDataBytes).toBe(s.blobs.data.storedBytes);

    const one = await repositoryStats(repo, { snapshot: second.id.slice(0, 8) });
    expect(one.logical).toMatchObject({ snapshots: 1, messages: 40, messageBytes: 2 * bytes });
  });

  it('an empty repository has neutral ratios', async () => {
    const repo = await Repository.init(new MemoryStore(), 'pw', { kdf: TEST_KDF });
    const s = await repositoryStats(repo);
    expect(s).toMatchObject({ rawBytes: 0, storedBytes: 0, compressionRatio: 1, snapshots: 0 });
    expect(s.logical.dedupRatio).toBe(1);
  });
});
