import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MailarkError } from '../errors.js';
import { LocalDirStore, TEMP_PREFIX } from './local-dir-store.js';
import { localStoreError } from './local-store-errors.js';

let dir: string;
/** Stores opened by a test, closed after it (their open-file cache holds pack handles). */
let stores: LocalDirStore[] = [];
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mailark-local-'));
});
afterEach(async () => {
  await Promise.all(stores.map((s) => s.close()));
  stores = [];
  await fs.rm(dir, { recursive: true, force: true });
});

function openStore(root: string): LocalDirStore {
  const s = new LocalDirStore(root);
  stores.push(s);
  return s;
}

const bytes = (s: string) => new TextEncoder().encode(s);

async function listKeys(store: LocalDirStore, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for await (const o of store.list(prefix)) out.push(o.key);
  return out;
}

async function filesUnder(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(root, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out.push(path.relative(root, path.join(e.parentPath, e.name)));
  }
  return out.sort();
}

describe('LocalDirStore', () => {
  it('stores each object as one file at its key path, leaving no temp files behind', async () => {
    const store = openStore(dir);
    await store.put('data/ab/abcdef', bytes('pack'));
    await store.put('config', bytes('cfg'));
    await store.put('config', bytes('again')).catch(() => {});
    expect(await filesUnder(dir)).toEqual(['config', 'data/ab/abcdef']);
    expect(await fs.readFile(path.join(dir, 'data/ab/abcdef'), 'utf8')).toBe('pack');
    expect(store.location).toBe(dir);
  });

  it('hides temp files from list and stat, and sweeps only stale ones', async () => {
    const store = openStore(dir);
    await store.put('data/ab/p1', bytes('x'));
    const stale = path.join(dir, 'data/ab', `${TEMP_PREFIX}dead`);
    const fresh = path.join(dir, `${TEMP_PREFIX}inflight`);
    await fs.writeFile(stale, 'partial');
    await fs.writeFile(fresh, 'partial');
    const hourAgo = new Date(Date.now() - 2 * 3_600_000);
    await fs.utimes(stale, hourAgo, hourAgo);
    expect(await listKeys(store)).toEqual(['data/ab/p1']);
    expect(await store.sweepTemp()).toBe(1);
    expect(await filesUnder(dir)).toEqual([`${TEMP_PREFIX}inflight`, 'data/ab/p1']);
    expect(await store.sweepTemp(0)).toBe(1);
    expect(await filesUnder(dir)).toEqual(['data/ab/p1']);
  });

  it('refuses keys that would collide with temp-file names', async () => {
    const store = openStore(dir);
    await expect(store.put(`data/${TEMP_PREFIX}x`, bytes('x'))).rejects.toThrow(TypeError);
  });

  it('lists an absent root and an absent prefix directory as empty', async () => {
    expect(await listKeys(openStore(path.join(dir, 'nope')))).toEqual([]);
    const store = openStore(dir);
    await store.put('snapshots/s1', bytes('s'));
    expect(await listKeys(store, 'locks/')).toEqual([]);
    expect(await listKeys(store, 'snapshots/s1/')).toEqual([]);
  });

  it('reads a range through a file handle, without reading the rest', async () => {
    const store = openStore(dir);
    const big = new Uint8Array(4 << 20).map((_, i) => i % 251);
    await store.put('data/00/big', big);
    const got = await store.get('data/00/big', { offset: 3_000_000, length: 10 });
    expect([...got]).toEqual([...big.subarray(3_000_000, 3_000_010)]);
    expect(store.counters.bytesRead).toBe(10);
  });

  it('checks range bounds against the size (asked only when a read comes up short)', async () => {
    const store = openStore(dir);
    await store.put('data/00/ten', new Uint8Array(10).fill(7));
    expect([...(await store.get('data/00/ten', { offset: 10, length: 0 }))]).toEqual([]);
    expect([...(await store.get('data/00/ten', { offset: 8, length: 2 }))]).toEqual([7, 7]);
    for (const range of [
      { offset: 9, length: 2 },
      { offset: 11, length: 0 },
      { offset: -1, length: 1 },
      { offset: 0, length: -1 },
    ]) {
      await expect(store.get('data/00/ten', range)).rejects.toMatchObject({
        code: 'CORRUPT',
        message: expect.stringContaining('is outside object data/00/ten (10 bytes)'),
      });
    }
  });

  it('keeps a pack open across ranged reads, and sees a deleted object gone', async () => {
    const store = openStore(dir);
    await store.put(
      'data/00/pack',
      new Uint8Array(100).map((_, i) => i),
    );
    const opened = (store as unknown as { files: { opens: number } }).files;
    for (let i = 0; i < 10; i++) {
      expect([...(await store.get('data/00/pack', { offset: i * 10, length: 3 }))]).toEqual([
        i * 10,
        i * 10 + 1,
        i * 10 + 2,
      ]);
    }
    expect(opened.opens).toBe(1);
    await store.delete('data/00/pack');
    await expect(store.get('data/00/pack', { offset: 0, length: 1 })).rejects.toMatchObject({
      code: 'OBJECT_NOT_FOUND',
    });
    await store.put('data/00/pack', new Uint8Array([9, 9]));
    expect([...(await store.get('data/00/pack', { offset: 0, length: 2 }))]).toEqual([9, 9]);
    await store.close();
  });

  it('maps a file where a directory should be to STORE_IO on put, not-found on get', async () => {
    const store = openStore(dir);
    await store.put('a', bytes('file'));
    const err = (await store.put('a/b', bytes('x')).catch((e: unknown) => e)) as MailarkError;
    expect(err).toBeInstanceOf(MailarkError);
    expect(err.code).toBe('STORE_IO');
    expect(err.message).toContain('a parent of a/b is a file');
    expect(err.hint).toContain('choose a location that is a directory');
    expect(((await store.get('a/b').catch((e: unknown) => e)) as MailarkError).code).toBe('OBJECT_NOT_FOUND');
    expect(await store.stat('a/b')).toBeUndefined();
  });

  it('fails a put under a directory that refuses new entries, instead of spinning in mkdir', async () => {
    // /proc exists but answers ENOENT to mkdir: Node's recursive mkdir loops forever there.
    const store = openStore('/proc/mailark-no-such-dir/repo');
    const err = (await store.put('keys/k', bytes('x')).catch((e: unknown) => e)) as MailarkError;
    expect(err).toBeInstanceOf(MailarkError);
    expect(err.code).toBe('STORE_IO');
    expect(err.message).toContain('its directory cannot be created there');
    expect(err.details?.transient).toBe(false);
  }, 5_000);

  it('creates missing parents, concurrently, and syncs into an existing tree', async () => {
    const store = openStore(path.join(dir, 'new', 'deep'));
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        store.put(`data/${(i % 3).toString(16).padStart(2, '0')}/p${i}`, bytes('x')),
      ),
    );
    expect(await listKeys(store)).toHaveLength(20);
  });

  it('treats a key that names a directory of objects as absent', async () => {
    const store = openStore(dir);
    await store.put('data/ab/p', bytes('x'));
    expect(((await store.get('data/ab').catch((e: unknown) => e)) as MailarkError).code).toBe(
      'OBJECT_NOT_FOUND',
    );
    expect(await store.stat('data/ab')).toBeUndefined();
    await store.delete('data/ab');
    expect(await listKeys(store)).toEqual(['data/ab/p']);
  });

  it('reports conditional writes as supported', async () => {
    expect(await openStore(dir).probeCapabilities()).toEqual({ conditionalWrites: true });
  });
});

describe('localStoreError', () => {
  const errno = (code: string) => Object.assign(new Error(`${code}: oops`), { code });

  it.each([
    ['ENOSPC', 'no space left', 'free space'],
    ['EDQUOT', 'no space left', 'free space'],
    ['EACCES', 'permission denied', 'read and write access'],
    ['EPERM', 'permission denied', 'read and write access'],
    ['EROFS', 'read-only', 'remount'],
  ])('maps %s to a permanent STORE_IO with a hint', (code, message, hint) => {
    const e = localStoreError(errno(code), 'put', 'config', '/srv/repo');
    expect(e.code).toBe('STORE_IO');
    expect(e.message).toContain(message);
    expect(e.message).toContain('put config in /srv/repo');
    expect(e.hint).toContain(hint);
    expect(e.details?.transient).toBe(false);
  });

  it('maps ENOENT to OBJECT_NOT_FOUND, EEXIST to OBJECT_EXISTS or a layout error, EIO to transient STORE_IO', () => {
    expect(localStoreError(errno('ENOENT'), 'get', 'k', '/r').code).toBe('OBJECT_NOT_FOUND');
    expect(localStoreError(errno('EEXIST'), 'link', 'k', '/r').code).toBe('OBJECT_EXISTS');
    // During put, EEXIST/ENOTDIR come from mkdir meeting a file: a layout problem, not an existing object.
    expect(localStoreError(errno('EEXIST'), 'put', 'k', '/r').code).toBe('STORE_IO');
    expect(localStoreError(errno('ENOTDIR'), 'put', 'k', '/r').code).toBe('STORE_IO');
    const eio = localStoreError(errno('EIO'), 'get', 'k', '/r');
    expect(eio.code).toBe('STORE_IO');
    expect(eio.details?.transient).toBe(true);
    expect(eio.hint).toContain('/r');
  });

  it('passes MailarkErrors through', () => {
    const e = new MailarkError('CORRUPT', 'x');
    expect(localStoreError(e, 'get', 'k', '/r')).toBe(e);
  });
});
