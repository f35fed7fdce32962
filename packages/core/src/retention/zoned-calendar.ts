/**
 * Calendar fields of an instant in an IANA time zone, and calendar arithmetic there.
 *
 * Snapshots record UTC instants; people think in local days. "Keep 7 daily snapshots" for a host in
 * Europe/Paris means seven Paris calendar days, so a run at 00:30 local time (22:30 or 23:30 UTC the
 * day before) belongs to the Paris day it ran on. Everything here is pure and uses only Intl (ICU),
 * so results do not depend on the machine's TZ setting.
 */

export interface CalendarFields {
  year: number;
  /** 1-12 */
  month: number;
  /** 1-31 */
  day: number;
  /** 0-23 */
  hour: number;
  minute: number;
  second: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (f === undefined) {
    // en-US with h23 and numeric parts: stable, parseable output for every zone.
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      era: 'short',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** Throws RangeError for an unknown zone name (Intl's own check). */
export function assertTimeZone(timeZone: string): void {
  formatterFor(timeZone);
}

/** The wall-clock fields of `instant` in `timeZone`. */
export function calendarFields(instant: Date, timeZone: string): CalendarFields {
  const out: CalendarFields = { year: 0, month: 0, day: 0, hour: 0, minute: 0, second: 0 };
  let bc = false;
  for (const p of formatterFor(timeZone).formatToParts(instant)) {
    if (p.type === 'era') bc = p.value.startsWith('B');
    else if (p.type in out) out[p.type as keyof CalendarFields] = Number.parseInt(p.value, 10);
  }
  if (bc) out.year = 1 - out.year;
  return out;
}

/** ISO 8601 week-numbering year and week (weeks start Monday; week 1 holds the year's first Thursday). */
export function isoWeek(year: number, month: number, day: number): { year: number; week: number } {
  const date = new Date(Date.UTC(year, month - 1, day));
  date.setUTCFullYear(year); // Date.UTC maps years 0-99 to 1900-1999
  const dow = (date.getUTCDay() + 6) % 7; // Monday 0 .. Sunday 6
  // The Thursday of this week decides the week-numbering year.
  const thursday = new Date(date.getTime() + (3 - dow) * 86_400_000);
  const isoYear = thursday.getUTCFullYear();
  const jan1 = new Date(Date.UTC(isoYear, 0, 1));
  jan1.setUTCFullYear(isoYear);
  const week = 1 + Math.floor((thursday.getTime() - jan1.getTime()) / (7 * 86_400_000));
  return { year: isoYear, week };
}

/** Offset (ms) of `timeZone` from UTC at `instant`: local wall time = instant + offset. */
function offsetAt(instant: number, timeZone: string): number {
  const f = calendarFields(new Date(instant), timeZone);
  const asUtc = Date.UTC(f.year, f.month - 1, f.day, f.hour, f.minute, f.second);
  return asUtc - Math.floor(instant / 1000) * 1000;
}

/**
 * The instant whose wall-clock time in `timeZone` is `fields`. Day/month overflow normalises as
 * Date.UTC does (Go's AddDate too: 31 February is 2 or 3 March). A wall time skipped by a DST jump
 * resolves to the instant after the jump; a repeated one to its first occurrence.
 */
export function instantOf(fields: CalendarFields, timeZone: string): Date {
  const wall = Date.UTC(fields.year, fields.month - 1, fields.day, fields.hour, fields.minute, fields.second);
  // The zone's offsets a day either side cover any single transition near this wall time.
  const before = offsetAt(wall - 86_400_000, timeZone);
  const after = offsetAt(wall + 86_400_000, timeZone);
  const exact = [wall - before, wall - after].filter((t) => t + offsetAt(t, timeZone) === wall);
  // Overlap: two exact candidates, take the first. Gap: none; the pre-jump offset lands after the jump.
  return new Date(exact.length > 0 ? Math.min(...exact) : wall - before);
}

/** `instant` moved back by whole years, months and days of wall-clock time in `timeZone`. */
export function subtractCalendar(
  instant: Date,
  d: { years: number; months: number; days: number },
  timeZone: string,
): Date {
  const f = calendarFields(instant, timeZone);
  const ms = instant.getTime() % 1000;
  const moved = instantOf(
    { ...f, year: f.year - d.years, month: f.month - d.months, day: f.day - d.days },
    timeZone,
  );
  return new Date(moved.getTime() + (ms < 0 ? ms + 1000 : ms));
}
