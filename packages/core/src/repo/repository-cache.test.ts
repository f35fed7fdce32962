/**
 * Repository.open with a local cache (OpenOptions.cacheDir): later opens read no index or snapshot
 * bytes from the store, the cache follows deletions, and results are the same with or without it.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { MailboxTree, MessagePage } from '../mail/snapshot.js';
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
      'trees',
    ]);
    await first.close();

    store.reads = [];
    const second = await openCached();
    expect(await contents(second)).toEqual(expected);
    expect(store.bytesUnder('index/')).toBe(0);
    expect(store.bytesUnder('snapshots/')).toBe(0);
    // What still comes from the store: config, the key file, and the packs (pages and messages; the
    // tenant and mailbox trees come from the tree cache).
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
    for (const kind of ['index', 'snapshots', 'trees']) {
      for (const name of await readdir(join(dir, kind))) await writeFile(join(dir, kind, name), 'garbage');
    }
    const second = await openCached();
    expect(await contents(second)).toEqual(expected);
    expect((second.store as CachedStore).cacheCounters.repaired).toBeGreaterThan(0);
    expect(second.treeCacheCounters?.repaired).toBeGreaterThan(0);
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

describe('the tree cache and a deferred index (backup)', () => {
  async function openDeferred(opts: { cache?: boolean } = {}): Promise<Repository> {
    return Repository.open(store, PASSWORD, {
      index: 'deferred',
      ...(opts.cache === false ? {} : { cacheDir }),
    });
  }

  /** The latest snapshot's tenant tree and its mailbox trees, read as a backup reads them. */
  async function startingTrees(repo: Repository) {
    const latest = (await repo.listSnapshots()).at(-1);
    if (latest === undefined) throw new Error('no snapshot');
    const tenant = await loadTenantTree(repo, latest.snapshot);
    const mailboxes = await Promise.all(tenant.mailboxes.map((ref) => loadMailboxTree(repo, ref)));
    return { snapshot: latest.snapshot, tenant, mailboxes };
  }

  it('an unchanged run reads its trees from the cache and never loads the index', async () => {
    const warm = await openCached();
    const expected = await startingTrees(warm);
    await warm.close();

    store.reads = [];
    const repo = await openDeferred();
    const got = await startingTrees(repo);
    expect(got.tenant).toEqual(expected.tenant);
    expect(got.mailboxes).toEqual(expected.mailboxes);
    // Saved again unchanged (what a no-change backup does): the same ids, and a snapshot on them.
    const ids = await Promise.all(got.mailboxes.map((m) => repo.saveTree(m, { cache: true })));
    expect(ids).toEqual(got.tenant.mailboxes.map((r) => r.tree));
    const tree = await repo.saveTree(got.tenant, { cache: true });
    expect(tree).toBe(expected.snapshot.tree);
    const id = await repo.saveSnapshot({ ...got.snapshot, time: '2026-11-23T02:00:00.000Z' });
    await repo.close();
    expect(store.bytesUnder('index/')).toBe(0);
    expect(store.bytesUnder('data/')).toBe(0);
    expect(repo.treeCacheCounters?.hits).toBe(1 + got.mailboxes.length);

    // The snapshot it wrote reads back whole, with everything it references.
    const check = await Repository.open(store, PASSWORD);
    const all = await contents(check);
    expect(all['2026-11-23T02:00:00.000Z']).toEqual(all['2026-11-21T02:00:00.000Z']);
    expect((await check.listSnapshots()).map((s) => s.id)).toContain(id);
    await check.close();
  });

  it('loads the index when the run first stores something, and dedups against it', async () => {
    const known = Buffer.from('a blob an earlier run stored');
    const writer = await Repository.open(store, PASSWORD);
    const first = await writer.saveBlob('data', known);
    await writer.close();
    expect(first.added).toBe(true);

    const repo = await openDeferred();
    // The synchronous accessors refuse a deferred index rather than answer from an empty one.
    expect(() => repo.hasBlob(first.id)).toThrow(/deferred/);
    store.reads = [];
    const again = await repo.saveBlob('data', known);
    expect(store.bytesUnder('index/')).toBeGreaterThan(0);
    expect(again).toEqual({ id: first.id, added: false, storedBytes: 0 });
    expect(repo.hasBlob(first.id)).toBe(true);
    const fresh = await repo.saveBlob('data', Buffer.from('a blob new in this run'));
    expect(fresh.added).toBe(true);
    await repo.close();
  });

  it('a new tree is checked against the index before a snapshot points at it', async () => {
    const repo = await openDeferred();
    const { snapshot, mailboxes } = await startingTrees(repo);
    const changed: MailboxTree = { ...(mailboxes[0] as MailboxTree), user: 'carol@ex' };
    const mailboxTree = await repo.saveTree(changed, { cache: true });
    const tenant = {
      v: 1,
      mailboxes: [{ user: 'carol@ex', tree: mailboxTree, folders: 1, messages: 1, bytes: 1, state: 'ok' }],
    };
    const tree = await repo.saveTree(tenant, { cache: true });
    await repo.saveSnapshot({ ...snapshot, time: '2026-11-24T02:00:00.000Z', tree });
    await repo.close();
    const reader = await Repository.open(store, PASSWORD);
    const latest = (await reader.listSnapshots()).at(-1);
    expect(latest?.snapshot.tree).toBe(tree);
    expect((await reader.loadTree<MailboxTree>(mailboxTree)).user).toBe('carol@ex');
    await reader.close();
  });

  it('refuses a snapshot on a tree that is neither read here nor in the index', async () => {
    const repo = await openDeferred();
    const { snapshot } = await startingTrees(repo);
    await expect(repo.saveSnapshot({ ...snapshot, tree: 'ab'.repeat(32) })).rejects.toThrow(/dangling/);
    await repo.close();
  });

  it('a damaged index object fails the first store as a strict open would', async () => {
    let key = '';
    for await (const o of store.list('index/')) key = o.key;
    store.corrupt(key, Buffer.from('not an index object'));
    const repo = await openDeferred({ cache: false });
    await expect(repo.saveBlob('data', two)).rejects.toMatchObject({ code: 'CORRUPT' });
    await expect(repo.saveBlob('data', one)).rejects.toMatchObject({ code: 'CORRUPT' });
    await repo.close();
  });

  it('without a cache directory, a deferred index loads for the first tree read', async () => {
    const repo = await openDeferred({ cache: false });
    store.reads = [];
    const { mailboxes } = await startingTrees(repo);
    expect(mailboxes).toHaveLength(1);
    expect(store.bytesUnder('index/')).toBeGreaterThan(0);
    await repo.close();
  });

  it('sweep keeps the trees this process read or stored, and drops the rest', async () => {
    const first = await openCached();
    const before = await startingTrees(first);
    await first.close();
    const dir = join(cacheDir, first.config.id, 'trees');
    const old = 'cd'.repeat(32);
    await writeFile(join(dir, old), 'a tree of a pruned snapshot');
    const tmp = join(dir, '.tmp-0123456789abcdef');
    await writeFile(tmp, 'a writer is still here');

    const repo = await openDeferred();
    const { tenant } = await startingTrees(repo);
    await repo.sweepTreeCache();
    await repo.close();
    expect((await readdir(dir)).sort()).toEqual(
      [
        before.snapshot.tree,
        ...tenant.mailboxes.map((r) => r.tree),
        '.tmp-0123456789abcdef',
        'CACHEDIR.TAG',
      ].sort(),
    );
    expect(repo.treeCacheCounters?.swept).toBe(1);
    expect((await stat(tmp)).isFile()).toBe(true);
  });
});
