import { describe, expect, it } from 'vitest';
import { calendarFields, instantOf, isoWeek, subtractCalendar } from './zoned-calendar.js';

describe('zoned calendar', () => {
  it('reads wall-clock fields in a zone, whatever the machine TZ', () => {
    expect(calendarFields(new Date('2024-06-01T22:30:00Z'), 'Europe/Paris')).toEqual({
      year: 2024,
      month: 6,
      day: 2,
      hour: 0,
      minute: 30,
      second: 0,
    });
    expect(calendarFields(new Date('2024-01-01T03:00:00Z'), 'America/Los_Angeles').day).toBe(31);
    expect(calendarFields(new Date('2024-01-01T03:00:00Z'), 'Asia/Kolkata')).toMatchObject({
      hour: 8,
      minute: 30,
    });
  });

  it('numbers ISO 8601 weeks (Monday start, week 1 holds the first Thursday)', () => {
    expect(isoWeek(2020, 12, 31)).toEqual({ year: 2020, week: 53 });
    expect(isoWeek(2021, 1, 3)).toEqual({ year: 2020, week: 53 });
    expect(isoWeek(2021, 1, 4)).toEqual({ year: 2021, week: 1 });
    expect(isoWeek(2024, 12, 30)).toEqual({ year: 2025, week: 1 });
    expect(isoWeek(2026, 1, 1)).toEqual({ year: 2026, week: 1 });
    expect(isoWeek(2027, 1, 1)).toEqual({ year: 2026, week: 53 });
    expect(isoWeek(2024, 5, 12)).toEqual({ year: 2024, week: 19 });
    expect(isoWeek(2024, 5, 13)).toEqual({ year: 2024, week: 20 });
  });

  it('maps wall time back to an instant, across DST gaps and overlaps', () => {
    const f = { year: 2024, month: 7, day: 14, hour: 9, minute: 0, second: 0 };
    expect(instantOf(f, 'Europe/Paris').toISOString()).toBe('2024-07-14T07:00:00.000Z');
    // 02:30 does not exist in New York on 2024-03-10: resolved after the jump (03:30 EDT).
    expect(
      instantOf({ ...f, month: 3, day: 10, hour: 2, minute: 30 }, 'America/New_York').toISOString(),
    ).toBe('2024-03-10T07:30:00.000Z');
    // 01:30 happens twice on 2024-11-03 in New York, 02:30 twice on 2024-10-27 in Paris: the first one.
    expect(
      instantOf({ ...f, month: 11, day: 3, hour: 1, minute: 30 }, 'America/New_York').toISOString(),
    ).toBe('2024-11-03T05:30:00.000Z');
    expect(instantOf({ ...f, month: 10, day: 27, hour: 2, minute: 30 }, 'Europe/Paris').toISOString()).toBe(
      '2024-10-27T00:30:00.000Z',
    );
  });

  it('subtracts calendar units as Go AddDate: overflowing days roll into the next month', () => {
    const at = new Date('2024-03-31T12:00:00.250Z');
    expect(subtractCalendar(at, { years: 0, months: 1, days: 0 }, 'UTC').toISOString()).toBe(
      '2024-03-02T12:00:00.250Z',
    );
    expect(subtractCalendar(at, { years: 1, months: 0, days: 0 }, 'UTC').toISOString()).toBe(
      '2023-03-31T12:00:00.250Z',
    );
    expect(
      subtractCalendar(
        new Date('2024-02-29T12:00:00Z'),
        { years: 1, months: 0, days: 0 },
        'UTC',
      ).toISOString(),
    ).toBe('2023-03-01T12:00:00.000Z');
    expect(subtractCalendar(at, { years: 0, months: 0, days: 31 }, 'UTC').toISOString()).toBe(
      '2024-02-29T12:00:00.250Z',
    );
  });
});
