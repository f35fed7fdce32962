import { describe, expect, it } from 'vitest';
import { compareTuples, SortedMatcher } from './sorted-matcher.js';

async function* gen(keys: number[][]): AsyncGenerator<[number[], string]> {
  for (const k of keys) yield [k, k.join('.')];
}

async function run(expected: number[][], found: number[][]) {
  const out: Record<string, string[]> = { matched: [], missing: [], unexpected: [], outOfOrder: [] };
  const m = new SortedMatcher<number[], string, string>(gen(expected), compareTuples, {
    matched: (k, e, a) => out.matched!.push(`${k.join('.')}=${e}/${a}`),
    missing: (k) => out.missing!.push(k.join('.')),
    unexpected: (k) => out.unexpected!.push(k.join('.')),
    outOfOrder: (k) => out.outOfOrder!.push(k.join('.')),
  });
  for (const k of found) await m.found(k, `a${k.join('.')}`);
  await m.finish();
  return out;
}

describe('SortedMatcher', () => {
  it('matches equal keys and names what is missing, unexpected or out of order', async () => {
    const r = await run(
      [
        [0, 0, 1],
        [0, 0, 2],
        [0, 1, 5],
        [1, 0, 1],
        [1, 0, 3],
      ],
      [
        [0, 0, 1],
        [0, 0, 3],
        [0, 1, 5],
        [0, 1, 4],
        [1, 0, 3],
        [2, 0, 1],
      ],
    );
    expect(r.matched).toEqual(['0.0.1=0.0.1/a0.0.1', '0.1.5=0.1.5/a0.1.5', '1.0.3=1.0.3/a1.0.3']);
    expect(r.missing).toEqual(['0.0.2', '1.0.1']);
    expect(r.unexpected).toEqual(['0.0.3', '2.0.1']);
    expect(r.outOfOrder).toEqual(['0.1.4']);
  });

  it('reports everything missing when nothing is found, and everything unexpected when nothing was expected', async () => {
    expect((await run([[1], [2]], [])).missing).toEqual(['1', '2']);
    expect((await run([], [[1], [2]])).unexpected).toEqual(['1', '2']);
  });
});
