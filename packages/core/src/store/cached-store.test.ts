import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RecordingReporter } from '../progress.js';
import { CachedStore } from './cached-store.js';
import { LocalDirStore } from './local-dir-store.js';
import { MemoryStore } from './memory-store.js';
import { RetryingStore } from './retrying-store.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
/** An object named by the SHA-256 of its bytes, as index and snapshot objects are. */
function named(kind: string, text: string): { key: string; bytes: Buffer } {
  const bytes = Buffer.from(text);
  return { key: `${kind}/${sha(bytes)}`, bytes };
}

let dir: string;
let inner: MemoryStore;
let store: CachedStore;
let reporter: RecordingReporter;

beforeEach(async () => {
  dir = join(await mkdtemp(join(tmpdir(), 'mailark-cache-')), 'repo-id');
  inner = new MemoryStore();
  reporter = new RecordingReporter();
  store = new CachedStore(inner, { dir, prefixes: ['index/', 'snapshots/'], reporter });
});

afterEach(async () => {
  await rm(join(dir, '..'), { recursive: true, force: true });
});

async function drain(s: CachedStore, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const { key } of s.list(prefix)) keys.push(key);
  return keys.sort();
}

describe('CachedStore', () => {
  it("offers the inner store's spool for uncached folders only, and none when the inner has none", async () => {
    expect(store.spool).toBeUndefined(); // MemoryStore: whole objects only
    const local = new CachedStore(new LocalDirStore(join(dir, '..', 'local')), {
      dir,
      prefixes: ['index/', 'snapshots/'],
      reporter,
    });
    expect(() => local.spool?.('index/')).toThrow(TypeError);
    const sp = local.spool?.('data/');
    if (sp === undefined) throw new Error('no spool through the cache');
    sp.append(Buffer.from('pack bytes'));
    await sp.commit('data/00/p');
    sp.close();
    expect(Buffer.from(await local.get('data/00/p')).toString()).toBe('pack bytes');
  });

  it('answers a second read from the cache without touching the store', async () => {
    const o = named('index', 'index object one');
    await inner.put(o.key, o.bytes);
    expect(Buffer.from(await store.get(o.key))).toEqual(o.bytes);
    const before = { ...inner.counters };
    expect(Buffer.from(await store.get(o.key))).toEqual(o.bytes);
    expect(inner.counters).toEqual(before);
    expect(store.cacheCounters).toMatchObject({
      hits: 1,
      misses: 1,
      stored: 1,
      bytesFromCache: o.bytes.length,
    });
    // The file holds the stored bytes exactly, under the key's path, private to the user.
    expect(await readFile(join(dir, o.key))).toEqual(o.bytes);
    expect((await stat(join(dir, o.key))).mode & 0o777).toBe(0o600);
    expect(await readFile(join(dir, 'CACHEDIR.TAG'), 'utf8')).toMatch(
      /^Signature: 8a477f597d28d172789f06886806bc55/,
    );
  });

  it('forwards the inner counters, so figures count only store requests', async () => {
    expect(store.counters).toBe(inner.counters);
    // As on S3, where the store sits inside a RetryingStore.
    const chained = new CachedStore(new RetryingStore(inner), { dir, prefixes: ['index/'] });
    expect(chained.counters).toBe(inner.counters);
  });

  it('writes through on put, then caches: a backup reads its own index objects locally', async () => {
    const o = named('snapshots', '{"time":"2026-11-21T02:00:00Z"}');
    await store.put(o.key, o.bytes);
    expect(Buffer.from(inner.raw(o.key) ?? [])).toEqual(o.bytes);
    const gets = inner.counters.gets;
    expect(Buffer.from(await store.get(o.key))).toEqual(o.bytes);
    expect(inner.counters.gets).toBe(gets);
  });

  it('re-fetches and repairs a damaged or truncated cache file', async () => {
    const o = named('index', 'index object to damage');
    await store.put(o.key, o.bytes);
    for (const damage of [Buffer.from('garbage'), o.bytes.subarray(0, 5), Buffer.alloc(0)]) {
      await writeFile(join(dir, o.key), damage);
      const gets = inner.counters.gets;
      expect(Buffer.from(await store.get(o.key))).toEqual(o.bytes);
      expect(inner.counters.gets).toBe(gets + 1);
      expect(await readFile(join(dir, o.key))).toEqual(o.bytes);
    }
    expect(store.cacheCounters.repaired).toBe(3);
    expect(reporter.logs.filter((l) => l.level === 'warn').map((l) => l.message)[0]).toContain('is damaged');
  });

  it('never caches bytes that do not match their name, and never caches other prefixes', async () => {
    const o = named('index', 'the real bytes');
    inner.corrupt(o.key, Buffer.from('damaged in the store'));
    expect(Buffer.from(await store.get(o.key)).toString()).toBe('damaged in the store');
    const data = named('data/ab', 'a pack');
    await store.put(data.key, data.bytes);
    await store.get(data.key);
    await store.put('index/not-a-hash', Buffer.from('x'));
    await store.get('index/not-a-hash');
    await store.put('config', Buffer.from('sealed config'));
    expect(await readdir(dir).catch(() => [])).toEqual([]);
    expect(store.cacheCounters.stored).toBe(0);
  });

  it('passes ranged reads through to the store', async () => {
    const o = named('index', '0123456789');
    await store.put(o.key, o.bytes);
    const gets = inner.counters.gets;
    expect(Buffer.from(await store.get(o.key, { offset: 2, length: 3 })).toString()).toBe('234');
    expect(inner.counters.gets).toBe(gets + 1);
    expect(store.cacheCounters.hits).toBe(0);
  });

  it('deletes both the object and its copy', async () => {
    const o = named('snapshots', 'a snapshot to forget');
    await store.put(o.key, o.bytes);
    await store.delete(o.key);
    expect(inner.raw(o.key)).toBeUndefined();
    await expect(stat(join(dir, o.key))).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(store.get(o.key)).rejects.toMatchObject({ code: 'OBJECT_NOT_FOUND' });
  });

  it('a complete listing drops the copies of objects the store no longer has (pruned elsewhere)', async () => {
    const keep = named('index', 'kept');
    const gone = named('index', 'pruned by another machine');
    const snap = named('snapshots', 'a snapshot');
    for (const o of [keep, gone, snap]) await store.put(o.key, o.bytes);
    await inner.delete(gone.key);
    // Old enough: the listing below started after they were written.
    const old = new Date(Date.now() - 10_000);
    for (const o of [keep, gone, snap]) await utimes(join(dir, o.key), old, old);
    expect(await drain(store, 'index/')).toEqual([keep.key]);
    await expect(stat(join(dir, gone.key))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await readFile(join(dir, keep.key))).toEqual(keep.bytes);
    // Another prefix is not judged by this listing.
    expect(await readFile(join(dir, snap.key))).toEqual(snap.bytes);
    expect(store.cacheCounters.dropped).toBe(1);
  });

  it('keeps copies written after the listing began, and drops nothing on a listing cut short', async () => {
    const a = named('index', 'a');
    const b = named('index', 'b');
    const c = named('index', 'c');
    for (const o of [a, b, c]) await store.put(o.key, o.bytes);
    const old = new Date(Date.now() - 10_000);
    await utimes(join(dir, a.key), old, old);
    await inner.delete(a.key);
    await inner.delete(b.key);
    // b's copy is "newer than the listing" only if written after it began: simulate with a future mtime.
    const future = new Date(Date.now() + 60_000);
    await utimes(join(dir, b.key), future, future);
    // The consumer stops after the first key: the listing proves nothing about the others.
    for await (const _ of store.list('index/')) break;
    expect(store.cacheCounters.dropped).toBe(0);
    expect(await readFile(join(dir, a.key))).toEqual(a.bytes);
    expect(await drain(store, 'index/')).toEqual([c.key]);
    await expect(stat(join(dir, a.key))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await readFile(join(dir, b.key))).toEqual(b.bytes);
    expect(store.cacheCounters.dropped).toBe(1);
  });

  it('sweeps temp files a crashed writer left, once they are old', async () => {
    await mkdir(join(dir, 'index'), { recursive: true });
    const stale = join(dir, 'index', '.tmp-0123456789abcdef');
    const fresh = join(dir, 'index', '.tmp-fedcba9876543210');
    await writeFile(stale, 'half');
    await writeFile(fresh, 'half');
    const old = new Date(Date.now() - 2 * 3_600_000);
    await utimes(stale, old, old);
    await drain(store, 'index/');
    expect(await readdir(join(dir, 'index'))).toEqual(['.tmp-fedcba9876543210']);
  });

  it('works on without a cache when the directory cannot be written, warning once', async () => {
    await mkdir(join(dir, '..'), { recursive: true });
    await writeFile(dir, 'a file where the cache directory should be');
    const o = named('index', 'uncacheable');
    const p = named('index', 'also uncacheable');
    await store.put(o.key, o.bytes);
    await store.put(p.key, p.bytes);
    expect(Buffer.from(await store.get(o.key))).toEqual(o.bytes);
    expect(await drain(store, 'index/')).toEqual([o.key, p.key].sort());
    const warnings = reporter.logs.filter((l) => l.level === 'warn');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.message).toContain('is not usable');
  });

  it('refuses prefixes that are not folders', () => {
    expect(() => new CachedStore(inner, { dir, prefixes: ['index'] })).toThrow(TypeError);
    expect(() => new CachedStore(inner, { dir, prefixes: ['../x/'] })).toThrow(TypeError);
  });
});
