/**
 * The prune plan (PURE): from the index, the pack objects in the store and the set of blobs still
 * referenced (by every snapshot and every backup checkpoint), decide which packs to delete, which to
 * repack and which to leave alone. prune.ts executes it; `prune --dry-run` prints it.
 *
 * Rules (restic's, adapted):
 * - a blob is used when a snapshot or checkpoint references it; each used blob keeps exactly ONE
 *   copy (its "owner": the copy in the pack with the most used bytes), any other copy is unused;
 * - a pack with no used blob is deleted; a pack in the store that no index lists is deleted too
 *   (a run crashed after writing it and before its index: nothing can reference it);
 * - a pack with used and unused blobs is repacked (its used blobs copied to new packs) when it holds
 *   only tree blobs (small, cheap, keeps snapshot walks compact), and otherwise, most-wasteful first,
 *   until the unused bytes left are within the max-unused limit (default 5% of the repository after
 *   prune: unused ≤ used × p / (100 − p));
 * - a used blob that no pack in the store holds is damage: the plan refuses (CORRUPT), it never
 *   deletes anything from a repository it cannot account for.
 * Sizes are blob bytes as stored (encrypted, compressed); pack headers are not counted as unused, so a
 * fully used pack is never repacked for its header.
 */
import { MailarkError } from '../errors.js';
import type { BlobId } from '../mail/snapshot.js';

/** One index entry (Repository.indexEntries() yields these; duplicates across packs included). */
export interface PruneIndexEntry {
  id: BlobId;
  type: 'data' | 'tree';
  pack: string;
  length: number;
}

export type MaxUnused =
  | { kind: 'percent'; value: number }
  | { kind: 'bytes'; value: number }
  | { kind: 'unlimited' };

export const DEFAULT_MAX_UNUSED: MaxUnused = { kind: 'percent', value: 5 };

export interface PrunePlanInput {
  entries: Iterable<PruneIndexEntry>;
  /** Every pack object in the store (data/<2 hex>/<id>) with its size. */
  packs: ReadonlyArray<{ id: string; size: number }>;
  /** Every blob (tree or data) referenced by a snapshot or checkpoint. */
  used: ReadonlySet<BlobId>;
  maxUnused?: MaxUnused;
}

export interface PruneStats {
  packs: number;
  /** Store bytes of all packs. */
  packBytes: number;
  blobs: number;
  usedBlobs: number;
  usedBytes: number;
  unusedBlobs: number;
  unusedBytes: number;
  /** Extra copies of used blobs (counted in unusedBlobs too). */
  duplicateBlobs: number;
  /** Store bytes of the packs deleted outright (no used blob, or in no index). */
  deleteBytes: number;
  /** Store bytes of the packs repacked, and the used bytes copied out of them. */
  repackBytes: number;
  repackCopyBytes: number;
  /** Unused blob bytes left after prune, and the limit the plan aimed for. */
  unusedBytesAfter: number;
  unusedLimitBytes: number;
}

export interface PrunePlan {
  /** Indexed packs without a used blob: dropped from the index, then deleted. */
  deletePacks: string[];
  /** Packs in the store that no index lists: deleted. */
  unindexedPacks: string[];
  /** Indexed packs the store no longer holds and nothing needs: dropped from the index. */
  missingPacks: string[];
  /** Packs whose used blobs are copied into new packs before they are deleted. */
  repackPacks: string[];
  /** The blobs to copy out of repackPacks (each exactly once). */
  repackBlobs: Set<BlobId>;
  stats: PruneStats;
}

/** Parses "5%", "5", "250M", "1.5G", "0" or "unlimited" (restic's --max-unused). USAGE on junk. */
export function parseMaxUnused(text: string): MaxUnused {
  const t = text.trim().toLowerCase();
  if (t === 'unlimited') return { kind: 'unlimited' };
  const pct = /^(\d+(?:\.\d+)?)%?$/.exec(t);
  if (pct !== null && (t.endsWith('%') || !/[a-z]/.test(t))) {
    const value = Number(pct[1]);
    if (value < 100) return { kind: 'percent', value };
    if (value === 100) return { kind: 'unlimited' };
  }
  const size = /^(\d+(?:\.\d+)?)([kmgt])i?b?$/.exec(t);
  if (size !== null) {
    const mult = { k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[size[2] as 'k' | 'm' | 'g' | 't'];
    return { kind: 'bytes', value: Math.floor(Number(size[1]) * mult) };
  }
  throw new MailarkError('USAGE', `invalid --max-unused ${JSON.stringify(text)}`, {
    hint: 'give a percentage of the repository below 100 (e.g. 5%), a size (e.g. 500M, 2G) or "unlimited"',
  });
}

interface PackState {
  id: string;
  stored: number | undefined;
  entries: PruneIndexEntry[];
  usedBytes: number;
  unusedBytes: number;
  usedBlobs: number;
  unusedBlobs: number;
  onlyTrees: boolean;
}

export function planPrune(input: PrunePlanInput): PrunePlan {
  const stored = new Map(input.packs.map((p) => [p.id, p.size]));
  const packs = new Map<string, PackState>();
  const copies = new Map<BlobId, PruneIndexEntry[]>();
  for (const e of input.entries) {
    let p = packs.get(e.pack);
    if (p === undefined) {
      p = {
        id: e.pack,
        stored: stored.get(e.pack),
        entries: [],
        usedBytes: 0,
        unusedBytes: 0,
        usedBlobs: 0,
        unusedBlobs: 0,
        onlyTrees: true,
      };
      packs.set(e.pack, p);
    }
    p.entries.push(e);
    if (e.type !== 'tree') p.onlyTrees = false;
    if (input.used.has(e.id) && p.stored !== undefined) {
      const list = copies.get(e.id) ?? [];
      list.push(e);
      copies.set(e.id, list);
    }
  }

  const missingUsed = [...input.used].filter((id) => !copies.has(id));
  if (missingUsed.length > 0) {
    throw new MailarkError(
      'CORRUPT',
      `${missingUsed.length} referenced blob(s) are in no pack of the repository, e.g. ${missingUsed.slice(0, 3).join(', ')}`,
      {
        hint: 'nothing was deleted; run "mailark check" to see the damage, and "mailark repair index" if index objects were lost',
        details: { missingBlobs: missingUsed.slice(0, 100) },
      },
    );
  }

  // Owner of each used blob: the copy in the pack with the most used bytes (ties: smallest pack id),
  // so duplicates concentrate in packs that are going away anyway.
  const candidateUsed = new Map<string, number>();
  for (const list of copies.values()) {
    for (const e of list) candidateUsed.set(e.pack, (candidateUsed.get(e.pack) ?? 0) + e.length);
  }
  const owner = new Map<BlobId, string>();
  for (const [id, list] of copies) {
    let best = list[0]!;
    for (const e of list) {
      const d = candidateUsed.get(e.pack)! - candidateUsed.get(best.pack)!;
      if (d > 0 || (d === 0 && e.pack < best.pack)) best = e;
    }
    owner.set(id, best.pack);
  }

  let blobs = 0;
  let usedBytes = 0;
  let unusedBytes = 0;
  let unusedBlobs = 0;
  let duplicateBlobs = 0;
  const counted = new Set<BlobId>();
  for (const p of packs.values()) {
    for (const e of p.entries) {
      blobs++;
      if (owner.get(e.id) === p.id && !counted.has(e.id)) {
        counted.add(e.id);
        p.usedBytes += e.length;
        p.usedBlobs++;
      } else {
        p.unusedBytes += e.length;
        p.unusedBlobs++;
        unusedBlobs++;
        if (input.used.has(e.id)) duplicateBlobs++;
      }
    }
    usedBytes += p.usedBytes;
    unusedBytes += p.unusedBytes;
  }

  const plan: PrunePlan = {
    deletePacks: [],
    unindexedPacks: input.packs.filter((p) => !packs.has(p.id)).map((p) => p.id),
    missingPacks: [],
    repackPacks: [],
    repackBlobs: new Set(),
    stats: {
      packs: input.packs.length,
      packBytes: input.packs.reduce((s, p) => s + p.size, 0),
      blobs,
      usedBlobs: owner.size,
      usedBytes,
      unusedBlobs,
      unusedBytes,
      duplicateBlobs,
      deleteBytes: 0,
      repackBytes: 0,
      repackCopyBytes: 0,
      unusedBytesAfter: unusedBytes,
      unusedLimitBytes: unusedLimit(input.maxUnused ?? DEFAULT_MAX_UNUSED, usedBytes),
    },
  };
  for (const id of plan.unindexedPacks) plan.stats.deleteBytes += stored.get(id)!;

  const repack = (p: PackState) => {
    plan.repackPacks.push(p.id);
    plan.stats.repackBytes += p.stored!;
    plan.stats.repackCopyBytes += p.usedBytes;
    plan.stats.unusedBytesAfter -= p.unusedBytes;
    for (const e of p.entries) if (owner.get(e.id) === p.id) plan.repackBlobs.add(e.id);
  };
  const candidates: PackState[] = [];
  for (const p of [...packs.values()].sort((a, b) => (a.id < b.id ? -1 : 1))) {
    if (p.stored === undefined) {
      plan.missingPacks.push(p.id);
      plan.stats.unusedBytesAfter -= p.unusedBytes;
    } else if (p.usedBlobs === 0) {
      plan.deletePacks.push(p.id);
      plan.stats.deleteBytes += p.stored;
      plan.stats.unusedBytesAfter -= p.unusedBytes;
    } else if (p.unusedBlobs > 0) {
      if (p.onlyTrees) repack(p);
      else candidates.push(p);
    }
  }
  // Most unused per used byte first: each repacked byte buys the most reclaimed space.
  candidates.sort(
    (a, b) => b.unusedBytes / b.usedBytes - a.unusedBytes / a.usedBytes || (a.id < b.id ? -1 : 1),
  );
  for (const p of candidates) {
    if (plan.stats.unusedBytesAfter <= plan.stats.unusedLimitBytes) break;
    repack(p);
  }
  return plan;
}

function unusedLimit(max: MaxUnused, usedBytes: number): number {
  switch (max.kind) {
    case 'unlimited':
      return Number.POSITIVE_INFINITY;
    case 'bytes':
      return max.value;
    case 'percent':
      return Math.floor((usedBytes * max.value) / (100 - max.value));
  }
}
