/**
 * Cron schedules (croner) that ask the job queue for work. The scheduler decides only WHEN; the queue
 * decides whether a job may start (per-tenant and per-repository exclusivity, parallel limit) and
 * coalesces a job that is still queued or running. Patterns have 5 fields, or 6 with seconds first
 * (`*\/5 * * * * *`: every five seconds, for tests); they run in the configured time zone, so
 * `0 2 * * *` is 02:00 local time across DST changes.
 */
import { Cron } from 'croner';
import type { JobKind, TenantConfig } from './agent-config.js';

export interface ScheduleEntry {
  tenant: string;
  kind: JobKind;
  pattern: string;
}

/** Every (tenant, job) with a schedule, in config order. */
export function scheduleEntries(tenants: readonly TenantConfig[]): ScheduleEntry[] {
  const out: ScheduleEntry[] = [];
  for (const t of tenants) {
    for (const kind of ['backup', 'light', 'check', 'prune'] as const) {
      const pattern = t.schedule[kind];
      if (pattern !== null) out.push({ tenant: t.name, kind, pattern });
    }
  }
  return out;
}

export class Scheduler {
  private crons: Array<{ entry: ScheduleEntry; cron: Cron }> = [];

  constructor(
    private readonly entries: readonly ScheduleEntry[],
    private readonly timeZone: string,
    private readonly fire: (entry: ScheduleEntry) => void,
  ) {}

  start(): void {
    if (this.crons.length > 0) return;
    this.crons = this.entries.map((entry) => ({
      entry,
      cron: new Cron(entry.pattern, { timezone: this.timeZone, catch: true }, () => this.fire(entry)),
    }));
  }

  stop(): void {
    for (const { cron } of this.crons) cron.stop();
    this.crons = [];
  }

  /** When each entry fires next (without starting anything). */
  nextRuns(from?: Date): Array<ScheduleEntry & { next: Date | null }> {
    return this.entries.map((entry) => {
      const cron = new Cron(entry.pattern, { timezone: this.timeZone, paused: true });
      const next = cron.nextRun(from);
      cron.stop();
      return { ...entry, next };
    });
  }
}
