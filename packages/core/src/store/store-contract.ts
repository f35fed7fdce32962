/**
 * The ObjectStore contract suite (restic's backend/test, kopia's storage tests): one set of vitest
 * cases that every store must pass, registered by `runStoreContract(name, factory)` from a test file
 * (store-contract.test.ts for memory and local directories, test/s3-store.test.ts for S3).
 *
 * Each case gets a fresh, empty store from the factory, so cases never see each other's objects.
 * Not a .test.ts itself: it is imported by test files, and by nothing in the product.
 */
import { createHash } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it as vitestIt } from 'vitest';
import { MailarkError } from '../errors.js';
import type { ObjectInfo, ObjectStore } from './object-store.js';

export interface ContractSubject {
  store: ObjectStore;
  /** Removes what the store left behind (temp dir, key prefix); store.close() is called first. */
  dispose?: () => Promise<void>;
}

export interface StoreContractOptions {
  /**
   * true when put() refuses an existing key atomically (local link(2), S3 with If-None-Match, memory):
   * of N concurrent writers of one key with DIFFERENT bytes exactly one wins and the others get
   * OBJECT_EXISTS. false for check-then-write stores (S3 without conditional writes): there the case
   * writes IDENTICAL bytes, at least one writer wins, the others win too or get OBJECT_EXISTS, and the
   * stored object is those bytes (why that is enough: object-store.ts).
   */
  atomicNoOverwrite: boolean;
  /**
   * true when list() yields keys in ascending order (memory, local, AWS S3). s3rver walks its
   * directories instead ('a/b/x' before 'a/b-c'), so callers must not rely on order; for such stores
   * the suite checks "every key exactly once" without the order.
   */
  sortedList: boolean;
  /** Per-case timeout; S3 cases need more than the default. */
  timeoutMs?: number;
}

/** Runs `tasks` with at most `limit` in flight, preserving result order. */
async function pool<T>(limit: number, tasks: Array<() => Promise<T>>): Promise<T[]> {
  const out: T[] = new Array(tasks.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < tasks.length) {
      const i = next++;
      out[i] = await (tasks[i] as () => Promise<T>)();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  return out;
}

/** Deterministic pseudo-random bytes (xorshift32), so failures reproduce. */
export function testBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const text = (s: string) => new TextEncoder().encode(s);

async function listAll(store: ObjectStore, prefix: string): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  for await (const info of store.list(prefix)) out.push(info);
  return out;
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'resolved';
  } catch (err) {
    return err instanceof MailarkError ? err.code : `non-MailarkError ${String(err)}`;
  }
}

export function runStoreContract(
  name: string,
  factory: () => Promise<ContractSubject>,
  options: StoreContractOptions,
): void {
  describe(`ObjectStore contract: ${name}`, () => {
    let subject: ContractSubject;
    let store: ObjectStore;
    const timeout = options.timeoutMs;
    const it = (title: string, fn: () => Promise<void>) => vitestIt(title, fn, timeout);

    beforeEach(async () => {
      subject = await factory();
      store = subject.store;
    }, timeout);
    afterEach(async () => {
      await store.close();
      await subject.dispose?.();
    }, timeout);

    it('starts empty and reports a location', async () => {
      expect(await listAll(store, '')).toEqual([]);
      expect(store.location.length).toBeGreaterThan(0);
    });

    it('round-trips an object, visible at once to get, stat and list (read-after-write)', async () => {
      const data = text('hello, mailark');
      await store.put('config', data);
      expect(new TextDecoder().decode(await store.get('config'))).toBe('hello, mailark');
      expect(await store.stat('config')).toEqual({ key: 'config', size: data.byteLength });
      expect(await listAll(store, '')).toEqual([{ key: 'config', size: data.byteLength }]);
    });

    it('keeps binary bytes intact (every byte value, 1 MiB of noise, a deep key)', async () => {
      const all = Uint8Array.from({ length: 512 }, (_, i) => i % 256);
      const noise = testBytes(1 << 20, 7);
      const key = 'data/ab/ab0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab';
      await store.put('keys/all-bytes', all);
      await store.put(key, noise);
      expect(sha(await store.get('keys/all-bytes'))).toBe(sha(all));
      expect(sha(await store.get(key))).toBe(sha(noise));
      expect((await store.stat(key))?.size).toBe(1 << 20);
    });

    it('copies buffers: later changes to the caller buffer or a returned buffer do not leak in', async () => {
      const data = text('original');
      await store.put('snapshots/x', data);
      data.fill(0x41);
      const got = await store.get('snapshots/x');
      got.fill(0x42);
      expect(new TextDecoder().decode(await store.get('snapshots/x'))).toBe('original');
    });

    it('stores an empty object', async () => {
      await store.put('locks/empty', new Uint8Array(0));
      expect((await store.get('locks/empty')).byteLength).toBe(0);
      expect(await store.stat('locks/empty')).toEqual({ key: 'locks/empty', size: 0 });
      expect(await listAll(store, 'locks/')).toEqual([{ key: 'locks/empty', size: 0 }]);
      expect((await store.get('locks/empty', { offset: 0, length: 0 })).byteLength).toBe(0);
    });

    it('never overwrites: a second put of the key rejects OBJECT_EXISTS and keeps the first bytes', async () => {
      await store.put('index/one', text('first'));
      const err = await store.put('index/one', text('second')).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(MailarkError);
      expect((err as MailarkError).code).toBe('OBJECT_EXISTS');
      expect(new TextDecoder().decode(await store.get('index/one'))).toBe('first');
    });

    it('reports a missing object as OBJECT_NOT_FOUND on get (whole and ranged) and undefined on stat', async () => {
      expect(await codeOf(store.get('snapshots/missing'))).toBe('OBJECT_NOT_FOUND');
      expect(await codeOf(store.get('snapshots/missing', { offset: 0, length: 1 }))).toBe('OBJECT_NOT_FOUND');
      expect(await store.stat('snapshots/missing')).toBeUndefined();
      expect(await store.stat('no/such/dir/at/all')).toBeUndefined();
    });

    it('reads exact byte ranges: start, middle, end, zero-length', async () => {
      const data = testBytes(10_000, 3);
      await store.put('data/00/pack', data);
      const cases = [
        { offset: 0, length: 100 },
        { offset: 4321, length: 1234 },
        { offset: 9_000, length: 1_000 },
        { offset: 9_999, length: 1 },
        { offset: 0, length: 10_000 },
      ];
      for (const r of cases) {
        const got = await store.get('data/00/pack', r);
        expect(got.byteLength).toBe(r.length);
        expect(sha(got)).toBe(sha(data.subarray(r.offset, r.offset + r.length)));
      }
      expect((await store.get('data/00/pack', { offset: 5_000, length: 0 })).byteLength).toBe(0);
      expect((await store.get('data/00/pack', { offset: 10_000, length: 0 })).byteLength).toBe(0);
    });

    it('rejects a range beyond the end as CORRUPT, never a short read', async () => {
      await store.put('data/00/short', testBytes(100, 4));
      expect(await codeOf(store.get('data/00/short', { offset: 90, length: 11 }))).toBe('CORRUPT');
      expect(await codeOf(store.get('data/00/short', { offset: 100, length: 1 }))).toBe('CORRUPT');
      expect(await codeOf(store.get('data/00/short', { offset: 500, length: 10 }))).toBe('CORRUPT');
    });

    it('lists more than 1,000 keys exactly once, sorted, with sizes (pagination)', async () => {
      const keys = Array.from(
        { length: 1_100 },
        (_, i) => `data/${(i % 7).toString(16).padStart(2, '0')}/${i}`,
      );
      await pool(
        32,
        keys.map((k, i) => () => store.put(k, new Uint8Array(i % 5))),
      );
      const listed = await listAll(store, 'data/');
      expect(listed.length).toBe(1_100);
      expect(new Set(listed.map((x) => x.key)).size).toBe(1_100);
      const order = listed.map((x) => x.key);
      expect(options.sortedList ? order : [...order].sort()).toEqual([...keys].sort());
      const sizes = new Map(keys.map((k, i) => [k, i % 5]));
      for (const x of listed) expect(x.size).toBe(sizes.get(x.key));
    });

    it('lists by prefix without leaking across prefixes that share a string prefix', async () => {
      // (No key is both an object and a "directory" of others: a local directory cannot hold that.)
      for (const k of ['a/b/x', 'a/b/y/z', 'a/bc', 'a/bcd/e', 'a/b-c', 'a/a', 'b/b/x', 'ab']) {
        await store.put(k, text(k));
      }
      const keys = async (p: string) => {
        const got = (await listAll(store, p)).map((x) => x.key);
        return options.sortedList ? got : [...got].sort();
      };
      expect(await keys('a/b/')).toEqual(['a/b/x', 'a/b/y/z']);
      expect(await keys('a/bc/')).toEqual([]);
      expect(await keys('a/bcd/')).toEqual(['a/bcd/e']);
      // A prefix is a string prefix, as on S3: 'a/b' also matches 'a/b-c' and 'a/bc'.
      expect(await keys('a/b')).toEqual(['a/b-c', 'a/b/x', 'a/b/y/z', 'a/bc', 'a/bcd/e']);
      expect(await keys('a/bc')).toEqual(['a/bc', 'a/bcd/e']);
      expect(await keys('a')).toEqual(['a/a', 'a/b-c', 'a/b/x', 'a/b/y/z', 'a/bc', 'a/bcd/e', 'ab']);
      expect(await keys('c/')).toEqual([]);
      expect((await keys('')).length).toBe(8);
    });

    it('deletes idempotently, and the key can be written again afterwards', async () => {
      await store.delete('locks/never-existed');
      await store.put('locks/l1', text('v1'));
      await store.delete('locks/l1');
      expect(await store.stat('locks/l1')).toBeUndefined();
      expect(await codeOf(store.get('locks/l1'))).toBe('OBJECT_NOT_FOUND');
      expect(await listAll(store, 'locks/')).toEqual([]);
      await store.delete('locks/l1');
      await store.put('locks/l1', text('v2'));
      expect(new TextDecoder().decode(await store.get('locks/l1'))).toBe('v2');
    });

    it('takes 50 concurrent writers of distinct keys', async () => {
      const items = Array.from({ length: 50 }, (_, i) => ({
        key: `data/ff/k${i}`,
        data: testBytes(1000 + i, i + 1),
      }));
      await Promise.all(items.map((x) => store.put(x.key, x.data)));
      const listed = await listAll(store, 'data/ff/');
      expect(listed.length).toBe(50);
      for (const x of items) expect(sha(await store.get(x.key))).toBe(sha(x.data));
    });

    if (options.atomicNoOverwrite) {
      it('lets exactly one of 10 concurrent writers of the same key win (different bytes)', async () => {
        const bodies = Array.from({ length: 10 }, (_, i) => testBytes(2000, 100 + i));
        const results = await Promise.allSettled(bodies.map((b) => store.put('snapshots/race', b)));
        const winners = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
        expect(winners.length).toBe(1);
        for (const r of results) {
          if (r.status === 'rejected') expect((r.reason as MailarkError).code).toBe('OBJECT_EXISTS');
        }
        expect(sha(await store.get('snapshots/race'))).toBe(sha(bodies[winners[0] as number] as Uint8Array));
      });
    } else {
      it('keeps the bytes of 10 concurrent writers of the same key (identical bytes)', async () => {
        const body = testBytes(2000, 100);
        const results = await Promise.allSettled(
          Array.from({ length: 10 }, () => store.put('snapshots/race', body)),
        );
        expect(results.some((r) => r.status === 'fulfilled')).toBe(true);
        for (const r of results) {
          if (r.status === 'rejected') expect((r.reason as MailarkError).code).toBe('OBJECT_EXISTS');
        }
        expect(sha(await store.get('snapshots/race'))).toBe(sha(body));
      });
    }

    it('rejects invalid keys before touching the backend', async () => {
      for (const bad of ['', '/abs', 'trailing/', 'a//b', 'a/../b', './a']) {
        await expect(store.put(bad, text('x'))).rejects.toThrow(TypeError);
        await expect(store.get(bad)).rejects.toThrow(TypeError);
      }
    });
  });
}
