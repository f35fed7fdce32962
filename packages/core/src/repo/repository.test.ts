import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isMailarkError } from '../errors.js';
import { MemoryStore } from '../store/memory-store.js';
import { Repository } from './repository.js';
import { snapshotOf } from './test-repository.js';

const FAST = { N: 1024, r: 8, p: 1 };
const PW = 'correct horse battery staple';

function sha(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'resolved';
  } catch (err) {
    return isMailarkError(err) ? err.code : String(err);
  }
}

describe('Repository basics', () => {
  it('saves and loads blobs and trees, before and after flush and reopen', async () => {
    const store = new MemoryStore();
    const repo = await Repository.init(store, PW, { kdf: FAST });
    const body = Buffer.from('Subject: hello\r\n\r\nbody '.repeat(100));
    const saved = await repo.saveBlob('data', body);
    expect(saved.added).toBe(true);
    expect(saved.id).toBe(repo.blobId(body));
    expect(saved.id).toMatch(/^[0-9a-f]{64}$/);
    expect(saved.id).not.toBe(sha(body)); // keyed, not a plain hash
    expect(sha(await repo.loadBlob(saved.id))).toBe(sha(body)); // pending, still in memory
    const treeId = await repo.saveTree({ b: 2, a: [1, 'x'] });
    await repo.flush();
    expect(sha(await repo.loadBlob(saved.id))).toBe(sha(body));
    expect(await repo.loadTree(treeId)).toEqual({ a: [1, 'x'], b: 2 });

    const again = await Repository.open(store, PW);
    expect(again.config).toEqual(repo.config);
    expect(again.keyId).toBe(repo.keyId);
    expect(sha(await again.loadBlob(saved.id))).toBe(sha(body));
    expect(await again.loadTree(treeId)).toEqual({ a: [1, 'x'], b: 2 });
    // Same content, same keyed id in the reopened repository.
    expect(again.blobId(body)).toBe(saved.id);
  });

  it('config has the documented defaults', async () => {
    const repo = await Repository.init(new MemoryStore(), PW, { kdf: FAST });
    expect(repo.config.version).toBe(1);
    expect(repo.config.packSize).toBe(16 * 1024 * 1024);
    expect(repo.config.chunker).toMatchObject({ min: 4096, avg: 16384, max: 65536 });
    expect(repo.config.chunker.seed).toMatch(/^[0-9a-f]{64}$/);
    expect(repo.config.capabilities.conditionalWrites).toBe(true); // memory store refuses overwrites
  });

  it('deduplicates within a pack, across flushes and after reopen', async () => {
    const store = new MemoryStore();
    const repo = await Repository.init(store, PW, { kdf: FAST });
    const blob = Buffer.from('the same attachment bytes '.repeat(50));
    const a = await repo.saveBlob('data', blob);
    const b = await repo.saveBlob('data', blob);
    expect([a.added, b.added, b.storedBytes]).toEqual([true, false, 0]);
    await repo.flush();
    expect((await repo.saveBlob('data', blob)).added).toBe(false);
    await repo.flush();
    const reopened = await Repository.open(store, PW);
    expect(reopened.hasBlob(a.id)).toBe(true);
    expect((await reopened.saveBlob('data', blob)).added).toBe(false);
    await reopened.flush();
    const entries = [...reopened.indexEntries()].filter((e) => e.id === a.id);
    expect(entries).toHaveLength(1);
    expect((await reopened.listPacks()).length).toBe(1);
  });

  it('concurrent saves of the same blob store it once', async () => {
    const repo = await Repository.init(new MemoryStore(), PW, { kdf: FAST, packSize: 4096 });
    const blob = Buffer.alloc(3000, 7);
    const results = await Promise.all(Array.from({ length: 10 }, () => repo.saveBlob('data', blob)));
    expect(results.filter((r) => r.added)).toHaveLength(1);
    // Many different blobs in flight at once (as a message's chunks are saved), with repeats among them.
    const blobs = Array.from({ length: 60 }, (_, i) => Buffer.from(`chunk ${i % 40} `.repeat(100 + i)));
    const saved = await Promise.all(blobs.map((b) => repo.saveBlob('data', b)));
    expect(saved.filter((r) => r.added)).toHaveLength(60);
    const again = await Promise.all(blobs.slice(0, 40).map((b) => repo.saveBlob('data', b)));
    expect(again.filter((r) => r.added)).toHaveLength(0);
    await repo.flush();
    const ids = [results[0]?.id, ...saved.map((r) => r.id)] as string[];
    const entries = [...repo.indexEntries()];
    for (const id of ids) expect(entries.filter((e) => e.id === id)).toHaveLength(1);
    const reopened = await Repository.open(repo.store, PW);
    expect(Buffer.from(await reopened.loadBlob(ids[0] as string)).equals(blob)).toBe(true);
    for (const [i, r] of saved.entries())
      expect(Buffer.from(await reopened.loadBlob(r.id)).equals(blobs[i] as Buffer)).toBe(true);
  });

  it('loadBlob does exactly one ranged GET', async () => {
    const store = new MemoryStore();
    const repo = await Repository.init(store, PW, { kdf: FAST });
    const ids = [];
    for (let i = 0; i < 20; i++)
      ids.push((await repo.saveBlob('data', Buffer.from(`message ${i} `.repeat(200)))).id);
    await repo.flush();
    const reopened = await Repository.open(store, PW);
    const before = { ...store.counters };
    const bytes = await reopened.loadBlob(ids[7] as string);
    expect(store.counters.gets - before.gets).toBe(1);
    expect(store.counters.stats - before.stats).toBe(0);
    expect(store.counters.bytesRead - before.bytesRead).toBeLessThan(400); // the blob, not the pack
    expect(Buffer.from(bytes).toString()).toBe('message 7 '.repeat(200));
  });

  it('fills packs up to packSize, separate packs for data and tree blobs', async () => {
    const store = new MemoryStore();
    const repo = await Repository.init(store, PW, { kdf: FAST, packSize: 64 * 1024 });
    const random = (n: number, seed: number) => {
      const out = Buffer.alloc(n);
      let x = seed;
      for (let i = 0; i < n; i++) {
        x = (Math.imul(x, 1103515245) + 12345) >>> 0;
        out[i] = x >>> 24;
      }
      return out;
    };
    for (let i = 0; i < 40; i++) await repo.saveBlob('data', random(8000, i + 1)); // incompressible
    const tree = await repo.saveTree({ pages: ['x'] });
    await repo.flush();
    const packs = await repo.listPacks();
    expect(packs.length).toBeGreaterThanOrEqual(5);
    const byPack = new Map<string, Set<string>>();
    for (const e of repo.indexEntries()) byPack.set(e.pack, (byPack.get(e.pack) ?? new Set()).add(e.type));
    for (const types of byPack.values()) expect(types.size).toBe(1);
    expect([...repo.indexEntries()].find((e) => e.id === tree)?.type).toBe('tree');
    for (const p of packs) expect(p.size).toBeLessThan(64 * 1024 + 8100 + 1000);
  });

  it('saves, lists and resolves snapshots', async () => {
    const store = new MemoryStore();
    const repo = await Repository.init(store, PW, { kdf: FAST });
    const tree = await repo.saveTree({ v: 1, mailboxes: [] });
    const id2 = await repo.saveSnapshot(snapshotOf(tree, '2024-05-02T00:00:00.000Z'));
    const id1 = await repo.saveSnapshot(snapshotOf(tree, '2024-05-01T00:00:00.000Z'));
    const id3 = await repo.saveSnapshot(snapshotOf(tree, '2024-05-03T00:00:00.000Z', 'other.example'));
    expect(id1).toMatch(/^[0-9a-f]{64}$/);
    const reopened = await Repository.open(store, PW);
    expect((await reopened.listSnapshots()).map((s) => s.id)).toEqual([id1, id2, id3]);
    expect((await reopened.resolveSnapshot('latest')).id).toBe(id3);
    expect((await reopened.resolveSnapshot('latest', { tenant: 'acme.example' })).id).toBe(id2);
    expect((await reopened.resolveSnapshot(id1)).snapshot.time).toBe('2024-05-01T00:00:00.000Z');
    expect((await reopened.resolveSnapshot(id2.slice(0, 8))).id).toBe(id2);
    expect(await codeOf(reopened.resolveSnapshot('latest', { tenant: 'nobody' }))).toBe('NOT_FOUND');
    expect(await codeOf(reopened.resolveSnapshot(id3, { tenant: 'acme.example' }))).toBe('NOT_FOUND');
    expect(await codeOf(reopened.resolveSnapshot('abc'))).toBe('USAGE');
    const absent = [...'0123456789abcdef']
      .map((c) => c.repeat(4))
      .find((p) => ![id1, id2, id3].some((i) => i.startsWith(p)));
    expect(await codeOf(reopened.resolveSnapshot(absent as string))).toBe('NOT_FOUND');
    await reopened.deleteSnapshot(id2);
    expect((await reopened.listSnapshots()).map((s) => s.id)).toEqual([id1, id3]);
  });

  it('refuses a snapshot whose tree is not stored', async () => {
    const repo = await Repository.init(new MemoryStore(), PW, { kdf: FAST });
    expect(await codeOf(repo.saveSnapshot(snapshotOf('ab'.repeat(32), '2024-01-01T00:00:00Z')))).toBe(
      'INTERNAL',
    );
    expect(await repo.listSnapshots()).toEqual([]);
  });

  it('stores, lists, loads and deletes checkpoint objects', async () => {
    const store = new MemoryStore();
    const repo = await Repository.init(store, PW, { kdf: FAST });
    const id = await repo.saveObject('checkpoints', { tenant: 'acme', done: ['alice'] });
    expect(await repo.listObjects('checkpoints')).toEqual([id]);
    const reopened = await Repository.open(store, PW);
    expect(await reopened.loadObject('checkpoints', id)).toEqual({ tenant: 'acme', done: ['alice'] });
    await reopened.deleteObject('checkpoints', id);
    expect(await reopened.listObjects('checkpoints')).toEqual([]);
  });

  it('init twice is REPOSITORY_EXISTS, an empty location NO_REPOSITORY', async () => {
    const store = new MemoryStore();
    expect(await codeOf(Repository.open(store, PW))).toBe('NO_REPOSITORY');
    await Repository.init(store, PW, { kdf: FAST });
    expect(await codeOf(Repository.init(store, PW, { kdf: FAST }))).toBe('REPOSITORY_EXISTS');
    try {
      await Repository.open(new MemoryStore(), PW);
    } catch (err) {
      expect(isMailarkError(err) && err.hint).toContain('mailark init');
    }
  });

  it('wrong password is WRONG_PASSWORD and never echoes the password', async () => {
    const store = new MemoryStore();
    await Repository.init(store, PW, { kdf: FAST });
    try {
      await Repository.open(store, 'not the password');
      expect.unreachable();
    } catch (err) {
      expect(isMailarkError(err, 'WRONG_PASSWORD')).toBe(true);
      expect(JSON.stringify([String(err), (err as { hint?: string }).hint])).not.toContain(
        'not the password',
      );
    }
  });
});

describe('Repository keys', () => {
  it('says once that the key derivation is under way, whichever key opens, before the open ends', async () => {
    const store = new MemoryStore();
    const repo = await Repository.init(store, PW, { kdf: FAST });
    await repo.addKey('second password', { kdf: FAST });
    for (const password of [PW, 'second password', 'wrong']) {
      const events: string[] = [];
      const opening = Repository.open(store, password, { onKeyDerivation: () => events.push('deriving') });
      const outcome = await opening.then(
        () => 'opened',
        (err: unknown) => (isMailarkError(err) ? err.code : String(err)),
      );
      events.push(outcome);
      expect(events, password).toEqual(['deriving', password === 'wrong' ? 'WRONG_PASSWORD' : 'opened']);
    }
    expect(await codeOf(Repository.open(new MemoryStore(), PW, { onKeyDerivation: () => {} }))).toBe(
      'NO_REPOSITORY',
    );
  });

  it('adds a second password, opens with either, removes one', async () => {
    const store = new MemoryStore();
    const repo = await Repository.init(store, PW, { kdf: FAST });
    const second = await repo.addKey('second password', { kdf: FAST });
    const viaSecond = await Repository.open(store, 'second password');
    expect(viaSecond.keyId).toBe(second);
    expect(viaSecond.config.id).toBe(repo.config.id);
    expect((await viaSecond.listKeys()).map((k) => [k.id, k.current]).sort()).toEqual(
      [
        [repo.keyId, false],
        [second, true],
      ].sort(),
    );
    expect(await codeOf(viaSecond.removeKey(second))).toBe('USAGE'); // the key in use
    await viaSecond.removeKey(repo.keyId);
    expect(await codeOf(Repository.open(store, PW))).toBe('WRONG_PASSWORD');
    expect(await codeOf(viaSecond.removeKey(repo.keyId))).toBe('NOT_FOUND');
    const only = await Repository.open(store, 'second password');
    expect((await only.listKeys()).length).toBe(1);
    expect(await codeOf(only.removeKey(second))).toBe('USAGE'); // in use and last
  });

  it('refuses to remove the last key even when another instance holds it', async () => {
    const store = new MemoryStore();
    const repo = await Repository.init(store, PW, { kdf: FAST });
    const second = await repo.addKey('two', { kdf: FAST });
    const viaSecond = await Repository.open(store, 'two');
    await repo.removeKey(second);
    expect(await codeOf(viaSecond.removeKey(repo.keyId))).toBe('USAGE');
  });
});

describe('store capabilities', () => {
  it('hands the probed and the recorded capabilities to the store', async () => {
    const applied: boolean[] = [];
    const store = Object.assign(new MemoryStore(), {
      applyCapabilities(caps: { conditionalWrites: boolean }) {
        applied.push(caps.conditionalWrites);
      },
    });
    await Repository.init(store, PW, { kdf: FAST });
    await Repository.open(store, PW);
    expect(applied).toEqual([true, true]);
  });
});

describe('concurrent flushes', () => {
  it('index each pack once', async () => {
    const store = new MemoryStore();
    const repo = await Repository.init(store, PW, { kdf: FAST });
    await repo.saveBlob('data', Buffer.from('one blob'));
    await Promise.all([repo.flush(), repo.flush(), repo.flush()]);
    let indexObjects = 0;
    for await (const _ of store.list('index/')) indexObjects++;
    expect(indexObjects).toBe(1);
    expect([...(await Repository.open(store, PW)).indexEntries()]).toHaveLength(1);
  });
});
