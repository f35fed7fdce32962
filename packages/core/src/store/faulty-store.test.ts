import { describe, expect, it } from 'vitest';
import { MailarkError } from '../errors.js';
import { FaultyStore, seededRandom } from './faulty-store.js';
import { MemoryStore } from './memory-store.js';

const bytes = (s: string) => new TextEncoder().encode(s);

async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    return (err as MailarkError).code;
  }
}

describe('seededRandom', () => {
  it('is deterministic per seed and stays in [0, 1)', () => {
    const a = seededRandom(42);
    const b = seededRandom(42);
    const xs = Array.from({ length: 1000 }, () => a());
    expect(xs).toEqual(Array.from({ length: 1000 }, () => b()));
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(seededRandom(43)()).not.toBe(xs[0]);
  });
});

describe('FaultyStore', () => {
  it('fails exactly the Nth call of an operation, and nothing is written by a failed put', async () => {
    const inner = new MemoryStore();
    const store = new FaultyStore(inner, { faults: [{ op: 'put', nth: [2] }] });
    const results = [];
    for (const k of ['a', 'b', 'c']) results.push(await outcome(store.put(k, bytes(k))));
    expect(results).toEqual(['ok', 'STORE_IO', 'ok']);
    expect(await inner.stat('b')).toBeUndefined();
    expect(store.injected).toEqual([{ op: 'put', key: 'b', call: 2, kind: 'STORE_IO' }]);
  });

  it('fails every call after N, until healed', async () => {
    const store = new FaultyStore(new MemoryStore(), {
      faults: [{ op: 'put', after: 2, code: 'STORE_UNREACHABLE' }],
    });
    const results = [];
    for (let i = 0; i < 5; i++) results.push(await outcome(store.put(`k${i}`, bytes('x'))));
    expect(results).toEqual(['ok', 'ok', 'STORE_UNREACHABLE', 'STORE_UNREACHABLE', 'STORE_UNREACHABLE']);
    store.heal();
    expect(await outcome(store.put('k9', bytes('x')))).toBe('ok');
  });

  it('fails a seeded share of calls, the same ones on every run', async () => {
    const run = async (seed: number) => {
      const store = new FaultyStore(new MemoryStore(), { seed, faults: [{ op: 'put', rate: 0.3 }] });
      const out: string[] = [];
      for (let i = 0; i < 200; i++) out.push(await outcome(store.put(`k${i}`, bytes('x'))));
      return out;
    };
    const first = await run(7);
    expect(await run(7)).toEqual(first);
    expect(await run(8)).not.toEqual(first);
    const failures = first.filter((r) => r !== 'ok').length;
    expect(failures).toBeGreaterThan(35);
    expect(failures).toBeLessThan(85);
  });

  it("writes, then fails, with when: 'after' (a lost response)", async () => {
    const inner = new MemoryStore();
    const store = new FaultyStore(inner, { faults: [{ op: 'put', nth: [1], when: 'after' }] });
    expect(await outcome(store.put('snapshots/s', bytes('s')))).toBe('STORE_IO');
    expect(new TextDecoder().decode(await inner.get('snapshots/s'))).toBe('s');
  });

  it('limits faults to a key prefix and marks injected errors', async () => {
    const store = new FaultyStore(new MemoryStore(), {
      faults: [{ op: '*', keyPrefix: 'data/', after: 0, transient: false }],
    });
    expect(await outcome(store.put('index/i', bytes('i')))).toBe('ok');
    const err = (await store.put('data/00/p', bytes('p')).catch((e: unknown) => e)) as MailarkError;
    expect(err).toBeInstanceOf(MailarkError);
    expect(err.details).toMatchObject({ injected: true, transient: false, op: 'put', key: 'data/00/p' });
    expect(await outcome(store.get('data/00/p'))).toBe('STORE_IO');
    expect(await outcome(store.delete('data/00/p'))).toBe('STORE_IO');
    expect(await outcome(store.stat('data/00/p'))).toBe('STORE_IO');
  });

  it('truncates a seeded share of reads', async () => {
    const inner = new MemoryStore();
    await inner.put('p', bytes('0123456789'));
    const store = new FaultyStore(inner, { truncateReadRate: 1 });
    expect(new TextDecoder().decode(await store.get('p'))).toBe('01234');
    expect(new TextDecoder().decode(await store.get('p', { offset: 2, length: 4 }))).toBe('23');
    expect(store.injected.map((f) => f.kind)).toEqual(['truncated', 'truncated']);
  });

  it('fails a listing at the start, or after the first key', async () => {
    const inner = new MemoryStore();
    for (const k of ['a', 'b', 'c']) await inner.put(k, bytes(k));
    const store = new FaultyStore(inner, {
      faults: [
        { op: 'list', nth: [1] },
        { op: 'list', nth: [2], when: 'after' },
      ],
    });
    const collect = async () => {
      const seen: string[] = [];
      try {
        for await (const o of store.list('')) seen.push(o.key);
        return `ok ${seen.join(',')}`;
      } catch (err) {
        return `${(err as MailarkError).code} after ${seen.join(',')}`;
      }
    };
    expect(await collect()).toBe('STORE_IO after ');
    expect(await collect()).toBe('STORE_IO after a');
    expect(await collect()).toBe('ok a,b,c');
  });

  it('adds the configured latency through the injected sleep', async () => {
    const waits: number[] = [];
    const store = new FaultyStore(new MemoryStore(), {
      latencyMs: { min: 10, max: 20 },
      sleep: async (ms) => {
        waits.push(ms);
      },
    });
    await store.put('k', bytes('x'));
    await store.get('k');
    expect(waits.length).toBe(2);
    expect(waits.every((ms) => ms >= 10 && ms <= 20)).toBe(true);
  });
});
