import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { checkRepository } from '../check/check.js';
import { isMailarkError } from '../errors.js';
import { collectMailboxBlobs, readMessageBytes, walkMessages } from '../mail/snapshot-tree.js';
import { Repository } from '../repo/repository.js';
import { newTestRepository, saveTestSnapshot } from '../repo/test-repository.js';
import { FaultyStore } from '../store/faulty-store.js';
import { MemoryStore } from '../store/memory-store.js';
import type { ObjectStore } from '../store/object-store.js';
import { forgetSnapshots } from './forget.js';
import { pruneRepository } from './prune.js';

/** A message with a unique, incompressible body (so store sizes mean something). */
function message(n: number, bodyBytes = 6000): Uint8Array {
  const head = Buffer.from(`Message-ID: <m${n}@test>\r\nSubject: message ${n}\r\n\r\n`);
  return Buffer.concat([head, Buffer.from(randomBytes(bodyBytes).toString('base64'))]);
}

async function storeBytes(store: ObjectStore, prefix = ''): Promise<number> {
  let n = 0;
  for await (const o of store.list(prefix)) n += o.size;
  return n;
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Reads every message of every snapshot (readMessageBytes checks size and SHA-256); each body must be one of `bodies`. */
async function readAll(repo: Repository, bodies: Set<string>): Promise<number> {
  let n = 0;
  for (const { snapshot } of await repo.listSnapshots()) {
    for await (const m of walkMessages(repo, snapshot)) {
      expect(bodies.has(sha(await readMessageBytes(repo, m.entry)))).toBe(true);
      n++;
    }
  }
  return n;
}

/** Three daily snapshots: the mail changes a lot between them, so forgetting two frees space. */
async function threeDays(store?: ObjectStore) {
  const {
    repo,
    store: s,
    password,
  } = await newTestRepository('pw', { packSize: 32 * 1024, ...(store ? { store } : {}) });
  const all = Array.from({ length: 40 }, (_, i) => message(i));
  const ids: string[] = [];
  ids.push(
    (
      await saveTestSnapshot(
        repo,
        { alice: { INBOX: all.slice(0, 20) }, bob: { INBOX: all.slice(0, 5) } },
        '2024-05-01T02:00:00.000Z',
      )
    ).id,
  );
  ids.push(
    (
      await saveTestSnapshot(
        repo,
        { alice: { INBOX: all.slice(10, 30) }, bob: { INBOX: all.slice(5, 10) } },
        '2024-05-02T02:00:00.000Z',
      )
    ).id,
  );
  ids.push(
    (
      await saveTestSnapshot(
        repo,
        { alice: { INBOX: all.slice(25, 40), Archive: all.slice(18, 22) }, bob: { INBOX: all.slice(5, 10) } },
        '2024-05-03T02:00:00.000Z',
      )
    ).id,
  );
  return { repo, store: s, password, ids, all };
}

describe('forget', () => {
  it('removes what the policy does not keep; a dry run removes nothing', async () => {
    const { repo, ids } = await threeDays();
    const dry = await forgetSnapshots(repo, { policy: { last: 1 }, dryRun: true });
    expect(dry.removed.sort()).toEqual([ids[0], ids[1]].sort());
    expect(dry.groups[0]!.decisions.map((d) => [d.id, d.keep, d.reasons])).toEqual([
      [ids[2], true, ['last snapshot']],
      [ids[1], false, []],
      [ids[0], false, []],
    ]);
    expect(await repo.listSnapshots()).toHaveLength(3);
    const done = await forgetSnapshots(repo, { policy: { last: 1 } });
    expect(done.kept).toBe(1);
    expect((await repo.listSnapshots()).map((s) => s.id)).toEqual([ids[2]]);
  });

  it('refuses with LOCKED beside another holder (like restic); a dry run only needs a shared lock', async () => {
    const { repo, store } = await threeDays();
    const other = await Repository.open(store, 'pw');
    const held = await other.lock('shared', 'mailark restore');
    await expect(forgetSnapshots(repo, { policy: { last: 1 } })).rejects.toThrow(
      /locked \(shared\) by mailark restore/,
    );
    expect((await forgetSnapshots(repo, { policy: { last: 1 }, dryRun: true })).removed).toHaveLength(2);
    expect(await repo.listSnapshots()).toHaveLength(3);
    await held.release();
  });

  it('limits itself to one tenant, and names a tenant without snapshots', async () => {
    const { repo } = await newTestRepository();
    await saveTestSnapshot(repo, { a: { INBOX: [message(1, 10)] } }, '2024-05-01T02:00:00.000Z', 'one.test');
    await saveTestSnapshot(repo, { a: { INBOX: [message(1, 10)] } }, '2024-05-02T02:00:00.000Z', 'one.test');
    await saveTestSnapshot(repo, { a: { INBOX: [message(1, 10)] } }, '2024-05-01T02:00:00.000Z', 'two.test');
    await forgetSnapshots(repo, { policy: { last: 1 }, tenant: 'two.test' });
    expect(await repo.listSnapshots()).toHaveLength(3);
    await forgetSnapshots(repo, { policy: { last: 1 }, tenant: 'one.test' });
    expect((await repo.listSnapshots()).map((s) => s.snapshot.tenant).sort()).toEqual([
      'one.test',
      'two.test',
    ]);
    await expect(forgetSnapshots(repo, { policy: { last: 1 }, tenant: 'three.test' })).rejects.toThrow(
      /no snapshot of tenant three.test/,
    );
  });
});

describe('prune', () => {
  it('after forget: storage shrinks, every remaining message reads back byte-exact, nothing unused is left', async () => {
    const { repo, store, all } = await threeDays();
    const before = await storeBytes(store, 'data/');
    const kept = [...all.slice(5, 10), ...all.slice(18, 40)];
    await forgetSnapshots(repo, { policy: { last: 1 } });
    const dry = await pruneRepository(repo, { dryRun: true, maxUnused: { kind: 'percent', value: 0 } });
    expect(await storeBytes(store, 'data/')).toBe(before);
    expect(dry.deletedPacks.length + dry.repackedPacks.length).toBeGreaterThan(0);

    const r = await pruneRepository(repo, { maxUnused: { kind: 'percent', value: 0 } });
    const after = await storeBytes(store, 'data/');
    expect(r.packBytesBefore).toBe(before);
    expect(r.packBytesAfter).toBe(after);
    // 27 of 40 distinct bodies remain referenced (and half the tree blobs): under 3/4 of the bytes.
    expect(after).toBeLessThan(before * 0.75);

    // Reopen from the store alone: the index on disk must describe what is there.
    const reopened = await Repository.open(store, 'pw');
    const bodies = new Set(kept.map(sha));
    let n = 0;
    for await (const m of walkMessages(reopened, (await reopened.listSnapshots())[0]!.snapshot)) {
      expect(bodies.has(sha(await readMessageBytes(reopened, m.entry)))).toBe(true);
      n++;
    }
    expect(n).toBe(15 + 4 + 5);
    // Every index entry's pack exists, and a second plan finds nothing left to do.
    const packs = new Set((await reopened.listPacks()).map((p) => p.id));
    for (const e of reopened.indexEntries()) expect(packs.has(e.pack)).toBe(true);
    const checked = await checkRepository(reopened, { readData: true });
    expect(checked.errors).toEqual([]);
    expect(checked.counts.unusedBlobs).toBe(0);
    const again = await pruneRepository(reopened, { dryRun: true, maxUnused: { kind: 'percent', value: 0 } });
    expect(again.stats.unusedBytes).toBe(0);
    expect(again.deletedPacks.length + again.unindexedPacks.length + again.repackedPacks.length).toBe(0);
  });

  it('stops on a damaged checkpoint, naming it and how to delete it; deletes nothing', async () => {
    const { repo, store } = await threeDays();
    const id = await repo.saveObject('checkpoints', {
      v: 1,
      kind: 'backup',
      tenant: 'acme.example',
      mailboxes: [],
    });
    const bytes = Uint8Array.from((store as MemoryStore).raw(`checkpoints/${id}`) as Uint8Array);
    bytes[bytes.length - 5] = (bytes[bytes.length - 5] as number) ^ 0xff;
    (store as MemoryStore).corrupt(`checkpoints/${id}`, bytes);
    const before: string[] = [];
    for await (const o of store.list('data/')) before.push(o.key);
    const err = await pruneRepository(repo, { maxUnused: { kind: 'percent', value: 0 } }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({
      code: 'CORRUPT',
      message: expect.stringContaining(`backup checkpoint checkpoints/${id} is damaged`),
      hint: expect.stringContaining(`rm REPO/checkpoints/${id}`),
    });
    const after: string[] = [];
    for await (const o of store.list('data/')) after.push(o.key);
    expect(after).toEqual(before);
  });

  it('keeps the data of backup checkpoints (a killed run resumes without re-downloading)', async () => {
    const { repo, store } = await threeDays();
    // A checkpoint holding a mailbox tree that no snapshot references.
    const extra = message(999);
    const snap = await saveTestSnapshot(repo, { carol: { INBOX: [extra] } }, '2024-05-04T02:00:00.000Z');
    const tenantTree = await repo.loadTree<{ mailboxes: Array<{ user: string; tree: string }> }>(
      snap.snapshot.tree,
    );
    const carolTree = tenantTree.mailboxes[0]!.tree;
    await repo.saveObject('checkpoints', {
      v: 1,
      kind: 'backup',
      tenant: 'acme.example',
      runStarted: '2024-05-05T02:00:00.000Z',
      time: '2024-05-05T02:10:00.000Z',
      mailboxes: [
        {
          user: 'carol',
          tree: carolTree,
          complete: false,
          folders: 1,
          messages: 1,
          bytes: extra.byteLength,
          capturedAt: '2024-05-05T02:10:00.000Z',
        },
      ],
    });
    await repo.deleteSnapshot(snap.id);
    await pruneRepository(repo, { maxUnused: { kind: 'percent', value: 0 } });
    const reopened = await Repository.open(store, 'pw');
    const into = { trees: new Set<string>(), data: new Set<string>() };
    await collectMailboxBlobs(reopened, carolTree, into);
    for (const id of [...into.trees, ...into.data]) expect(reopened.hasBlob(id)).toBe(true);
    const mailbox = await reopened.loadTree<{ folders: Array<{ pages: string[] }> }>(carolTree);
    const page = await reopened.loadTree<{ entries: Parameters<typeof readMessageBytes>[1][] }>(
      mailbox.folders[0]!.pages[0]!,
    );
    expect(sha(await readMessageBytes(reopened, page.entries[0]!))).toBe(sha(extra));
  });

  it('deletes packs that no index lists (left by a run killed before its index)', async () => {
    const { repo, store, all } = await threeDays();
    const orphan = `data/ab/ab${'0'.repeat(62)}`;
    await store.put(orphan, randomBytes(5000));
    const r = await pruneRepository(repo);
    expect(r.unindexedPacks).toEqual([`ab${'0'.repeat(62)}`]);
    expect(await store.stat(orphan)).toBeUndefined();
    expect(await readAll(repo, new Set(all.map(sha)))).toBe(25 + 25 + 24);
  });

  it('refuses while another process holds a shared lock (a backup): LOCKED names the holder', async () => {
    const { repo, store } = await threeDays();
    const other = await Repository.open(store, 'pw');
    const backupLock = await other.lock('shared', 'mailark backup');
    const before = await storeBytes(store);
    let err: unknown;
    try {
      await pruneRepository(repo);
    } catch (e) {
      err = e;
    }
    expect(isMailarkError(err, 'LOCKED')).toBe(true);
    expect((err as Error).message).toContain('mailark backup');
    expect(await storeBytes(store)).toBe(before);
    await backupLock.release();
    await pruneRepository(repo);
  });

  it('is resumable: killed between its steps, the repository stays valid and the next prune finishes', async () => {
    for (const failOn of ['index/', 'data/'] as const) {
      const faulty = new FaultyStore(new MemoryStore(), {});
      const { repo, all } = await threeDays(faulty);
      await forgetSnapshots(repo, { policy: { last: 1 } });
      // Fail the first delete of an old index object (after the new packs and index are written),
      // or of an old pack (after the index no longer lists it).
      faulty.setFaults([{ op: 'delete', keyPrefix: failOn, after: faulty.calls.delete, transient: false }]);
      await expect(pruneRepository(repo, { maxUnused: { kind: 'percent', value: 0 } })).rejects.toThrow();
      expect(faulty.injected.map((f) => f.key.slice(0, 5))).toEqual([failOn.slice(0, 5)]);
      faulty.heal();
      // The lock of the failed run was released; reopen as a new process would.
      const reopened = await Repository.open(faulty, 'pw');
      expect(await readAll(reopened, new Set(all.map(sha)))).toBe(24);
      await pruneRepository(reopened, { maxUnused: { kind: 'percent', value: 0 } });
      const final = await pruneRepository(await Repository.open(faulty, 'pw'), {
        dryRun: true,
        maxUnused: { kind: 'percent', value: 0 },
      });
      expect(final.stats.unusedBytes).toBe(0);
      expect(final.unindexedPacks).toEqual([]);
      expect((await checkRepository(await Repository.open(faulty, 'pw'), { readData: true })).errors).toEqual(
        [],
      );
    }
  });

  it('with max-unused unlimited deletes only wholly unused packs', async () => {
    const { repo } = await threeDays();
    await forgetSnapshots(repo, { policy: { last: 1 } });
    const r = await pruneRepository(repo, { dryRun: true, maxUnused: { kind: 'unlimited' } });
    const trees = new Set<string>();
    for (const e of repo.indexEntries()) if (e.type === 'tree') trees.add(e.pack);
    // Only tree packs (cheap) are ever repacked when unused space is tolerated.
    expect(r.repackedPacks.every((p) => trees.has(p))).toBe(true);
    expect(r.deletedPacks.length).toBeGreaterThan(0);
  });
});
