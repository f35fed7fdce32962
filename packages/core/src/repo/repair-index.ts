/**
 * Rebuilding the index from the packs alone (`mailark repair index`): the index is a cache of what
 * the pack headers say, so it can always be recreated.
 *
 * Order: read every pack header, write fresh index objects covering every readable pack, and only
 * then delete the old index objects, so an interruption never leaves fewer index entries than before.
 * Open the repository with `{ index: 'skip' }` to repair an index too damaged to load.
 */
import { isMailarkError, type MailarkError } from '../errors.js';
import { type Reporter, silentReporter } from '../progress.js';
import { packKey } from './layout.js';
import type { PackEntry } from './pack.js';
import type { Repository } from './repository.js';

export interface RebuildIndexResult {
  packs: number;
  blobs: number;
  writtenIndexObjects: string[];
  removedIndexObjects: string[];
  /** Packs whose header could not be read: their blobs are not indexed (run check, then prune). */
  damagedPacks: Array<{ object: string; message: string }>;
}

/** Entries per index object: ~2.5 MB objects, so no single download dominates open(). */
const ENTRIES_PER_INDEX_OBJECT = 50_000;

export async function rebuildIndex(
  repo: Repository,
  opts: { reporter?: Reporter } = {},
): Promise<RebuildIndexResult> {
  const reporter = opts.reporter ?? silentReporter;
  await repo.flush();
  const oldIds = await repo.listIndexIds();
  const packs = await repo.listPacks();
  const headers = new Map<string, PackEntry[]>();
  const damaged: RebuildIndexResult['damagedPacks'] = [];
  let done = 0;
  for (const p of packs) {
    try {
      headers.set(p.id, await repo.readPackHeader(p.id, p.size));
    } catch (err) {
      if (!isMailarkError(err, 'CORRUPT')) throw err;
      damaged.push({ object: packKey(p.id), message: (err as MailarkError).message });
      reporter.log('error', `skipping unreadable pack ${packKey(p.id)}`, { object: packKey(p.id) });
    }
    reporter.progress({ phase: 'repair index', done: ++done, total: packs.length });
  }

  const written: string[] = [];
  let batch = new Map<string, PackEntry[]>();
  let batchEntries = 0;
  const writeBatch = async () => {
    if (batch.size === 0) return;
    written.push(await repo.writeIndexObject(batch));
    batch = new Map();
    batchEntries = 0;
  };
  for (const [packId, entries] of headers) {
    batch.set(packId, entries);
    batchEntries += entries.length;
    if (batchEntries >= ENTRIES_PER_INDEX_OBJECT) await writeBatch();
  }
  await writeBatch();

  // New before old: only now remove what the new objects replace.
  const removed = oldIds.filter((id) => !written.includes(id));
  for (const id of removed) await repo.deleteIndexObject(id);
  repo.replaceIndexEntries(headers, written);
  let blobs = 0;
  for (const entries of headers.values()) blobs += entries.length;
  // No summary log line: the caller reports the returned result (the CLI printed it twice otherwise).
  return {
    packs: headers.size,
    blobs,
    writtenIndexObjects: written,
    removedIndexObjects: removed,
    damagedPacks: damaged,
  };
}
