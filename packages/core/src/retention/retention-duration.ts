/**
 * Retention durations such as `2d`, `1w3d`, `1y6m`, `36h` (restic's `1y2m3d4h` plus weeks).
 *
 * A duration is calendar arithmetic, not a number of milliseconds: `1m` back from 31 March is
 * "the same wall-clock time one month earlier", which the policy resolves in the operator's time
 * zone. Weeks are seven calendar days. Hours are absolute hours (restic's semantics).
 */
import { MailarkError } from '../errors.js';

export interface RetentionDuration {
  years: number;
  months: number;
  days: number;
  hours: number;
}

const UNIT: Record<string, keyof RetentionDuration | 'weeks'> = {
  y: 'years',
  m: 'months',
  w: 'weeks',
  d: 'days',
  h: 'hours',
};

/** Parses `1y2m3w4d5h` (any subset, any order, each unit once). USAGE error naming a valid example. */
export function parseRetentionDuration(text: string): RetentionDuration {
  const trimmed = text.trim();
  const out: RetentionDuration = { years: 0, months: 0, days: 0, hours: 0 };
  const seen = new Set<string>();
  const re = /(\d+)([a-zA-Z])/y;
  let pos = 0;
  let m: RegExpExecArray | null;
  while (pos < trimmed.length) {
    re.lastIndex = pos;
    m = re.exec(trimmed);
    const unit = m === null ? undefined : UNIT[m[2]!];
    if (m === null || unit === undefined || seen.has(unit)) {
      throw new MailarkError('USAGE', `invalid duration ${JSON.stringify(text)}`, {
        hint: 'write a number followed by a unit, y (years) m (months) w (weeks) d (days) h (hours), e.g. 2d, 1w3d, 1y6m, 36h',
      });
    }
    seen.add(unit);
    const n = Number.parseInt(m[1]!, 10);
    if (unit === 'weeks') out.days += 7 * n;
    else out[unit] += n;
    pos = re.lastIndex;
  }
  if (seen.size === 0) {
    throw new MailarkError('USAGE', 'empty duration', { hint: 'e.g. 2d, 1w3d, 1y6m, 36h' });
  }
  return out;
}

export function isZeroDuration(d: RetentionDuration): boolean {
  return d.years === 0 && d.months === 0 && d.days === 0 && d.hours === 0;
}

/** Canonical text, e.g. `1y2m10d`: weeks are folded into days, zero units omitted. */
export function formatRetentionDuration(d: RetentionDuration): string {
  const parts: string[] = [];
  if (d.years > 0) parts.push(`${d.years}y`);
  if (d.months > 0) parts.push(`${d.months}m`);
  if (d.days > 0) parts.push(`${d.days}d`);
  if (d.hours > 0) parts.push(`${d.hours}h`);
  return parts.length === 0 ? '0h' : parts.join('');
}
