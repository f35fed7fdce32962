/**
 * What the agent knows about each tenant: its last run of each job, the figures of its last backup,
 * running totals since the agent started, and what the repository itself says (newest complete
 * snapshot, snapshot count, size). health.ts and metrics.ts read it; the agent updates it after every
 * job and every repository refresh. Times are epoch milliseconds.
 *
 * Rule: state that must survive a restart comes from the repository (newest complete snapshot,
 * snapshot count, size), never from a local file; only counters since start live here alone.
 */
import type { JobKind } from './agent-config.js';

/** ok: done (a backup with a complete snapshot); partial: snapshot saved, some mailboxes failed. */
export type Outcome = 'ok' | 'partial' | 'failed' | 'interrupted';

export interface JobRecord {
  kind: JobKind;
  startedAt: number;
  endedAt: number;
  outcome: Outcome;
  error?: { code: string; message: string };
}

export interface BackupFigures {
  /** Messages fetched and stored by the run (new, or re-read after a UIDVALIDITY change). */
  messages: number;
  /** Bytes fetched from IMAP, and added to the repository after dedup and compression. */
  bytes: number;
  storedBytes: number;
  failedMailboxes: number;
  snapshotId?: string;
}

export interface TenantStatus {
  tenant: string;
  lastRun: Partial<Record<JobKind, JobRecord>>;
  /** End of the last backup (or light pass) that saved a complete snapshot. */
  lastSuccess?: number;
  lastBackup?: BackupFigures & { outcome: Outcome };
  /** From the repository: time of the newest complete snapshot of this tenant. */
  newestComplete?: number;
  snapshots?: number;
  /** Messages in the newest snapshot. */
  snapshotMessages?: number;
  repositoryBytes?: number;
  /** Set when the last repository refresh failed (cleared by the next good one). */
  repositoryError?: { code: string; message: string };
  totals: { messages: number; bytes: number; storedBytes: number; errors: Partial<Record<JobKind, number>> };
}

export function newTenantStatus(tenant: string): TenantStatus {
  return { tenant, lastRun: {}, totals: { messages: 0, bytes: 0, storedBytes: 0, errors: {} } };
}

/** Records a finished job (and, for backups, its figures). */
export function recordJob(status: TenantStatus, run: JobRecord, figures?: BackupFigures): void {
  status.lastRun[run.kind] = run;
  if (run.outcome === 'failed' || run.outcome === 'partial') {
    status.totals.errors[run.kind] = (status.totals.errors[run.kind] ?? 0) + 1;
  }
  if (figures !== undefined) {
    status.lastBackup = { ...figures, outcome: run.outcome };
    status.totals.messages += figures.messages;
    status.totals.bytes += figures.bytes;
    status.totals.storedBytes += figures.storedBytes;
  }
  if ((run.kind === 'backup' || run.kind === 'light') && run.outcome === 'ok')
    status.lastSuccess = run.endedAt;
}

/** The most recent of the backup and light runs: together they are "the last backup". */
export function lastBackupRun(status: TenantStatus): JobRecord | undefined {
  const { backup, light } = status.lastRun;
  if (backup === undefined) return light;
  if (light === undefined) return backup;
  return light.endedAt > backup.endedAt ? light : backup;
}
