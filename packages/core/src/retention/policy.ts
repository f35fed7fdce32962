/**
 * The retention policy: which snapshots `forget` keeps, and why. PURE: no I/O, no clock unless given.
 *
 * Semantics are restic's (internal/restic/snapshot_policy.go), per group (one group per tenant):
 * - snapshots are walked newest first;
 * - keep-last N keeps the N newest;
 * - keep-hourly/daily/weekly/monthly/yearly N: each period (hour, calendar day, ISO 8601 week, month,
 *   year, in the given time zone) is a bucket; the newest snapshot of each of the N most recent
 *   buckets that hold a snapshot is kept. When a class still has counts left at the oldest snapshot of
 *   the group, that oldest snapshot is kept too (restic 0.16+: longest history while counts remain).
 *   A count of -1 means "every bucket";
 * - keep-within D keeps every snapshot strictly newer than (newest snapshot time − D), D in calendar
 *   units (see retention-duration.ts); the newest is the newest not in the future when `now` is given;
 * - keep-tag keeps every snapshot that carries all tags of one of the given tag lists;
 * - an empty policy keeps everything ("policy is empty"): forgetting needs an explicit rule.
 *
 * Partial snapshots (some mailboxes failed; their refs carry the last good capture) count like any
 * other, as in restic: they are real restore points. Two rules, which only ever ADD kept snapshots and
 * never change anything for a group whose snapshots are all complete, stop a run of bad nights from
 * pushing complete captures out:
 * 1. when the snapshot a time bucket keeps is partial, the newest complete snapshot of that same bucket
 *    is kept too (no extra count used): "daily snapshot (newest complete of its day)";
 * 2. when the newest snapshot of a group is partial, the group's newest complete snapshot is kept
 *    ("newest complete snapshot"), however old.
 */
import { MailarkError } from '../errors.js';
import type { Snapshot } from '../mail/snapshot.js';
import {
  formatRetentionDuration,
  isZeroDuration,
  parseRetentionDuration,
  type RetentionDuration,
} from './retention-duration.js';
import { calendarFields, isoWeek, subtractCalendar } from './zoned-calendar.js';

export interface RetentionPolicy {
  /** Counts: a positive number of snapshots/buckets, 0 or absent for none, -1 for all. */
  last?: number;
  hourly?: number;
  daily?: number;
  weekly?: number;
  monthly?: number;
  yearly?: number;
  /** Keep everything within this duration of the newest snapshot, e.g. "2d", "1w3d", "1y". */
  within?: string;
  /** Keep snapshots that carry every tag of at least one of these lists. */
  tags?: string[][];
}

export interface PolicyOptions {
  /** IANA zone whose calendar defines hours, days, weeks, months, years. Default UTC. */
  timeZone?: string;
  /** Snapshots after this instant are ignored when finding the newest for keep-within (clock skew). */
  now?: Date;
}

export interface RetentionDecision {
  id: string;
  snapshot: Snapshot;
  keep: boolean;
  /** Why it is kept; empty when it is removed. */
  reasons: string[];
}

export interface RetentionGroup {
  tenant: string;
  /** Newest first. */
  decisions: RetentionDecision[];
}

type TimeClass = 'hourly' | 'daily' | 'weekly' | 'monthly' | 'yearly';
const CLASSES: readonly TimeClass[] = ['hourly', 'daily', 'weekly', 'monthly', 'yearly'];
const PERIOD: Record<TimeClass, string> = {
  hourly: 'hour',
  daily: 'day',
  weekly: 'week',
  monthly: 'month',
  yearly: 'year',
};

/** USAGE error for counts that are not whole numbers ≥ -1, or a malformed duration. */
export function validatePolicy(policy: RetentionPolicy): void {
  for (const key of ['last', ...CLASSES] as const) {
    const n = policy[key];
    if (n !== undefined && (!Number.isInteger(n) || n < -1)) {
      throw new MailarkError('USAGE', `keep-${key} must be a whole number (or -1 for all), got ${n}`, {
        hint: `e.g. --keep-${key} 7`,
      });
    }
  }
  if (policy.within !== undefined) parseRetentionDuration(policy.within);
  for (const list of policy.tags ?? []) {
    // An empty list (or tag) would match every snapshot and silently keep everything.
    if (list.length === 0 || list.some((t) => t.trim() === '')) {
      const what =
        list.length === 0 ? 'no tag name' : `an empty tag name in ${JSON.stringify(list.join(','))}`;
      throw new MailarkError('USAGE', `keep-tag with ${what}: it would keep every snapshot`, {
        hint: 'e.g. --keep-tag monthly, or --keep-tag before-migration,manual for both tags',
      });
    }
  }
}

export function isPolicyEmpty(policy: RetentionPolicy): boolean {
  const counts = (['last', ...CLASSES] as const).some((k) => (policy[k] ?? 0) !== 0);
  const within = policy.within !== undefined && !isZeroDuration(parseRetentionDuration(policy.within));
  return !counts && !within && (policy.tags ?? []).length === 0;
}

/** One line for logs and dry runs, e.g. "keep 7 daily, 4 weekly snapshots and all within 2d". */
export function describePolicy(policy: RetentionPolicy): string {
  if (isPolicyEmpty(policy)) return 'keep everything (empty policy)';
  const counts: string[] = [];
  for (const key of ['last', ...CLASSES] as const) {
    const n = policy[key] ?? 0;
    if (n !== 0) counts.push(`${n === -1 ? 'all' : n} ${key === 'last' ? 'latest' : key}`);
  }
  const one = counts.length === 1 && counts[0]!.startsWith('1 ');
  const parts = counts.length > 0 ? [`${counts.join(', ')} snapshot${one ? '' : 's'}`] : [];
  if ((policy.tags ?? []).length > 0) {
    parts.push(`all tagged ${policy.tags!.map((l) => l.join('+')).join(' or ')}`);
  }
  if (policy.within !== undefined) {
    parts.push(`all within ${formatRetentionDuration(parseRetentionDuration(policy.within))} of the newest`);
  }
  return `keep ${parts.join(' and ')}`;
}

/**
 * Applies `policy` to every tenant group of `snapshots`. Returns groups sorted by tenant, each with
 * a decision per snapshot, newest first.
 */
export function applyRetentionPolicy(
  snapshots: ReadonlyArray<{ id: string; snapshot: Snapshot }>,
  policy: RetentionPolicy,
  options: PolicyOptions = {},
): RetentionGroup[] {
  validatePolicy(policy);
  const byTenant = new Map<string, Array<{ id: string; snapshot: Snapshot }>>();
  for (const s of snapshots) {
    const list = byTenant.get(s.snapshot.tenant) ?? [];
    list.push(s);
    byTenant.set(s.snapshot.tenant, list);
  }
  return [...byTenant.keys()]
    .sort()
    .map((tenant) => ({ tenant, decisions: decideGroup(byTenant.get(tenant)!, policy, options) }));
}

function decideGroup(
  group: Array<{ id: string; snapshot: Snapshot }>,
  policy: RetentionPolicy,
  options: PolicyOptions,
): RetentionDecision[] {
  const timeZone = options.timeZone ?? 'UTC';
  const list = group
    .map((s) => ({ ...s, at: Date.parse(s.snapshot.time) }))
    .sort((a, b) => b.at - a.at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  if (isPolicyEmpty(policy)) {
    return list.map(({ id, snapshot }) => ({ id, snapshot, keep: true, reasons: ['policy is empty'] }));
  }

  const within = policy.within === undefined ? undefined : parseRetentionDuration(policy.within);
  const withinFrom = within === undefined ? undefined : withinThreshold(list, within, timeZone, options.now);
  const counts = {
    last: policy.last ?? 0,
    ...Object.fromEntries(CLASSES.map((c) => [c, policy[c] ?? 0])),
  } as Record<'last' | TimeClass, number>;
  const lastBucket = new Map<TimeClass, number>();
  // Bucket value whose kept snapshot was partial, still waiting for its newest complete snapshot.
  const wantsComplete = new Map<TimeClass, number>();

  const decisions: RetentionDecision[] = list.map((cur, nr) => {
    const reasons: string[] = [];
    const oldest = nr === list.length - 1;
    const complete = cur.snapshot.status === 'complete';

    for (const tags of policy.tags ?? []) {
      if (tags.every((t) => cur.snapshot.tags.includes(t))) reasons.push(`has tags ${tags.join(',')}`);
    }
    if (within !== undefined && withinFrom !== undefined && cur.at > withinFrom) {
      reasons.push(`within ${formatRetentionDuration(within)}`);
    }
    if (counts.last !== 0) {
      reasons.push('last snapshot');
      if (counts.last > 0) counts.last--;
    }
    const fields = calendarFields(new Date(cur.at), timeZone);
    for (const c of CLASSES) {
      const value = bucketOf(c, fields);
      if (counts[c] !== 0 && (value !== lastBucket.get(c) || oldest)) {
        lastBucket.set(c, value);
        if (counts[c] > 0) counts[c]--;
        reasons.push(`${c} snapshot`);
        if (complete) wantsComplete.delete(c);
        else wantsComplete.set(c, value);
      } else if (complete && wantsComplete.get(c) === value) {
        reasons.push(`${c} snapshot (newest complete of its ${PERIOD[c]})`);
        wantsComplete.delete(c);
      }
    }
    return { id: cur.id, snapshot: cur.snapshot, keep: reasons.length > 0, reasons };
  });

  // Rule 2: a group whose newest snapshot is partial keeps its newest complete one.
  if (decisions[0]?.snapshot.status === 'partial') {
    const newestComplete = decisions.find((d) => d.snapshot.status === 'complete');
    if (newestComplete !== undefined && !newestComplete.keep) {
      newestComplete.keep = true;
      newestComplete.reasons.push('newest complete snapshot');
    }
  }
  return decisions;
}

/** restic: the newest snapshot time (not in the future), moved back by the duration. */
function withinThreshold(
  list: Array<{ at: number }>,
  d: RetentionDuration,
  timeZone: string,
  now: Date | undefined,
): number {
  const limit = now?.getTime() ?? Number.POSITIVE_INFINITY;
  let latest = Number.NEGATIVE_INFINITY;
  for (const s of list) if (s.at > latest && s.at <= limit) latest = s.at;
  if (latest === Number.NEGATIVE_INFINITY) return Number.NEGATIVE_INFINITY;
  const dayShifted = subtractCalendar(new Date(latest), d, timeZone);
  return dayShifted.getTime() - d.hours * 3_600_000;
}

function bucketOf(c: TimeClass, f: { year: number; month: number; day: number; hour: number }): number {
  switch (c) {
    case 'hourly':
      return f.year * 1_000_000 + f.month * 10_000 + f.day * 100 + f.hour;
    case 'daily':
      return f.year * 10_000 + f.month * 100 + f.day;
    case 'weekly': {
      const w = isoWeek(f.year, f.month, f.day);
      return w.year * 100 + w.week;
    }
    case 'monthly':
      return f.year * 100 + f.month;
    case 'yearly':
      return f.year;
  }
}
