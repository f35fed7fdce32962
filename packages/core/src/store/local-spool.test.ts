/** LocalDirStore.spool(): an object written through as it comes, published with put()'s rules. */
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { eventually } from '../eventually.js';
import { WRITE_BUFFER } from './file-spool.js';
import { LocalDirStore } from './local-dir-store.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function store(): { dir: string; store: LocalDirStore } {
  const dir = mkdtempSync(join(tmpdir(), 'mailark-spool-'));
  dirs.push(dir);
  return { dir, store: new LocalDirStore(join(dir, 'repo')) };
}

async function keys(s: LocalDirStore, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for await (const { key } of s.list(prefix)) out.push(key);
  return out;
}

describe('LocalDirStore.spool', () => {
  it('appends, reads back before and after commit, and publishes exactly the bytes', async () => {
    const { dir, store: s } = store();
    const sp = s.spool('data/');
    const a = Buffer.from('first part ');
    const b = Buffer.from('second part');
    sp.append(a);
    a.fill(0); // copied out on append: the caller may reuse its buffer
    sp.append(b);
    expect(sp.size).toBe(22);
    expect(Buffer.from(await sp.read(6, 10)).toString()).toBe('part secon');
    expect(await keys(s)).toEqual([]); // invisible until committed
    await sp.commit('data/ab/object');
    expect(Buffer.from(await sp.read(0, 5)).toString()).toBe('first');
    sp.close();
    await eventually(() => expect(readdirSync(join(dir, 'repo', 'data'))).toEqual(['ab'])); // no temp left
    expect(Buffer.from(await s.get('data/ab/object')).toString()).toBe('first part second part');
    expect(await keys(s)).toEqual(['data/ab/object']);
    expect(s.counters).toMatchObject({ puts: 1, bytesWritten: 22 });
    await expect(sp.read(0, 1)).rejects.toThrow('after close');
  });

  it('buffers small appends across the write buffer, reads any range back, and publishes them in order', async () => {
    const { store: s } = store();
    const sp = s.spool('data/');
    // Pieces of every size: many small ones (buffered), some crossing the buffer's end, one larger
    // than the buffer (written through), each filled with bytes of its own.
    const sizes = [1, 3000, 7, WRITE_BUFFER - 3008, 1, 4096, WRITE_BUFFER + 17, 5, 70_000, 200_000, 3];
    const pieces = sizes.map((n, i) => Buffer.alloc(n, (i * 37 + 11) & 0xff));
    const whole = Buffer.concat(pieces);
    let at = 0;
    for (const [i, piece] of pieces.entries()) {
      sp.append(piece);
      piece.fill(0); // the caller's buffer is free once append returns
      at += sizes[i] as number;
      expect(sp.size).toBe(at);
      // The last bytes appended (buffered or not) read back at once, and so does the first byte.
      const tail = Math.min(at, 5000);
      expect(Buffer.from(await sp.read(at - tail, tail)).equals(whole.subarray(at - tail, at))).toBe(true);
      expect(Buffer.from(await sp.read(0, 1)).equals(whole.subarray(0, 1))).toBe(true);
    }
    await sp.commit('data/ef/object');
    sp.close();
    expect(Buffer.from(await s.get('data/ef/object')).equals(whole)).toBe(true);
    await s.close();
  });

  it('refuses an existing key with OBJECT_EXISTS and leaves the object and no temp behind', async () => {
    const { dir, store: s } = store();
    await s.put('data/cd/x', Buffer.from('original'));
    const sp = s.spool('data/');
    sp.append(Buffer.from('intruder'));
    await expect(sp.commit('data/cd/x')).rejects.toMatchObject({ code: 'OBJECT_EXISTS' });
    sp.close();
    await eventually(() => expect(readdirSync(join(dir, 'repo', 'data'))).toEqual(['cd']));
    expect(readFileSync(join(dir, 'repo', 'data', 'cd', 'x'), 'utf8')).toBe('original');
  });

  it("removes a killed run's stale spools (older than an hour) when the first spool opens, not fresh ones", async () => {
    const { dir, store: s } = store();
    const data = join(dir, 'repo', 'data');
    mkdirSync(data, { recursive: true });
    writeFileSync(join(data, '.tmp-stale'), 'old open pack');
    const hoursAgo = new Date(Date.now() - 2 * 3_600_000);
    utimesSync(join(data, '.tmp-stale'), hoursAgo, hoursAgo);
    writeFileSync(join(data, '.tmp-fresh'), 'another process, writing now');
    const sp = s.spool('data/');
    await s.close(); // waits for the background sweep
    const left = readdirSync(data).sort();
    expect(left).not.toContain('.tmp-stale');
    expect(left).toContain('.tmp-fresh');
    expect(left.length).toBe(2); // the fresh one and this spool's own
    sp.close();
  });

  it('drops uncommitted bytes on close, and refuses keys outside its folder and reads past its end', async () => {
    const { dir, store: s } = store();
    const sp = s.spool('data/');
    sp.append(Buffer.from('never published'));
    await expect(sp.read(10, 10)).rejects.toThrow(RangeError);
    const other = s.spool('data/');
    other.append(Buffer.from('x'));
    await expect(other.commit('index/x')).rejects.toThrow(TypeError);
    other.close();
    sp.close();
    expect(() => sp.append(Buffer.from('late'))).toThrow();
    await eventually(() => expect(readdirSync(join(dir, 'repo', 'data'))).toEqual([]));
    expect(await keys(s)).toEqual([]);
  });
});
