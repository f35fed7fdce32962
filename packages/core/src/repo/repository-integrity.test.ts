/**
 * The repository's promises under attack: nothing plaintext in the store, every flipped or truncated
 * byte detected and named, wrong versions and passwords refused, and no dangling snapshot after a crash.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isMailarkError, type MailarkError } from '../errors.js';
import { MemoryStore } from '../store/memory-store.js';
import type { ByteRange, ObjectInfo, ObjectStore } from '../store/object-store.js';
import { open } from './crypto.js';
import { parseKeyFile, unwrapKeyFile } from './key-file.js';
import { sealConfig } from './repo-config.js';
import { Repository } from './repository.js';
import { saveTestSnapshot, snapshotOf, TEST_KDF } from './test-repository.js';

const PW = 'integrity test password';
const SECRET = 'Zanzibar quarterly invoice 4711 for Mrs Wolkenstein';

function message(i: number, extra = ''): Uint8Array {
  return Buffer.from(
    `From: bob@example.com\r\nTo: alice@example.com\r\nSubject: ${SECRET} ${i}\r\n\r\n` +
      `Dear Alice, ${SECRET}. ${extra}\r\n`.repeat(20),
  );
}

/** A small repository with every object kind: config, key, packs, index, snapshot, checkpoint, lock. */
async function populated(): Promise<{ store: MemoryStore; repo: Repository; snapshotId: string }> {
  const store = new MemoryStore();
  const repo = await Repository.init(store, PW, { kdf: TEST_KDF });
  const { id } = await saveTestSnapshot(repo, {
    'alice@example.com': { INBOX: [message(1), message(2)], 'Archives/2024': [message(3)] },
    'bob@example.com': { INBOX: [message(1)] },
  });
  await repo.saveObject('checkpoints', { note: SECRET });
  await repo.lock('shared', 'integrity-test');
  return { store, repo, snapshotId: id };
}

async function keys(store: MemoryStore): Promise<string[]> {
  const out: string[] = [];
  for await (const o of store.list('')) out.push(o.key);
  return out;
}

/** Reads everything a user can reach through the repository; throws the first failure. */
async function readEverything(store: ObjectStore): Promise<void> {
  const repo = await Repository.open(store, PW);
  for (const { snapshot } of await repo.listSnapshots()) void snapshot;
  for (const e of repo.indexEntries()) await repo.loadBlob(e.id);
  for (const p of await repo.listPacks()) await repo.readPackHeader(p.id, p.size);
  for (const id of await repo.listObjects('checkpoints')) await repo.loadObject('checkpoints', id);
}

async function failure(p: Promise<unknown>): Promise<MailarkError | undefined> {
  try {
    await p;
    return undefined;
  } catch (err) {
    if (isMailarkError(err)) return err;
    throw err;
  }
}

function expectNamed(err: MailarkError | undefined, key: string): void {
  expect(err, `damage to ${key} went unnoticed`).toBeDefined();
  const e = err as MailarkError;
  if (key.startsWith('keys/') && e.code === 'WRONG_PASSWORD') return;
  if (key.startsWith('locks/')) return;
  expect(e.code, `${key}: ${e.message}`).toBe('CORRUPT');
  expect(e.message).toContain(key);
}

describe('nothing plaintext in the store', () => {
  it('no subject, body, tenant or password bytes (raw or base64) in any object', async () => {
    const { store } = await populated();
    const needles = [SECRET, 'Wolkenstein', 'alice@example.com', 'acme.example', PW];
    const forms = needles.flatMap((n) => {
      const b = Buffer.from(n);
      // base64 of the string at each of the three alignments a base64 encoder can put it in
      return [
        n,
        ...[0, 1, 2].map((k) =>
          Buffer.concat([Buffer.alloc(k), b])
            .toString('base64')
            .slice(4, -4),
        ),
      ];
    });
    const all = await keys(store);
    expect(all.some((k) => k.startsWith('data/'))).toBe(true);
    expect(all.some((k) => k.startsWith('index/'))).toBe(true);
    expect(all.some((k) => k.startsWith('snapshots/'))).toBe(true);
    expect(all.some((k) => k.startsWith('locks/'))).toBe(true);
    for (const key of all) {
      const text = Buffer.from(store.raw(key) as Uint8Array).toString('latin1');
      for (const f of forms) expect(text.includes(f), `${JSON.stringify(f)} found in ${key}`).toBe(false);
    }
  });
});

describe('every read is authenticated', () => {
  it('the populated repository reads back cleanly', async () => {
    const { store } = await populated();
    await readEverything(store);
  });

  it('a flipped byte anywhere in any object is detected and names the object', async () => {
    const { store } = await populated();
    const all = await keys(store);
    let flips = 0;
    for (const key of all) {
      const original = store.raw(key) as Uint8Array;
      // First, last, middle and a spread of positions: every region of every format (nonce, body,
      // tag, pack header, length field).
      const n = original.byteLength;
      const positions = new Set([0, 1, 12, n >> 1, n - 17, n - 5, n - 4, n - 1]);
      for (let i = 0; i < 12; i++) positions.add(Math.floor(((i + 0.5) / 12) * n));
      for (const pos of positions) {
        if (pos < 0 || pos >= n) continue;
        const damaged = Uint8Array.from(original); // a copy: Buffer#slice would alias
        damaged[pos] = (damaged[pos] as number) ^ 0x01;
        store.corrupt(key, damaged);
        const err = await failure(readEverything(store));
        if (key.startsWith('locks/')) {
          // A damaged lock is not data loss: it shows as an unreadable lock that blocks exclusive use.
          const repo = await Repository.open(store, PW);
          const lock = (await repo.listLocks()).find((l) => l.id === key.slice(6));
          expect(lock?.owner).toBe('unreadable lock');
          expect(lock?.stale).toBe(false);
        } else {
          expectNamed(err, key);
        }
        flips++;
      }
      store.corrupt(key, original);
    }
    expect(flips).toBeGreaterThan(100);
    await readEverything(store);
  });

  it('truncated objects are CORRUPT naming the object', async () => {
    const { store } = await populated();
    for (const key of await keys(store)) {
      if (key.startsWith('locks/')) continue;
      const original = store.raw(key) as Uint8Array;
      for (const len of [0, 10, original.byteLength >> 1, original.byteLength - 1]) {
        store.corrupt(key, Uint8Array.prototype.slice.call(original, 0, len));
        expectNamed(await failure(readEverything(store)), key);
      }
      store.corrupt(key, original);
    }
  });

  it('a blob moved to another blob’s place does not authenticate', async () => {
    const { store, repo } = await populated();
    const [a, b] = [...repo.indexEntries()].filter((e) => e.type === 'data');
    if (a === undefined || b === undefined) throw new Error('need two data blobs');
    const key = `data/${a.pack.slice(0, 2)}/${a.pack}`;
    const bytes = Uint8Array.from(store.raw(key) as Uint8Array);
    const len = Math.min(a.length, b.length);
    bytes.set(bytes.slice(b.offset, b.offset + len), a.offset);
    store.corrupt(key, bytes);
    const reopened = await Repository.open(store, PW);
    expectNamed(await failure(reopened.loadBlob(a.id)), key);
  });

  it('wrong password → WRONG_PASSWORD; no key at all → WRONG_PASSWORD', async () => {
    const { store } = await populated();
    expect((await failure(Repository.open(store, 'guess')))?.code).toBe('WRONG_PASSWORD');
    for (const key of await keys(store)) if (key.startsWith('keys/')) await store.delete(key);
    expect((await failure(Repository.open(store, PW)))?.code).toBe('WRONG_PASSWORD');
  });

  it('a repository with a version 2 config → FORMAT_UNSUPPORTED with an upgrade hint', async () => {
    const { store, repo } = await populated();
    const keyKey = (await keys(store)).find((k) => k.startsWith('keys/')) as string;
    const master = await unwrapKeyFile(parseKeyFile(keyKey.slice(5), store.raw(keyKey) as Uint8Array), PW);
    if (master === undefined) throw new Error('key does not open');
    const config = JSON.parse(
      Buffer.from(
        open(master.encKey, store.raw('config') as Uint8Array, 'config', Buffer.from('config')),
      ).toString(),
    );
    expect(config.id).toBe(repo.config.id);
    store.corrupt('config', sealConfig(master.encKey, { ...config, version: 2 }));
    const err = await failure(Repository.open(store, PW));
    expect(err?.code).toBe('FORMAT_UNSUPPORTED');
    expect(err?.hint).toContain('upgrade mailark');
  });

  it('a key file of a newer format → FORMAT_UNSUPPORTED', async () => {
    const store = new MemoryStore();
    await Repository.init(store, PW, { kdf: TEST_KDF });
    const keyKey = (await keys(store)).find((k) => k.startsWith('keys/')) as string;
    const file = JSON.parse(Buffer.from(store.raw(keyKey) as Uint8Array).toString());
    await store.delete(keyKey);
    const bytes = Buffer.from(JSON.stringify({ ...file, v: 2 }));
    const { createHash } = await import('node:crypto');
    await store.put(`keys/${createHash('sha256').update(bytes).digest('hex')}`, bytes);
    expect((await failure(Repository.open(store, PW)))?.code).toBe('FORMAT_UNSUPPORTED');
  });

  it('a damaged config or key ring names it and says how to recover, not "run check" (which cannot open)', async () => {
    const { store } = await populated();
    const config = store.raw('config') as Uint8Array;
    const flipped = Uint8Array.from(config);
    flipped[20] = (flipped[20] as number) ^ 0x01;
    for (const damaged of [flipped, config.slice(0, 10)]) {
      store.corrupt('config', damaged);
      const err = await failure(Repository.open(store, PW));
      expectNamed(err, 'config');
      expect(err?.hint).toContain('restore "config" from a copy of the repository');
      expect(err?.hint).not.toContain('mailark check');
    }
    store.corrupt('config', config);

    const keyKeys = (await keys(store)).filter((k) => k.startsWith('keys/'));
    for (const k of keyKeys) {
      const bytes = Uint8Array.from(store.raw(k) as Uint8Array);
      bytes[40] = (bytes[40] as number) ^ 4;
      store.corrupt(k, bytes);
    }
    const err = await failure(Repository.open(store, PW));
    expectNamed(err, keyKeys[0] as string);
    expect(err?.hint).toContain('restore keys/ from a copy of the repository');
    expect(err?.hint).not.toContain('mailark check');
  });

  it('a damaged key does not stop another password from opening', async () => {
    const { store, repo } = await populated();
    const second = await repo.addKey('second', { kdf: TEST_KDF });
    const first = `keys/${repo.keyId}`;
    const bytes = Uint8Array.from(store.raw(first) as Uint8Array);
    bytes[40] = (bytes[40] as number) ^ 4;
    store.corrupt(first, bytes);
    expect((await Repository.open(store, 'second')).keyId).toBe(second);
    const err = await failure(Repository.open(store, PW));
    expect(err?.code).toBe('WRONG_PASSWORD');
    expect(err?.message).toContain(first);
  });
});

/** Fails puts under `prefix` while `failing` is set: a crash between two writes. */
class FailingPuts implements ObjectStore {
  failing = true;
  constructor(
    readonly inner: MemoryStore,
    readonly prefix: string,
  ) {}
  get location() {
    return this.inner.location;
  }
  async put(key: string, data: Uint8Array) {
    if (this.failing && key.startsWith(this.prefix))
      throw Object.assign(new Error('injected'), { code: 'EIO' });
    return this.inner.put(key, data);
  }
  get(key: string, range?: ByteRange) {
    return this.inner.get(key, range);
  }
  stat(key: string): Promise<ObjectInfo | undefined> {
    return this.inner.stat(key);
  }
  list(prefix: string) {
    return this.inner.list(prefix);
  }
  delete(key: string) {
    return this.inner.delete(key);
  }
  async close() {}
}

describe('write order', () => {
  it('a crash between pack and index write leaves no snapshot, and the data can be saved again', async () => {
    const inner = new MemoryStore();
    await Repository.init(inner, PW, { kdf: TEST_KDF });
    const faulty = new FailingPuts(inner, 'index/');
    const repo = await Repository.open(faulty, PW);
    await expect(
      saveTestSnapshot(repo, { 'alice@example.com': { INBOX: [message(1), message(2)] } }),
    ).rejects.toThrow('injected');
    expect((await keys(inner)).filter((k) => k.startsWith('data/')).length).toBeGreaterThan(0);
    expect((await keys(inner)).filter((k) => k.startsWith('index/') || k.startsWith('snapshots/'))).toEqual(
      [],
    );

    const after = await Repository.open(inner, PW);
    expect(await after.listSnapshots()).toEqual([]);
    const data = message(1);
    const cut = data.indexOf('\r\n\r\n'.charCodeAt(0));
    expect(cut).toBeGreaterThan(0);
    // The packs from the crashed run are unindexed: their blobs are unknown and save again.
    const { id } = await saveTestSnapshot(after, {
      'alice@example.com': { INBOX: [message(1), message(2)] },
    });
    const reopened = await Repository.open(inner, PW);
    const { snapshot } = await reopened.resolveSnapshot(id);
    const tenant = await reopened.loadTree<{ mailboxes: Array<{ user: string }> }>(snapshot.tree);
    expect(tenant.mailboxes.map((m) => m.user)).toEqual(['alice@example.com']);
  });

  it('a failed index write is retried by the next flush of the same repository', async () => {
    const inner = new MemoryStore();
    await Repository.init(inner, PW, { kdf: TEST_KDF });
    const faulty = new FailingPuts(inner, 'index/');
    const repo = await Repository.open(faulty, PW);
    const tree = await repo.saveTree({ v: 1, mailboxes: [] });
    await expect(repo.saveSnapshot(snapshotOf(tree, '2024-01-01T00:00:00Z'))).rejects.toThrow('injected');
    faulty.failing = false;
    const id = await repo.saveSnapshot(snapshotOf(tree, '2024-01-01T00:00:00Z'));
    const reopened = await Repository.open(inner, PW);
    expect((await reopened.listSnapshots()).map((s) => s.id)).toEqual([id]);
    expect(await reopened.loadTree(tree)).toEqual({ v: 1, mailboxes: [] });
  });

  it('a failed pack write is sticky: no snapshot can follow it', async () => {
    const inner = new MemoryStore();
    await Repository.init(inner, PW, { kdf: TEST_KDF, packSize: 4096 });
    const faulty = new FailingPuts(inner, 'data/');
    const repo = await Repository.open(faulty, PW);
    const results = await Promise.allSettled(
      Array.from({ length: 6 }, (_, i) => repo.saveBlob('data', randomBytes(1500 + i))),
    );
    expect(results.some((r) => r.status === 'rejected')).toBe(true);
    faulty.failing = false;
    const tree = await repo.saveTree({ v: 1, mailboxes: [] }).catch(() => 'failed');
    expect(tree).toBe('failed');
    await expect(repo.flush()).rejects.toThrow('injected');
    expect((await keys(inner)).filter((k) => k.startsWith('snapshots/'))).toEqual([]);
  });

  it('saveSnapshot writes packs, then index, then the snapshot', async () => {
    const inner = new MemoryStore();
    await Repository.init(inner, PW, { kdf: TEST_KDF });
    const order: string[] = [];
    const spy = new FailingPuts(inner, '');
    spy.failing = false;
    const put = spy.put.bind(spy);
    spy.put = async (key, data) => {
      order.push(key.split('/')[0] as string);
      return put(key, data);
    };
    const repo = await Repository.open(spy, PW);
    await saveTestSnapshot(repo, { 'a@x': { INBOX: [message(1)] } });
    expect(order).toEqual(['data', 'data', 'index', 'snapshots']);
  });
});

describe('flush during pack writes', () => {
  it('a pack written while an index object is being stored is indexed by the next flush', async () => {
    const inner = new MemoryStore();
    await Repository.init(inner, PW, { kdf: TEST_KDF, packSize: 2048 });
    let releaseIndex: () => void = () => {};
    const gate = new Promise<void>((r) => {
      releaseIndex = r;
    });
    const slow = new FailingPuts(inner, '');
    slow.failing = false;
    const put = slow.put.bind(slow);
    slow.put = async (key, data) => {
      if (key.startsWith('index/')) await gate;
      return put(key, data);
    };
    const repo = await Repository.open(slow, PW);
    const first = await repo.saveBlob('data', randomBytes(500));
    const flushing = repo.flush();
    await new Promise((r) => setTimeout(r, 5));
    // While the index write hangs, another blob fills and writes a pack of its own.
    const second = await repo.saveBlob('data', randomBytes(3000));
    releaseIndex();
    await flushing;
    await repo.flush();
    const reopened = await Repository.open(inner, PW);
    expect(reopened.hasBlob(first.id)).toBe(true);
    expect(reopened.hasBlob(second.id)).toBe(true);
  });
});
