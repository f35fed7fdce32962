import { describe, expect, it } from 'vitest';
import { uidSet, uidSetChunks } from './uid-set.js';

describe('uidSet', () => {
  it('compresses consecutive UIDs into ranges, sorted and deduplicated', () => {
    expect(uidSet([9, 1, 2, 3, 7, 10, 11, 12, 3])).toBe('1:3,7,9:12');
    expect(uidSet([5])).toBe('5');
    expect(uidSet([])).toBe('');
  });

  it('never names a UID that was not asked for', () => {
    expect(uidSet([1, 3, 5])).toBe('1,3,5');
  });

  it('refuses UIDs that cannot exist', () => {
    expect(() => uidSet([0])).toThrow(RangeError);
    expect(() => uidSet([1.5])).toThrow(RangeError);
  });

  it('cuts long lists into bounded sets that together name every UID once', () => {
    const uids = Array.from({ length: 25 }, (_, i) => i * 2 + 1);
    const sets = uidSetChunks(uids, 10);
    expect(sets).toHaveLength(3);
    expect(sets.join(',').split(',').map(Number)).toEqual(uids);
  });
});
