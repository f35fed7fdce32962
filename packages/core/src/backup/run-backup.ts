/**
 * runBackup: one incremental backup run of one tenant → one snapshot.
 *
 * Rules it keeps:
 * - previous state = the tenant's latest snapshot plus any checkpoint written since it, so a killed run
 *   resumes without re-downloading what it stored;
 * - mailboxes run in parallel (`concurrency`), each over one connection at a time; transient IMAP
 *   failures are retried with exponential backoff from where the attempt got to, authentication and
 *   identity failures are not;
 * - nothing is hidden: a mailbox that fails is named in `failures`, and its last good tree is carried as
 *   'stale' so a partial snapshot never drops a mailbox an earlier snapshot had; a snapshot is
 *   'complete' only if every requested mailbox was captured in this run;
 * - write order: packs → index → checkpoint/snapshot (the repository flushes before both); an
 *   interrupted run writes a checkpoint and no snapshot; checkpoints a snapshot supersedes are deleted;
 * - the first mailboxes (as many as `concurrency`) log in and list their folders while the repository
 *   is still opening, locking and loading the previous state (early-sources.ts; the CLI passes the
 *   repository as it opens, so key derivation and index load overlap the IMAP round trips); no
 *   mailbox is planned nor anything written before the repository is open, locked and read.
 */
import { hostname } from 'node:os';
import { errorText, MailarkError } from '../errors.js';
import type { ImapEndpoint } from '../imap/imap-endpoint.js';
import {
  type MailboxFailure,
  type MailboxRef,
  SNAPSHOT_VERSION,
  type Snapshot,
  type TenantTree,
} from '../mail/snapshot.js';
import { type Reporter, silentReporter } from '../progress.js';
import type { RepoLock } from '../repo/lock.js';
import type { Repository } from '../repo/repository.js';
import { CheckpointWriter, loadPreviousState, type PreviousMailbox } from './backup-checkpoint.js';
import type { MailboxStats } from './backup-mailbox.js';
import type { BackupSource } from './backup-source.js';
import { EarlySources } from './early-sources.js';
import { MailboxRunner } from './mailbox-runner.js';

export { isTransient } from './mailbox-runner.js';

export interface BackupUser {
  user: string;
  /** The user's own password (per-user login); otherwise the endpoint's admin login is used. */
  password?: string;
}

export interface RunBackupOptions {
  endpoint: ImapEndpoint;
  users: BackupUser[];
  tenant: string;
  /** Mailboxes backed up at once (default 4); each uses one connection. */
  concurrency?: number;
  tags?: string[];
  /** Plan and report; store nothing (no blobs, trees, checkpoints or snapshot). */
  dryRun?: boolean;
  reporter?: Reporter;
  signal?: AbortSignal;
  host?: string;
  toolVersion: string;
  /**
   * Bytes fetched in one mailbox between two checkpoints (default 64 MiB). A finished mailbox is
   * checkpointed when an eighth of this was fetched since the last checkpoint, or a minute passed.
   */
  checkpointBytes?: number;
  /** Attempts per mailbox (default 3) and the first backoff delay (default 2 s, doubling). */
  retry?: { attempts?: number; baseDelayMs?: number };
  /** Opens one mailbox's source; default: an IMAP session on `endpoint`. Tests inject fakes. */
  openSource?: (user: BackupUser, signal: AbortSignal | undefined) => Promise<BackupSource>;
}

export interface MailboxResult extends MailboxStats {
  user: string;
  state: 'ok' | 'failed';
  /** Why the mailbox failed; `hint` names the fix (from the MailarkError). */
  error?: { code: string; message: string; hint?: string };
  durationMs: number;
  attempts: number;
}

export interface BackupResult {
  snapshotId?: string;
  snapshot?: Snapshot;
  /** complete: every mailbox captured; partial: snapshot saved with failures; failed: nothing saved. */
  status: 'complete' | 'partial' | 'failed';
  mailboxes: MailboxResult[];
  /** Checkpoints this run wrote. */
  checkpoints: number;
  dryRun: boolean;
}

/**
 * Backs up `opts.users` into one snapshot of `repository`. The repository may still be opening (a
 * promise): the first mailboxes log in meanwhile; if it fails to open, they are logged out and its
 * error is thrown (a caller that does not await it first must handle its rejection itself).
 */
export async function runBackup(
  repository: Repository | Promise<Repository>,
  opts: RunBackupOptions,
): Promise<BackupResult> {
  const users = validateUsers(opts);
  const reporter = opts.reporter ?? silentReporter;
  const dryRun = opts.dryRun ?? false;
  const started = new Date();
  const early = new EarlySources(opts, reporter);
  early.open(users.slice(0, Math.max(1, opts.concurrency ?? 4)));
  let repo: Repository;
  let lock: RepoLock;
  try {
    repo = await repository;
    lock = await repo.lock('shared', 'mailark backup');
  } catch (err) {
    await early.closeUnused();
    throw err;
  }
  try {
    const prev = await loadPreviousState(repo, opts.tenant, reporter);
    const checkpoints = new CheckpointWriter(repo, {
      tenant: opts.tenant,
      runStarted: started.toISOString(),
      ...(prev.snapshotId === undefined ? {} : { parent: prev.snapshotId }),
    });
    const progress = { done: 0, messages: 0, bytes: 0, stored: 0, expected: new Map<string, number>() };
    reporter.log('info', `backup of ${opts.tenant}: ${users.length} mailbox(es)`, {
      tenant: opts.tenant,
      parent: prev.snapshotId,
      dryRun,
    });

    const run = new MailboxRunner(repo, opts, reporter, checkpoints, progress, users.length);
    const results = new Map<string, { result: MailboxResult; ref?: MailboxRef }>();
    await pool(users, opts.concurrency ?? 4, opts.signal, async (u) => {
      const r = await run.mailbox(u, prev.mailboxes.get(u.user) ?? {}, early.take(u.user));
      results.set(u.user, r);
    });
    await run.closed(); // every IMAP connection logged out (mailboxes do not wait for their LOGOUT)

    if (opts.signal?.aborted) {
      if (!dryRun) await checkpoints.write();
      throw new MailarkError('INTERRUPTED', `backup of ${opts.tenant} interrupted: no snapshot written`, {
        hint: 'run the backup again: it resumes from the checkpoint without re-downloading stored mail',
        details: { checkpoints: checkpoints.count },
      });
    }

    const mailboxes = users.map((u) => (results.get(u.user) as { result: MailboxResult }).result);
    const refs: MailboxRef[] = [];
    const failures: MailboxFailure[] = [];
    for (const u of users) {
      const r = results.get(u.user) as { result: MailboxResult; ref?: MailboxRef };
      if (r.ref !== undefined) refs.push(r.ref);
      if (r.result.state === 'failed') {
        failures.push({
          user: u.user,
          code: r.result.error?.code ?? 'INTERNAL',
          message: r.result.error?.message ?? '',
        });
        const stale = staleRef(u.user, prev.mailboxes.get(u.user), prev.snapshot?.time);
        if (stale !== undefined) refs.push(stale);
      }
    }
    refs.sort((a, b) => (a.user < b.user ? -1 : a.user > b.user ? 1 : 0));
    const status: BackupResult['status'] =
      failures.length === 0 ? 'complete' : refs.length === 0 ? 'failed' : 'partial';
    if (dryRun || status === 'failed') {
      await checkpoints.settle();
      return { status, mailboxes, checkpoints: checkpoints.count, dryRun };
    }

    const tenantTree: TenantTree = { v: SNAPSHOT_VERSION, mailboxes: refs };
    const ended = new Date();
    const ok = mailboxes.filter((m) => m.state === 'ok');
    const snapshot: Snapshot = {
      v: SNAPSHOT_VERSION,
      time: started.toISOString(),
      endTime: ended.toISOString(),
      host: opts.host ?? hostname(),
      toolVersion: opts.toolVersion,
      tenant: opts.tenant,
      tags: [...new Set(opts.tags ?? [])].sort(),
      tree: await repo.saveTree(tenantTree, { cache: true }),
      status: status === 'complete' ? 'complete' : 'partial',
      failures,
      stats: {
        mailboxes: refs.length,
        folders: refs.reduce((n, r) => n + r.folders, 0),
        messages: refs.reduce((n, r) => n + r.messages, 0),
        bytes: refs.reduce((n, r) => n + r.bytes, 0),
        durationMs: ended.getTime() - started.getTime(),
        fetchedMessages: ok.reduce((n, m) => n + m.fetchedMessages, 0),
        fetchedBytes: ok.reduce((n, m) => n + m.fetchedBytes, 0),
        newMessages: ok.reduce((n, m) => n + m.newMessages, 0),
        storedBytes: mailboxes.reduce((n, m) => n + m.storedBytes, 0),
      },
    };
    if (prev.snapshotId !== undefined) snapshot.parent = prev.snapshotId;
    await checkpoints.settle();
    const snapshotId = await repo.saveSnapshot(snapshot);
    // The snapshot now holds everything the checkpoints did: they are garbage from here on.
    const own = await checkpoints.settle();
    for (const id of new Set([...prev.checkpointIds, ...(own === undefined ? [] : [own])])) {
      await repo.deleteObject('checkpoints', id).catch((err: unknown) => {
        reporter.log('warn', `could not delete checkpoint ${id}: ${errorText(err)}`);
      });
    }
    // The tree cache keeps what the next run starts from: this snapshot's trees (and those it read).
    await repo.sweepTreeCache();
    // Debug: front ends report the snapshot themselves (the CLI's summary line, the agent's job log).
    reporter.log('debug', `snapshot ${snapshotId.slice(0, 8)} saved (${snapshot.status})`, {
      snapshot: snapshotId,
      status: snapshot.status,
      failures: failures.length,
    });
    return { snapshotId, snapshot, status, mailboxes, checkpoints: checkpoints.count, dryRun };
  } finally {
    // An interrupted or failed run may leave early logins its pool never reached.
    await early.closeUnused();
    await lock.release();
  }
}

/** The last good ref of a mailbox that failed in this run, marked stale. */
function staleRef(
  user: string,
  prev: PreviousMailbox | undefined,
  snapshotTime: string | undefined,
): MailboxRef | undefined {
  const cp = prev?.checkpoint;
  if (cp?.complete) {
    return {
      user,
      tree: cp.tree,
      folders: cp.folders,
      messages: cp.messages,
      bytes: cp.bytes,
      state: 'stale',
      staleFrom: cp.capturedAt,
    };
  }
  const ref = prev?.snapshotRef;
  if (ref === undefined) return undefined;
  const staleFrom = ref.state === 'stale' ? ref.staleFrom : snapshotTime;
  return { ...ref, state: 'stale', ...(staleFrom === undefined ? {} : { staleFrom }) };
}

function validateUsers(opts: RunBackupOptions): BackupUser[] {
  if (opts.tenant.trim() === '') {
    throw new MailarkError('USAGE', 'no tenant name given', {
      hint: 'pass --tenant NAME, e.g. --tenant example.com',
    });
  }
  if (opts.users.length === 0) {
    throw new MailarkError('USAGE', 'no mailboxes to back up', {
      hint: 'pass --users a@example.com,b@example.com or --users-file FILE',
    });
  }
  const seen = new Set<string>();
  for (const u of opts.users) {
    if (u.user.trim() === '' || seen.has(u.user)) {
      throw new MailarkError('USAGE', `mailbox ${JSON.stringify(u.user)} is empty or listed twice`, {
        hint: 'list each mailbox once',
      });
    }
    seen.add(u.user);
  }
  return [...opts.users];
}

/** Runs `work` over items with at most `limit` at once; stops taking new items once `signal` aborts. */
async function pool<T>(
  items: readonly T[],
  limit: number,
  signal: AbortSignal | undefined,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length && signal?.aborted !== true) {
      const item = items[next++] as T;
      await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}
