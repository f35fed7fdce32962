import { createHash, randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { compress } from './compression.js';
import { open } from './crypto.js';
import { blobAad, openBlob, sealBlob } from './pack.js';
import { sealBlobAsync, sealPoolSize } from './seal-pool.js';

const idOf = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** sealBlobAsync's result, copied out of the pool's buffer inside land() (as the packer does). */
async function sealed(
  key: Uint8Array,
  type: 'data' | 'tree',
  id: string,
  plain: Uint8Array,
): Promise<Uint8Array> {
  let out: Uint8Array | undefined;
  await sealBlobAsync(key, type, id, plain, (s) => {
    out = Uint8Array.from(s);
  });
  if (out === undefined) throw new Error('land was not called');
  return out;
}

/** Plaintexts of every kind the pool must treat as compression.ts does. */
const samples: Uint8Array[] = [
  Buffer.from('x'), // tiny: stored raw without trying
  Buffer.from('Subject: hello\r\nFrom: a@b.example\r\n\r\n'.repeat(3)), // small, compressible
  Buffer.from('prose that repeats itself, as mail does. '.repeat(500)),
  Buffer.from(randomBytes(12_000).toString('base64')), // base64 attachment: brotli shrinks it a bit
  randomBytes(20_000), // incompressible: stored raw
];

describe('sealBlobAsync', () => {
  it('produces what sealBlob produces: the same compressed payload, opening as the same blob', async () => {
    const key = randomBytes(32);
    const all = await Promise.all(samples.map((p) => sealed(key, 'data', idOf(p), p)));
    // On more than one core this went through a worker thread, not the inline fallback.
    expect(sealPoolSize()).toBe(availableParallelism() > 1 ? Math.min(2, availableParallelism() - 1) : 0);
    for (const [i, plain] of samples.entries()) {
      const s = all[i] as Uint8Array;
      const id = idOf(plain);
      // Random nonces make two seals differ; their plaintext (format byte + payload) must not.
      expect(
        Buffer.from(open(key, s, 'pool', blobAad('data', id))).equals(Buffer.from(compress(plain))),
      ).toBe(true);
      expect(s.byteLength).toBe(sealBlob(key, 'data', id, plain).byteLength);
      const entry = {
        type: 'data' as const,
        id,
        offset: 0,
        length: s.byteLength,
        rawLength: plain.byteLength,
      };
      expect(Buffer.from(openBlob(key, entry, s, 'pool blob')).equals(Buffer.from(plain))).toBe(true);
    }
  });

  it('binds each blob to its own key, type and id when calls of several repositories are batched', async () => {
    const keys = [randomBytes(32), randomBytes(32)];
    const calls = Array.from({ length: 40 }, (_, i) => {
      const key = keys[i % 2] as Uint8Array;
      const type = i % 3 === 0 ? ('tree' as const) : ('data' as const);
      const plain = Buffer.from(`blob ${i} `.repeat(10 + i * 50));
      return { key, type, plain, id: idOf(plain) };
    });
    const all = await Promise.all(calls.map((c) => sealed(c.key, c.type, c.id, c.plain)));
    for (const [i, c] of calls.entries()) {
      const s = all[i] as Uint8Array;
      const entry = {
        type: c.type,
        id: c.id,
        offset: 0,
        length: s.byteLength,
        rawLength: c.plain.byteLength,
      };
      expect(Buffer.from(openBlob(c.key, entry, s, 'batched')).equals(c.plain)).toBe(true);
      const other = keys[(i + 1) % 2] as Uint8Array;
      expect(() => openBlob(other, entry, s, 'wrong key')).toThrow(/does not authenticate/);
      const moved = { ...entry, type: c.type === 'data' ? ('tree' as const) : ('data' as const) };
      expect(() => openBlob(c.key, moved, s, 'wrong type')).toThrow(/does not authenticate/);
    }
  });

  it('seals views of a larger buffer without touching the rest of it', async () => {
    const key = randomBytes(32);
    const whole = Buffer.from('0123456789abcdef'.repeat(10_000));
    const before = idOf(whole);
    const views = [whole.subarray(0, 5000), whole.subarray(5000, 70_000), whole.subarray(150_000)];
    const all = await Promise.all(views.map((v) => sealed(key, 'data', idOf(v), v)));
    expect(idOf(whole)).toBe(before);
    for (const [i, v] of views.entries()) {
      const s = all[i] as Uint8Array;
      const entry = {
        type: 'data' as const,
        id: idOf(v),
        offset: 0,
        length: s.byteLength,
        rawLength: v.byteLength,
      };
      expect(Buffer.from(openBlob(key, entry, s, 'view')).equals(v)).toBe(true);
    }
  });

  it('lands every blob intact through many jobs on reused buffers', async () => {
    const key = randomBytes(32);
    for (let round = 0; round < 3; round++) {
      // ~3 MiB per round: several full jobs, then the rest at the end of the turn.
      const plains = Array.from({ length: 120 }, (_, i) =>
        i % 3 === 0 ? randomBytes(20_000 + i) : Buffer.from(`round ${round} blob ${i} `.repeat(1500 + i)),
      );
      const all = await Promise.all(plains.map((p) => sealed(key, 'data', idOf(p), p)));
      for (const [i, plain] of plains.entries()) {
        const s = all[i] as Uint8Array;
        const entry = {
          type: 'data' as const,
          id: idOf(plain),
          offset: 0,
          length: s.byteLength,
          rawLength: plain.byteLength,
        };
        expect(Buffer.from(openBlob(key, entry, s, `round ${round} blob ${i}`)).equals(plain)).toBe(true);
      }
    }
  });

  it('fails only the blob whose land() throws', async () => {
    const key = randomBytes(32);
    const plains = [Buffer.from('a'.repeat(500)), Buffer.from('b'.repeat(500)), Buffer.from('c'.repeat(500))];
    const results = await Promise.allSettled(
      plains.map((p, i) =>
        sealBlobAsync(key, 'data', idOf(p), p, () => {
          if (i === 1) throw new Error('pack refused it');
        }),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
  });
});
