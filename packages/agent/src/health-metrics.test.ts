import { describe, expect, it } from 'vitest';
import { evaluateHealth } from './health.js';
import { parseMetrics, renderMetrics } from './metrics.js';
import { newTenantStatus, recordJob, type TenantStatus } from './tenant-status.js';

const H = 3_600_000;
const NOW = Date.parse('2024-05-10T12:00:00Z');
const opts = { now: NOW, startedAt: NOW - 48 * H, staleAfterMs: 26 * H };

function healthyTenant(name: string): TenantStatus {
  const t = newTenantStatus(name);
  recordJob(
    t,
    { kind: 'backup', startedAt: NOW - 10 * H, endedAt: NOW - 10 * H + 90_500, outcome: 'ok' },
    { messages: 120, bytes: 4_000_000, storedBytes: 1_500_000, failedMailboxes: 0 },
  );
  t.newestComplete = NOW - 10 * H;
  t.snapshots = 7;
  t.snapshotMessages = 5000;
  t.repositoryBytes = 123_456_789;
  return t;
}

describe('health', () => {
  it('is ok when every tenant has a recent complete snapshot and no failure', () => {
    expect(evaluateHealth([healthyTenant('a.test'), healthyTenant('b.test')], opts)).toEqual({
      status: 'ok',
      reasons: [],
    });
  });

  it('names each problem: failed, partial, stale, check failure, unreadable repository', () => {
    const failed = healthyTenant('failed.test');
    recordJob(failed, {
      kind: 'light',
      startedAt: NOW - H,
      endedAt: NOW - H + 1000,
      outcome: 'failed',
      error: { code: 'IMAP_AUTH', message: 'login refused for admin' },
    });
    const partial = healthyTenant('partial.test');
    recordJob(
      partial,
      { kind: 'backup', startedAt: NOW - H, endedAt: NOW - H + 1000, outcome: 'partial' },
      { messages: 1, bytes: 10, storedBytes: 10, failedMailboxes: 2 },
    );
    const stale = healthyTenant('stale.test');
    stale.newestComplete = NOW - 30 * H;
    const broken = healthyTenant('broken.test');
    recordJob(broken, {
      kind: 'check',
      startedAt: NOW - H,
      endedAt: NOW,
      outcome: 'failed',
      error: { code: 'CORRUPT', message: 'pack x' },
    });
    broken.repositoryError = { code: 'STORE_UNREACHABLE', message: 'connect ECONNREFUSED' };
    const h = evaluateHealth([failed, partial, stale, broken], opts);
    expect(h.status).toBe('degraded');
    expect(h.reasons).toEqual([
      'failed.test: last backup failed: IMAP_AUTH login refused for admin',
      'partial.test: last backup partial (2 mailboxes failed)',
      'stale.test: newest complete snapshot is 1d6h old (limit 1d2h)',
      'broken.test: last check failed: CORRUPT pack x',
      'broken.test: repository unreadable: STORE_UNREACHABLE connect ECONNREFUSED',
    ]);
  });

  it('a later successful backup clears an earlier failure; a fresh install is not stale before the limit', () => {
    const t = healthyTenant('a.test');
    recordJob(t, {
      kind: 'backup',
      startedAt: NOW - 5 * H,
      endedAt: NOW - 5 * H,
      outcome: 'failed',
      error: { code: 'X', message: 'y' },
    });
    recordJob(t, { kind: 'light', startedAt: NOW - H, endedAt: NOW - H, outcome: 'ok' });
    expect(evaluateHealth([t], opts).status).toBe('ok');
    const fresh = newTenantStatus('new.test');
    expect(evaluateHealth([fresh], { ...opts, startedAt: NOW - H }).status).toBe('ok');
    expect(evaluateHealth([fresh], opts).reasons).toEqual([
      'new.test: no complete snapshot (agent up for 2d, limit 1d2h)',
    ]);
  });
});

describe('metrics', () => {
  it('renders Prometheus text that parses back to the state', () => {
    const a = healthyTenant('a.test');
    const b = newTenantStatus('b"quote\\.test');
    recordJob(b, {
      kind: 'backup',
      startedAt: NOW - 2000,
      endedAt: NOW,
      outcome: 'failed',
      error: { code: 'IMAP_AUTH', message: 'no' },
    });
    const text = renderMetrics({
      startedAt: NOW - 48 * H,
      running: [{ tenant: 'a.test', kind: 'check' }],
      queued: 3,
      tenants: [a, b],
      nextRuns: [
        { tenant: 'a.test', kind: 'backup', next: new Date('2030-01-02T02:00:00Z') },
        { tenant: 'a.test', kind: 'check', next: null },
        { tenant: 'b"quote\\.test', kind: 'prune', next: new Date('2030-01-06T03:00:00.500Z') },
      ],
    });
    // Every family has HELP and TYPE lines before its samples.
    expect(text).toMatch(/# HELP mailark_agent_up .*\n# TYPE mailark_agent_up gauge\nmailark_agent_up 1\n/);
    expect(text).toContain('# TYPE mailark_tenant_backup_messages_total counter');
    const samples = parseMetrics(text);
    const value = (name: string, labels: Record<string, string> = {}) =>
      samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
        ?.value;
    expect(value('mailark_agent_running_jobs')).toBe(1);
    expect(value('mailark_agent_queued_jobs')).toBe(3);
    expect(value('mailark_tenant_job_running', { tenant: 'a.test', job: 'check' })).toBe(1);
    expect(value('mailark_tenant_job_running', { tenant: 'a.test', job: 'backup' })).toBe(0);
    expect(value('mailark_tenant_last_success_timestamp_seconds', { tenant: 'a.test' })).toBe(
      (NOW - 10 * H + 90_500) / 1000,
    );
    expect(value('mailark_tenant_last_run_duration_seconds', { tenant: 'a.test', job: 'backup' })).toBe(90.5);
    expect(value('mailark_tenant_backup_messages_total', { tenant: 'a.test' })).toBe(120);
    expect(value('mailark_tenant_backup_bytes_total', { tenant: 'a.test' })).toBe(4_000_000);
    expect(value('mailark_tenant_snapshots', { tenant: 'a.test' })).toBe(7);
    expect(value('mailark_tenant_repository_bytes', { tenant: 'a.test' })).toBe(123_456_789);
    expect(value('mailark_tenant_next_run_timestamp_seconds', { tenant: 'a.test', job: 'backup' })).toBe(
      Date.parse('2030-01-02T02:00:00Z') / 1000,
    );
    // A schedule that never fires again has no sample, not a made-up 0.
    expect(
      value('mailark_tenant_next_run_timestamp_seconds', { tenant: 'a.test', job: 'check' }),
    ).toBeUndefined();
    expect(
      value('mailark_tenant_next_run_timestamp_seconds', { tenant: 'b"quote\\.test', job: 'prune' }),
    ).toBe(Date.parse('2030-01-06T03:00:00.500Z') / 1000);
    // Label values are escaped and survive the round trip.
    expect(value('mailark_tenant_errors_total', { tenant: 'b"quote\\.test', job: 'backup' })).toBe(1);
    expect(value('mailark_tenant_last_run_success', { tenant: 'b"quote\\.test', job: 'backup' })).toBe(0);
    // Unknown values are absent, never a made-up 0.
    expect(
      value('mailark_tenant_last_success_timestamp_seconds', { tenant: 'b"quote\\.test' }),
    ).toBeUndefined();
    expect(value('mailark_tenant_snapshots', { tenant: 'b"quote\\.test' })).toBeUndefined();
  });
});
