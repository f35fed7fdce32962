import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isMailarkError } from '../errors.js';
import { BlobIndex, encodeIndexObject, loadIndexObject } from './blob-index.js';
import type { PackEntry } from './pack.js';

const hex = () => randomBytes(32).toString('hex');
const key = randomBytes(32);

function entries(n: number): PackEntry[] {
  let offset = 0;
  return Array.from({ length: n }, (_, i) => {
    const length = 40 + i;
    const e: PackEntry = {
      type: i % 3 === 0 ? 'tree' : 'data',
      id: hex(),
      offset,
      length,
      rawLength: 1000 + i,
    };
    offset += length;
    return e;
  });
}

describe('BlobIndex and index objects', () => {
  it('round-trips entries of several packs through a sealed index object', () => {
    const packs = new Map([
      [hex(), entries(5)],
      [hex(), entries(3)],
      [hex(), []],
    ]);
    const sealed = encodeIndexObject(key, packs);
    const index = new BlobIndex();
    expect(loadIndexObject(index, key, sealed, 'index/x')).toEqual([...packs.keys()]);
    expect(index.size).toBe(8);
    for (const [pack, list] of packs) for (const e of list) expect(index.get(e.id)).toEqual({ ...e, pack });
    expect([...index.byPack().keys()]).toEqual([...packs.keys()].slice(0, 2));
  });

  it('keeps every copy of a blob; lookups use the first; removing its pack falls back to the other', () => {
    const index = new BlobIndex();
    const [e] = entries(1) as [PackEntry];
    index.add({ ...e, pack: 'p1' });
    index.add({ ...e, offset: 99, pack: 'p2' });
    expect(index.size).toBe(2);
    expect(index.get(e.id)?.pack).toBe('p1');
    index.removePacks(new Set(['p1']));
    expect(index.get(e.id)).toEqual({ ...e, offset: 99, pack: 'p2' });
    index.removePacks(new Set(['p2']));
    expect(index.has(e.id)).toBe(false);
  });

  it('grows past its initial capacity', () => {
    const index = new BlobIndex();
    const list = entries(5000);
    for (const e of list) index.add({ ...e, pack: 'p' });
    expect(index.size).toBe(5000);
    expect(index.get(list[4321]?.id as string)?.rawLength).toBe(1000 + 4321);
  });

  it('a damaged or foreign index object is CORRUPT naming it, and adds nothing', () => {
    const sealed = encodeIndexObject(key, new Map([[hex(), entries(4)]]));
    const damaged = Uint8Array.from(sealed);
    damaged[20] = (damaged[20] as number) ^ 1;
    const index = new BlobIndex();
    for (const [bytes, k] of [
      [damaged, key],
      [sealed, randomBytes(32)],
      [sealed.subarray(0, 30), key],
    ] as const) {
      try {
        loadIndexObject(index, k, bytes, 'index/abc');
        expect.unreachable();
      } catch (err) {
        expect(isMailarkError(err, 'CORRUPT') && err.message).toContain('index/abc');
      }
    }
    expect(index.size).toBe(0);
  });

  it('a pack covered by two index objects is loaded once', () => {
    const packs = new Map([[hex(), entries(4)]]);
    const index = new BlobIndex();
    loadIndexObject(index, key, encodeIndexObject(key, packs), 'index/a');
    loadIndexObject(index, key, encodeIndexObject(key, packs), 'index/b');
    expect(index.size).toBe(4);
  });

  it('entries loaded from index objects are found exactly, first copy first, and listed in load order', () => {
    // Two index objects; one data blob sits in a pack of each (a re-saved blob), one pack is in both.
    const shared = entries(1)[0] as PackEntry;
    const data = { ...shared, type: 'data' as const };
    const [p1, p2, p3] = [hex(), hex(), hex()];
    const a = new Map([
      [p1, [...entries(40), data]],
      [p2, entries(30)],
    ]);
    const b = new Map([
      [p2, a.get(p2) as PackEntry[]],
      [p3, [{ ...data, offset: 7 }, ...entries(20)]],
    ]);
    const load = () => {
      const index = new BlobIndex();
      loadIndexObject(index, key, encodeIndexObject(key, a), 'index/a');
      loadIndexObject(index, key, encodeIndexObject(key, b), 'index/b');
      return index;
    };
    const expected = [
      ...[...a].flatMap(([pack, list]) => list.map((e) => ({ ...e, pack }))),
      ...(b.get(p3) as PackEntry[]).map((e) => ({ ...e, pack: p3 })),
    ];
    // Looked up one by one, in a shuffled order.
    const index = load();
    const shuffled = [...expected].sort(() => Math.random() - 0.5);
    for (const e of shuffled) {
      const want = e.id === data.id ? { ...data, pack: p1 } : e;
      expect(index.get(e.id)).toEqual(want);
    }
    expect(index.size).toBe(expected.length);
    expect([...index.entries()]).toEqual(expected);
    // The same from a fresh load, listed before any lookup; and the second copy after the first goes.
    const fresh = load();
    expect([...fresh.entries()]).toEqual(expected);
    fresh.removePacks(new Set([p1]));
    expect(fresh.get(data.id)).toEqual({ ...data, offset: 7, pack: p3 });
  });

  it('bytes of an id that straddle two fields of an entry are not an id', () => {
    const list = entries(3).map((e) => ({ ...e, type: 'data' as const }));
    const index = new BlobIndex();
    loadIndexObject(index, key, encodeIndexObject(key, new Map([[hex(), list]])), 'index/a');
    // The last 31 bytes of the second id followed by the first byte of its offset field.
    const e = list[1] as PackEntry;
    const offsetByte = Buffer.alloc(4);
    offsetByte.writeUInt32LE(e.offset);
    const straddling = Buffer.concat([Buffer.from(e.id, 'hex').subarray(1), offsetByte.subarray(0, 1)]);
    expect(index.has(straddling.toString('hex'))).toBe(false);
    expect(index.has(e.id)).toBe(true);
    expect(index.has('not an id')).toBe(false);
  });

  it('an entry added after loading does not hide an older copy', () => {
    const list = entries(5).map((e) => ({ ...e, type: 'data' as const }));
    const pack = hex();
    const index = new BlobIndex();
    loadIndexObject(index, key, encodeIndexObject(key, new Map([[pack, list]])), 'index/a');
    const e = list[3] as PackEntry;
    index.add({ ...e, offset: 12345, pack: 'later' });
    expect(index.get(e.id)).toEqual({ ...e, pack });
    expect(index.size).toBe(6);
  });
  it('ids that share a hash bucket are told apart, and the first copy stays first through growth', () => {
    // Same first four bytes (the hash) for every id: every lookup walks one long probe run.
    const prefix = randomBytes(4).toString('hex');
    const ids = Array.from({ length: 3000 }, () => prefix + randomBytes(28).toString('hex'));
    const index = new BlobIndex();
    for (const [i, id] of ids.entries())
      index.add({ id, type: 'data', offset: i, length: 1, rawLength: 1, pack: 'p1' });
    // Second copies in another pack, added after, across the growth from 4096 to 8192 slots.
    for (const [i, id] of ids.entries())
      index.add({ id, type: 'data', offset: i, length: 2, rawLength: 2, pack: 'p2' });
    expect(index.size).toBe(6000);
    for (const [i, id] of ids.entries())
      expect(index.get(id)).toEqual({ id, type: 'data', offset: i, length: 1, rawLength: 1, pack: 'p1' });
    expect(index.has(prefix + randomBytes(28).toString('hex'))).toBe(false);
    index.removePacks(new Set(['p1']));
    expect(index.size).toBe(3000);
    expect(index.get(ids[1234] as string)).toMatchObject({ offset: 1234, length: 2, pack: 'p2' });
  });

  it('only blob ids are ids: upper case or other strings are not found, and cannot be added', () => {
    const [e] = entries(1) as [PackEntry];
    const index = new BlobIndex();
    index.add({ ...e, pack: 'p' });
    expect(index.has(e.id)).toBe(true);
    expect(index.has(e.id.toUpperCase())).toBe(false);
    expect(index.has(e.id.slice(0, 62))).toBe(false);
    expect(() => index.add({ ...e, id: 'xyz', pack: 'p' })).toThrow(RangeError);
    expect(index.size).toBe(1);
  });
});
