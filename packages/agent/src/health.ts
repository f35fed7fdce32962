/**
 * Health (PURE): is every tenant protected right now? `/healthz` answers 200 {"status":"ok"} or
 * 503 {"status":"degraded","reasons":[...]}; reasons are sentences an operator can act on.
 *
 * Degraded when, for some tenant: its last backup failed or was partial; its newest complete snapshot
 * is older than the stale threshold (default 26 h: a nightly schedule with slack); it has no complete
 * snapshot at all and the agent has been up longer than the threshold (a fresh install is not
 * degraded before its first night); its last check or prune failed; its repository cannot be read.
 */

import { lastBackupRun, type TenantStatus } from './tenant-status.js';
import { formatTimeSpan } from './time-span.js';

export interface Health {
  status: 'ok' | 'degraded';
  reasons: string[];
}

export interface HealthOptions {
  now: number;
  startedAt: number;
  staleAfterMs: number;
}

/** True when the tenant's newest complete snapshot is too old (or missing for too long). */
export function isStale(t: TenantStatus, o: HealthOptions): boolean {
  if (t.newestComplete !== undefined) return o.now - t.newestComplete > o.staleAfterMs;
  return o.now - o.startedAt > o.staleAfterMs;
}

export function staleReason(t: TenantStatus, o: HealthOptions): string {
  const limit = formatTimeSpan(o.staleAfterMs);
  return t.newestComplete === undefined
    ? `${t.tenant}: no complete snapshot (agent up for ${formatTimeSpan(o.now - o.startedAt)}, limit ${limit})`
    : `${t.tenant}: newest complete snapshot is ${formatTimeSpan(o.now - t.newestComplete)} old (limit ${limit})`;
}

export function evaluateHealth(tenants: readonly TenantStatus[], o: HealthOptions): Health {
  const reasons: string[] = [];
  for (const t of tenants) {
    const backup = lastBackupRun(t);
    if (backup?.outcome === 'failed') {
      reasons.push(
        `${t.tenant}: last backup failed: ${backup.error?.code ?? 'ERROR'} ${backup.error?.message ?? ''}`.trim(),
      );
    } else if (backup?.outcome === 'partial') {
      const n = t.lastBackup?.failedMailboxes ?? 0;
      reasons.push(`${t.tenant}: last backup partial (${n} mailbox${n === 1 ? '' : 'es'} failed)`);
    }
    if (isStale(t, o)) reasons.push(staleReason(t, o));
    for (const kind of ['check', 'prune'] as const) {
      const run = t.lastRun[kind];
      if (run?.outcome === 'failed') {
        reasons.push(
          `${t.tenant}: last ${kind} failed: ${run.error?.code ?? 'ERROR'} ${run.error?.message ?? ''}`.trim(),
        );
      }
    }
    if (t.repositoryError !== undefined) {
      reasons.push(
        `${t.tenant}: repository unreadable: ${t.repositoryError.code} ${t.repositoryError.message}`,
      );
    }
  }
  return { status: reasons.length === 0 ? 'ok' : 'degraded', reasons };
}
