/**
 * `mailark stats`: what the repository holds and what it saves.
 *
 * - objects: count and bytes per kind, from a listing of the store;
 * - blobs: count, raw (uncompressed plaintext) bytes and stored (compressed + sealed) bytes per type,
 *   from the index; compressionRatio = raw / stored;
 * - logical (walking snapshots: one, or all): the messages they hold and their exact byte size, against
 *   the stored bytes of the data blobs they reference; dedupRatio = message bytes / stored data bytes
 *   (deduplication across users, folders and snapshots, times compression). Mailbox trees shared by
 *   several snapshots are walked once.
 */
import type { MailboxTree, MessagePage, TenantTree } from '../mail/snapshot.js';
import { type Reporter, silentReporter } from '../progress.js';
import type { Repository } from './repository.js';

export type ObjectKind = 'config' | 'keys' | 'data' | 'index' | 'snapshots' | 'locks' | 'checkpoints';

export interface BlobTypeStats {
  count: number;
  rawBytes: number;
  storedBytes: number;
}

export interface RepositoryStats {
  objects: Record<ObjectKind, { count: number; bytes: number }>;
  /** Total bytes in the store. */
  totalBytes: number;
  blobs: {
    data: BlobTypeStats;
    tree: BlobTypeStats /** extra copies of a blob in other packs */;
    duplicates: number;
  };
  rawBytes: number;
  storedBytes: number;
  /** raw / stored (2 = half the space); 1 when empty. */
  compressionRatio: number;
  snapshots: number;
  logical: {
    snapshots: number;
    messages: number;
    messageBytes: number;
    dataBlobs: number;
    storedDataBytes: number;
    /** messageBytes / storedDataBytes; 1 when nothing is stored. */
    dedupRatio: number;
  };
}

const KINDS: ObjectKind[] = ['config', 'keys', 'data', 'index', 'snapshots', 'locks', 'checkpoints'];

/** Stats of the whole repository; with `snapshot`, the logical part covers that snapshot only. */
export async function repositoryStats(
  repo: Repository,
  opts: { snapshot?: string; reporter?: Reporter } = {},
): Promise<RepositoryStats> {
  const reporter = opts.reporter ?? silentReporter;
  const objects = {} as RepositoryStats['objects'];
  let totalBytes = 0;
  for (const kind of KINDS) {
    const s = { count: 0, bytes: 0 };
    for await (const o of repo.store.list(kind)) {
      // list() matches prefixes: `config` must not count a hypothetical `configX`.
      if (o.key !== kind && !o.key.startsWith(`${kind}/`)) continue;
      s.count++;
      s.bytes += o.size;
    }
    objects[kind] = s;
    totalBytes += s.bytes;
  }

  const blobs = { data: zero(), tree: zero(), duplicates: 0 };
  const seen = new Map<string, number>();
  for (const e of repo.indexEntries()) {
    if (seen.has(e.id)) {
      blobs.duplicates++;
      continue;
    }
    seen.set(e.id, e.length);
    const t = blobs[e.type];
    t.count++;
    t.rawBytes += e.rawLength;
    t.storedBytes += e.length;
  }
  const rawBytes = blobs.data.rawBytes + blobs.tree.rawBytes;
  const storedBytes = blobs.data.storedBytes + blobs.tree.storedBytes;

  const all = await repo.listSnapshots();
  const walked = opts.snapshot === undefined ? all : [await repo.resolveSnapshot(opts.snapshot)];
  const memo = new Map<string, { messages: number; bytes: number }>();
  const data = new Set<string>();
  let messages = 0;
  let messageBytes = 0;
  for (const [i, { snapshot }] of walked.entries()) {
    reporter.progress({ phase: 'stats', done: i, total: walked.length });
    const tenant = await repo.loadTree<TenantTree>(snapshot.tree);
    for (const ref of tenant.mailboxes) {
      let m = memo.get(ref.tree);
      if (m === undefined) {
        m = { messages: 0, bytes: 0 };
        const mailbox = await repo.loadTree<MailboxTree>(ref.tree);
        for (const folder of mailbox.folders) {
          for (const pageId of folder.pages) {
            const page = await repo.loadTree<MessagePage>(pageId);
            for (const e of page.entries) {
              m.messages++;
              m.bytes += e.size;
              for (const id of e.content) data.add(id);
            }
          }
        }
        memo.set(ref.tree, m);
      }
      messages += m.messages;
      messageBytes += m.bytes;
    }
  }
  let storedDataBytes = 0;
  for (const id of data) storedDataBytes += seen.get(id) ?? 0;

  return {
    objects,
    totalBytes,
    blobs,
    rawBytes,
    storedBytes,
    compressionRatio: storedBytes === 0 ? 1 : rawBytes / storedBytes,
    snapshots: all.length,
    logical: {
      snapshots: walked.length,
      messages,
      messageBytes,
      dataBlobs: data.size,
      storedDataBytes,
      dedupRatio: storedDataBytes === 0 ? 1 : messageBytes / storedDataBytes,
    },
  };
}

function zero(): BlobTypeStats {
  return { count: 0, rawBytes: 0, storedBytes: 0 };
}
