import { describe, expect, it } from 'vitest';
import { MailarkError } from '../errors.js';
import { FaultyStore } from './faulty-store.js';
import { MemoryStore } from './memory-store.js';
import type { ObjectInfo, ObjectStore } from './object-store.js';
import { probeCapabilities } from './probe.js';

/** A store that overwrites silently, as s3rver does with If-None-Match. */
class OverwritingStore implements ObjectStore {
  readonly location = 'test:overwriting';
  readonly objects = new Map<string, Uint8Array>();
  async put(key: string, data: Uint8Array) {
    this.objects.set(key, data);
  }
  async get(key: string) {
    const d = this.objects.get(key);
    if (d === undefined) throw new MailarkError('OBJECT_NOT_FOUND', key);
    return d;
  }
  async stat(key: string) {
    const d = this.objects.get(key);
    return d === undefined ? undefined : { key, size: d.byteLength };
  }
  async *list(): AsyncIterable<ObjectInfo> {}
  async delete(key: string) {
    this.objects.delete(key);
  }
  async close() {}
}

describe('probeCapabilities', () => {
  it('finds conditional writes on the memory store and leaves nothing behind', async () => {
    const store = new MemoryStore();
    expect(await probeCapabilities(store)).toEqual({ conditionalWrites: true });
    const left: string[] = [];
    for await (const o of store.list('')) left.push(o.key);
    expect(left).toEqual([]);
  });

  it('finds none on a store that overwrites, and cleans up', async () => {
    const store = new OverwritingStore();
    expect(await probeCapabilities(store)).toEqual({ conditionalWrites: false });
    expect(store.objects.size).toBe(0);
  });

  it('uses a store’s own probe when it has one (through decorators)', async () => {
    const inner = Object.assign(new OverwritingStore(), {
      probeCapabilities: async () => ({ conditionalWrites: true }),
    });
    expect(await probeCapabilities(new FaultyStore(inner, { faults: [{ op: '*', after: 0 }] }))).toEqual({
      conditionalWrites: true,
    });
  });

  it('reports a store failure rather than guessing', async () => {
    const store = new FaultyStore(new MemoryStore(), {
      faults: [{ op: 'put', nth: [2], code: 'STORE_AUTH' }],
    });
    // FaultyStore delegates the probe to its inner store: probe the faults through a plain wrapper.
    const plain: ObjectStore = {
      location: store.location,
      put: (k, d) => store.put(k, d),
      get: (k, r) => store.get(k, r),
      stat: (k) => store.stat(k),
      list: (p) => store.list(p),
      delete: (k) => store.delete(k),
      close: () => store.close(),
    };
    const err = (await probeCapabilities(plain).catch((e: unknown) => e)) as MailarkError;
    expect(err.code).toBe('STORE_AUTH');
    expect(await store.inner.stat('probe/x')).toBeUndefined();
  });
});
