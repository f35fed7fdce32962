import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Repository } from '../repo/repository.js';
import { newTestRepository, saveTestSnapshot, TEST_KDF } from '../repo/test-repository.js';
import { MemoryStore } from '../store/memory-store.js';
import { type Checkpoint, CheckpointWriter, loadPreviousState } from './backup-checkpoint.js';

/** A memory store whose index writes take a while, as on S3 (packs may finish meanwhile). */
class SlowIndexStore extends MemoryStore {
  override async put(key: string, data: Uint8Array): Promise<void> {
    if (key.startsWith('index/')) await new Promise((r) => setTimeout(r, 30));
    return super.put(key, data);
  }
}

/** Checks, at the moment each checkpoint is stored, that a fresh process could load every tree it names. */
class VerifyingStore extends SlowIndexStore {
  readonly problems: string[] = [];
  checked = 0;
  override async put(key: string, data: Uint8Array): Promise<void> {
    await super.put(key, data);
    if (!key.startsWith('checkpoints/')) return;
    const fresh = await Repository.open(this, 'pw');
    const cp = await fresh.loadObject<Checkpoint>('checkpoints', key.slice('checkpoints/'.length));
    for (const m of cp.mailboxes) {
      this.checked++;
      await fresh.loadTree(m.tree).catch((err: unknown) => this.problems.push(`${m.user}: ${String(err)}`));
    }
  }
}

describe('checkpoints', () => {
  it('never name a state recorded while their flush was running', async () => {
    const store = new VerifyingStore();
    const repo = await Repository.init(store, 'pw', { kdf: TEST_KDF, packSize: 4096 });
    const writer = new CheckpointWriter(repo, { tenant: 't', runStarted: new Date().toISOString() });
    const state = (user: string, tree: string) => ({
      user,
      tree,
      complete: true,
      folders: 0,
      messages: 0,
      bytes: 0,
      capturedAt: new Date().toISOString(),
    });
    const a = writer.record(state('a', await repo.saveTree({ v: 1, user: 'a', folders: [] })));
    // While a's flush waits on its (slow) index write, mailbox b finishes and records its state.
    await new Promise((r) => setTimeout(r, 10));
    const b = writer.record(state('b', await repo.saveTree({ v: 1, user: 'b', folders: [] })));
    await Promise.all([a, b]);
    expect(store.problems).toEqual([]);
    expect(store.checked).toBe(3); // [a], then [a, b]
  });

  it('point only at flushed data, even when other mailboxes fill packs during the flush', async () => {
    const store = new SlowIndexStore();
    const repo = await Repository.init(store, 'pw', { kdf: TEST_KDF, packSize: 4096 });
    const writer = new CheckpointWriter(repo, { tenant: 't', runStarted: new Date().toISOString() });
    const ids: string[] = [];
    const save = async (n: number) => {
      for (let i = 0; i < n; i++) ids.push((await repo.saveBlob('data', randomBytes(1500))).id);
    };
    await save(5);
    const tree = await repo.saveTree({ v: 1, user: 'a', folders: [] });
    // A checkpoint write (flush + index object) racing another mailbox that keeps filling packs.
    await Promise.all([
      writer.record({ user: 'a', tree, complete: true, folders: 0, messages: 0, bytes: 0, capturedAt: 'x' }),
      save(20),
    ]);
    await writer.write();
    // A new process (the old one was killed): everything a checkpoint was written after must load.
    const reopened = await Repository.open(store, 'pw');
    for (const id of [...ids.slice(0, 5), tree]) await expect(reopened.loadBlob(id)).resolves.toBeDefined();
    for (const id of ids) await expect(reopened.loadBlob(id)).resolves.toBeDefined();
  });

  it('keeps one checkpoint per run, merges runs newest-first, and ignores those a snapshot superseded', async () => {
    const { repo } = await newTestRepository();
    const tree = await repo.saveTree({ v: 1, user: 'a', folders: [] });
    const state = (user: string, capturedAt: string, messages: number) => ({
      user,
      tree,
      complete: false,
      folders: 1,
      messages,
      bytes: 10,
      capturedAt,
    });
    const run1 = new CheckpointWriter(repo, { tenant: 'acme', runStarted: '2024-01-01T00:00:00.000Z' });
    await run1.record(state('a', '2024-01-01T00:01:00.000Z', 1));
    await run1.record(state('b', '2024-01-01T00:02:00.000Z', 2));
    expect(await repo.listObjects('checkpoints')).toHaveLength(1);
    const run2 = new CheckpointWriter(repo, { tenant: 'acme', runStarted: '2024-01-02T00:00:00.000Z' });
    await run2.record(state('a', '2024-01-02T00:01:00.000Z', 5));
    const other = new CheckpointWriter(repo, { tenant: 'other', runStarted: '2024-01-02T00:00:00.000Z' });
    await other.record(state('z', '2024-01-02T00:01:00.000Z', 9));

    const prev = await loadPreviousState(repo, 'acme');
    expect(prev.snapshotId).toBeUndefined();
    expect(prev.checkpointIds).toHaveLength(2);
    expect(prev.mailboxes.get('a')?.checkpoint?.messages).toBe(5);
    expect(prev.mailboxes.get('b')?.checkpoint?.messages).toBe(2);
    expect(prev.mailboxes.has('z')).toBe(false);

    // A snapshot of the tenant saved after them: they describe an older base and are ignored.
    await saveTestSnapshot(repo, { a: { INBOX: [] } }, '2024-01-03T00:00:00.000Z', 'acme');
    const after = await loadPreviousState(repo, 'acme');
    expect(after.snapshotId).toBeDefined();
    expect([...after.mailboxes.values()].some((m) => m.checkpoint !== undefined)).toBe(false);
    expect(after.checkpointIds).toHaveLength(2); // still listed, so the next snapshot deletes them
    const cp = await repo.loadObject<Checkpoint>('checkpoints', after.checkpointIds[0] as string);
    expect(cp.kind).toBe('backup');
  });
});
