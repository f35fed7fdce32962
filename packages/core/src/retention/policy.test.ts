import { describe, expect, it } from 'vitest';
import { isMailarkError } from '../errors.js';
import type { Snapshot } from '../mail/snapshot.js';
import { snapshotOf } from '../repo/test-repository.js';
import { applyRetentionPolicy, describePolicy, isPolicyEmpty, type RetentionPolicy } from './policy.js';

function snap(time: string, o: { tenant?: string; status?: 'complete' | 'partial'; tags?: string[] } = {}) {
  const iso = new Date(time).toISOString();
  const snapshot: Snapshot = {
    ...snapshotOf('f'.repeat(64), iso, o.tenant ?? 'acme.test'),
    tags: o.tags ?? [],
    status: o.status ?? 'complete',
  };
  // ids derived from the time so decisions are easy to read in failures
  return { id: `id-${time}`, snapshot };
}

/** The times kept, newest first. */
function kept(snaps: ReturnType<typeof snap>[], policy: RetentionPolicy, timeZone = 'UTC', now?: Date) {
  const groups = applyRetentionPolicy(snaps, policy, now === undefined ? { timeZone } : { timeZone, now });
  expect(groups).toHaveLength(1);
  return groups[0]!.decisions.filter((d) => d.keep).map((d) => d.id.slice(3));
}

function reasonsOf(snaps: ReturnType<typeof snap>[], policy: RetentionPolicy, timeZone = 'UTC') {
  return Object.fromEntries(
    applyRetentionPolicy(snaps, policy, { timeZone })[0]!.decisions.map((d) => [d.id.slice(3), d.reasons]),
  );
}

describe('applyRetentionPolicy: restic semantics', () => {
  const hourlyRun = Array.from({ length: 24 * 10 }, (_, i) =>
    snap(new Date(Date.UTC(2024, 4, 1, 0, 30) + i * 3_600_000).toISOString()),
  );

  it('keeps everything when the policy is empty', () => {
    const list = [snap('2024-05-01T02:00:00Z'), snap('2024-05-02T02:00:00Z')];
    const g = applyRetentionPolicy(list, {});
    expect(g[0]!.decisions.every((d) => d.keep && d.reasons[0] === 'policy is empty')).toBe(true);
    expect(isPolicyEmpty({ daily: 0, within: '0d' })).toBe(true);
  });

  it('keep-last keeps the N newest, newest first', () => {
    const list = [1, 2, 3, 4, 5].map((d) => snap(`2024-05-0${d}T02:00:00Z`));
    expect(kept(list, { last: 3 })).toEqual([
      '2024-05-05T02:00:00Z',
      '2024-05-04T02:00:00Z',
      '2024-05-03T02:00:00Z',
    ]);
    expect(kept(list, { last: -1 })).toHaveLength(5);
  });

  it('keep-daily keeps the newest snapshot of each of the N newest days', () => {
    const list = [
      '2024-05-01T02:00:00Z',
      '2024-05-02T02:00:00Z',
      '2024-05-02T14:00:00Z',
      '2024-05-03T02:00:00Z',
    ];
    expect(
      kept(
        list.map((t) => snap(t)),
        { daily: 2 },
      ),
    ).toEqual(['2024-05-03T02:00:00Z', '2024-05-02T14:00:00Z']);
  });

  it('keeps the oldest snapshot too while a class still has counts left (restic 0.16+)', () => {
    const list = ['2024-05-01T02:00:00Z', '2024-05-01T14:00:00Z', '2024-05-02T02:00:00Z'].map((t) => snap(t));
    // 2 days, 10 daily counts: the newest of each day, plus the oldest of all.
    expect(kept(list, { daily: 10 })).toEqual([
      '2024-05-02T02:00:00Z',
      '2024-05-01T14:00:00Z',
      '2024-05-01T02:00:00Z',
    ]);
    // With exactly enough counts the oldest (same day as a kept one) goes.
    expect(kept(list, { daily: 2 })).toEqual(['2024-05-02T02:00:00Z', '2024-05-01T14:00:00Z']);
  });

  it('combines classes; each kept snapshot lists every class that wanted it', () => {
    const policy = { last: 2, hourly: 5, daily: 3, weekly: 2 };
    const k = kept(hourlyRun, policy);
    // last 2 and hourly 5 overlap on the newest hours; daily takes the 23:30 of the 2 days before;
    // weekly (ISO weeks: 2024-05-10 is a Friday) the newest of the previous week (Sunday 05-05 23:30).
    expect(k).toEqual([
      '2024-05-10T23:30:00.000Z',
      '2024-05-10T22:30:00.000Z',
      '2024-05-10T21:30:00.000Z',
      '2024-05-10T20:30:00.000Z',
      '2024-05-10T19:30:00.000Z',
      '2024-05-09T23:30:00.000Z',
      '2024-05-08T23:30:00.000Z',
      '2024-05-05T23:30:00.000Z',
    ]);
    const r = reasonsOf(hourlyRun, policy);
    expect(r['2024-05-10T23:30:00.000Z']).toEqual([
      'last snapshot',
      'hourly snapshot',
      'daily snapshot',
      'weekly snapshot',
    ]);
    expect(r['2024-05-09T23:30:00.000Z']).toEqual(['daily snapshot']);
    expect(r['2024-05-09T22:30:00.000Z']).toEqual([]);
  });

  it('keep-monthly and keep-yearly bucket by calendar month and year, month ends included', () => {
    const list = [
      '2023-12-31T23:00:00Z',
      '2024-01-31T10:00:00Z',
      '2024-02-29T10:00:00Z',
      '2024-03-01T10:00:00Z',
      '2024-03-31T10:00:00Z',
    ].map((t) => snap(t));
    expect(kept(list, { monthly: 3 })).toEqual([
      '2024-03-31T10:00:00Z',
      '2024-02-29T10:00:00Z',
      '2024-01-31T10:00:00Z',
    ]);
    expect(kept(list, { yearly: 1 })).toEqual(['2024-03-31T10:00:00Z']);
    expect(kept(list, { yearly: 5 })).toEqual(['2024-03-31T10:00:00Z', '2023-12-31T23:00:00Z']);
  });

  it('keep-weekly uses ISO 8601 weeks across the year boundary', () => {
    // 2020-12-28 (Mon) .. 2021-01-03 (Sun) is 2020-W53; 2021-01-04 (Mon) starts 2021-W01.
    const list = [
      '2020-12-27T12:00:00Z',
      '2020-12-28T12:00:00Z',
      '2021-01-03T12:00:00Z',
      '2021-01-04T12:00:00Z',
    ];
    expect(
      kept(
        list.map((t) => snap(t)),
        { weekly: 3 },
      ),
    ).toEqual(['2021-01-04T12:00:00Z', '2021-01-03T12:00:00Z', '2020-12-27T12:00:00Z']);
    // 2024-12-30 (Mon) belongs to 2025-W01, with 2025-01-05 (Sun).
    const list2 = ['2024-12-29T12:00:00Z', '2024-12-30T12:00:00Z', '2025-01-05T12:00:00Z'];
    expect(
      kept(
        list2.map((t) => snap(t)),
        { weekly: 1 },
      ),
    ).toEqual(['2025-01-05T12:00:00Z']);
    expect(
      kept(
        list2.map((t) => snap(t)),
        { weekly: 2 },
      ),
    ).toEqual(['2025-01-05T12:00:00Z', '2024-12-29T12:00:00Z']);
  });

  it('keep-tag keeps snapshots carrying all tags of one list', () => {
    const list = [
      snap('2024-05-03T02:00:00Z', { tags: ['nightly'] }),
      snap('2024-05-02T02:00:00Z', { tags: ['before-migration', 'manual'] }),
      snap('2024-05-01T02:00:00Z', { tags: ['manual'] }),
    ];
    expect(kept(list, { tags: [['before-migration', 'manual']] })).toEqual(['2024-05-02T02:00:00Z']);
    expect(kept(list, { last: 1, tags: [['manual']] })).toEqual([
      '2024-05-03T02:00:00Z',
      '2024-05-02T02:00:00Z',
      '2024-05-01T02:00:00Z',
    ]);
  });

  it('groups by tenant: each tenant keeps its own', () => {
    const list = [
      snap('2024-05-01T02:00:00Z', { tenant: 'b.test' }),
      snap('2024-05-02T02:00:00Z', { tenant: 'a.test' }),
      snap('2024-05-03T02:00:00Z', { tenant: 'a.test' }),
    ];
    const groups = applyRetentionPolicy(list, { last: 1 });
    expect(groups.map((g) => [g.tenant, g.decisions.map((d) => d.keep)])).toEqual([
      ['a.test', [true, false]],
      ['b.test', [true]],
    ]);
  });

  it('rejects malformed counts and durations with USAGE', () => {
    for (const bad of [
      { daily: 1.5 },
      { last: -2 },
      { within: '3x' },
      { within: '' },
      { tags: [[]] },
      { tags: [['a', ' ']] },
    ]) {
      let err: unknown;
      try {
        applyRetentionPolicy([snap('2024-05-01T02:00:00Z')], bad as RetentionPolicy);
      } catch (e) {
        err = e;
      }
      expect(isMailarkError(err, 'USAGE')).toBe(true);
    }
  });

  it('describes the policy for logs', () => {
    expect(describePolicy({ last: 1 })).toBe('keep 1 latest snapshot');
    expect(describePolicy({ last: 1, daily: 1 })).toBe('keep 1 latest, 1 daily snapshots');
    expect(describePolicy({ daily: -1 })).toBe('keep all daily snapshots');
    expect(describePolicy({ daily: 7, weekly: 4, within: '1w3d' })).toBe(
      'keep 7 daily, 4 weekly snapshots and all within 10d of the newest',
    );
  });
});

describe('keep-within', () => {
  it('keeps what is strictly newer than newest − duration, months as calendar months (Go AddDate)', () => {
    // 2024-03-31 minus one month is "31 February" = 2 March 2024 (leap year), as Go's AddDate.
    const list = [
      '2024-03-31T12:00:00Z',
      '2024-03-02T12:00:01Z',
      '2024-03-02T12:00:00Z',
      '2024-03-01T12:00:00Z',
    ].map((t) => snap(t));
    expect(kept(list, { within: '1m' })).toEqual(['2024-03-31T12:00:00Z', '2024-03-02T12:00:01Z']);
  });

  it('weeks are 7 days, hours absolute', () => {
    const list = ['2024-05-20T12:00:00Z', '2024-05-10T12:30:00Z', '2024-05-10T11:30:00Z'].map((t) => snap(t));
    expect(kept(list, { within: '1w3d' })).toEqual(['2024-05-20T12:00:00Z', '2024-05-10T12:30:00Z']);
    expect(kept(list, { within: '240h' })).toEqual(['2024-05-20T12:00:00Z', '2024-05-10T12:30:00Z']);
    expect(kept(list, { within: '1y' })).toHaveLength(3);
  });

  it('days are wall-clock days in the time zone (a DST day has 23 hours)', () => {
    // Europe/Paris springs forward on 2024-03-31: 12:00 CEST (10:00Z) minus one day is 12:00 CET (11:00Z).
    const list = ['2024-03-31T10:00:00Z', '2024-03-30T10:30:00Z'].map((t) => snap(t));
    expect(kept(list, { within: '1d' }, 'UTC')).toEqual(['2024-03-31T10:00:00Z', '2024-03-30T10:30:00Z']);
    expect(kept(list, { within: '1d' }, 'Europe/Paris')).toEqual(['2024-03-31T10:00:00Z']);
  });

  it('measures from the newest snapshot not in the future when now is given', () => {
    const list = ['2030-01-01T00:00:00Z', '2024-05-10T00:00:00Z', '2024-05-08T00:00:00Z'].map((t) => snap(t));
    expect(kept(list, { within: '1d' }, 'UTC', new Date('2024-05-11T00:00:00Z'))).toEqual([
      '2030-01-01T00:00:00Z',
      '2024-05-10T00:00:00Z',
    ]);
    expect(kept(list, { within: '1d' })).toEqual(['2030-01-01T00:00:00Z']);
  });
});

describe('time zones and DST in buckets', () => {
  it('a run at 00:30 Paris time belongs to that Paris day, not the UTC day before', () => {
    // 2024-06-01T20:00Z = 22:00 Paris on 1 June; 2024-06-01T22:30Z = 00:30 Paris on 2 June.
    const list = ['2024-06-01T22:30:00Z', '2024-06-01T20:00:00Z'].map((t) => snap(t));
    expect(kept(list, { daily: 1 }, 'UTC')).toEqual(['2024-06-01T22:30:00Z']);
    expect(kept(list, { daily: 2 }, 'UTC')).toEqual(['2024-06-01T22:30:00Z', '2024-06-01T20:00:00Z']);
    expect(kept(list, { daily: 1 }, 'Europe/Paris')).toEqual(['2024-06-01T22:30:00Z']);
    // Paris: two days, so daily 2 keeps both; UTC: one day plus the oldest-with-counts-left rule.
    const three = [...list, snap('2024-06-01T08:00:00Z')];
    expect(kept(three, { daily: 2 }, 'Europe/Paris')).toEqual([
      '2024-06-01T22:30:00Z',
      '2024-06-01T20:00:00Z',
    ]);
    expect(kept(three, { daily: 2 }, 'UTC')).toEqual(['2024-06-01T22:30:00Z', '2024-06-01T08:00:00Z']);
  });

  it('the repeated hour of a fall-back night is one hourly bucket', () => {
    // New York 2024-11-03: 01:30 EDT (05:30Z) and 01:30 EST (06:30Z) are both "01h" on the wall clock.
    const list = ['2024-11-03T06:30:00Z', '2024-11-03T05:30:00Z', '2024-11-03T04:30:00Z'].map((t) => snap(t));
    expect(kept(list, { hourly: 2 }, 'America/New_York')).toEqual([
      '2024-11-03T06:30:00Z',
      '2024-11-03T04:30:00Z',
    ]);
    expect(kept(list, { hourly: 2 }, 'UTC')).toEqual(['2024-11-03T06:30:00Z', '2024-11-03T05:30:00Z']);
  });

  it('a 23-hour spring-forward day is one daily bucket', () => {
    // Paris 2024-03-31 runs from 2024-03-30T23:00Z to 2024-03-31T22:00Z.
    const list = ['2024-03-31T21:30:00Z', '2024-03-30T23:30:00Z', '2024-03-30T22:30:00Z'].map((t) => snap(t));
    expect(kept(list, { daily: 2 }, 'Europe/Paris')).toEqual([
      '2024-03-31T21:30:00Z',
      '2024-03-30T22:30:00Z',
    ]);
  });

  it('month buckets follow the zone: 31 Jan 23:30Z is February in Paris', () => {
    const list = ['2024-02-15T10:00:00Z', '2024-01-31T23:30:00Z', '2024-01-20T10:00:00Z'].map((t) => snap(t));
    expect(kept(list, { monthly: 2 }, 'UTC')).toEqual(['2024-02-15T10:00:00Z', '2024-01-31T23:30:00Z']);
    expect(kept(list, { monthly: 2 }, 'Europe/Paris')).toEqual([
      '2024-02-15T10:00:00Z',
      '2024-01-20T10:00:00Z',
    ]);
  });
});

describe('partial snapshots', () => {
  it('count like complete ones: the newest of a day is kept even when partial', () => {
    const list = [snap('2024-05-02T02:00:00Z', { status: 'partial' }), snap('2024-05-01T02:00:00Z')];
    expect(kept(list, { last: 1 })).toEqual(['2024-05-02T02:00:00Z', '2024-05-01T02:00:00Z']);
    expect(reasonsOf(list, { last: 1 })['2024-05-01T02:00:00Z']).toEqual(['newest complete snapshot']);
  });

  it('a bucket whose kept snapshot is partial also keeps its newest complete snapshot', () => {
    const list = [
      snap('2024-05-03T14:00:00Z'),
      snap('2024-05-03T02:00:00Z'),
      snap('2024-05-02T14:00:00Z', { status: 'partial' }),
      snap('2024-05-02T10:00:00Z', { status: 'partial' }),
      snap('2024-05-02T02:00:00Z'),
      snap('2024-05-02T01:00:00Z'),
      snap('2024-05-01T14:00:00Z', { status: 'partial' }),
      snap('2024-05-01T02:00:00Z'),
    ];
    expect(kept(list, { daily: 2 })).toEqual([
      '2024-05-03T14:00:00Z',
      '2024-05-02T14:00:00Z',
      '2024-05-02T02:00:00Z',
    ]);
    expect(reasonsOf(list, { daily: 2 })['2024-05-02T02:00:00Z']).toEqual([
      'daily snapshot (newest complete of its day)',
    ]);
  });

  it('changes nothing for a group of complete snapshots (exactly restic)', () => {
    const all = Array.from({ length: 60 }, (_, i) =>
      snap(new Date(Date.UTC(2024, 0, 1, 2) + i * 86_400_000 * 1.3).toISOString()),
    );
    const mixed = all.map((s, i) =>
      i % 3 === 0 ? { ...s, snapshot: { ...s.snapshot, status: 'partial' as const } } : s,
    );
    const policy = { daily: 7, weekly: 4, monthly: 2 };
    const keptAll = kept(all, policy);
    // With partials, the same snapshots are kept, plus complete ones only.
    const keptMixed = kept(mixed, policy);
    expect(keptMixed).toEqual(expect.arrayContaining(keptAll));
    const extra = keptMixed.filter((t) => !keptAll.includes(t));
    const statusOf = new Map(mixed.map((s) => [s.id.slice(3), s.snapshot.status]));
    expect(extra.every((t) => statusOf.get(t) === 'complete')).toBe(true);
  });
});
