import { describe, expect, it } from 'vitest';
import { isMailarkError } from '../errors.js';
import { type PruneIndexEntry, parseMaxUnused, planPrune } from './prune-plan.js';

/** A pack of blobs `name:length`, e.g. pack('p1', 'data', ['a:100', 'b:50']). */
function pack(id: string, type: 'data' | 'tree', blobs: string[]) {
  const entries: PruneIndexEntry[] = blobs.map((b) => {
    const [name, len] = b.split(':');
    return { id: name!, type, pack: id, length: Number(len) };
  });
  return { entries, size: entries.reduce((s, e) => s + e.length, 0) + 64 };
}

function input(
  packs: Record<string, ReturnType<typeof pack>>,
  used: string[],
  extraStored: Record<string, number> = {},
) {
  return {
    entries: Object.values(packs).flatMap((p) => p.entries),
    packs: [
      ...Object.entries(packs).map(([id, p]) => ({ id, size: p.size })),
      ...Object.entries(extraStored).map(([id, size]) => ({ id, size })),
    ],
    used: new Set(used),
  };
}

describe('planPrune', () => {
  it('leaves a repository where everything is used untouched', () => {
    const plan = planPrune(
      input({ p1: pack('p1', 'data', ['a:100', 'b:100']), t1: pack('t1', 'tree', ['t:10']) }, [
        'a',
        'b',
        't',
      ]),
    );
    expect(plan.deletePacks).toEqual([]);
    expect(plan.repackPacks).toEqual([]);
    expect(plan.unindexedPacks).toEqual([]);
    expect(plan.stats).toMatchObject({ usedBlobs: 3, usedBytes: 210, unusedBlobs: 0, unusedBytes: 0 });
  });

  it('deletes packs with no used blob and packs no index lists', () => {
    const plan = planPrune(
      input({ p1: pack('p1', 'data', ['a:100']), p2: pack('p2', 'data', ['x:300', 'y:200']) }, ['a'], {
        orphan: 999,
      }),
    );
    expect(plan.deletePacks).toEqual(['p2']);
    expect(plan.unindexedPacks).toEqual(['orphan']);
    expect(plan.stats.deleteBytes).toBe(564 + 999);
    expect(plan.stats.unusedBytesAfter).toBe(0);
  });

  it('repacks partly used data packs, most wasteful first, until unused is within the limit', () => {
    const packs = {
      // 10% unused, 50% unused, 1% unused
      p1: pack('p1', 'data', ['a:900', 'x:100']),
      p2: pack('p2', 'data', ['b:500', 'y:500']),
      p3: pack('p3', 'data', ['c:990', 'z:10']),
    };
    const used = ['a', 'b', 'c'];
    // used 2390; 5% limit = 2390*5/95 = 125: repacking p2 leaves 110 unused, within the limit.
    const plan = planPrune({ ...input(packs, used), maxUnused: { kind: 'percent', value: 5 } });
    expect(plan.repackPacks).toEqual(['p2']);
    expect([...plan.repackBlobs]).toEqual(['b']);
    expect(plan.stats).toMatchObject({
      unusedBytes: 610,
      unusedBytesAfter: 110,
      unusedLimitBytes: 125,
      repackCopyBytes: 500,
    });
    // 0%: everything with waste is repacked; unlimited: nothing.
    expect(
      planPrune({ ...input(packs, used), maxUnused: { kind: 'percent', value: 0 } }).repackPacks,
    ).toEqual(['p2', 'p1', 'p3']);
    expect(planPrune({ ...input(packs, used), maxUnused: { kind: 'unlimited' } }).repackPacks).toEqual([]);
    expect(
      planPrune({ ...input(packs, used), maxUnused: { kind: 'bytes', value: 0 } }).repackPacks,
    ).toHaveLength(3);
  });

  it('always repacks partly used tree packs (cheap, keeps walks compact)', () => {
    const plan = planPrune(
      input({ t1: pack('t1', 'tree', ['t:50', 'old:5']), p1: pack('p1', 'data', ['a:10000']) }, ['t', 'a']),
    );
    expect(plan.repackPacks).toEqual(['t1']);
    expect([...plan.repackBlobs]).toEqual(['t']);
  });

  it('keeps one copy of a duplicated blob, in the pack that stays', () => {
    // "a" is in p1 (fully used otherwise) and in p2 (a leftover of a crashed run).
    const packs = { p1: pack('p1', 'data', ['a:100', 'b:900']), p2: pack('p2', 'data', ['a:100', 'x:50']) };
    const plan = planPrune({ ...input(packs, ['a', 'b']), maxUnused: { kind: 'percent', value: 0 } });
    expect(plan.deletePacks).toEqual(['p2']);
    expect(plan.repackPacks).toEqual([]);
    expect(plan.stats).toMatchObject({ usedBlobs: 2, usedBytes: 1000, duplicateBlobs: 1, unusedBlobs: 2 });
  });

  it('drops index entries of vanished packs nothing needs, and refuses when a used blob is gone', () => {
    const packs = { p1: pack('p1', 'data', ['a:100']), gone: pack('gone', 'data', ['x:10', 'a:100']) };
    const i = input(packs, ['a']);
    const plan = planPrune({ ...i, packs: i.packs.filter((p) => p.id !== 'gone') });
    expect(plan.missingPacks).toEqual(['gone']);
    expect(plan.deletePacks).toEqual([]);

    const broken = input({ p1: pack('p1', 'data', ['a:100']), gone: pack('gone', 'data', ['b:10']) }, [
      'a',
      'b',
    ]);
    let err: unknown;
    try {
      planPrune({ ...broken, packs: broken.packs.filter((p) => p.id !== 'gone') });
    } catch (e) {
      err = e;
    }
    expect(isMailarkError(err, 'CORRUPT')).toBe(true);
    expect((err as Error).message).toContain('1 referenced blob(s)');
    expect(() => planPrune(input({}, ['nowhere']))).toThrow(/in no pack/);
  });

  it('parses --max-unused like restic', () => {
    expect(parseMaxUnused('5%')).toEqual({ kind: 'percent', value: 5 });
    expect(parseMaxUnused('12.5')).toEqual({ kind: 'percent', value: 12.5 });
    expect(parseMaxUnused('0')).toEqual({ kind: 'percent', value: 0 });
    expect(parseMaxUnused('100%')).toEqual({ kind: 'unlimited' });
    expect(parseMaxUnused('unlimited')).toEqual({ kind: 'unlimited' });
    expect(parseMaxUnused('500M')).toEqual({ kind: 'bytes', value: 500 * 2 ** 20 });
    expect(parseMaxUnused('2GiB')).toEqual({ kind: 'bytes', value: 2 * 2 ** 30 });
    for (const bad of ['150%', 'lots', '-5', '5x']) expect(() => parseMaxUnused(bad)).toThrow(/max-unused/);
  });
});
