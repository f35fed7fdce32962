/**
 * One job of one tenant, done by core: the agent holds no backup or retention logic of its own.
 *
 *   backup  runBackup (shared lock), then forgetSnapshots with the tenant's policy when it has one
 *   light   runBackup tagged "light" (the same incremental run: an unchanged folder costs one STATUS)
 *   check   checkRepository with a random share of pack data read (shared lock; stops between packs
 *           when the agent stops)
 *   prune   pruneRepository (exclusive lock: refused while anything else holds the repository)
 *
 * Before each job, stale locks are removed: a lock is stale when it was taken on this host by a
 * process that is gone (an agent killed by SIGKILL or a power cut) or has not been refreshed for
 * 30 minutes (core's lock rules), so a dead agent never blocks the next night. After each job the
 * repository is read again for the facts health and metrics report (snapshots, newest complete
 * snapshot, size). Index and snapshot objects are read through the local cache when the agent has a
 * cache directory (MAILARK_CACHE_DIR, as the systemd unit sets), except by check, which judges the
 * store's own copies.
 */
import {
  type BackupResult,
  checkRepository,
  errorText,
  forgetSnapshots,
  isMailarkError,
  MailarkError,
  type MailboxFailure,
  openStore,
  parseImapEndpoint,
  parseMaxUnused,
  pruneRepository,
  type Reporter,
  Repository,
  runBackup,
} from '@mailark/core';
import type { JobKind, TenantConfig } from './agent-config.js';
import { readSecretFile, readTenantUsers } from './tenant-inputs.js';
import type { BackupFigures, Outcome } from './tenant-status.js';

export interface JobEnv {
  reporter: Reporter;
  signal: AbortSignal;
  /** Zone of retention's calendar buckets. */
  timeZone: string;
  toolVersion: string;
  /** Base directory of the local cache (core's resolveCacheDir); undefined: no cache. */
  cacheDir?: string | undefined;
}

export interface JobReport {
  kind: JobKind;
  outcome: Outcome;
  error?: { code: string; message: string };
  figures?: BackupFigures;
  failures?: MailboxFailure[];
  snapshotId?: string;
  forget?: { policy: string; removed: number; kept: number };
  /** What a prune job did (core logs its plan at debug level only). */
  prune?: {
    deletedPacks: number;
    repackedPacks: number;
    packBytesBefore: number;
    packBytesAfter: number;
    unusedBytesAfter: number;
  };
}

export interface RepositoryFacts {
  snapshots: number;
  newestComplete?: number;
  snapshotMessages?: number;
  repositoryBytes: number;
}

/**
 * Opens the tenant's repository with its password file (through the cache in `cacheDir`, if any); the
 * caller closes it. `deferIndex` (backups): the index loads when first needed (see Repository.open).
 */
export async function openTenantRepository(
  t: TenantConfig,
  reporter: Reporter,
  cacheDir?: string,
  deferIndex = false,
): Promise<Repository> {
  const password = await readSecretFile(t.passwordFile, 'repository password');
  const store = await openStore(t.repository, {
    ...(t.s3.endpoint === undefined ? {} : { s3Endpoint: t.s3.endpoint }),
    ...(t.s3.region === undefined ? {} : { s3Region: t.s3.region }),
    ...(t.s3.pathStyle === undefined ? {} : { s3PathStyle: t.s3.pathStyle }),
  });
  try {
    return await Repository.open(store, password, {
      reporter,
      ...(cacheDir === undefined ? {} : { cacheDir }),
      ...(deferIndex ? { index: 'deferred' as const } : {}),
    });
  } catch (err) {
    await store.close();
    throw err;
  }
}

/** Runs one job to its end; failures are reported in the result, never thrown. */
export async function runTenantJob(t: TenantConfig, kind: JobKind, env: JobEnv): Promise<JobReport> {
  let repo: Repository | undefined;
  try {
    const isBackup = kind === 'backup' || kind === 'light';
    repo = await openTenantRepository(t, env.reporter, kind === 'check' ? undefined : env.cacheDir, isBackup);
    const stale = await repo.removeStaleLocks();
    if (stale.length > 0)
      env.reporter.log('warn', `removed ${stale.length} stale lock(s) of dead processes`, { locks: stale });
    if (isBackup) return await backup(repo, t, kind, env);
    if (kind === 'check') return await check(repo, t, env);
    const p = await pruneRepository(repo, {
      maxUnused: parseMaxUnused(t.pruneMaxUnused),
      reporter: env.reporter,
      signal: env.signal,
      lockOwner: 'mailark-agent prune',
    });
    return {
      kind,
      outcome: 'ok',
      prune: {
        deletedPacks: p.deletedPacks.length + p.unindexedPacks.length,
        repackedPacks: p.repackedPacks.length,
        packBytesBefore: p.packBytesBefore,
        packBytesAfter: p.packBytesAfter,
        unusedBytesAfter: p.stats.unusedBytesAfter,
      },
    };
  } catch (err) {
    return { kind, ...failure(err) };
  } finally {
    await repo?.close().catch(() => {});
    await repo?.store.close().catch(() => {});
  }
}

async function backup(
  repo: Repository,
  t: TenantConfig,
  kind: 'backup' | 'light',
  env: JobEnv,
): Promise<JobReport> {
  const adminPassword =
    t.imap.adminPasswordFile === undefined
      ? undefined
      : await readSecretFile(t.imap.adminPasswordFile, 'IMAP admin password');
  const endpoint = parseImapEndpoint(t.imap.url, {
    auth: t.imap.auth,
    ...(t.imap.adminUser === undefined ? {} : { adminUser: t.imap.adminUser }),
    ...(adminPassword === undefined ? {} : { password: adminPassword }),
    ...(t.imap.separator === undefined ? {} : { separator: t.imap.separator }),
    ...(t.imap.tls === undefined ? {} : { tls: t.imap.tls }),
    ...(t.imap.insecure === undefined ? {} : { insecure: t.imap.insecure }),
  });
  const result: BackupResult = await runBackup(repo, {
    endpoint,
    users: await readTenantUsers(t),
    tenant: t.name,
    concurrency: t.concurrency,
    tags: kind === 'light' ? [...t.tags, 'light'] : t.tags,
    reporter: env.reporter,
    signal: env.signal,
    toolVersion: env.toolVersion,
  });
  for (const m of result.mailboxes) {
    env.reporter.log(m.state === 'ok' ? 'info' : 'error', `mailbox ${m.state === 'ok' ? 'done' : 'failed'}`, {
      mailbox: m.user,
      durationMs: m.durationMs,
      folders: m.folders,
      messages: m.messages,
      newMessages: m.newMessages,
      fetchedBytes: m.fetchedBytes,
      storedBytes: m.storedBytes,
      changedFlags: m.changedFlags,
      expunged: m.expunged,
      ...(m.error === undefined ? {} : { error: m.error }),
    });
  }
  const failed = result.mailboxes.filter((m) => m.state === 'failed');
  const figures: BackupFigures = {
    messages: sum(result.mailboxes, (m) => m.newMessages),
    bytes: sum(result.mailboxes, (m) => m.fetchedBytes),
    storedBytes: sum(result.mailboxes, (m) => m.storedBytes),
    failedMailboxes: failed.length,
    ...(result.snapshotId === undefined ? {} : { snapshotId: result.snapshotId }),
  };
  const failures = failed.map((m) => ({
    user: m.user,
    code: m.error?.code ?? 'INTERNAL',
    message: m.error?.message ?? '',
  }));
  // Every mailbox failing is a failure even when a snapshot of carried-forward (stale) refs was saved.
  const outcome: Outcome =
    result.status === 'complete'
      ? 'ok'
      : result.status === 'partial' && failed.length < result.mailboxes.length
        ? 'partial'
        : 'failed';
  const report: JobReport = {
    kind,
    outcome,
    figures,
    failures,
    ...(result.snapshotId === undefined ? {} : { snapshotId: result.snapshotId }),
  };
  if (outcome === 'failed') {
    const first = failures[0];
    report.error = {
      code: first?.code ?? 'INTERNAL',
      message:
        failed.length === 1 || first === undefined
          ? (first?.message ?? 'no mailbox could be backed up')
          : `all ${failed.length} mailboxes failed; first: ${first.user}: ${first.message}`,
    };
  }
  if (
    kind === 'backup' &&
    t.retention !== undefined &&
    result.snapshotId !== undefined &&
    !env.signal.aborted
  ) {
    try {
      const f = await forgetSnapshots(repo, {
        policy: t.retention,
        tenant: t.name,
        timeZone: env.timeZone,
        reporter: env.reporter,
        signal: env.signal,
        lockOwner: 'mailark-agent forget',
      });
      report.forget = { policy: f.policy, removed: f.removed.length, kept: f.kept };
    } catch (err) {
      // Someone else (a restore, a check from the CLI) holds the repository: retention waits a night.
      if (isMailarkError(err, 'LOCKED')) env.reporter.log('warn', `retention skipped: ${err.message}`);
      else if (isMailarkError(err, 'INTERRUPTED'))
        env.reporter.log('warn', `retention interrupted: ${err.message}`);
      else {
        // The snapshot is saved, but retention is broken: that needs a human, so the job fails.
        const f = failure(err);
        report.outcome = 'failed';
        report.error = {
          code: f.error.code,
          message: `snapshot saved, but retention (forget) failed: ${f.error.message}`,
        };
      }
    }
  }
  return report;
}

async function check(repo: Repository, t: TenantConfig, env: JobEnv): Promise<JobReport> {
  const lock = await repo.lock('shared', 'mailark-agent check');
  try {
    const report = await checkRepository(repo, {
      reporter: env.reporter,
      // Stops between packs on shutdown: a long read-data share must not outlast the grace period.
      signal: env.signal,
      ...(t.checkReadDataSubset > 0 ? { readDataSubset: t.checkReadDataSubset } : {}),
    });
    for (const w of report.warnings) env.reporter.log('warn', `check: ${w.message}`, { object: w.object });
    if (report.ok) return { kind: 'check', outcome: 'ok' };
    for (const e of report.errors) env.reporter.log('error', `check: ${e.message}`, { object: e.object });
    const first = report.errors[0];
    return {
      kind: 'check',
      outcome: 'failed',
      error: {
        code: 'CORRUPT',
        message: `${report.errors.length} error(s), first: ${first?.object === undefined ? '' : `${first.object}: `}${first?.message ?? ''}`,
      },
    };
  } finally {
    await lock.release();
  }
}

/** What the repository says about the tenant now. */
export async function readRepositoryFacts(
  t: TenantConfig,
  reporter: Reporter,
  cacheDir?: string,
): Promise<RepositoryFacts> {
  const repo = await openTenantRepository(t, reporter, cacheDir);
  try {
    const mine = (await repo.listSnapshots()).filter((s) => s.snapshot.tenant === t.name);
    const newest = mine.at(-1)?.snapshot;
    const complete = mine.filter((s) => s.snapshot.status === 'complete').at(-1)?.snapshot;
    let bytes = 0;
    for await (const o of repo.store.list('')) bytes += o.size;
    return {
      snapshots: mine.length,
      repositoryBytes: bytes,
      ...(complete === undefined ? {} : { newestComplete: Date.parse(complete.time) }),
      ...(newest === undefined ? {} : { snapshotMessages: newest.stats.messages }),
    };
  } finally {
    await repo.close().catch(() => {});
    await repo.store.close().catch(() => {});
  }
}

function failure(err: unknown): { outcome: Outcome; error: { code: string; message: string } } {
  if (isMailarkError(err, 'INTERRUPTED'))
    return { outcome: 'interrupted', error: { code: 'INTERRUPTED', message: err.message } };
  const code = err instanceof MailarkError ? err.code : 'INTERNAL';
  return { outcome: 'failed', error: { code, message: errorText(err) } };
}

function sum<T>(list: readonly T[], f: (x: T) => number): number {
  return list.reduce((n, x) => n + f(x), 0);
}
