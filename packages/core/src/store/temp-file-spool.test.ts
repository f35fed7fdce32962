/** TempFileSpool: bytes through an anonymous temp file, put() whole from a reused upload buffer. */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryStore } from './memory-store.js';
import { RetryingStore } from './retrying-store.js';
import { TempFileSpool, UploadBuffer } from './temp-file-spool.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('TempFileSpool', () => {
  it('leaves no file behind, reads back, and puts exactly the bytes from one reused buffer', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mailark-tfs-'));
    dirs.push(dir);
    const puts: Array<{ key: string; bytes: Buffer; buffer: ArrayBufferLike }> = [];
    const put = async (key: string, bytes: Uint8Array) => {
      puts.push({ key, bytes: Buffer.from(bytes), buffer: bytes.buffer });
    };
    const upload = new UploadBuffer();
    for (const [i, text] of ['first pack bytes', 'second, shorter'].entries()) {
      const sp = new TempFileSpool(put, upload, dir);
      expect(readdirSync(dir)).toEqual([]); // unlinked at once: a crash leaves nothing
      const part = Buffer.from(text);
      sp.append(part.subarray(0, 5));
      sp.append(part.subarray(5));
      part.fill(0); // copied out on append
      expect(Buffer.from(await sp.read(1, 4)).toString()).toBe(text.slice(1, 5));
      await sp.commit(`data/0${i}/p`);
      sp.close();
      await expect(sp.read(0, 1)).rejects.toThrow('after close');
    }
    expect(puts.map((p) => [p.key, p.bytes.toString()])).toEqual([
      ['data/00/p', 'first pack bytes'],
      ['data/01/p', 'second, shorter'],
    ]);
    expect(puts[1]?.buffer).toBe(puts[0]?.buffer);
  });

  it('gives a commit that finds the upload buffer busy a buffer of its own', async () => {
    const store = new MemoryStore();
    const upload = new UploadBuffer();
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const slowPut = async (key: string, bytes: Uint8Array) => {
      await gate;
      await store.put(key, bytes);
    };
    const a = new TempFileSpool(slowPut, upload);
    const b = new TempFileSpool(slowPut, upload);
    a.append(Buffer.from('aaaa'));
    b.append(Buffer.from('bbbbbb'));
    const both = Promise.all([a.commit('x/a'), b.commit('x/b')]);
    await new Promise((r) => setTimeout(r, 10));
    release();
    await both;
    expect(Buffer.from(await store.get('x/a')).toString()).toBe('aaaa');
    expect(Buffer.from(await store.get('x/b')).toString()).toBe('bbbbbb');
  });

  it("is RetryingStore's spool: commit is a retried put, OBJECT_EXISTS included", async () => {
    const inner = new MemoryStore();
    const store = new RetryingStore(inner, { baseDelayMs: 1 });
    await inner.put('data/aa/x', Buffer.from('already'));
    const sp = store.spool('data/');
    sp.append(Buffer.from('new'));
    await expect(sp.commit('data/aa/x')).rejects.toMatchObject({ code: 'OBJECT_EXISTS' });
    sp.close();
    const ok = store.spool('data/');
    ok.append(Buffer.from('pack'));
    await ok.commit('data/bb/y');
    ok.close();
    expect(Buffer.from(await inner.get('data/bb/y')).toString()).toBe('pack');
  });
});
