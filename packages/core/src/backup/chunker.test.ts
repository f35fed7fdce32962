import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Chunker, type ChunkerParams, chunkerGear, chunkLengths, GearChunker } from './chunker.js';

const params: ChunkerParams = { min: 4096, avg: 16384, max: 65536, seed: '00112233445566778899aabbccddeeff' };

/** Deterministic pseudo-random bytes (so failures reproduce). */
function prng(n: number, seed: string): Uint8Array {
  const out = new Uint8Array(n);
  let block = 0;
  for (let off = 0; off < n; off += 32) {
    const d = createHash('sha256').update(`${seed}:${block++}`).digest();
    out.set(d.subarray(0, Math.min(32, n - off)), off);
  }
  return out;
}

function chunksOf(p: ChunkerParams, data: Uint8Array, pieces: number[] = [data.length]): Uint8Array[] {
  const c = new Chunker(p);
  const out: Uint8Array[] = [];
  let off = 0;
  let i = 0;
  while (off < data.length) {
    const n = pieces[i++ % pieces.length] as number;
    out.push(...c.push(data.subarray(off, off + n)));
    off += n;
  }
  const last = c.finish();
  if (last !== undefined) out.push(last);
  return out;
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

describe('Chunker', () => {
  const data = prng(2 * 1024 * 1024, 'body');

  it('is deterministic and reassembles the exact bytes', () => {
    const a = chunksOf(params, data);
    const b = chunksOf(params, data);
    expect(a.map(sha)).toEqual(b.map(sha));
    expect(sha(Buffer.concat(a))).toBe(sha(data));
  });

  it('cuts the same chunks however the stream is split', () => {
    const whole = chunksOf(params, data).map(sha);
    expect(chunksOf(params, data, [1, 7, 4095, 65536, 100_000, 13]).map(sha)).toEqual(whole);
    expect(chunksOf(params, data, [1000]).map(sha)).toEqual(whole);
  });

  it('respects min and max, and averages near avg', () => {
    const lengths = chunkLengths(params, data);
    const body = lengths.slice(0, -1);
    expect(Math.min(...body)).toBeGreaterThanOrEqual(params.min);
    expect(Math.max(...lengths)).toBeLessThanOrEqual(params.max);
    const mean = body.reduce((a, b) => a + b, 0) / body.length;
    // FastCDC with cut-point skipping lands a bit above avg; anything in [avg/2, 2*avg] is healthy.
    expect(mean).toBeGreaterThan(params.avg / 2);
    expect(mean).toBeLessThan(params.avg * 2);
  });

  it('cuts incompressible runs with no boundary at max', () => {
    const zeros = new Uint8Array(300_000);
    const lengths = chunkLengths(params, zeros);
    // All-zero input: the gear hash settles into a fixed value, so cuts happen at max or never.
    for (const l of lengths.slice(0, -1)) expect(l).toBeLessThanOrEqual(params.max);
    expect(lengths.reduce((a, b) => a + b, 0)).toBe(zeros.length);
  });

  it('shares most chunks after an insertion near the start', () => {
    const before = new Set(chunksOf(params, data).map(sha));
    const edited = Buffer.concat([
      data.subarray(0, 1000),
      Buffer.from('inserted line\r\n'),
      data.subarray(1000),
    ]);
    const after = chunksOf(params, edited).map(sha);
    const shared = after.filter((h) => before.has(h)).length;
    expect(shared).toBeGreaterThanOrEqual(after.length - 2);
    expect(after.length).toBeGreaterThan(50);
  });

  it('cuts at different places under a different seed', () => {
    const other = { ...params, seed: 'ffeeddccbbaa99887766554433221100' };
    const a = chunkLengths(params, data);
    const b = chunkLengths(other, data);
    expect(a).not.toEqual(b);
  });

  it('returns a short input as one chunk and nothing for empty input', () => {
    const small = randomBytes(1000);
    expect(chunksOf(params, small).map(sha)).toEqual([sha(small)]);
    expect(new Chunker(params).finish()).toBeUndefined();
  });

  it('cuts where format v1 always cut (stored repositories keep deduplicating)', () => {
    // Lengths recorded from the first implementation: any change to the gear table, masks or skipping
    // would silently stop new chunks from matching those already stored.
    const lengths = chunkLengths(params, data);
    expect(lengths.length).toBe(114);
    expect(lengths.slice(0, 6)).toEqual([20803, 15353, 18414, 28825, 19074, 17361]);
    expect(sha(Buffer.from(lengths.join(',')))).toBe(
      'f962d5b30571125c78c130791d1dffe63d0482b0c613b5ccd56a9fa4595d06ae',
    );
    const b64 = Buffer.from(Buffer.from(prng(300_000, 'att')).toString('base64'));
    expect(chunkLengths(params, b64).slice(0, 6)).toEqual([33634, 18463, 19356, 19872, 18802, 23675]);
  });

  it('returns views of the pushed piece, and joins only chunks that span pieces', () => {
    const c = new Chunker(params);
    const first = data.subarray(0, 100_000);
    const chunks = c.push(first);
    expect(chunks.length).toBeGreaterThan(2);
    for (const ch of chunks) expect(ch.buffer).toBe(first.buffer);
    const spanning = c.push(data.subarray(100_000, 200_000))[0] as Uint8Array;
    expect(spanning.buffer).not.toBe(data.buffer);
    const held = 100_000 - chunks.reduce((n, ch) => n + ch.length, 0);
    expect(sha(spanning)).toBe(sha(data.subarray(100_000 - held, 100_000 - held + spanning.length)));
  });

  it('rejects sizes that are not a power-of-two average', () => {
    expect(() => new Chunker({ ...params, avg: 10_000 })).toThrow(TypeError);
    expect(() => new Chunker({ ...params, seed: 'xyz' })).toThrow(TypeError);
  });

  describe('scan loop (WebAssembly, and the JavaScript one used without it)', () => {
    /** The chunking rule spelled out byte by byte, with nothing precomputed: what v1 means. */
    function referenceLengths(p: ChunkerParams, input: Uint8Array): number[] {
      const g = chunkerGear(p);
      const lengths: number[] = [];
      for (let start = 0; start < input.length; ) {
        const left = input.length - start;
        let length = Math.min(left, g.max);
        let h = 0;
        for (let k = g.min; k < Math.min(left, g.max); k++) {
          h = ((h << 1) + (g.table[input[start + k] as number] as number)) | 0;
          if ((h & (k < g.avg ? g.maskSmall : g.maskLarge)) === 0) {
            length = k + 1;
            break;
          }
        }
        lengths.push(length);
        start += length;
      }
      return lengths;
    }

    /** Deterministic piece sizes: fixed ones around the window and chunk sizes, then random ones. */
    function splits(seed: string): number[][] {
      const r = prng(4096, seed);
      const random = (max: number): number[] =>
        Array.from(
          { length: 64 },
          (_, i) => 1 + (((r[2 * i] as number) * 256 + (r[2 * i + 1] as number)) % max),
        );
      return [
        [1],
        [3],
        [1023, 1024, 1025],
        [4095, 4096, 4097],
        [16383, 16384, 16385],
        [65535, 65536, 65537],
        [100_000],
        random(64),
        random(20_000),
        random(70_000),
      ];
    }

    const inputs: Array<[string, Uint8Array]> = [
      ['random', prng(400_000, 'scan')],
      ['base64', Buffer.from(Buffer.from(prng(300_000, 'scan-att')).toString('base64'))],
      ['zeros', new Uint8Array(200_000)],
      ['tiny', prng(5000, 'tiny')],
    ];
    const small: ChunkerParams = { min: 64, avg: 256, max: 1024, seed: 'c0ffee' };

    for (const wasm of [true, false]) {
      it(`cuts what the reference recurrence cuts, any piece sizes (${wasm ? 'WebAssembly' : 'JavaScript'})`, () => {
        const before = GearChunker.useWasm;
        GearChunker.useWasm = wasm;
        try {
          for (const p of [params, small]) {
            for (const [name, input] of inputs) {
              const expected = referenceLengths(p, input);
              for (const pieces of splits(name)) {
                const lengths = chunksOf(p, input, pieces).map((c) => c.length);
                expect(lengths, `${name}, avg ${p.avg}, pieces ${pieces.slice(0, 3).join(',')}`).toEqual(
                  expected,
                );
              }
            }
          }
        } finally {
          GearChunker.useWasm = before;
        }
      });
    }

    it('switches gear tables between chunkers on one thread', () => {
      const other = { ...params, seed: 'ffeeddccbbaa99887766554433221100' };
      const input = inputs[0]?.[1] as Uint8Array;
      const a = new Chunker(params);
      const b = new Chunker(other);
      const la: number[] = [];
      const lb: number[] = [];
      for (let off = 0; off < input.length; off += 10_000) {
        la.push(...a.push(input.subarray(off, off + 10_000)).map((c) => c.length));
        lb.push(...b.push(input.subarray(off, off + 10_000)).map((c) => c.length));
      }
      la.push((a.finish() as Uint8Array).length);
      lb.push((b.finish() as Uint8Array).length);
      expect(la).toEqual(referenceLengths(params, input));
      expect(lb).toEqual(referenceLengths(other, input));
    });
  });
});
