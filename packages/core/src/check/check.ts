/**
 * `mailark check`: verifies a repository's structure and, on request, its data (restic's checker).
 *
 * Structure:
 *   - every index object loads (the repository is opened with `index: 'lenient'` to see them all);
 *   - every pack the index names exists, with exactly the size its entries imply;
 *   - every pack's header (one ranged read of its tail) lists exactly what the index says;
 *   - every snapshot loads, every tree it references loads, and every data blob it references is
 *     indexed as data; the same for backup checkpoints (backup resumes from them, prune keeps what
 *     they reference).
 * Data (readData, or readDataSubset percent of the packs, chosen at random): each pack is downloaded,
 * its SHA-256 must equal its id, and every blob in it must authenticate, decompress and hash (HMAC)
 * to its id.
 *
 * The check never stops at the first problem: errors name the object key, the blob id and what is
 * wrong; warnings note what is untidy but not damage (unindexed packs, stale locks, checkpoints).
 */
import { isMailarkError, MailarkError } from '../errors.js';
import type { BlobId, Snapshot } from '../mail/snapshot.js';
import { collectMailboxBlobs, collectReferencedBlobs, type TreeReader } from '../mail/snapshot-tree.js';
import { type Reporter, silentReporter } from '../progress.js';
import { sha256Hex } from '../repo/crypto.js';
import { packKey } from '../repo/layout.js';
import { decodePackTail, openBlob, type PackEntry, tailLength } from '../repo/pack.js';
import type { Repository } from '../repo/repository.js';

export interface CheckOptions {
  /** Download and verify every pack. */
  readData?: boolean;
  /** Download and verify this percentage (0–100, fractions allowed) of the packs, chosen at random. */
  readDataSubset?: number;
  reporter?: Reporter;
  /** Test hook: the random source for the subset (default Math.random). */
  random?: () => number;
  /**
   * Checked before each pack, snapshot and checkpoint: once aborted, check stops with INTERRUPTED
   * (it changes nothing, so stopping anywhere is safe; the agent's shutdown relies on it).
   */
  signal?: AbortSignal;
}

export interface CheckIssue {
  /** Store key of the object concerned, e.g. `data/ab/ab12…` or `snapshots/…`. */
  object?: string;
  blob?: BlobId;
  message: string;
}

export interface CheckReport {
  ok: boolean;
  errors: CheckIssue[];
  warnings: CheckIssue[];
  counts: {
    indexObjects: number;
    packs: number;
    blobs: number;
    snapshots: number;
    trees: number;
    dataBlobsReferenced: number;
    /** Indexed blobs no snapshot references (prune removes them). */
    unusedBlobs: number;
    packsRead: number;
    blobsRead: number;
  };
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Entries compared as text: order-insensitive, every field significant. */
function entryKey(e: PackEntry): string {
  return `${e.type}:${e.id}:${e.offset}:${e.length}:${e.rawLength}`;
}

export async function checkRepository(repo: Repository, opts: CheckOptions = {}): Promise<CheckReport> {
  const reporter = opts.reporter ?? silentReporter;
  const errors: CheckIssue[] = [];
  const warnings: CheckIssue[] = [];
  const error = (issue: CheckIssue) => {
    errors.push(issue);
    reporter.log('error', issue.message, { ...issue });
  };
  const warn = (issue: CheckIssue) => {
    warnings.push(issue);
    reporter.log('warn', issue.message, { ...issue });
  };

  for (const err of repo.indexErrors)
    error({ object: String(err.details?.object ?? 'index'), message: err.message });

  // ---- packs against the index ----
  const byPack = new Map<string, PackEntry[]>();
  let blobs = 0;
  for (const e of repo.indexEntries()) {
    blobs++;
    const list = byPack.get(e.pack) ?? [];
    list.push(e);
    byPack.set(e.pack, list);
  }
  const stored = new Map((await repo.listPacks()).map((p) => [p.id, p.size]));
  for (const [packId, entries] of byPack) {
    if (!stored.has(packId)) {
      error({
        object: packKey(packId),
        message: `pack ${packKey(packId)} is missing; the index lists ${entries.length} blobs in it`,
      });
    }
  }
  let done = 0;
  for (const [packId, size] of stored) {
    throwIfAborted(opts.signal);
    reporter.progress({ phase: 'check packs', done: done++, total: stored.size });
    const key = packKey(packId);
    const entries = byPack.get(packId);
    if (entries === undefined) {
      warn({
        object: key,
        message: `pack ${key} is in no index (left by an interrupted run; prune removes it)`,
      });
    } else {
      const expected = entries.reduce((n, e) => n + e.length, 0) + tailLength(entries.length);
      if (expected !== size) {
        error({
          object: key,
          message: `pack ${key} has ${size} bytes, its ${entries.length} indexed blobs imply ${expected}`,
        });
        continue;
      }
    }
    try {
      const header = await repo.readPackHeader(packId, size, entries?.length);
      if (entries !== undefined) comparePack(key, header, entries, error);
    } catch (err) {
      error({ object: key, message: message(err) });
    }
  }

  // ---- snapshots and the trees they reference ----
  const refs = { trees: new Set<BlobId>(), data: new Set<BlobId>() };
  const reader = tolerantReader(repo, error);
  const snapshotIds = await listSnapshotIds(repo);
  done = 0;
  for (const id of snapshotIds) {
    throwIfAborted(opts.signal);
    reporter.progress({ phase: 'check snapshots', done: done++, total: snapshotIds.length });
    try {
      // Straight from the store: a cached copy would hide damage.
      const snapshot = await repo.loadJson<Snapshot>('snapshots', id);
      await collectReferencedBlobs(reader, snapshot, refs);
    } catch (err) {
      error({ object: `snapshots/${id}`, message: message(err) });
    }
  }

  // ---- backup checkpoints ----
  // The next backup resumes from them and prune keeps what they reference, so each must authenticate
  // and its trees must load: a damaged one stops every later backup and prune.
  const checkpointIds = await repo.listObjects('checkpoints');
  for (const id of checkpointIds) {
    throwIfAborted(opts.signal);
    const object = `checkpoints/${id}`;
    let cp: { v?: unknown; mailboxes?: unknown };
    try {
      cp = await repo.loadObject<typeof cp>('checkpoints', id);
    } catch (err) {
      // Deleted by a backup that finished meanwhile: nothing left to check.
      if (isMailarkError(err, 'OBJECT_NOT_FOUND') || isMailarkError(err, 'NOT_FOUND')) continue;
      error({
        object,
        message: `${message(err)}; prune stops on it and backup skips it: delete ${object} (the next backup re-fetches what it held)`,
      });
      continue;
    }
    if (cp.v !== 1 || !Array.isArray(cp.mailboxes)) {
      warn({
        object,
        message: `checkpoint ${object} has a format this mailark does not read (v ${String(cp.v)})`,
      });
      continue;
    }
    for (const m of cp.mailboxes as Array<{ tree?: unknown }>) {
      if (typeof m.tree === 'string') await collectMailboxBlobs(reader, m.tree, refs);
      else error({ object, message: `checkpoint ${object} names a mailbox without a tree` });
    }
  }

  const typeOf = new Map<string, string>();
  for (const e of repo.indexEntries()) typeOf.set(e.id, e.type);
  for (const id of refs.data) {
    const t = typeOf.get(id);
    if (t === undefined)
      error({
        blob: id,
        message: `data blob ${id} is referenced by a snapshot or checkpoint but is in no index`,
      });
    else if (t !== 'data')
      error({ blob: id, message: `blob ${id} is referenced as data but indexed as ${t}` });
  }
  for (const id of refs.trees) {
    const t = typeOf.get(id);
    if (t !== undefined && t !== 'tree')
      error({ blob: id, message: `blob ${id} is referenced as a tree but indexed as ${t}` });
  }
  let unusedBlobs = 0;
  for (const id of typeOf.keys()) if (!refs.trees.has(id) && !refs.data.has(id)) unusedBlobs++;

  // ---- housekeeping ----
  for (const l of await repo.listLocks()) {
    if (l.stale)
      warn({
        object: `locks/${l.id}`,
        message: `stale lock of ${l.owner} on ${l.host} (pid ${l.pid}) since ${l.time}: "mailark unlock" removes it`,
      });
  }
  if (checkpointIds.length > 0) {
    warn({
      message: `${checkpointIds.length} backup checkpoint(s) left by interrupted runs; the next backup resumes from them`,
    });
  }

  // ---- data ----
  let packsRead = 0;
  let blobsRead = 0;
  const toRead = choosePacks([...stored.keys()], opts);
  for (const packId of toRead) {
    throwIfAborted(opts.signal);
    reporter.progress({ phase: 'check data', done: packsRead, total: toRead.length });
    const r = await readPack(repo, packId, stored.get(packId) ?? 0, error);
    packsRead++;
    blobsRead += r;
  }

  const report: CheckReport = {
    ok: errors.length === 0,
    errors,
    warnings,
    counts: {
      indexObjects: repo.indexObjectPacks().size + repo.indexErrors.length,
      packs: stored.size,
      blobs,
      snapshots: snapshotIds.length,
      trees: refs.trees.size,
      dataBlobsReferenced: refs.data.size,
      unusedBlobs,
      packsRead,
      blobsRead,
    },
  };
  // No summary log line: each problem was logged as it was found, and the caller reports the verdict
  // from the returned report (the CLI printed it twice when this also logged it).
  return report;
}

function comparePack(
  key: string,
  header: PackEntry[],
  indexed: PackEntry[],
  error: (i: CheckIssue) => void,
): void {
  const inHeader = new Map(header.map((e) => [entryKey(e), e]));
  const inIndex = new Map(indexed.map((e) => [entryKey(e), e]));
  for (const [k, e] of inIndex) {
    if (!inHeader.has(k))
      error({
        object: key,
        blob: e.id,
        message: `index entry for blob ${e.id} does not match the header of pack ${key}`,
      });
  }
  for (const [k, e] of inHeader) {
    if (!inIndex.has(k))
      error({
        object: key,
        blob: e.id,
        message: `pack ${key} holds blob ${e.id} that the index does not list there`,
      });
  }
}

/** Which packs to download: all, a random share, or none. */
export function choosePacks(packs: readonly string[], opts: CheckOptions): string[] {
  if (opts.readData) return [...packs];
  const pct = opts.readDataSubset;
  if (pct === undefined || pct <= 0) return [];
  const random = opts.random ?? Math.random;
  const n = Math.min(packs.length, Math.max(1, Math.ceil((packs.length * Math.min(pct, 100)) / 100)));
  // Partial Fisher–Yates: an unbiased random subset of n.
  const a = [...packs];
  for (let i = 0; i < n; i++) {
    const j = i + Math.floor(random() * (a.length - i));
    [a[i], a[j]] = [a[j] as string, a[i] as string];
  }
  return a.slice(0, n);
}

/** Downloads a pack and verifies it whole; returns the number of blobs verified. */
async function readPack(
  repo: Repository,
  packId: string,
  size: number,
  error: (i: CheckIssue) => void,
): Promise<number> {
  const key = packKey(packId);
  let bytes: Uint8Array;
  try {
    bytes = await repo.store.get(key);
  } catch (err) {
    error({ object: key, message: `pack ${key} cannot be read: ${message(err)}` });
    return 0;
  }
  if (bytes.byteLength !== size || sha256Hex(bytes) !== packId) {
    error({ object: key, message: `pack ${key} does not match its id (damaged)` });
  }
  let entries: PackEntry[];
  try {
    entries = decodePackTail(repo.encKey, bytes, bytes.byteLength, key);
  } catch (err) {
    error({ object: key, message: message(err) });
    return 0;
  }
  let ok = 0;
  for (const e of entries) {
    const where = `${key} (blob ${e.id})`;
    try {
      const plain = openBlob(repo.encKey, e, bytes.subarray(e.offset, e.offset + e.length), where);
      if (repo.blobId(plain) !== e.id) throw new Error(`blob ${e.id} in ${key} does not match its id`);
      ok++;
    } catch (err) {
      error({ object: key, blob: e.id, message: message(err) });
    }
  }
  return ok;
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw new MailarkError('INTERRUPTED', 'check interrupted; it changed nothing', {
      hint: 'run "mailark check" again',
    });
  }
}

async function listSnapshotIds(repo: Repository): Promise<string[]> {
  const ids: string[] = [];
  for await (const { key } of repo.store.list('snapshots/')) {
    const id = key.slice('snapshots/'.length);
    if (/^[0-9a-f]{64}$/.test(id)) ids.push(id);
  }
  return ids;
}

/**
 * A TreeReader that records a tree that fails to load as an error and returns an empty tree in its
 * place (empty at every level: no mailboxes, folders or entries), so collectReferencedBlobs goes on
 * with the rest of the snapshot.
 */
function tolerantReader(repo: Repository, error: (i: CheckIssue) => void): TreeReader {
  return {
    loadBlob: (id) => repo.loadBlob(id),
    async loadTree<T>(id: BlobId): Promise<T> {
      try {
        return await repo.loadTree<T>(id);
      } catch (err) {
        const object = isMailarkError(err) ? (err.details?.object as string | undefined) : undefined;
        error({
          ...(object === undefined ? {} : { object }),
          blob: id,
          message: `tree ${id}: ${message(err)}`,
        });
        return { v: 1, mailboxes: [], folders: [], entries: [] } as T;
      }
    },
  };
}
