/**
 * prune: delete the data no snapshot and no backup checkpoint references any more.
 *
 * PLAN, then EXECUTE (restic's shape): gather what is used (walking every snapshot and every
 * checkpoint: a killed backup's checkpoint keeps its data so the next run resumes without
 * re-downloading), read the index and the pack list, let planPrune (pure) decide, then hand every
 * pack to delete or rewrite to ONE Repository.repack call and finally delete the packs no index lists.
 *
 * Why it is safe with backups running: prune takes an EXCLUSIVE lock, and backup, check and restore
 * take shared ones, so prune never starts while any of them runs (LOCKED names the holder) and none of
 * them can start while prune runs. A backup can therefore never add a reference to a blob that prune
 * has just judged unused, and a pack no index lists cannot belong to a run still in progress.
 *
 * Why it is resumable: repack writes new packs and their index first, then replaces or deletes the old
 * index objects, then deletes the old packs; packs in no index are deleted last. Killed at any point,
 * the repository stays valid: at worst it holds duplicate blobs or packs no index lists, which the
 * next prune removes. Nothing is ever deleted while the plan cannot account for a referenced blob.
 */
import { type Checkpoint, damagedCheckpointHint } from '../backup/backup-checkpoint.js';
import { errorText, InternalError, isMailarkError, MailarkError } from '../errors.js';
import type { BlobId } from '../mail/snapshot.js';
import { collectMailboxBlobs, collectReferencedBlobs } from '../mail/snapshot-tree.js';
import { type Reporter, silentReporter } from '../progress.js';
import { packKey } from '../repo/layout.js';
import type { Repository } from '../repo/repository.js';
import {
  DEFAULT_MAX_UNUSED,
  type MaxUnused,
  type PrunePlan,
  type PruneStats,
  planPrune,
} from './prune-plan.js';

export interface PruneOptions {
  /** Plan and report; change nothing. */
  dryRun?: boolean;
  /** Unused space tolerated after prune (default 5%, restic's). */
  maxUnused?: MaxUnused;
  reporter?: Reporter;
  /** Checked between phases; once deletion starts, prune finishes its repack (it is ordered to be safe). */
  signal?: AbortSignal;
  /** The caller already holds an exclusive lock (e.g. `forget --prune`, or the agent). */
  locked?: boolean;
  /** Lock owner shown to others, e.g. "mailark prune". */
  lockOwner?: string;
}

export interface PruneResult {
  dryRun: boolean;
  snapshots: number;
  checkpoints: number;
  stats: PruneStats;
  /** Pack ids by fate (planned, or done when not a dry run). */
  deletedPacks: string[];
  unindexedPacks: string[];
  repackedPacks: string[];
  newPacks: string[];
  /** Store bytes of all packs before and after. */
  packBytesBefore: number;
  packBytesAfter: number;
  durationMs: number;
}

export async function pruneRepository(repo: Repository, opts: PruneOptions = {}): Promise<PruneResult> {
  const reporter = opts.reporter ?? silentReporter;
  const started = Date.now();
  const lock = opts.locked ? undefined : await repo.lock('exclusive', opts.lockOwner ?? 'mailark prune');
  try {
    // A repository opened with its index deferred (forget) loads it now: prune plans from all of it.
    await repo.whenIndexed();
    await repo.flush();
    const { used, snapshots, checkpoints } = await collectUsedBlobs(repo, reporter, opts.signal);
    const packs = await repo.listPacks();
    const plan = planPrune({
      entries: repo.indexEntries(),
      packs,
      used,
      maxUnused: opts.maxUnused ?? DEFAULT_MAX_UNUSED,
    });
    reportPlan(reporter, plan);
    const result: PruneResult = {
      dryRun: opts.dryRun === true,
      snapshots,
      checkpoints,
      stats: plan.stats,
      deletedPacks: [...plan.deletePacks, ...plan.missingPacks],
      unindexedPacks: plan.unindexedPacks,
      repackedPacks: plan.repackPacks,
      newPacks: [],
      packBytesBefore: plan.stats.packBytes,
      packBytesAfter:
        plan.stats.packBytes - plan.stats.deleteBytes - plan.stats.repackBytes + plan.stats.repackCopyBytes,
      durationMs: 0,
    };
    if (opts.dryRun) return { ...result, durationMs: Date.now() - started };
    throwIfAborted(opts.signal);

    await execute(repo, plan, result, reporter);

    // Last alarm before anyone relies on the result: every used blob must still be indexed.
    const lost = [...used].filter((id) => !repo.hasBlob(id));
    if (lost.length > 0)
      throw new InternalError(`prune lost ${lost.length} referenced blob(s), e.g. ${lost[0]}`);
    result.packBytesAfter = (await repo.listPacks()).reduce((s, p) => s + p.size, 0);
    result.durationMs = Date.now() - started;
    // debug, as the plan: the result carries the same; front ends print it (CLI) or log it (agent).
    reporter.log('debug', 'prune done', {
      deletedPacks: result.deletedPacks.length + result.unindexedPacks.length,
      repackedPacks: result.repackedPacks.length,
      newPacks: result.newPacks.length,
      packBytesBefore: result.packBytesBefore,
      packBytesAfter: result.packBytesAfter,
      durationMs: result.durationMs,
    });
    return result;
  } finally {
    await lock?.release();
  }
}

/** Every blob referenced by a snapshot or a checkpoint. */
async function collectUsedBlobs(
  repo: Repository,
  reporter: Reporter,
  signal: AbortSignal | undefined,
): Promise<{ used: Set<BlobId>; snapshots: number; checkpoints: number }> {
  const into = { trees: new Set<BlobId>(), data: new Set<BlobId>() };
  const snapshots = await repo.listSnapshots();
  const checkpointIds = await repo.listObjects('checkpoints');
  const total = snapshots.length + checkpointIds.length;
  let done = 0;
  for (const { snapshot } of snapshots) {
    throwIfAborted(signal);
    await collectReferencedBlobs(repo, snapshot, into);
    reporter.progress({ phase: 'prune', done: ++done, total, current: 'finding used data' });
  }
  for (const id of checkpointIds) {
    throwIfAborted(signal);
    let cp: Checkpoint;
    try {
      cp = await repo.loadObject<Checkpoint>('checkpoints', id);
    } catch (err) {
      if (!isMailarkError(err, 'CORRUPT')) throw err;
      // Its references are unknown: deleting data now would be a guess. Backup already skips it.
      throw new MailarkError('CORRUPT', `backup checkpoint checkpoints/${id} is damaged: ${errorText(err)}`, {
        cause: err,
        hint: `${damagedCheckpointHint(id)}; then run prune again`,
        details: { object: `checkpoints/${id}` },
      });
    }
    if (cp.v !== 1 || !Array.isArray(cp.mailboxes)) {
      // A checkpoint we cannot read may reference anything: deleting data would be a guess.
      throw new MailarkError('FORMAT_UNSUPPORTED', `checkpoint ${id} was written by a newer mailark`, {
        hint: 'prune with the mailark version that wrote it, or upgrade mailark',
      });
    }
    for (const m of cp.mailboxes) await collectMailboxBlobs(repo, m.tree, into);
    reporter.progress({ phase: 'prune', done: ++done, total, current: 'finding used data' });
  }
  const used = into.trees;
  for (const id of into.data) used.add(id);
  return { used, snapshots: snapshots.length, checkpoints: checkpointIds.length };
}

async function execute(
  repo: Repository,
  plan: PrunePlan,
  result: PruneResult,
  reporter: Reporter,
): Promise<void> {
  // One repack call for every pack that goes: a blob whose kept copy is in a pack of the set is then
  // copied, never mistaken for "still present elsewhere" in a pack that is about to be deleted too.
  const goes = [...plan.repackPacks, ...plan.deletePacks, ...plan.missingPacks];
  if (goes.length > 0) {
    reporter.progress({ phase: 'prune', done: 0, total: goes.length, current: 'repacking' });
    const r = await repo.repack(goes, (id) => plan.repackBlobs.has(id));
    result.newPacks = r.newPacks;
  }
  // Packs no index lists: nothing can reference them (an index is written before any snapshot).
  for (const [i, id] of plan.unindexedPacks.entries()) {
    await repo.store.delete(packKey(id));
    reporter.progress({
      phase: 'prune',
      done: i + 1,
      total: plan.unindexedPacks.length,
      current: 'deleting unindexed packs',
    });
  }
}

function reportPlan(reporter: Reporter, plan: PrunePlan): void {
  const s = plan.stats;
  reporter.log('debug', 'prune plan', {
    packs: s.packs,
    usedBlobs: s.usedBlobs,
    usedBytes: s.usedBytes,
    unusedBlobs: s.unusedBlobs,
    unusedBytes: s.unusedBytes,
    deletePacks: plan.deletePacks.length + plan.unindexedPacks.length + plan.missingPacks.length,
    repackPacks: plan.repackPacks.length,
    repackCopyBytes: s.repackCopyBytes,
    unusedBytesAfter: s.unusedBytesAfter,
  });
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw new MailarkError('INTERRUPTED', 'prune interrupted before it changed anything', {
      hint: 'run "mailark prune" again',
    });
  }
}
