import { describe, expect, it } from 'vitest';
import { OrderedMatcher } from './ordered-matcher.js';

async function* items(keys: Iterable<number>): AsyncGenerator<[number, string]> {
  for (const k of keys) yield [k, `e${k}`];
}
const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);

async function run(expected: number[], found: number[], window = 10) {
  const out = {
    matched: [] as number[],
    missing: [] as number[],
    unexpected: [] as number[],
    duplicate: [] as number[],
  };
  let maxHeld = 0;
  const m = new OrderedMatcher<number, string, string>(
    items(expected),
    {
      matched: (k, e, a) => {
        if (a.slice(1) !== e.slice(1)) throw new Error(`matched ${a} with ${e}`);
        out.matched.push(k);
      },
      missing: (k) => out.missing.push(k),
      unexpected: (k) => out.unexpected.push(k),
      duplicate: (k) => out.duplicate.push(k),
    },
    window,
  );
  const held = () => {
    const x = m as unknown as {
      pendingExpected: Map<unknown, unknown>;
      pendingActual: Map<unknown, unknown>;
    };
    return x.pendingExpected.size + x.pendingActual.size;
  };
  for (const k of found) {
    await m.found(k, `a${k}`);
    maxHeld = Math.max(maxHeld, held());
  }
  await m.finish();
  return { ...out, maxHeld };
}

describe('OrderedMatcher', () => {
  it('matches identical streams in lockstep, holding nothing', async () => {
    const r = await run(range(0, 100_000), range(0, 100_000), 100);
    expect(r.matched).toHaveLength(100_000);
    expect([r.missing, r.unexpected, r.duplicate]).toEqual([[], [], []]);
    expect(r.maxHeld).toBe(0);
  });

  it('names missing, unexpected and duplicate items', async () => {
    const r = await run([1, 2, 3, 4, 5, 6], [1, 3, 99, 4, 4, 6, 7]);
    expect(r.matched).toEqual([1, 3, 4, 6]);
    expect(r.missing.sort()).toEqual([2, 5]);
    expect(r.unexpected.sort()).toEqual([7, 99]);
    expect(r.duplicate).toEqual([4]);
  });

  it('tolerates reordering within the window', async () => {
    const r = await run(range(0, 50), [...range(10, 20), ...range(0, 10), ...range(20, 50)], 20);
    expect(r.matched).toHaveLength(50);
    expect([r.missing, r.unexpected]).toEqual([[], []]);
  });

  it('stays bounded when a large part is missing or extra, and accounts for every item once', async () => {
    const gone = await run(range(0, 20_000), range(5_000, 20_000), 50);
    expect(gone.maxHeld).toBeLessThanOrEqual(100);
    expect(gone.missing[0]).toBe(0);
    expect(gone.missing.length + gone.matched.length).toBe(20_000);
    expect(gone.unexpected.length + gone.matched.length).toBe(15_000);
    const extra = await run(
      range(0, 1_000),
      [...range(0, 500), ...range(100_000, 100_040), ...range(500, 1_000)],
      50,
    );
    expect(extra.unexpected).toEqual(range(100_000, 100_040));
    expect(extra.matched).toHaveLength(1_000);
    expect(extra.missing).toEqual([]);
    expect(extra.maxHeld).toBeLessThanOrEqual(100);
  });
});
