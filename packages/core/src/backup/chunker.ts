/**
 * Content-defined chunking, FastCDC style (Xia et al., USENIX ATC 2016): a gear rolling hash over the
 * bytes cuts a chunk where the hash's top bits are zero, so boundaries depend on local content only and
 * an insertion near the start of a body moves one or two boundaries, never all of them.
 *
 * Rules it keeps:
 * - the gear table is derived from the repository's secret-free but per-repository seed, so the same
 *   attachment is cut at different places in two repositories and chunk sizes do not fingerprint it;
 * - normalized chunking (NC level 2): a harder mask before the average size, an easier one after it,
 *   so sizes cluster around `avg`; no chunk is shorter than `min` (except the last) or longer than `max`;
 * - streaming: feed buffers of any size, get the same chunks as for the whole input at once, and never
 *   hold more than `max` bytes.
 */
import { createHash } from 'node:crypto';

/** The repository's chunker settings (RepoConfig.chunker). Sizes in bytes; seed is hex. */
export interface ChunkerParams {
  min: number;
  avg: number;
  max: number;
  seed: string;
}

/** The chunker's fixed parts, derived once per repository. */
interface Gear {
  table: Uint32Array;
  min: number;
  avg: number;
  max: number;
  /** Mask used below `avg` (more bits: cuts are rarer) and from `avg` on (fewer bits: cuts are likelier). */
  maskSmall: number;
  maskLarge: number;
}

const gearCache = new Map<string, Gear>();

function gearFor(p: ChunkerParams): Gear {
  const key = `${p.seed}/${p.min}/${p.avg}/${p.max}`;
  const cached = gearCache.get(key);
  if (cached !== undefined) return cached;
  if (!(p.min > 0 && p.min <= p.avg && p.avg <= p.max) || !Number.isInteger(Math.log2(p.avg))) {
    throw new TypeError(
      `invalid chunker sizes min ${p.min} avg ${p.avg} max ${p.max} (avg must be a power of 2)`,
    );
  }
  if (!/^[0-9a-f]*$/i.test(p.seed) || p.seed.length % 2 !== 0) {
    throw new TypeError('chunker seed must be an even-length hex string');
  }
  // 256 pseudo-random 32-bit words: SHA-256(seed || counter), 8 words per block.
  const table = new Uint32Array(256);
  const seed = Buffer.from(p.seed, 'hex');
  for (let block = 0; block < 32; block++) {
    const counter = Buffer.alloc(4);
    counter.writeUInt32BE(block);
    const digest = createHash('sha256').update('mailark-gear').update(seed).update(counter).digest();
    for (let w = 0; w < 8; w++) table[block * 8 + w] = digest.readUInt32BE(w * 4);
  }
  const bits = Math.log2(p.avg);
  // Bit j of a gear hash depends on the last j+1 bytes only, so the mask takes the TOP bits (the
  // widest window). NC level 2: bits+2 below avg, bits-2 from avg on.
  const topBits = (n: number): number => (n <= 0 ? 0 : n >= 32 ? 0xffffffff : (0xffffffff << (32 - n)) >>> 0);
  const gear: Gear = {
    table,
    min: p.min,
    avg: p.avg,
    max: p.max,
    maskSmall: topBits(bits + 2),
    maskLarge: topBits(bits - 2),
  };
  gearCache.set(key, gear);
  return gear;
}

/**
 * A streaming chunker. push() returns the chunks completed by the new bytes (each a fresh copy that the
 * caller may keep); finish() returns the last, possibly short, chunk. One instance chunks one stream.
 */
export class Chunker {
  private readonly g: Gear;
  private readonly pending: Buffer;
  /** Bytes of the current chunk held in `pending`. */
  private len = 0;
  private hash = 0;

  constructor(params: ChunkerParams) {
    this.g = gearFor(params);
    this.pending = Buffer.allocUnsafe(this.g.max);
  }

  push(data: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = [];
    let off = 0;
    while (off < data.length) {
      const cut = this.scan(data, off);
      const end = cut < 0 ? data.length : cut;
      this.pending.set(data.subarray(off, end), this.len - (end - off));
      off = end;
      if (cut >= 0) out.push(this.take());
    }
    return out;
  }

  /** The last chunk (shorter than `min` only if the whole stream was), or undefined if nothing is left. */
  finish(): Uint8Array | undefined {
    return this.len === 0 ? undefined : this.take();
  }

  /**
   * Advances the hash over data[off..] and this.len with it. Returns the index in `data` just past the
   * cut point, or -1 when the data ran out first.
   */
  private scan(data: Uint8Array, off: number): number {
    const { table, min, avg, max, maskSmall, maskLarge } = this.g;
    let len = this.len;
    let h = this.hash;
    let i = off;
    const n = data.length;
    // Below `min` no cut is possible: skip hashing those bytes (FastCDC's "cut-point skipping").
    if (len < min) {
      const skip = Math.min(min - len, n - i);
      len += skip;
      i += skip;
    }
    while (i < n && len < avg) {
      h = ((h << 1) + (table[data[i] as number] as number)) >>> 0;
      i++;
      len++;
      if ((h & maskSmall) === 0 && len >= min) return this.cutAt(i, len);
    }
    while (i < n && len < max) {
      h = ((h << 1) + (table[data[i] as number] as number)) >>> 0;
      i++;
      len++;
      if ((h & maskLarge) === 0) return this.cutAt(i, len);
    }
    this.len = len;
    this.hash = h;
    if (len >= max) return i;
    return -1;
  }

  private cutAt(i: number, len: number): number {
    this.len = len;
    this.hash = 0;
    return i;
  }

  private take(): Uint8Array {
    const chunk = new Uint8Array(this.len);
    chunk.set(this.pending.subarray(0, this.len));
    this.len = 0;
    this.hash = 0;
    return chunk;
  }
}

/** Chunk lengths of a whole buffer (convenience for tests and small inputs). */
export function chunkLengths(params: ChunkerParams, data: Uint8Array): number[] {
  const c = new Chunker(params);
  const lengths = c.push(data).map((x) => x.length);
  const last = c.finish();
  if (last !== undefined) lengths.push(last.length);
  return lengths;
}
