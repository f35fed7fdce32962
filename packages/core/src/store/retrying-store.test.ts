import { describe, expect, it } from 'vitest';
import { MailarkError } from '../errors.js';
import { RecordingReporter } from '../progress.js';
import { FaultyStore } from './faulty-store.js';
import { MemoryStore } from './memory-store.js';
import type { ObjectInfo, ObjectStore } from './object-store.js';
import { backoffDelay, isTransientStoreError, RetryingStore } from './retrying-store.js';

const bytes = (s: string) => new TextEncoder().encode(s);
const noSleep = { sleep: async () => {}, random: () => 0.5 };

async function listKeys(store: ObjectStore, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for await (const o of store.list(prefix)) out.push(o.key);
  return out;
}

describe('backoffDelay', () => {
  it('doubles the cap per retry, applies full jitter and respects the maximum', () => {
    expect(backoffDelay(1, 100, 10_000, () => 0.999)).toBe(99);
    expect(backoffDelay(2, 100, 10_000, () => 0.999)).toBe(199);
    expect(backoffDelay(4, 100, 10_000, () => 0.5)).toBe(400);
    expect(backoffDelay(30, 100, 10_000, () => 0.999)).toBe(9990);
    expect(backoffDelay(3, 100, 10_000, () => 0)).toBe(0);
  });
});

describe('isTransientStoreError', () => {
  it('retries unreachable and I/O errors unless marked permanent', () => {
    expect(isTransientStoreError(new MailarkError('STORE_UNREACHABLE', 'x'))).toBe(true);
    expect(isTransientStoreError(new MailarkError('STORE_IO', 'x', { details: { transient: true } }))).toBe(
      true,
    );
    expect(isTransientStoreError(new MailarkError('STORE_IO', 'x', { details: { transient: false } }))).toBe(
      false,
    );
    for (const code of [
      'STORE_AUTH',
      'STORE_BUCKET_MISSING',
      'OBJECT_NOT_FOUND',
      'OBJECT_EXISTS',
      'CORRUPT',
    ] as const) {
      expect(isTransientStoreError(new MailarkError(code, 'x'))).toBe(false);
    }
    expect(isTransientStoreError(new TypeError('bug'))).toBe(false);
  });
});

describe('RetryingStore', () => {
  it('gets every operation through transient failures, waiting the backoff between tries', async () => {
    const inner = new MemoryStore();
    await inner.put('config', bytes('cfg'));
    const faulty = new FaultyStore(inner, { faults: [{ op: '*', nth: [1, 2] }] });
    const waits: number[] = [];
    const reporter = new RecordingReporter();
    const store = new RetryingStore(faulty, {
      baseDelayMs: 100,
      random: () => 0.5,
      sleep: async (ms) => {
        waits.push(ms);
      },
      reporter,
    });
    await store.put('snapshots/a', bytes('A'));
    expect(new TextDecoder().decode(await store.get('snapshots/a'))).toBe('A');
    expect(await store.stat('config')).toEqual({ key: 'config', size: 3 });
    expect(await listKeys(store)).toEqual(['config', 'snapshots/a']);
    await store.delete('snapshots/a');
    expect(await inner.stat('snapshots/a')).toBeUndefined();
    // Each of the five operations failed twice: waits of 50 then 100 ms (half of 100, half of 200).
    expect(waits).toEqual(Array.from({ length: 5 }, () => [50, 100]).flat());
    expect(faulty.injected.length).toBe(10);
    expect(reporter.logs.filter((l) => l.level === 'warn').length).toBe(10);
    expect(reporter.logs[0]?.message).toContain('store put snapshots/a failed, retrying');
  });

  it('gives up after maxAttempts with the last error', async () => {
    const faulty = new FaultyStore(new MemoryStore(), {
      faults: [{ op: 'get', after: 0, code: 'STORE_UNREACHABLE' }],
    });
    const store = new RetryingStore(faulty, { maxAttempts: 4, ...noSleep });
    const err = await store.get('config').catch((e: unknown) => e);
    expect((err as MailarkError).code).toBe('STORE_UNREACHABLE');
    expect(faulty.calls.get).toBe(4);
  });

  it('surfaces permanent errors at once, with their own code', async () => {
    const faulty = new FaultyStore(new MemoryStore(), {
      faults: [
        { op: 'put', after: 0, code: 'STORE_AUTH' },
        { op: 'stat', after: 0, code: 'STORE_IO', transient: false },
      ],
    });
    const store = new RetryingStore(faulty, noSleep);
    expect(((await store.put('k', bytes('x')).catch((e: unknown) => e)) as MailarkError).code).toBe(
      'STORE_AUTH',
    );
    expect(((await store.stat('k').catch((e: unknown) => e)) as MailarkError).code).toBe('STORE_IO');
    expect(((await store.get('k').catch((e: unknown) => e)) as MailarkError).code).toBe('OBJECT_NOT_FOUND');
    expect(faulty.calls).toMatchObject({ put: 1, stat: 1, get: 1 });
  });

  it('treats OBJECT_EXISTS after a lost put response as success when the stored bytes are ours', async () => {
    const inner = new MemoryStore();
    // The first put lands, then its response is lost: the retry meets the object.
    const faulty = new FaultyStore(inner, { faults: [{ op: 'put', nth: [1], when: 'after' }] });
    const store = new RetryingStore(faulty, noSleep);
    await store.put('data/00/pack', bytes('pack bytes'));
    expect(faulty.calls.put).toBe(2);
    expect(new TextDecoder().decode(await inner.get('data/00/pack'))).toBe('pack bytes');
  });

  it('still refuses an overwrite with different bytes after a lost response', async () => {
    const inner = new MemoryStore();
    await inner.put('locks/l', bytes('someone else'));
    const faulty = new FaultyStore(inner, { faults: [{ op: 'put', nth: [1] }] });
    const store = new RetryingStore(faulty, noSleep);
    const err = await store.put('locks/l', bytes('mine')).catch((e: unknown) => e);
    expect((err as MailarkError).code).toBe('OBJECT_EXISTS');
    // And without any earlier failure, OBJECT_EXISTS is reported without a read-back.
    const plain = new RetryingStore(inner, noSleep);
    expect(
      ((await plain.put('locks/l', bytes('someone else')).catch((e: unknown) => e)) as MailarkError).code,
    ).toBe('OBJECT_EXISTS');
  });

  it('restarts a listing that fails midway without yielding any key twice', async () => {
    const inner = new MemoryStore();
    for (let i = 0; i < 20; i++) await inner.put(`index/${String(i).padStart(2, '0')}`, bytes(String(i)));
    const faulty = new FaultyStore(inner, { faults: [{ op: 'list', nth: [1, 2], when: 'after' }] });
    const store = new RetryingStore(faulty, noSleep);
    const keys = await listKeys(store, 'index/');
    expect(keys).toEqual([...new Set(keys)]);
    expect(keys.length).toBe(20);
    expect(faulty.calls.list).toBe(3);
  });

  it('does not depend on the inner store listing in order', async () => {
    let calls = 0;
    const unordered: ObjectStore = {
      location: 'test:unordered',
      put: async () => {},
      get: async () => new Uint8Array(),
      stat: async () => undefined,
      delete: async () => {},
      close: async () => {},
      async *list(): AsyncIterable<ObjectInfo> {
        calls++;
        yield { key: 'a/b/x', size: 1 };
        if (calls === 1) throw new MailarkError('STORE_UNREACHABLE', 'connection reset');
        yield { key: 'a/b-c', size: 1 };
      },
    };
    expect(await listKeys(new RetryingStore(unordered, noSleep), 'a/')).toEqual(['a/b/x', 'a/b-c']);
  });

  it('hands capability probing to the wrapped store', async () => {
    const store = new RetryingStore(new MemoryStore(), noSleep);
    expect(await store.probeCapabilities()).toEqual({ conditionalWrites: true });
    expect(store.location).toBe('memory:memory');
  });
});
