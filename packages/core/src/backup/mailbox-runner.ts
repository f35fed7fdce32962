/**
 * One mailbox of a backup run, start to end: load its previous state (checkpoint first, then snapshot),
 * run MailboxPass attempts over fresh connections, retry transient failures with exponential backoff
 * from where the last attempt got to, and checkpoint what it captured.
 *
 * Rules it keeps: authentication and identity failures are never retried (accounts get locked);
 * whatever an attempt stored is kept (as the next attempt's starting point, and in a checkpoint when
 * the mailbox fails or the run is interrupted); it returns a result for every mailbox and never throws.
 */
import { errorText, isMailarkError, MailarkError } from '../errors.js';
import type { MailboxRef, MailboxTree } from '../mail/snapshot.js';
import type { Reporter } from '../progress.js';
import type { Repository } from '../repo/repository.js';
import type { CheckpointMailbox, CheckpointWriter, PreviousMailbox } from './backup-checkpoint.js';
import { emptyStats, MailboxPass } from './backup-mailbox.js';
import type { BackupSource } from './backup-source.js';
import { openImapBackupSource } from './imap-backup-source.js';
import type { BackupUser, MailboxResult, RunBackupOptions } from './run-backup.js';

export const DEFAULT_CHECKPOINT_BYTES = 64 * 1024 * 1024;
/** A finished mailbox is checkpointed at least this often (and after checkpointBytes/8 fetched). */
const CHECKPOINT_INTERVAL_MS = 60_000;

/** Run-wide counters the progress line shows. */
export interface RunProgress {
  done: number;
  messages: number;
  bytes: number;
  /** Bytes written to the repository. */
  stored: number;
  /** Per mailbox: messages its latest attempt expects to fetch (a retry replaces, not adds). */
  expected: Map<string, number>;
}

/** Backs up mailboxes one call at a time (the run calls it concurrently for different users). */
export class MailboxRunner {
  /** Fetched bytes and time at the last checkpoint write. */
  private lastCheckpoint = { bytes: 0, at: Date.now() };
  /** Connections still logging out (see withSource). */
  private readonly closing = new Set<Promise<void>>();

  constructor(
    private readonly repo: Repository,
    private readonly opts: RunBackupOptions,
    private readonly reporter: Reporter,
    private readonly checkpoints: CheckpointWriter,
    private readonly progress: RunProgress,
    private readonly total: number,
  ) {}

  /** `opened`: this mailbox's session, already logging in (runBackup's early logins), for its first attempt. */
  async mailbox(
    u: BackupUser,
    prev: PreviousMailbox,
    opened?: Promise<BackupSource>,
  ): Promise<{ result: MailboxResult; ref?: MailboxRef }> {
    const t0 = Date.now();
    const dryRun = this.opts.dryRun ?? false;
    const attempts = Math.max(1, this.opts.retry?.attempts ?? 3);
    const baseDelay = this.opts.retry?.baseDelayMs ?? 2000;
    let pass: MailboxPass | undefined;
    let attempt = 0;
    const fail = (err: unknown): { result: MailboxResult } => {
      const code = errorCode(err);
      const hint = isMailarkError(err) ? err.hint : undefined;
      // Debug: the result carries the error to the front end, which shows it once with its hint.
      this.reporter.log('debug', `${u.user}: ${errorText(err)}`, { user: u.user, code });
      this.tick(u.user);
      return {
        result: {
          ...(pass?.stats ?? emptyStats()),
          user: u.user,
          state: 'failed',
          error: { code, message: errorText(err), ...(hint === undefined ? {} : { hint }) },
          durationMs: Date.now() - t0,
          attempts: attempt,
        },
      };
    };
    let start: MailboxTree | undefined;
    const alsoKnown: MailboxTree[] = [];
    const baseTree = prev.checkpoint?.tree ?? prev.snapshotRef?.tree;
    try {
      if (prev.checkpoint !== undefined) {
        try {
          start = await this.repo.loadTree<MailboxTree>(prev.checkpoint.tree, { cache: true });
        } catch (err) {
          // A checkpoint only saves re-downloads: with its tree damaged, start from the snapshot.
          if (!isMailarkError(err, 'CORRUPT') && !isMailarkError(err, 'NOT_FOUND')) throw err;
          this.reporter.log(
            'warn',
            `${u.user}: the checkpoint's tree ${prev.checkpoint.tree.slice(0, 8)} cannot be read (${errorText(err)}); ` +
              'starting from the last snapshot instead (what it held is fetched again)',
            { user: u.user },
          );
        }
      }
      if (prev.snapshotRef !== undefined) {
        const snapTree = await this.repo.loadTree<MailboxTree>(prev.snapshotRef.tree, { cache: true });
        if (start === undefined) start = snapTree;
        else alsoKnown.push(snapTree);
      }
    } catch (err) {
      if (opened !== undefined) this.closeLater(opened);
      return fail(err);
    }

    let fetchedEarlier = 0; // by earlier attempts of this mailbox (their messages count as done)
    for (;;) {
      attempt++;
      fetchedEarlier += pass?.stats.fetchedMessages ?? 0;
      pass = new MailboxPass({
        user: u.user,
        repo: this.repo,
        chunker: this.repo.config.chunker,
        prev: start,
        alsoKnown,
        dryRun,
        signal: this.opts.signal,
        partialEvery: this.opts.checkpointBytes ?? DEFAULT_CHECKPOINT_BYTES,
        onPartial: (tree) => this.recordPartial(u.user, tree),
        onMessage: (bytes, stored) => {
          this.progress.messages++;
          this.progress.bytes += bytes;
          this.progress.stored += stored;
          this.report(u.user);
        },
        onPlan: (expected) => {
          // A retry resumes: what earlier attempts fetched is no longer expected by this one.
          this.progress.expected.set(u.user, expected + fetchedEarlier);
          this.report(u.user);
        },
      });
      const source = opened ?? openSource(this.opts, this.reporter, u);
      opened = undefined; // a retry logs in afresh
      try {
        const tree = await this.withSource(source, (s) => (pass as MailboxPass).run(s));
        const ref = dryRun ? undefined : await this.finish(u.user, tree, baseTree);
        this.tick(u.user);
        const s = pass.stats;
        // Debug: the CLI's table and the agent's 'mailbox done' line report the result.
        this.reporter.log(
          'debug',
          `${u.user}: ${s.folders} folders, ${s.messages} messages; new ${s.newMessages}, flags ${s.changedFlags}, expunged ${s.expunged}, fetched ${s.fetchedBytes} B, stored ${s.storedBytes} B`,
          { user: u.user, ...s },
        );
        const result: MailboxResult = {
          ...s,
          user: u.user,
          state: 'ok',
          durationMs: Date.now() - t0,
          attempts: attempt,
        };
        return ref === undefined ? { result } : { result, ref };
      } catch (err) {
        const interrupted = this.opts.signal?.aborted === true;
        const retry = !interrupted && attempt < attempts && isTransient(err);
        if (!dryRun) {
          // Keep what this attempt stored: for the retry, and (checkpointed) for the next run.
          try {
            const partial = await pass.partialTree();
            if (retry) {
              if (start !== undefined) alsoKnown.push(start);
              start = partial;
            } else if (pass.stats.fetchedMessages > 0 || interrupted) {
              await this.recordPartial(u.user, partial);
            }
          } catch (inner) {
            this.reporter.log('warn', `${u.user}: could not keep partial progress: ${errorText(inner)}`);
          }
        }
        if (interrupted) return fail(new MailarkError('INTERRUPTED', `backup of ${u.user} interrupted`));
        if (!retry) return fail(err);
        const delay = baseDelay * 2 ** (attempt - 1);
        // The error itself is shown once, when the mailbox finally fails; this line only says why we wait.
        this.reporter.log(
          'info',
          `${u.user}: attempt ${attempt} of ${attempts} failed (${isMailarkError(err) ? err.code : errorText(err)}); retrying in ${Math.round(delay / 1000)} s`,
          { user: u.user, attempt, error: errorText(err) },
        );
        await sleep(delay, this.opts.signal);
      }
    }
  }

  private async withSource<T>(
    opening: Promise<BackupSource>,
    f: (s: BackupSource) => Promise<T>,
  ): Promise<T> {
    const source = await opening;
    try {
      return await f(source);
    } finally {
      this.closeLater(opening);
    }
  }

  /**
   * LOGOUT's round trip is off the mailbox's path: the next mailbox starts while it completes
   * (closed() waits for them all). Closing is bounded (the session gives up after 5 s).
   */
  private closeLater(opening: Promise<BackupSource>): void {
    const closing: Promise<void> = opening
      .then((source) => source.close())
      .catch(() => {})
      .finally(() => this.closing.delete(closing));
    this.closing.add(closing);
  }

  /** Resolves when every connection this runner opened is closed (LOGOUT answered or given up). */
  async closed(): Promise<void> {
    while (this.closing.size > 0) await Promise.all([...this.closing]);
  }

  /** Saves the finished tree; checkpoints it when it differs from where the run started. */
  private async finish(user: string, tree: MailboxTree, baseTree: string | undefined): Promise<MailboxRef> {
    const id = await this.repo.saveTree(tree, { cache: true });
    const ref: MailboxRef = {
      user,
      tree: id,
      folders: tree.folders.length,
      messages: tree.folders.reduce((n, f) => n + f.messages, 0),
      bytes: tree.folders.reduce((n, f) => n + f.bytes, 0),
      state: 'ok',
    };
    if (id !== baseTree) {
      const state = {
        user,
        tree: id,
        complete: true,
        folders: ref.folders,
        messages: ref.messages,
        bytes: ref.bytes,
        capturedAt: new Date().toISOString(),
      };
      // Each checkpoint costs a flush (small packs), an index object and the checkpoint: for a tenant
      // of many small mailboxes, only checkpoint once enough was fetched (or time passed) since the
      // last one. What is not written is cheap to fetch again; an interrupt writes it anyway.
      if (this.checkpointDue()) await this.checkpoint(state);
      else this.checkpoints.note(state);
    }
    return ref;
  }

  private checkpointDue(): boolean {
    const every = this.opts.checkpointBytes ?? DEFAULT_CHECKPOINT_BYTES;
    return (
      this.progress.bytes - this.lastCheckpoint.bytes >= every / 8 ||
      Date.now() - this.lastCheckpoint.at >= CHECKPOINT_INTERVAL_MS
    );
  }

  private checkpoint(state: CheckpointMailbox): Promise<void> {
    this.lastCheckpoint = { bytes: this.progress.bytes, at: Date.now() };
    return this.checkpoints.record(state);
  }

  private async recordPartial(user: string, tree: MailboxTree): Promise<void> {
    const id = await this.repo.saveTree(tree, { cache: true });
    await this.checkpoint({
      user,
      tree: id,
      complete: false,
      folders: tree.folders.length,
      messages: tree.folders.reduce((n, f) => n + f.messages, 0),
      bytes: tree.folders.reduce((n, f) => n + f.bytes, 0),
      capturedAt: new Date().toISOString(),
    });
  }

  private tick(user: string): void {
    this.progress.done++;
    this.report(user);
  }

  private report(current: string): void {
    this.reporter.progress({
      phase: 'backup',
      done: this.progress.done,
      total: this.total,
      messages: this.progress.messages,
      bytes: this.progress.bytes,
      storedBytes: this.progress.stored,
      totalMessages: [...this.progress.expected.values()].reduce((a, b) => a + b, 0),
      current,
    });
  }
}

/** Opens one mailbox's source: opts.openSource (tests), else an IMAP session on opts.endpoint. */
export async function openSource(
  opts: RunBackupOptions,
  reporter: Reporter,
  u: BackupUser,
): Promise<BackupSource> {
  if (opts.openSource !== undefined) return opts.openSource(u, opts.signal);
  // A per-user password means that user logs in as themself, whatever the tenant-wide form.
  const ep = u.password === undefined ? opts.endpoint : { ...opts.endpoint, auth: 'user' as const };
  return openImapBackupSource(ep, u, { signal: opts.signal, reporter });
}

function errorCode(err: unknown): string {
  return isMailarkError(err) ? err.code : 'INTERNAL';
}

/**
 * Worth another attempt: connection trouble, NO/BYE/throttling, store timeouts. Not: wrong
 * credentials, a session that is not the user, corruption, bugs.
 */
export function isTransient(err: unknown): boolean {
  if (isMailarkError(err)) {
    // The IMAP adapter marks what a retry may cure (BYE, [UNAVAILABLE], throttling, lost connection).
    if (err.details?.transient !== undefined) return err.details.transient === true;
    return err.code === 'IMAP_CONNECT' || err.code === 'STORE_UNREACHABLE';
  }
  return !(err instanceof TypeError || err instanceof RangeError || err instanceof ReferenceError);
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
