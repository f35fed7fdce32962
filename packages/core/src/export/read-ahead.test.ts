import { describe, expect, it } from 'vitest';
import { readAhead } from './read-ahead.js';

describe('readAhead', () => {
  it('yields in input order with several loads in flight, and holds at most max(budget, largest item)', async () => {
    const weights = [1, 1, 1, 50, 1, 1, 30, 30, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1];
    let held = 0;
    let maxHeld = 0;
    let inFlight = 0;
    let maxInFlight = 0;
    const out: number[] = [];
    const gen = readAhead(
      weights.map((w, i) => ({ i, w })),
      async (x) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        held += x.w;
        maxHeld = Math.max(maxHeld, held);
        await new Promise((r) => setTimeout(r, x.i % 3));
        inFlight--;
        return x;
      },
      (x) => x.w,
      { items: 4, weight: 10 },
    );
    for await (const x of gen) {
      out.push(x.i);
      await new Promise((r) => setTimeout(r, 1)); // the consumer works on it...
      held -= x.w; // ...and lets go of it before asking for the next
    }
    expect(out).toEqual(weights.map((_, i) => i));
    expect(maxInFlight).toBeGreaterThan(1);
    expect(maxInFlight).toBeLessThanOrEqual(4);
    expect(maxHeld).toBeLessThanOrEqual(50);
  });

  it('passes a load failure to the consumer at that item', async () => {
    const gen = readAhead(
      [1, 2, 3],
      async (x) => {
        if (x === 2) throw new Error('boom');
        return x;
      },
      () => 1,
    );
    const got: number[] = [];
    await expect(
      (async () => {
        for await (const x of gen) got.push(x);
      })(),
    ).rejects.toThrow('boom');
    expect(got).toEqual([1]);
  });
});
