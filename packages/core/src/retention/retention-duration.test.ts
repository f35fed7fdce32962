import { describe, expect, it } from 'vitest';
import { isMailarkError } from '../errors.js';
import { formatRetentionDuration, parseRetentionDuration } from './retention-duration.js';

describe('retention durations', () => {
  it('parses restic units plus weeks, in any order', () => {
    expect(parseRetentionDuration('2d')).toEqual({ years: 0, months: 0, days: 2, hours: 0 });
    expect(parseRetentionDuration('1w3d')).toEqual({ years: 0, months: 0, days: 10, hours: 0 });
    expect(parseRetentionDuration('1y')).toEqual({ years: 1, months: 0, days: 0, hours: 0 });
    expect(parseRetentionDuration('1y2m3d4h')).toEqual({ years: 1, months: 2, days: 3, hours: 4 });
    expect(parseRetentionDuration('36h')).toEqual({ years: 0, months: 0, days: 0, hours: 36 });
    expect(formatRetentionDuration(parseRetentionDuration('2w1h'))).toBe('14d1h');
  });

  it('rejects junk with a USAGE error and an example', () => {
    for (const bad of ['', 'd', '2', '2x', '1d1d', '-1d', '1.5d', '2 d']) {
      let err: unknown;
      try {
        parseRetentionDuration(bad);
      } catch (e) {
        err = e;
      }
      expect(isMailarkError(err, 'USAGE'), bad).toBe(true);
    }
  });
});
