/**
 * Repack: the one way blobs leave the repository (prune's executor).
 *
 * Order, so that an interruption at any point leaves a valid repository (at worst with duplicates or
 * unreferenced packs that the next prune cleans):
 *   1. copy the kept blobs of the old packs into new packs (sealed bytes copied as they are, after
 *      authenticating them) and write the new packs and their index object;
 *   2. for each index object that covers an old pack: if it also covers other packs, write its
 *      replacement (those packs only) first; then delete it;
 *   3. delete the old packs.
 * A blob that also lives in a pack outside the set is not copied: that copy survives.
 */
import { isMailarkError } from '../errors.js';
import { corrupt } from './crypto.js';
import { packKey } from './layout.js';
import type { PackEntry } from './pack.js';
import type { Repository } from './repository.js';

export interface RepackResult {
  /** Packs written (their blobs are indexed by a new index object). */
  newPacks: string[];
  /** Old packs deleted. */
  removed: string[];
  copiedBlobs: number;
  /** Stored bytes of the copied blobs. */
  copiedBytes: number;
  /** Index objects deleted, and those written to replace them. */
  removedIndexObjects: string[];
  writtenIndexObjects: string[];
}

export async function repackPacks(
  repo: Repository,
  packIds: readonly string[],
  keep: (blobId: string) => boolean,
): Promise<RepackResult> {
  await repo.flush();
  const old = new Set(packIds);
  const byPack = new Map<string, PackEntry[]>();
  const elsewhere = new Set<string>();
  for (const e of repo.indexEntries()) {
    if (!old.has(e.pack)) elsewhere.add(e.id);
    else {
      const list = byPack.get(e.pack) ?? [];
      list.push(e);
      byPack.set(e.pack, list);
    }
  }
  const indexBefore = new Set(repo.indexObjectPacks().keys());
  const packsBefore = new Set((await repo.listPacks()).map((p) => p.id));

  // 1. Copy what must survive.
  const copied = new Set<string>();
  let copiedBytes = 0;
  for (const packId of packIds) {
    const entries = (byPack.get(packId) ?? []).filter(
      (e) => keep(e.id) && !elsewhere.has(e.id) && !copied.has(e.id),
    );
    if (entries.length === 0) continue;
    const key = packKey(packId);
    let bytes: Uint8Array;
    try {
      bytes = await repo.store.get(key);
    } catch (err) {
      if (isMailarkError(err, 'OBJECT_NOT_FOUND'))
        throw corrupt(key, 'is missing but holds blobs to keep', err);
      throw err;
    }
    for (const e of entries) {
      // One pack may list a blob twice (an index object and its replacement both survived an
      // interrupted repack): copy it once, or the new pack holds it twice and no prune ever converges.
      if (copied.has(e.id)) continue;
      if (e.offset + e.length > bytes.byteLength)
        throw corrupt(key, `is shorter than its index says (blob ${e.id})`);
      await repo.copySealedBlob(e, bytes.subarray(e.offset, e.offset + e.length), `${key} (blob ${e.id})`);
      copied.add(e.id);
      copiedBytes += e.length;
    }
  }
  await repo.flush();
  const newPacks = [...repo.indexObjectPacks()]
    .filter(([id]) => !indexBefore.has(id))
    .flatMap(([, packs]) => packs)
    .filter((p) => !packsBefore.has(p));

  // 2. Index objects: replacements first, then deletions.
  const written: string[] = [];
  const removedIndex: string[] = [];
  const remaining = new Map<string, PackEntry[]>();
  for (const e of repo.indexEntries()) {
    const list = remaining.get(e.pack) ?? [];
    list.push(e);
    remaining.set(e.pack, list);
  }
  for (const [indexId, packs] of [...repo.indexObjectPacks()]) {
    if (!packs.some((p) => old.has(p))) continue;
    const others = packs.filter((p) => !old.has(p));
    if (others.length > 0) {
      written.push(await repo.writeIndexObject(new Map(others.map((p) => [p, remaining.get(p) ?? []]))));
    }
    await repo.deleteIndexObject(indexId);
    removedIndex.push(indexId);
  }

  // 3. Old packs, last.
  for (const packId of packIds) await repo.store.delete(packKey(packId));
  repo.forgetPacks(old);
  return {
    newPacks,
    removed: [...packIds],
    copiedBlobs: copied.size,
    copiedBytes,
    removedIndexObjects: removedIndex,
    writtenIndexObjects: written,
  };
}
