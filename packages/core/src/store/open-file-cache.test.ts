import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { eventually } from '../eventually.js';
import { OpenFileCache } from './open-file-cache.js';

let dir: string;
const files: string[] = [];
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mailark-ofc-'));
  files.length = 0;
  for (let i = 0; i < 5; i++) {
    const f = path.join(dir, `f${i}`);
    await fs.writeFile(f, `file ${i}`);
    files.push(f);
  }
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

async function readVia(cache: OpenFileCache, file: string): Promise<string> {
  const f = await cache.acquire(file);
  try {
    const b = Buffer.alloc(6);
    await f.handle.read(b, 0, 6, 0);
    return b.toString();
  } finally {
    f.release();
  }
}

/** Whether a handle was closed: reading through it fails with EBADF once closed. */
async function isClosed(h: import('node:fs/promises').FileHandle): Promise<boolean> {
  return h.stat().then(
    () => false,
    () => true,
  );
}

describe('OpenFileCache', () => {
  it('opens a file once for many reads, concurrent or not', async () => {
    const cache = new OpenFileCache(2);
    const got = await Promise.all([0, 0, 0].map(() => readVia(cache, files[0] as string)));
    expect(got).toEqual(['file 0', 'file 0', 'file 0']);
    expect(await readVia(cache, files[0] as string)).toBe('file 0');
    expect(cache.opens).toBe(1);
    await cache.closeAll();
  });

  it('keeps at most `max` idle handles, closing the least recently used', async () => {
    const cache = new OpenFileCache(2);
    const a = await cache.acquire(files[0] as string);
    a.release();
    await readVia(cache, files[1] as string);
    await readVia(cache, files[0] as string); // f0 is now more recent than f1
    await readVia(cache, files[2] as string); // evicts f1
    expect(cache.size).toBe(2);
    expect(await isClosed(a.handle)).toBe(false);
    await readVia(cache, files[1] as string); // reopened, evicts f0
    expect(cache.opens).toBe(4);
    expect(await isClosed(a.handle)).toBe(true);
    await cache.closeAll();
  });

  it('never closes a handle under its reader, and closes it on release once evicted', async () => {
    const cache = new OpenFileCache(1);
    const busy = await cache.acquire(files[0] as string);
    await readVia(cache, files[1] as string);
    await readVia(cache, files[2] as string);
    expect(await isClosed(busy.handle)).toBe(false);
    await cache.closeAll();
    expect(await isClosed(busy.handle)).toBe(false);
    busy.release();
    await eventually(async () => expect(await isClosed(busy.handle)).toBe(true));
    expect(cache.size).toBe(0);
  });

  it('drops a deleted file: the next acquire sees it gone', async () => {
    const cache = new OpenFileCache(4);
    const f = await cache.acquire(files[3] as string);
    f.release();
    cache.drop(files[3] as string);
    await fs.unlink(files[3] as string);
    await expect(cache.acquire(files[3] as string)).rejects.toMatchObject({ code: 'ENOENT' });
    await eventually(async () => expect(await isClosed(f.handle)).toBe(true));
    expect(cache.size).toBe(0);
  });

  it('does not cache a failed open, and drops a handle released as failed', async () => {
    const cache = new OpenFileCache(4);
    const missing = path.join(dir, 'later');
    await expect(cache.acquire(missing)).rejects.toMatchObject({ code: 'ENOENT' });
    await fs.writeFile(missing, 'here');
    expect(await readVia(cache, missing)).toBe('here\0\0');
    const f = await cache.acquire(files[4] as string);
    f.release(true);
    await eventually(async () => expect(await isClosed(f.handle)).toBe(true));
    expect(cache.size).toBe(1);
    await cache.closeAll();
    expect(cache.size).toBe(0);
  });
});
