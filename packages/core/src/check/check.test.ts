import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Checkpoint } from '../backup/backup-checkpoint.js';
import type { Snapshot } from '../mail/snapshot.js';
import { loadTenantTree } from '../mail/snapshot-tree.js';
import type { LockEnv } from '../repo/lock.js';
import { Repository } from '../repo/repository.js';
import { saveTestSnapshot, TEST_KDF } from '../repo/test-repository.js';
import { MemoryStore } from '../store/memory-store.js';
import { type CheckReport, checkRepository, choosePacks } from './check.js';

const PW = 'check';

function mail(tag: string, n: number): Uint8Array[] {
  return Array.from({ length: n }, (_, i) =>
    Buffer.concat([
      Buffer.from(`Subject: ${tag} ${i}\r\n\r\n`),
      Buffer.from(randomBytes(2000).toString('base64')),
    ]),
  );
}

async function setup() {
  const store = new MemoryStore();
  const repo = await Repository.init(store, PW, { kdf: TEST_KDF, packSize: 8 * 1024 });
  const s1 = await saveTestSnapshot(
    repo,
    { 'a@x': { INBOX: mail('one', 4) }, 'b@x': { INBOX: mail('two', 3) } },
    '2024-01-01T00:00:00Z',
  );
  const s2 = await saveTestSnapshot(repo, { 'a@x': { INBOX: mail('three', 3) } }, '2024-01-02T00:00:00Z');
  return { store, repo, s1, s2 };
}

async function check(
  store: MemoryStore,
  opts: Parameters<typeof checkRepository>[1] = {},
): Promise<CheckReport> {
  return checkRepository(await Repository.open(store, PW, { index: 'lenient' }), opts);
}

function flip(store: MemoryStore, key: string, pos: number): void {
  const b = Uint8Array.from(store.raw(key) as Uint8Array);
  const p = pos < 0 ? b.byteLength + pos : pos;
  b[p] = (b[p] as number) ^ 0x20;
  store.corrupt(key, b);
}

/** A backup checkpoint (backup-checkpoint.ts) holding the user's mailbox tree of a snapshot. */
async function checkpointOf(repo: Repository, user: string, snapshot?: Snapshot): Promise<Checkpoint> {
  const from = snapshot ?? (await repo.listSnapshots()).at(-1)?.snapshot;
  const ref = (await loadTenantTree(repo, from as Snapshot)).mailboxes.find((m) => m.user === user);
  const now = new Date().toISOString();
  return {
    v: 1,
    kind: 'backup',
    tenant: 'acme.example',
    runStarted: now,
    time: now,
    mailboxes: [
      {
        user,
        tree: ref?.tree as string,
        complete: false,
        folders: 1,
        messages: ref?.messages ?? 0,
        bytes: ref?.bytes ?? 0,
        capturedAt: now,
      },
    ],
  };
}

async function keysUnder(store: MemoryStore, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const o of store.list(prefix)) out.push(o.key);
  return out;
}

describe('checkRepository', () => {
  it('a healthy repository checks clean, structure and data', async () => {
    const { store, repo } = await setup();
    const r = await check(store, { readData: true });
    expect(r.errors).toEqual([]);
    expect(r.warnings).toEqual([]);
    expect(r.ok).toBe(true);
    const packs = await repo.listPacks();
    expect(r.counts).toMatchObject({
      packs: packs.length,
      snapshots: 2,
      packsRead: packs.length,
      unusedBlobs: 0,
    });
    expect(r.counts.blobsRead).toBe(r.counts.blobs);
    expect(r.counts.dataBlobsReferenced).toBe(20); // 10 messages × (header + body)
  });

  it('a flipped byte in a blob: structure passes, --read-data names the pack and the blob', async () => {
    const { store, repo } = await setup();
    const e = [...repo.indexEntries()].find((x) => x.type === 'data');
    if (e === undefined) throw new Error('no data blob');
    const key = `data/${e.pack.slice(0, 2)}/${e.pack}`;
    flip(store, key, e.offset + 20);
    expect((await check(store)).ok).toBe(true);
    const r = await check(store, { readData: true });
    expect(r.ok).toBe(false);
    expect(r.errors).toContainEqual(expect.objectContaining({ object: key, blob: e.id }));
    expect(r.errors.some((x) => x.object === key && x.message.includes('does not match its id'))).toBe(true);
  });

  it('a flipped byte in a pack header is a structural error naming the pack', async () => {
    const { store, repo } = await setup();
    const [p] = await repo.listPacks();
    if (p === undefined) throw new Error('no pack');
    const key = `data/${p.id.slice(0, 2)}/${p.id}`;
    flip(store, key, -10);
    const r = await check(store);
    expect(r.errors.map((x) => x.object)).toContain(key);
  });

  it('a missing pack: errors for the pack and for every referenced blob it held; the check goes on', async () => {
    const { store, repo } = await setup();
    const packs = await repo.listPacks();
    const dataPack = packs.find((p) =>
      [...repo.indexEntries()].some((e) => e.pack === p.id && e.type === 'data'),
    );
    if (dataPack === undefined) throw new Error('no data pack');
    const key = `data/${dataPack.id.slice(0, 2)}/${dataPack.id}`;
    await store.delete(key);
    // And a damaged snapshot on top: both reported.
    const [snap] = await keysUnder(store, 'snapshots/');
    flip(store, snap as string, 30);
    const r = await check(store);
    expect(r.errors.some((x) => x.object === key && x.message.includes('missing'))).toBe(true);
    expect(r.errors.some((x) => x.object === snap)).toBe(true);
    expect(r.counts.snapshots).toBe(2);
  });

  it('a damaged tree blob is reported with its id, and other mailboxes are still checked', async () => {
    const { store, repo, s1 } = await setup();
    const tenant = await repo.loadTree<{ mailboxes: Array<{ tree: string }> }>(s1.snapshot.tree);
    const victim = tenant.mailboxes[0]?.tree as string;
    const e = [...repo.indexEntries()].find((x) => x.id === victim);
    if (e === undefined) throw new Error('tree not indexed');
    flip(store, `data/${e.pack.slice(0, 2)}/${e.pack}`, e.offset + 15);
    const r = await check(store);
    expect(r.errors).toContainEqual(
      expect.objectContaining({ blob: victim, object: `data/${e.pack.slice(0, 2)}/${e.pack}` }),
    );
    expect(r.counts.dataBlobsReferenced).toBeGreaterThan(0); // b@x and snapshot 2 still walked
  });

  it('a lost index object: damaged index error, unindexed pack warnings, unindexed referenced blobs', async () => {
    const { store } = await setup();
    const [idx] = await keysUnder(store, 'index/');
    flip(store, idx as string, 5);
    const r = await check(store);
    expect(r.errors[0]?.object).toBe(idx);
    expect(r.warnings.some((w) => w.message.includes('in no index'))).toBe(true);
    expect(r.errors.some((x) => /not in the index|in no index/.test(x.message) && x.blob !== undefined)).toBe(
      true,
    );
  });

  it('warns about unindexed packs, stale locks and leftover checkpoints without failing', async () => {
    const { store } = await setup();
    const other = await Repository.open(store, PW);
    await other.saveObject('checkpoints', { user: 'a@x' });
    const deadEnv: LockEnv = { host: 'mx1', pid: 4242, now: () => Date.now(), isAlive: () => false };
    const ghost = await Repository.open(store, PW, { lockEnv: { ...deadEnv, pid: 77 } });
    await ghost.lock('shared', 'crashed backup');
    const r = await checkRepository(await Repository.open(store, PW, { lockEnv: deadEnv }));
    expect(r.ok).toBe(true);
    expect(r.warnings.map((w) => w.message).join('\n')).toMatch(
      /stale lock of crashed backup[\s\S]*checkpoint/,
    );
  });

  it('a damaged backup checkpoint is an error naming it (backup and prune would stop on it)', async () => {
    const { store, repo } = await setup();
    const id = await repo.saveObject('checkpoints', await checkpointOf(repo, 'a@x'));
    expect((await check(store, { readData: true })).ok).toBe(true);
    flip(store, `checkpoints/${id}`, 20);
    const r = await check(store, { readData: true });
    expect(r.ok).toBe(false);
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]).toMatchObject({ object: `checkpoints/${id}` });
    expect(r.errors[0]?.message).toContain(`delete checkpoints/${id}`);
  });

  it("a checkpoint's trees must load, and what only a checkpoint references is not unused", async () => {
    const { store, repo } = await setup();
    // A run that stored mail, checkpointed and was killed: no snapshot references its trees.
    const killed = await saveTestSnapshot(repo, { 'c@x': { INBOX: mail('killed', 2) } });
    const cp = await checkpointOf(repo, 'c@x', killed.snapshot);
    await repo.deleteSnapshot(killed.id);
    // Unused without the checkpoint: the deleted snapshot's tenant tree, mailbox tree, page, 4 blobs.
    expect((await check(store)).counts.unusedBlobs).toBe(7);
    await repo.saveObject('checkpoints', cp);
    const kept = await check(store, { readData: true });
    expect(kept.errors).toEqual([]);
    expect(kept.counts.unusedBlobs).toBe(1); // only the tenant tree: checkpoints hold mailbox trees

    const missing = 'f'.repeat(64);
    const broken = await repo.saveObject('checkpoints', {
      ...cp,
      mailboxes: [{ ...cp.mailboxes[0], tree: missing }],
    });
    const r = await check(store);
    expect(r.ok).toBe(false);
    expect(r.errors.map((e) => e.blob)).toEqual([missing]);
    await repo.deleteObject('checkpoints', broken);
  });

  it('readDataSubset downloads about that share of the packs', async () => {
    const { store, repo } = await setup();
    const total = (await repo.listPacks()).length;
    const r = await check(store, { readDataSubset: 50 });
    expect(r.counts.packsRead).toBe(Math.ceil(total / 2));
  });
});

describe('checkRepository with a signal', () => {
  it('stops with INTERRUPTED between packs once aborted, without reading the rest', async () => {
    const { store, repo } = await setup();
    const total = (await repo.listPacks()).length;
    expect(total).toBeGreaterThan(3);
    const controller = new AbortController();
    let dataProgress = 0;
    const reporter = {
      log() {},
      progress(s: { phase: string; done: number }) {
        // Abort while the second pack is being read (as SIGTERM would): the third is never downloaded.
        if (s.phase === 'check data' && s.done === 1) controller.abort();
        if (s.phase === 'check data') dataProgress++;
      },
    };
    const opened = await Repository.open(store, PW, { index: 'lenient' });
    const gets = store.counters.gets;
    await expect(
      checkRepository(opened, { readData: true, reporter, signal: controller.signal }),
    ).rejects.toMatchObject({ code: 'INTERRUPTED', message: 'check interrupted; it changed nothing' });
    expect(dataProgress).toBe(2);
    // Headers of every pack plus snapshots and trees were read, but only two whole packs.
    const interrupted = store.counters.gets - gets;
    const full = await Repository.open(store, PW, { index: 'lenient' });
    const before = store.counters.gets;
    await checkRepository(full, { readData: true });
    expect(store.counters.gets - before - interrupted).toBe(total - 2);
  });

  it('an aborted signal stops it before the first pack', async () => {
    const { store } = await setup();
    const opened = await Repository.open(store, PW, { index: 'lenient' });
    const gets = store.counters.gets;
    await expect(checkRepository(opened, { signal: AbortSignal.abort() })).rejects.toMatchObject({
      code: 'INTERRUPTED',
    });
    expect(store.counters.gets).toBe(gets);
  });
});

describe('choosePacks', () => {
  const packs = Array.from({ length: 10 }, (_, i) => `p${i}`);
  it('all, none, or a random subset of the right size without repeats', () => {
    expect(choosePacks(packs, { readData: true })).toEqual(packs);
    expect(choosePacks(packs, {})).toEqual([]);
    expect(choosePacks(packs, { readDataSubset: 0 })).toEqual([]);
    expect(choosePacks(packs, { readDataSubset: 0.1 })).toHaveLength(1);
    expect(choosePacks(packs, { readDataSubset: 250 })).toHaveLength(10);
    const sub = choosePacks(packs, { readDataSubset: 30, random: () => 0.99 });
    expect(sub).toHaveLength(3);
    expect(new Set(sub).size).toBe(3);
    expect(sub).toEqual(['p9', 'p0', 'p1']); // swap 0↔9, then 1↔9 (now p0), then 2↔9 (now p1)
  });
});
