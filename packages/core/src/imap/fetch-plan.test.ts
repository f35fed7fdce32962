import { describe, expect, it } from 'vitest';
import { chunkRanges, planFetch } from './fetch-plan.js';

const MiB = 1024 * 1024;

describe('planFetch', () => {
  it('batches small messages by total size and count, in UID order', () => {
    const msgs = [5, 1, 2, 3, 4].map((uid) => ({ uid, size: 3 * MiB }));
    const plan = planFetch(msgs, { batchBytes: 7 * MiB, largeBytes: 4 * MiB });
    expect(plan).toEqual([
      { kind: 'batch', uids: [1, 2] },
      { kind: 'batch', uids: [3, 4] },
      { kind: 'batch', uids: [5] },
    ]);
    const many = Array.from({ length: 5 }, (_, i) => ({ uid: i + 1, size: 10 }));
    expect(planFetch(many, { batchCount: 2 }).map((s) => (s.kind === 'batch' ? s.uids : []))).toEqual([
      [1, 2],
      [3, 4],
      [5],
    ]);
  });

  it('fetches a large message alone, in pieces that cover it exactly', () => {
    const plan = planFetch(
      [
        { uid: 1, size: 100 },
        { uid: 2, size: 25 * MiB },
        { uid: 3, size: 100 },
      ],
      { largeBytes: 4 * MiB, chunkBytes: 4 * MiB },
    );
    expect(plan.map((s) => s.kind)).toEqual(['batch', 'large', 'batch']);
    const large = plan[1];
    if (large?.kind !== 'large') throw new Error('expected a large step');
    expect(large.ranges).toHaveLength(7);
    expect(large.ranges.reduce((n, r) => n + r.length, 0)).toBe(25 * MiB);
    expect(large.ranges.at(-1)).toEqual({ start: 24 * MiB, length: MiB });
  });

  it('plans nothing for nothing', () => {
    expect(planFetch([])).toEqual([]);
  });
});

describe('chunkRanges', () => {
  it('covers 0..size without gaps or overlaps', () => {
    expect(chunkRanges(10, 4)).toEqual([
      { start: 0, length: 4 },
      { start: 4, length: 4 },
      { start: 8, length: 2 },
    ]);
    expect(chunkRanges(0, 4)).toEqual([]);
    expect(() => chunkRanges(10, 0)).toThrow(RangeError);
  });
});
