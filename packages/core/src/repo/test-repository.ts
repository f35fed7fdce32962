/**
 * Test helpers for code built on the Repository (what restic's TestRepository is): a repository on a
 * MemoryStore with a cheap KDF, and snapshots with real message bytes. Not for production use: the
 * KDF parameters here are far too weak for real passwords.
 */
import { createHash } from 'node:crypto';
import type { FolderNode, MailboxRef, MessageEntry, Snapshot } from '../mail/snapshot.js';
import { saveFolderPages } from '../mail/snapshot-tree.js';
import { MemoryStore } from '../store/memory-store.js';
import type { ObjectStore } from '../store/object-store.js';
import { type InitOptions, Repository } from './repository.js';

/** scrypt parameters that cost ~1 ms: tests only. */
export const TEST_KDF = { N: 1024, r: 8, p: 1 } as const;

export async function newTestRepository(
  password = 'test password',
  opts: InitOptions & { store?: ObjectStore } = {},
): Promise<{ repo: Repository; store: ObjectStore; password: string }> {
  const store = opts.store ?? new MemoryStore();
  const repo = await Repository.init(store, password, { kdf: TEST_KDF, ...opts });
  return { repo, store, password };
}

/** A complete snapshot record pointing at `tree`. */
export function snapshotOf(tree: string, time: string, tenant = 'acme.example'): Snapshot {
  return {
    v: 1,
    time,
    endTime: time,
    host: 'test',
    toolVersion: '0.0.0',
    tenant,
    tags: [],
    tree,
    status: 'complete',
    failures: [],
    stats: {
      mailboxes: 0,
      folders: 0,
      messages: 0,
      bytes: 0,
      durationMs: 0,
      fetchedMessages: 0,
      fetchedBytes: 0,
      newMessages: 0,
      storedBytes: 0,
    },
  };
}

/**
 * Stores `mail` (user → folder → messages) as a snapshot: each message is split at its first empty
 * line into a header blob and a body blob (enough for tests; the backup chunker does better).
 */
export async function saveTestSnapshot(
  repo: Repository,
  mail: Record<string, Record<string, Uint8Array[]>>,
  time = new Date().toISOString(),
  tenant = 'acme.example',
): Promise<{ id: string; snapshot: Snapshot }> {
  const byUser = new Map<string, FolderNode[]>();
  for (const user of Object.keys(mail).sort()) {
    const folders: FolderNode[] = [];
    for (const path of Object.keys(mail[user] ?? {}).sort()) {
      const messages = mail[user]?.[path] ?? [];
      const entries: MessageEntry[] = [];
      for (const [i, bytes] of messages.entries()) {
        const cut = Buffer.from(bytes).indexOf('\r\n\r\n');
        const parts = cut < 0 ? [bytes] : [bytes.subarray(0, cut + 4), bytes.subarray(cut + 4)];
        const content = [];
        for (const part of parts) content.push((await repo.saveBlob('data', part)).id);
        entries.push({
          uid: i + 1,
          size: bytes.byteLength,
          sha256: createHash('sha256').update(bytes).digest('hex'),
          internalDate: time,
          flags: ['\\Seen'],
          keywords: [],
          content,
          h: { subject: `message ${i + 1}` },
        });
      }
      const bytes = messages.reduce((n, m) => n + m.byteLength, 0);
      folders.push({
        path,
        rawPath: path,
        delimiter: '/',
        flags: [],
        subscribed: true,
        selectable: true,
        uidValidity: '1',
        uidNext: messages.length + 1,
        messages: messages.length,
        bytes,
        pages: await saveFolderPages(repo, entries),
      });
    }
    byUser.set(user, folders);
  }
  return saveSnapshotOfFolders(repo, byUser, time, tenant);
}

/**
 * Saves each user's folder nodes as a mailbox tree, and a complete snapshot of them (with its stats),
 * users in the map's order.
 */
export async function saveSnapshotOfFolders(
  repo: Repository,
  byUser: ReadonlyMap<string, FolderNode[]>,
  time: string,
  tenant: string,
): Promise<{ id: string; snapshot: Snapshot }> {
  const mailboxes: MailboxRef[] = [];
  for (const [user, folders] of byUser) {
    mailboxes.push({
      user,
      tree: await repo.saveTree({ v: 1, user, folders }),
      folders: folders.length,
      messages: folders.reduce((n, f) => n + f.messages, 0),
      bytes: folders.reduce((n, f) => n + f.bytes, 0),
      state: 'ok',
    });
  }
  const snapshot = snapshotOf(await repo.saveTree({ v: 1, mailboxes }), time, tenant);
  snapshot.stats.mailboxes = mailboxes.length;
  snapshot.stats.messages = mailboxes.reduce((n, m) => n + m.messages, 0);
  snapshot.stats.bytes = mailboxes.reduce((n, m) => n + m.bytes, 0);
  return { id: await repo.saveSnapshot(snapshot), snapshot };
}
