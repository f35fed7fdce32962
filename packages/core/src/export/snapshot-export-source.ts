/**
 * An ExportSource over one snapshot of a repository: the tree gives users, folders and entries; each
 * message's bytes are reassembled from its content blobs and checked against its size and SHA-256,
 * a few messages ahead within a byte budget so a remote store's latency hides.
 */
import { createHash } from 'node:crypto';
import { MailarkError } from '../errors.js';
import type { FolderNode, MailboxRef, MessageEntry, MessagePage, Snapshot } from '../mail/snapshot.js';
import { loadMailboxTree, loadTenantTree, type TreeReader } from '../mail/snapshot-tree.js';
import {
  byPath,
  type ExportFolder,
  type ExportMailbox,
  type ExportMessage,
  type ExportSource,
  folderListing,
} from './export-source.js';
import type { ExportOrigin } from './manifest.js';
import { readAhead } from './read-ahead.js';

export interface SnapshotSourceOptions {
  /** Where the repository is (for export.json and README), never a secret. */
  repository?: string;
  /** Read-ahead per folder (default 8 messages / 8 MiB). */
  readAhead?: { items?: number; weight?: number };
}

export class SnapshotExportSource implements ExportSource {
  readonly tenant: string;
  readonly origin: ExportOrigin;
  private refs: Promise<MailboxRef[]> | undefined;

  constructor(
    private readonly repo: TreeReader,
    snapshotId: string,
    private readonly snapshot: Snapshot,
    private readonly opts: SnapshotSourceOptions = {},
  ) {
    this.tenant = snapshot.tenant;
    this.origin = {
      kind: 'snapshot',
      snapshotId,
      time: snapshot.time,
      ...(opts.repository === undefined ? {} : { repository: opts.repository }),
    };
  }

  private mailboxRefs(): Promise<MailboxRef[]> {
    this.refs ??= loadTenantTree(this.repo, this.snapshot).then((t) => t.mailboxes);
    return this.refs;
  }

  async users(): Promise<string[]> {
    return (await this.mailboxRefs()).map((r) => r.user).sort();
  }

  async totals(users: readonly string[]): Promise<{ messages: number; bytes: number }> {
    const refs = (await this.mailboxRefs()).filter((r) => users.includes(r.user));
    return {
      messages: refs.reduce((n, r) => n + r.messages, 0),
      bytes: refs.reduce((n, r) => n + r.bytes, 0),
    };
  }

  async notes(user: string): Promise<string[]> {
    const ref = (await this.mailboxRefs()).find((r) => r.user === user);
    if (ref?.state !== 'stale') return [];
    return [
      `${user}: this snapshot could not capture the mailbox; its content is from ${ref.staleFrom ?? 'an earlier snapshot'}`,
    ];
  }

  async openMailbox(user: string): Promise<ExportMailbox> {
    const ref = (await this.mailboxRefs()).find((r) => r.user === user);
    if (ref === undefined) {
      throw new MailarkError('NOT_FOUND', `mailbox ${user} is not in snapshot ${this.shortId()}`, {
        hint: 'list the mailboxes of the snapshot with "mailark ls", and check the spelling of --users',
      });
    }
    const tree = await loadMailboxTree(this.repo, ref);
    const nodes = new Map(tree.folders.map((f) => [f.path, f]));
    const repo = this.repo;
    const limits = this.opts.readAhead ?? {};
    const pagesOf = (folder: ExportFolder): FolderNode => {
      const node = nodes.get(folder.path);
      if (node === undefined) throw new Error(`folder ${folder.path} is not in the mailbox tree`);
      return node;
    };
    async function* entries(node: FolderNode) {
      for (const id of node.pages) yield* (await repo.loadTree<MessagePage>(id)).entries;
    }
    return {
      user,
      async folders() {
        return [...tree.folders].sort(byPath).map(toExportFolder);
      },
      async keywords(folder) {
        const set = new Set<string>();
        for await (const e of entries(pagesOf(folder))) for (const k of e.keywords) set.add(k);
        return [...set].sort();
      },
      messages(folder, signal) {
        return readAhead(
          entries(pagesOf(folder)),
          async (e): Promise<ExportMessage> => {
            signal?.throwIfAborted();
            const bytes = await readExactBytes(repo, e);
            const entry = {
              uid: e.uid,
              size: e.size,
              sha256: e.sha256,
              internalDate: e.internalDate,
              flags: e.flags,
              keywords: e.keywords,
            };
            return { entry, bytes };
          },
          (e) => e.size,
          limits,
        );
      },
      async close() {},
    };
  }

  async close(): Promise<void> {}

  private shortId(): string {
    return this.origin.kind === 'snapshot' ? this.origin.snapshotId.slice(0, 8) : '';
  }
}

function toExportFolder(f: FolderNode): ExportFolder {
  return {
    ...folderListing(f),
    ...(f.uidValidity === undefined ? {} : { uidValidity: f.uidValidity }),
    ...(f.uidNext === undefined ? {} : { uidNext: f.uidNext }),
    messages: f.messages,
    bytes: f.bytes,
  };
}

/**
 * The exact bytes of a message, as readMessageBytes (snapshot-tree.ts) gives them, but assembled in
 * place: each content blob is copied into one buffer of the message's size as it arrives (4 in
 * flight), so a large message costs its size once, not twice (parts, then their concatenation).
 */
async function readExactBytes(repo: TreeReader, entry: MessageEntry): Promise<Uint8Array> {
  const out = Buffer.allocUnsafe(entry.size);
  const hash = createHash('sha256');
  let at = 0;
  for await (const part of readAhead(
    entry.content,
    (id) => repo.loadBlob(id),
    () => 1,
    { items: 4 },
  )) {
    if (at + part.byteLength > entry.size) break;
    out.set(part, at);
    hash.update(part);
    at += part.byteLength;
  }
  const sha = at === entry.size ? hash.digest('hex') : '';
  if (sha !== entry.sha256) {
    throw new MailarkError(
      'CORRUPT',
      `message uid ${entry.uid} does not reassemble to its ${entry.size} bytes with SHA-256 ${entry.sha256}`,
      { hint: 'run "mailark check --read-data" to find the damaged objects' },
    );
  }
  return out;
}
