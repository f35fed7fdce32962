/**
 * forget: apply a retention policy and delete the snapshot objects it does not keep. Only the
 * snapshot records go; the data they referenced stays until `prune`.
 *
 * Locking: as restic, forget takes an EXCLUSIVE lock (a dry run a shared one). Deleting snapshot
 * records under a running check or restore would make them report a snapshot that vanished under
 * them; a backup would be harmless but is excluded too, so the rule stays simple: forget and prune
 * refuse (LOCKED, naming the holder) while anything else holds the repository. The agent runs forget
 * right after a backup, in the same job slot, so it never meets its own backups.
 */
import { MailarkError } from '../errors.js';
import { type Reporter, silentReporter } from '../progress.js';
import type { Repository } from '../repo/repository.js';
import { applyRetentionPolicy, describePolicy, type RetentionGroup, type RetentionPolicy } from './policy.js';

export interface ForgetOptions {
  policy: RetentionPolicy;
  /** Only this tenant's snapshots (NOT_FOUND if it has none). */
  tenant?: string;
  /** Decide and report; delete nothing. */
  dryRun?: boolean;
  /** IANA zone of the calendar buckets (default UTC; front ends pass the operator's). */
  timeZone?: string;
  /** Clock, for keep-within's "newest not in the future" (default: now). */
  now?: Date;
  reporter?: Reporter;
  signal?: AbortSignal;
  /** The caller already holds a lock on the repository. */
  locked?: boolean;
  lockOwner?: string;
}

export interface ForgetResult {
  dryRun: boolean;
  policy: string;
  groups: RetentionGroup[];
  /** Ids of the snapshots removed (or that would be, with dryRun). */
  removed: string[];
  kept: number;
}

export async function forgetSnapshots(repo: Repository, opts: ForgetOptions): Promise<ForgetResult> {
  const reporter = opts.reporter ?? silentReporter;
  const mode = opts.dryRun ? 'shared' : 'exclusive';
  const lock = opts.locked ? undefined : await repo.lock(mode, opts.lockOwner ?? 'mailark forget');
  try {
    let snapshots = await repo.listSnapshots();
    if (opts.tenant !== undefined) {
      snapshots = snapshots.filter((s) => s.snapshot.tenant === opts.tenant);
      if (snapshots.length === 0) {
        throw new MailarkError('NOT_FOUND', `no snapshot of tenant ${opts.tenant} in ${repo.location}`, {
          hint: 'run "mailark snapshots" to see the tenants this repository holds',
        });
      }
    }
    const groups = applyRetentionPolicy(snapshots, opts.policy, {
      timeZone: opts.timeZone ?? 'UTC',
      now: opts.now ?? new Date(),
    });
    const doomed = groups.flatMap((g) => g.decisions.filter((d) => !d.keep));
    const result: ForgetResult = {
      dryRun: opts.dryRun === true,
      policy: describePolicy(opts.policy),
      groups,
      removed: doomed.map((d) => d.id),
      kept: groups.reduce((n, g) => n + g.decisions.filter((d) => d.keep).length, 0),
    };
    // debug: the result carries the same; front ends print it (the CLI) or log it (the agent).
    reporter.log('debug', `forget: ${result.policy}`, {
      kept: result.kept,
      remove: result.removed.length,
      dryRun: result.dryRun,
    });
    if (opts.dryRun) return result;
    for (const [i, d] of doomed.entries()) {
      if (opts.signal?.aborted) {
        throw new MailarkError(
          'INTERRUPTED',
          `forget interrupted after removing ${i} of ${doomed.length} snapshots`,
          {
            hint: 'run the same forget again: it removes the rest',
          },
        );
      }
      await repo.deleteSnapshot(d.id);
      reporter.progress({ phase: 'forget', done: i + 1, total: doomed.length, current: d.id.slice(0, 8) });
    }
    return result;
  } finally {
    await lock?.release();
  }
}
