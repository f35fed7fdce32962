/**
 * Repository.open with a local cache (OpenOptions.cacheDir): later opens read no index or snapshot
 * bytes from the store, the cache follows deletions, and results are the same with or without it.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { MessagePage } from '../mail/snapshot.js';
import { loadMailboxTree, loadTenantTree, readMessageBytes } from '../mail/snapshot-tree.js';
import { CachedStore } from '../store/cached-store.js';
import { MemoryStore } from '../store/memory-store.js';
import type { ByteRange } from '../store/object-store.js';
import { Repository } from './repository.js';
import { saveTestSnapshot, TEST_KDF } from './test-repository.js';

const PASSWORD = 'cache test password';
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const one = Buffer.from('Subject: one\r\n\r\nfirst body\r\n');
const two = Buffer.from('Subject: two\r\n\r\nsecond body\r\n');

/** A MemoryStore that remembers which keys were read, and how many bytes each time. */
class ReadLog extends MemoryStore {
  reads: Array<{ key: string; bytes: number }> = [];
  override async get(key: string, range?: ByteRange): Promise<Uint8Array> {
    const out = await super.get(key, range);
    this.reads.push({ key, bytes: out.byteLength });
    return out;
  }
  bytesUnder(prefix: string): number {
    return this.reads.filter((r) => r.key.startsWith(prefix)).reduce((n, r) => n + r.bytes, 0);
  }
}

let cacheDir: string;
let store: ReadLog;

beforeEach(async () => {
  cacheDir = await mkdtemp(join(tmpdir(), 'mailark-repo-cache-'));
  store = new ReadLog();
  const repo = await Repository.init(store, PASSWORD, { kdf: TEST_KDF, packSize: 4096 });
  await saveTestSnapshot(repo, { 'alice@ex': { INBOX: [one, two] } }, '2026-11-20T02:00:00.000Z');
  await saveTestSnapshot(repo, { 'alice@ex': { INBOX: [two] } }, '2026-11-21T02:00:00.000Z');
  await repo.close();
});

afterEach(async () => {
  await rm(cacheDir, { recursive: true, force: true });
});

async function openCached(): Promise<Repository> {
  return Repository.open(store, PASSWORD, { cacheDir });
}

/** The SHA-256 of every message of every snapshot, by snapshot time. */
async function contents(repo: Repository): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const { snapshot } of await repo.listSnapshots()) {
    const shas: string[] = [];
    for (const ref of (await loadTenantTree(repo, snapshot)).mailboxes) {
      for (const folder of (await loadMailboxTree(repo, ref)).folders) {
        for (const page of folder.pages) {
          for (const e of (await repo.loadTree<MessagePage>(page)).entries)
            shas.push(sha(await readMessageBytes(repo, e)));
        }
      }
    }
    out[snapshot.time] = shas;
  }
  return out;
}

describe('Repository with a local cache', () => {
  it('a second open reads zero index and snapshot bytes from the store', async () => {
    const first = await openCached();
    const expected = await contents(first);
    expect(store.bytesUnder('index/')).toBeGreaterThan(0);
    expect(store.bytesUnder('snapshots/')).toBeGreaterThan(0);
    expect(first.store).toBeInstanceOf(CachedStore);
    expect((await readdir(join(cacheDir, first.config.id))).sort()).toEqual([
      'CACHEDIR.TAG',
      'index',
      'snapshots',
    ]);
    await first.close();

    store.reads = [];
    const second = await openCached();
    expect(await contents(second)).toEqual(expected);
    expect(store.bytesUnder('index/')).toBe(0);
    expect(store.bytesUnder('snapshots/')).toBe(0);
    // What still comes from the store: config, the key file, and the packs (trees and messages).
    expect(new Set(store.reads.map((r) => r.key.split('/')[0]))).toEqual(new Set(['config', 'keys', 'data']));
    // The counters are the store's own: cache hits are not store reads.
    expect(second.counters).toBe(store.counters);
    await second.close();
  });

  it('caches what a run writes, and forgets what another instance deleted', async () => {
    const writer = await openCached();
    const added = await saveTestSnapshot(writer, { 'bob@ex': { INBOX: [one] } }, '2026-11-22T02:00:00.000Z');
    await writer.close();
    // Deleted without the cache (another machine running forget).
    const other = await Repository.open(store, PASSWORD);
    const oldest = (await other.listSnapshots())[0]?.id ?? '';
    await other.deleteSnapshot(oldest);
    await other.close();

    store.reads = [];
    const reader = await openCached();
    const ids = (await reader.listSnapshots()).map((s) => s.id);
    expect(ids).not.toContain(oldest);
    expect(ids).toContain(added.id);
    // The new snapshot and its index object were cached as they were written: nothing read for them.
    expect(store.reads.filter((r) => r.key.includes(added.id))).toEqual([]);
    expect(await readdir(join(cacheDir, reader.config.id, 'snapshots'))).not.toContain(oldest);
    await reader.close();
  });

  it('gives the same results from a cache full of damaged files', async () => {
    const first = await openCached();
    const expected = await contents(first);
    const dir = join(cacheDir, first.config.id);
    await first.close();
    for (const kind of ['index', 'snapshots']) {
      for (const name of await readdir(join(dir, kind))) await writeFile(join(dir, kind, name), 'garbage');
    }
    const second = await openCached();
    expect(await contents(second)).toEqual(expected);
    expect((second.store as CachedStore).cacheCounters.repaired).toBeGreaterThan(0);
    await second.close();
    // Repaired: a third open reads nothing of them again.
    store.reads = [];
    const third = await openCached();
    await third.listSnapshots();
    expect(store.bytesUnder('index/') + store.bytesUnder('snapshots/')).toBe(0);
    await third.close();
  });

  it('opens without a cache when none is asked for', async () => {
    const repo = await Repository.open(store, PASSWORD);
    expect(repo.store).toBe(store);
    expect(await readdir(cacheDir)).toEqual([]);
    await repo.close();
  });
});
