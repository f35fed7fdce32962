/**
 * Reading and writing snapshot trees through a repository. Every operation that walks a snapshot
 * (ls, diff, find, restore, export, check, prune) goes through these functions, so the tree layout
 * is known in one place.
 */
import { createHash } from 'node:crypto';
import { MailarkError } from '../errors.js';
import {
  type BlobId,
  type FolderNode,
  type MailboxRef,
  type MailboxTree,
  type MessageEntry,
  type MessagePage,
  paginate,
  SNAPSHOT_VERSION,
  type Snapshot,
  type TenantTree,
} from './snapshot.js';

/** What the tree code needs of a repository (Repository satisfies it). */
export interface TreeReader {
  loadBlob(id: BlobId): Promise<Uint8Array>;
  /** `cache`: through the local tree cache, when the repository has one (Repository.loadTree). */
  loadTree<T>(id: BlobId, opts?: { cache?: boolean }): Promise<T>;
}

export interface TreeWriter extends TreeReader {
  /** Stores canonical JSON of value as a tree blob (deduplicated); returns its id. */
  saveTree(value: unknown, opts?: { cache?: boolean }): Promise<BlobId>;
}

/** Tenant and mailbox trees go through the tree cache: they are small, and every backup starts from them. */
export async function loadTenantTree(repo: TreeReader, snapshot: Snapshot): Promise<TenantTree> {
  return repo.loadTree<TenantTree>(snapshot.tree, { cache: true });
}

export async function loadMailboxTree(repo: TreeReader, ref: MailboxRef): Promise<MailboxTree> {
  return repo.loadTree<MailboxTree>(ref.tree, { cache: true });
}

/** All message entries of a folder, ascending UID. */
export async function loadFolderEntries(repo: TreeReader, folder: FolderNode): Promise<MessageEntry[]> {
  const pages = await Promise.all(folder.pages.map((id) => repo.loadTree<MessagePage>(id)));
  return pages.flatMap((p) => p.entries);
}

/** Stores a folder's entries as pages; returns the page ids for FolderNode.pages. */
export async function saveFolderPages(repo: TreeWriter, entries: readonly MessageEntry[]): Promise<BlobId[]> {
  const ids: BlobId[] = [];
  for (const page of paginate(entries)) {
    const value: MessagePage = { v: SNAPSHOT_VERSION, entries: page };
    ids.push(await repo.saveTree(value));
  }
  return ids;
}

/**
 * The exact bytes of a message, reassembled from its content blobs and checked against its SHA-256.
 * A mismatch is corruption and is never returned as data.
 */
export async function readMessageBytes(repo: TreeReader, entry: MessageEntry): Promise<Uint8Array> {
  const parts = await Promise.all(entry.content.map((id) => repo.loadBlob(id)));
  const bytes = Buffer.concat(parts);
  const sha = createHash('sha256').update(bytes).digest('hex');
  if (bytes.byteLength !== entry.size || sha !== entry.sha256) {
    throw new MailarkError(
      'CORRUPT',
      `message uid ${entry.uid} reassembles to ${bytes.byteLength} bytes with SHA-256 ${sha}, expected ${entry.size} bytes ${entry.sha256}`,
      { hint: 'run "mailark check --read-data" to find the damaged objects' },
    );
  }
  return bytes;
}

export interface WalkedMessage {
  user: string;
  folder: FolderNode;
  entry: MessageEntry;
}

export interface WalkFilter {
  /** Only these users (exact login names). */
  users?: readonly string[];
  /** Only folders for which this returns true. */
  folder?: (folder: FolderNode) => boolean;
}

/**
 * Every message of a snapshot, mailbox by mailbox, folder by folder, loading only the subtrees the
 * filter lets through.
 */
export async function* walkMessages(
  repo: TreeReader,
  snapshot: Snapshot,
  filter: WalkFilter = {},
): AsyncGenerator<WalkedMessage> {
  const tenant = await loadTenantTree(repo, snapshot);
  for (const ref of tenant.mailboxes) {
    if (filter.users !== undefined && !filter.users.includes(ref.user)) continue;
    const mailbox = await loadMailboxTree(repo, ref);
    for (const folder of mailbox.folders) {
      if (filter.folder !== undefined && !filter.folder(folder)) continue;
      for (const id of folder.pages) {
        const page = await repo.loadTree<MessagePage>(id);
        for (const entry of page.entries) yield { user: ref.user, folder, entry };
      }
    }
  }
}

/** Every blob id a snapshot references (tree and data), for check and prune. */
export async function collectReferencedBlobs(
  repo: TreeReader,
  snapshot: Snapshot,
  into: { trees: Set<BlobId>; data: Set<BlobId> },
): Promise<void> {
  if (into.trees.has(snapshot.tree)) return;
  into.trees.add(snapshot.tree);
  const tenant = await loadTenantTree(repo, snapshot);
  for (const ref of tenant.mailboxes) await collectMailboxBlobs(repo, ref.tree, into);
}

/**
 * Every blob id under one MailboxTree (itself, its pages, their data), for check and prune; also
 * what backup checkpoints reference (they hold mailbox trees, not snapshots).
 */
export async function collectMailboxBlobs(
  repo: TreeReader,
  mailboxTree: BlobId,
  into: { trees: Set<BlobId>; data: Set<BlobId> },
): Promise<void> {
  if (into.trees.has(mailboxTree)) return;
  into.trees.add(mailboxTree);
  const mailbox = await repo.loadTree<MailboxTree>(mailboxTree);
  for (const folder of mailbox.folders) {
    for (const pageId of folder.pages) {
      if (into.trees.has(pageId)) continue;
      into.trees.add(pageId);
      const page = await repo.loadTree<MessagePage>(pageId);
      for (const e of page.entries) for (const id of e.content) into.data.add(id);
    }
  }
}
