import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { collectReferencedBlobs, readMessageBytes, walkMessages } from '../mail/snapshot-tree.js';
import { FaultyStore } from '../store/faulty-store.js';
import { MemoryStore } from '../store/memory-store.js';
import { rebuildIndex } from './repair-index.js';
import { Repository } from './repository.js';
import { saveTestSnapshot, TEST_KDF } from './test-repository.js';

const PW = 'maintenance';

function mail(tag: string, n: number): Uint8Array[] {
  // Random bodies: incompressible, so pack sizes are predictable.
  return Array.from({ length: n }, (_, i) =>
    Buffer.concat([
      Buffer.from(`Subject: ${tag} ${i}\r\n\r\n`),
      Buffer.from(randomBytes(3000).toString('base64')),
    ]),
  );
}

async function allMessagesReadable(repo: Repository): Promise<number> {
  let n = 0;
  for (const { snapshot } of await repo.listSnapshots()) {
    for await (const m of walkMessages(repo, snapshot)) {
      await readMessageBytes(repo, m.entry); // checks size and SHA-256
      n++;
    }
  }
  return n;
}

async function storedBytes(store: MemoryStore, prefix: string): Promise<number> {
  let n = 0;
  for await (const o of store.list(prefix)) n += o.size;
  return n;
}

describe('repack', () => {
  it('keeps what is referenced, drops the rest, and leaves a consistent repository', async () => {
    const store = new MemoryStore();
    const repo = await Repository.init(store, PW, { kdf: TEST_KDF, packSize: 16 * 1024 });
    const shared = mail('shared', 3);
    const a = await saveTestSnapshot(
      repo,
      { 'alice@x': { INBOX: [...shared, ...mail('a-only', 5)] } },
      '2024-01-01T00:00:00Z',
    );
    const b = await saveTestSnapshot(
      repo,
      { 'alice@x': { INBOX: [...shared, ...mail('b-only', 4)] } },
      '2024-01-02T00:00:00Z',
    );
    expect(await allMessagesReadable(repo)).toBe(8 + 7);
    const packsBefore = await repo.listPacks();
    const dataBefore = await storedBytes(store, 'data/');

    await repo.deleteSnapshot(a.id);
    const refs = { trees: new Set<string>(), data: new Set<string>() };
    await collectReferencedBlobs(repo, b.snapshot, refs);
    const keep = (id: string) => refs.trees.has(id) || refs.data.has(id);
    const onlyA = [...repo.indexEntries()].filter((e) => !keep(e.id)).map((e) => e.id);
    expect(onlyA.length).toBeGreaterThan(5);

    const result = await repo.repack(
      packsBefore.map((p) => p.id),
      keep,
    );
    expect(result.removed.sort()).toEqual(packsBefore.map((p) => p.id).sort());
    expect(result.newPacks.length).toBeGreaterThan(0);
    expect(result.copiedBlobs).toBe(refs.trees.size + refs.data.size);
    for (const id of onlyA) expect(repo.hasBlob(id)).toBe(false);
    expect(await storedBytes(store, 'data/')).toBeLessThan(dataBefore);

    const reopened = await Repository.open(store, PW);
    expect(await allMessagesReadable(reopened)).toBe(7);
    const packs = new Set((await reopened.listPacks()).map((p) => p.id));
    for (const e of reopened.indexEntries()) expect(packs.has(e.pack)).toBe(true);
    expect(new Set([...reopened.indexEntries()].map((e) => e.id))).toEqual(
      new Set([...refs.trees, ...refs.data]),
    );
  });

  it('rewrites an index object that also covers packs outside the set (replacement first)', async () => {
    const store = new MemoryStore();
    const repo = await Repository.init(store, PW, { kdf: TEST_KDF, packSize: 8 * 1024 });
    await saveTestSnapshot(repo, { 'bob@x': { INBOX: mail('b', 10) } });
    const indexObjects = [...repo.indexObjectPacks()];
    expect(indexObjects).toHaveLength(1);
    const packs = indexObjects[0]?.[1] ?? [];
    expect(packs.length).toBeGreaterThan(2);
    const victim = packs[0] as string;
    const keepAll = () => true;
    const deletes: string[] = [];
    const del = store.delete.bind(store);
    const puts: string[] = [];
    const put = store.put.bind(store);
    store.put = async (k, d) => {
      puts.push(k);
      return put(k, d);
    };
    store.delete = async (k) => {
      deletes.push(k);
      return del(k);
    };
    const result = await repo.repack([victim], keepAll);
    expect(result.writtenIndexObjects).toHaveLength(1);
    expect(result.removedIndexObjects).toEqual([indexObjects[0]?.[0]]);
    // Order: new pack, its index, the replacement index, then delete old index, then the old pack.
    expect(puts.map((k) => k.split('/')[0])).toEqual(['data', 'index', 'index']);
    expect(deletes.map((k) => k.split('/')[0])).toEqual(['index', 'data']);
    const reopened = await Repository.open(store, PW);
    expect(await allMessagesReadable(reopened)).toBe(10);
    expect((await reopened.listPacks()).some((p) => p.id === victim)).toBe(false);
  });

  it('deletes unindexed packs left by a crashed run', async () => {
    const store = new MemoryStore();
    const repo = await Repository.init(store, PW, { kdf: TEST_KDF });
    await saveTestSnapshot(repo, { 'c@x': { INBOX: mail('c', 2) } });
    const crashing = await Repository.open(
      new FaultyStore(store, { faults: [{ op: 'put', keyPrefix: 'index/', after: 0 }] }),
      PW,
    );
    await crashing.saveBlob('data', randomBytes(500));
    await expect(crashing.flush()).rejects.toMatchObject({ code: 'STORE_IO' });

    const fresh = await Repository.open(store, PW);
    const indexed = new Set([...fresh.indexEntries()].map((e) => e.pack));
    const orphans = (await fresh.listPacks()).filter((p) => !indexed.has(p.id)).map((p) => p.id);
    expect(orphans).toHaveLength(1);
    const r = await fresh.repack(orphans, () => true);
    expect(r).toMatchObject({ removed: orphans, newPacks: [], copiedBlobs: 0, removedIndexObjects: [] });
    expect((await fresh.listPacks()).map((p) => p.id).sort()).toEqual([...indexed].sort());
    expect(await allMessagesReadable(await Repository.open(store, PW))).toBe(2);
  });
});

describe('rebuildIndex', () => {
  it('after every index object is deleted, rebuild makes every message readable again', async () => {
    const store = new MemoryStore();
    const repo = await Repository.init(store, PW, { kdf: TEST_KDF, packSize: 8 * 1024 });
    await saveTestSnapshot(
      repo,
      { 'a@x': { INBOX: mail('one', 6), Sent: mail('two', 3) } },
      '2024-01-01T00:00:00Z',
    );
    await saveTestSnapshot(repo, { 'a@x': { INBOX: mail('three', 4) } }, '2024-01-02T00:00:00Z');
    const entriesBefore = new Set([...repo.indexEntries()].map((e) => `${e.pack}:${e.id}:${e.offset}`));
    for await (const o of store.list('index/')) await store.delete(o.key);

    const broken = await Repository.open(store, PW);
    await expect(allMessagesReadable(broken)).rejects.toMatchObject({ code: 'NOT_FOUND' });

    const result = await rebuildIndex(broken);
    expect(result.damagedPacks).toEqual([]);
    expect(result.blobs).toBe(entriesBefore.size);
    expect(result.removedIndexObjects).toEqual([]);
    expect(await allMessagesReadable(broken)).toBe(13);
    const reopened = await Repository.open(store, PW);
    expect(new Set([...reopened.indexEntries()].map((e) => `${e.pack}:${e.id}:${e.offset}`))).toEqual(
      entriesBefore,
    );
    expect(await allMessagesReadable(reopened)).toBe(13);
  });

  it('replaces a damaged index (opened with index: skip) and reports unreadable packs', async () => {
    const store = new MemoryStore();
    const repo = await Repository.init(store, PW, { kdf: TEST_KDF, packSize: 8 * 1024 });
    await saveTestSnapshot(repo, { 'a@x': { INBOX: mail('x', 5) } });
    const oldIndex: string[] = [];
    for await (const o of store.list('index/')) oldIndex.push(o.key);
    const first = oldIndex[0] as string;
    const bytes = Uint8Array.from(store.raw(first) as Uint8Array);
    bytes[10] = (bytes[10] as number) ^ 0xff;
    store.corrupt(first, bytes);
    await expect(Repository.open(store, PW)).rejects.toMatchObject({ code: 'CORRUPT' });
    const lenient = await Repository.open(store, PW, { index: 'lenient' });
    expect(lenient.indexErrors.map((e) => e.details?.object)).toEqual([first]);

    // Damage one pack's tail too: it cannot be indexed, and is reported.
    const packs = await lenient.listPacks();
    const victim = packs[0];
    if (victim === undefined) throw new Error('no pack');
    const key = `data/${victim.id.slice(0, 2)}/${victim.id}`;
    const pb = Uint8Array.from(store.raw(key) as Uint8Array);
    pb[pb.byteLength - 10] = (pb[pb.byteLength - 10] as number) ^ 1;
    store.corrupt(key, pb);

    const skip = await Repository.open(store, PW, { index: 'skip' });
    const result = await rebuildIndex(skip);
    expect(result.damagedPacks.map((d) => d.object)).toEqual([key]);
    expect(result.removedIndexObjects.map((id) => `index/${id}`).sort()).toEqual(oldIndex.sort());
    expect(result.packs).toBe(packs.length - 1);
    const reopened = await Repository.open(store, PW);
    expect([...reopened.indexEntries()].some((e) => e.pack === victim.id)).toBe(false);
  });
});
