/**
 * Backup checkpoints and the previous state a run starts from.
 *
 * A checkpoint (encrypted object `checkpoints/<id>`) records the mailbox trees a run has captured so
 * far, complete or half-done, so that a run killed at any point (SIGKILL, power loss) resumes without
 * re-downloading what it already stored. Rules it keeps:
 * - a checkpoint is written only after repo.flush(): every blob its trees reference is in a pack and
 *   an index object already, so it never points at data that a crash could lose;
 * - it is never a snapshot (nothing lists it as one) and never claims completeness: a half-done
 *   folder is stored without UIDNEXT/HIGHESTMODSEQ, so the next run diffs it rather than carrying it;
 * - it belongs to (tenant, parent snapshot): once a newer snapshot of the tenant exists it is stale and
 *   ignored, and the run whose snapshot supersedes it deletes it.
 */
import { errorText, isMailarkError } from '../errors.js';
import type { BlobId, MailboxRef, Snapshot } from '../mail/snapshot.js';
import { loadTenantTree, type TreeReader } from '../mail/snapshot-tree.js';
import { type Reporter, silentReporter } from '../progress.js';

export const CHECKPOINT_VERSION = 1;

export interface CheckpointMailbox {
  user: string;
  /** MailboxTree blob id. */
  tree: BlobId;
  /** true: the mailbox was captured whole; false: some folders are half-done or not visited yet. */
  complete: boolean;
  folders: number;
  messages: number;
  bytes: number;
  /** When this state was captured (ISO 8601). */
  capturedAt: string;
}

export interface Checkpoint {
  v: typeof CHECKPOINT_VERSION;
  kind: 'backup';
  tenant: string;
  /** The snapshot the run was incremental from (absent for a tenant's first run). */
  parent?: string;
  /** Start time of the run that wrote it. */
  runStarted: string;
  time: string;
  mailboxes: CheckpointMailbox[];
}

/** What the repository needs to hold checkpoints (Repository satisfies it). */
export interface CheckpointStore {
  flush(): Promise<void>;
  saveObject(kind: 'checkpoints', value: unknown): Promise<string>;
  loadObject<T>(kind: 'checkpoints', id: string): Promise<T>;
  listObjects(kind: 'checkpoints'): Promise<string[]>;
  deleteObject(kind: 'checkpoints', id: string): Promise<void>;
  listSnapshots(): Promise<Array<{ id: string; snapshot: Snapshot }>>;
}

/** One user's state to start from. */
export interface PreviousMailbox {
  /** The ref in the latest snapshot, if the user was in it. */
  snapshotRef?: MailboxRef;
  /** The newest checkpointed state of this user since that snapshot, if any. */
  checkpoint?: CheckpointMailbox;
}

export interface PreviousState {
  snapshotId?: string;
  snapshot?: Snapshot;
  mailboxes: Map<string, PreviousMailbox>;
  /** Checkpoint ids of this tenant to delete once a snapshot supersedes them (stale ones included). */
  checkpointIds: string[];
}

/** How to get rid of a damaged checkpoint (backup skips it; prune will not guess what it referenced). */
export function damagedCheckpointHint(id: string): string {
  return (
    `delete the object checkpoints/${id} from the repository (a local one: rm REPO/checkpoints/${id}; ` +
    'S3: delete that key under the repository prefix); the next backup fetches again what it held'
  );
}

/**
 * The latest snapshot of `tenant` plus every checkpoint written since it (newest state per user wins).
 * A damaged checkpoint (CORRUPT) is skipped with a warning naming it: it only saves re-downloads, so
 * ignoring it costs time, never data.
 */
export async function loadPreviousState(
  repo: CheckpointStore & TreeReader,
  tenant: string,
  reporter: Reporter = silentReporter,
): Promise<PreviousState> {
  const snaps = (await repo.listSnapshots()).filter((s) => s.snapshot.tenant === tenant);
  const latest = snaps.at(-1);
  const state: PreviousState = { mailboxes: new Map(), checkpointIds: [] };
  if (latest !== undefined) {
    state.snapshotId = latest.id;
    state.snapshot = latest.snapshot;
    for (const ref of (await loadTenantTree(repo, latest.snapshot)).mailboxes) {
      state.mailboxes.set(ref.user, { snapshotRef: ref });
    }
  }
  const checkpoints: Checkpoint[] = [];
  for (const id of await repo.listObjects('checkpoints')) {
    let cp: Checkpoint;
    try {
      cp = await repo.loadObject<Checkpoint>('checkpoints', id);
    } catch (err) {
      // Deleted by a concurrent run between list and load: nothing to resume from it.
      if (isMailarkError(err, 'OBJECT_NOT_FOUND') || isMailarkError(err, 'NOT_FOUND')) continue;
      if (isMailarkError(err, 'CORRUPT')) {
        reporter.log(
          'warn',
          `checkpoint checkpoints/${id} is damaged and was skipped (${errorText(err)}); ${damagedCheckpointHint(id)}`,
          { object: `checkpoints/${id}` },
        );
        continue;
      }
      throw err;
    }
    if (cp.v !== CHECKPOINT_VERSION || cp.kind !== 'backup' || cp.tenant !== tenant) continue;
    state.checkpointIds.push(id);
    if (cp.parent !== state.snapshotId) continue; // superseded by a newer snapshot
    if (latest !== undefined && cp.time <= latest.snapshot.time) continue;
    checkpoints.push(cp);
  }
  checkpoints.sort((a, b) => a.time.localeCompare(b.time));
  for (const cp of checkpoints) {
    for (const m of cp.mailboxes) {
      const prev = state.mailboxes.get(m.user) ?? {};
      if (prev.checkpoint === undefined || prev.checkpoint.capturedAt <= m.capturedAt) prev.checkpoint = m;
      state.mailboxes.set(m.user, prev);
    }
  }
  return state;
}

/**
 * Writes a run's checkpoints one at a time (each a new object holding every mailbox state this run
 * captured so far), deleting the run's previous checkpoint after the new one is stored. Checkpoints of
 * earlier killed runs stay until a snapshot supersedes them: loadPreviousState merges them all.
 */
export class CheckpointWriter {
  private readonly states = new Map<string, CheckpointMailbox>();
  private chain: Promise<void> = Promise.resolve();
  private lastId: string | undefined;
  private written = 0;

  constructor(
    private readonly repo: CheckpointStore,
    private readonly head: Pick<Checkpoint, 'tenant' | 'parent' | 'runStarted'>,
  ) {}

  /** Records a mailbox state and writes a checkpoint with it (after flushing the repository). */
  record(state: CheckpointMailbox): Promise<void> {
    this.states.set(state.user, state);
    return this.write();
  }

  /** Records a mailbox state for the next checkpoint, without writing one now. */
  note(state: CheckpointMailbox): void {
    this.states.set(state.user, state);
  }

  /** Writes a checkpoint with the states recorded so far (e.g. when interrupted). */
  write(): Promise<void> {
    const next = this.chain.then(async () => {
      if (this.states.size === 0) return;
      // The states as they are BEFORE the flush: one recorded during the flush may reference blobs
      // that this flush did not write, and goes into the next checkpoint instead.
      const mailboxes = [...this.states.values()].sort((a, b) =>
        a.user < b.user ? -1 : a.user > b.user ? 1 : 0,
      );
      await this.repo.flush();
      const cp: Checkpoint = {
        v: CHECKPOINT_VERSION,
        kind: 'backup',
        tenant: this.head.tenant,
        runStarted: this.head.runStarted,
        time: new Date().toISOString(),
        mailboxes,
      };
      if (this.head.parent !== undefined) cp.parent = this.head.parent;
      const id = await this.repo.saveObject('checkpoints', cp);
      const old = this.lastId;
      this.lastId = id;
      this.written++;
      if (old !== undefined) await this.repo.deleteObject('checkpoints', old);
    });
    // A failed write must not wedge later ones; the caller still sees this one's failure.
    this.chain = next.catch(() => {});
    return next;
  }

  /** Waits for pending writes; returns this run's last checkpoint id. */
  async settle(): Promise<string | undefined> {
    await this.chain;
    return this.lastId;
  }

  get count(): number {
    return this.written;
  }
}
