/**
 * `/metrics` in the Prometheus text exposition format (version 0.0.4), rendered (PURE) from the
 * agent's state. Names follow Prometheus conventions: base units (seconds, bytes), `_total` for
 * counters (since agent start), `_timestamp_seconds` for points in time. A value the agent does not
 * know yet (e.g. no backup since start) is left out rather than reported as 0, so alerts such as
 * `time() - mailark_tenant_last_success_timestamp_seconds > 93600` never fire on a made-up zero.
 */
import type { JobKind } from './agent-config.js';
import type { TenantStatus } from './tenant-status.js';

export interface AgentMetricsState {
  startedAt: number;
  running: ReadonlyArray<{ tenant: string; kind: JobKind }>;
  queued: number;
  tenants: readonly TenantStatus[];
  /** When each scheduled job fires next (null: never again); absent while the agent stops. */
  nextRuns?: ReadonlyArray<{ tenant: string; kind: JobKind; next: Date | null }>;
}

type Labels = Record<string, string>;

interface Family {
  name: string;
  type: 'gauge' | 'counter';
  help: string;
  samples: Array<{ labels: Labels; value: number }>;
}

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export function renderMetrics(s: AgentMetricsState): string {
  const families: Family[] = [];
  const family = (name: string, type: Family['type'], help: string) => {
    const f: Family = { name, type, help, samples: [] };
    families.push(f);
    return (labels: Labels, value: number | undefined) => {
      if (value !== undefined && Number.isFinite(value)) f.samples.push({ labels, value });
    };
  };

  family('mailark_agent_up', 'gauge', '1 while the agent runs.')({}, 1);
  family('mailark_agent_start_time_seconds', 'gauge', 'When the agent started.')({}, s.startedAt / 1000);
  family('mailark_agent_running_jobs', 'gauge', 'Jobs running now.')({}, s.running.length);
  family('mailark_agent_queued_jobs', 'gauge', 'Jobs waiting for a slot.')({}, s.queued);

  const running = family(
    'mailark_tenant_job_running',
    'gauge',
    '1 while a job of this kind runs for the tenant.',
  );
  const lastSuccess = family(
    'mailark_tenant_last_success_timestamp_seconds',
    'gauge',
    'End of the last backup that saved a complete snapshot (since agent start).',
  );
  const newest = family(
    'mailark_tenant_last_complete_snapshot_timestamp_seconds',
    'gauge',
    'Start time of the newest complete snapshot in the repository.',
  );
  const duration = family(
    'mailark_tenant_last_run_duration_seconds',
    'gauge',
    'Duration of the last run of each job.',
  );
  const lastOk = family(
    'mailark_tenant_last_run_success',
    'gauge',
    '1 if the last run of the job succeeded, 0 if it failed, was partial or interrupted.',
  );
  const lastEnd = family(
    'mailark_tenant_last_run_timestamp_seconds',
    'gauge',
    'End of the last run of each job.',
  );
  const nextRun = family(
    'mailark_tenant_next_run_timestamp_seconds',
    'gauge',
    'When the schedule starts the job next (it may wait for a slot).',
  );
  const messages = family(
    'mailark_tenant_backup_messages_total',
    'counter',
    'Messages fetched and stored by backups.',
  );
  const bytes = family('mailark_tenant_backup_bytes_total', 'counter', 'Message bytes fetched by backups.');
  const stored = family(
    'mailark_tenant_backup_stored_bytes_total',
    'counter',
    'Bytes added to the repository by backups (after dedup and compression).',
  );
  const lastMessages = family(
    'mailark_tenant_last_backup_messages',
    'gauge',
    'Messages fetched by the last backup.',
  );
  const lastBytes = family(
    'mailark_tenant_last_backup_bytes',
    'gauge',
    'Message bytes fetched by the last backup.',
  );
  const failedMailboxes = family(
    'mailark_tenant_last_backup_failed_mailboxes',
    'gauge',
    'Mailboxes the last backup could not capture.',
  );
  const errors = family('mailark_tenant_errors_total', 'counter', 'Failed or partial runs, by job.');
  const snapshots = family('mailark_tenant_snapshots', 'gauge', 'Snapshots of the tenant in its repository.');
  const snapshotMessages = family(
    'mailark_tenant_snapshot_messages',
    'gauge',
    'Messages in the newest snapshot.',
  );
  const size = family(
    'mailark_tenant_repository_bytes',
    'gauge',
    'Bytes the repository occupies in its store.',
  );
  const readable = family(
    'mailark_tenant_repository_up',
    'gauge',
    '1 if the last repository refresh succeeded.',
  );

  for (const t of s.tenants) {
    const tenant = { tenant: t.tenant };
    for (const kind of ['backup', 'light', 'check', 'prune'] as const) {
      running(
        { ...tenant, job: kind },
        s.running.some((r) => r.tenant === t.tenant && r.kind === kind) ? 1 : 0,
      );
      const run = t.lastRun[kind];
      if (run === undefined) continue;
      duration({ ...tenant, job: kind }, (run.endedAt - run.startedAt) / 1000);
      lastOk({ ...tenant, job: kind }, run.outcome === 'ok' ? 1 : 0);
      lastEnd({ ...tenant, job: kind }, run.endedAt / 1000);
      errors({ ...tenant, job: kind }, t.totals.errors[kind] ?? 0);
    }
    for (const r of s.nextRuns ?? []) {
      if (r.tenant === t.tenant && r.next !== null)
        nextRun({ ...tenant, job: r.kind }, r.next.getTime() / 1000);
    }
    lastSuccess(tenant, t.lastSuccess === undefined ? undefined : t.lastSuccess / 1000);
    newest(tenant, t.newestComplete === undefined ? undefined : t.newestComplete / 1000);
    messages(tenant, t.totals.messages);
    bytes(tenant, t.totals.bytes);
    stored(tenant, t.totals.storedBytes);
    lastMessages(tenant, t.lastBackup?.messages);
    lastBytes(tenant, t.lastBackup?.bytes);
    failedMailboxes(tenant, t.lastBackup?.failedMailboxes);
    snapshots(tenant, t.snapshots);
    snapshotMessages(tenant, t.snapshotMessages);
    size(tenant, t.repositoryBytes);
    readable(tenant, t.repositoryError === undefined ? (t.snapshots === undefined ? undefined : 1) : 0);
  }

  const lines: string[] = [];
  for (const f of families) {
    if (f.samples.length === 0) continue;
    lines.push(`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`);
    for (const { labels, value } of f.samples)
      lines.push(`${f.name}${labelText(labels)} ${formatValue(value)}`);
  }
  return `${lines.join('\n')}\n`;
}

function labelText(labels: Labels): string {
  const entries = Object.entries(labels);
  if (entries.length === 0) return '';
  // Exposition format: backslash, double quote and line feed are escaped in label values.
  const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
  return `{${entries.map(([k, v]) => `${k}="${esc(v)}"`).join(',')}}`;
}

function formatValue(v: number): string {
  return Number.isInteger(v) ? String(v) : String(Number(v.toFixed(6)));
}

/** Parses exposition text back into samples (for tests and for `mailark-agent status`). */
export function parseMetrics(text: string): Array<{ name: string; labels: Labels; value: number }> {
  const out: Array<{ name: string; labels: Labels; value: number }> = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null) throw new Error(`unparseable metrics line: ${line}`);
    const labels: Labels = {};
    for (const lm of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[lm[1]!] = lm[2]!.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
    }
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}
