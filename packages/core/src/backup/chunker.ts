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
 *   hold more than `max` bytes (as views of the pieces pushed, see Chunker).
 */
import { createHash } from 'node:crypto';

/** The repository's chunker settings (RepoConfig.chunker). Sizes in bytes; seed is hex. */
export interface ChunkerParams {
  min: number;
  avg: number;
  max: number;
  seed: string;
}

/** The chunker's fixed parts, derived once per repository (plain data: it is sent to the seal pool's workers). */
export interface Gear {
  /** Signed 32-bit words: the hash stays in int32 arithmetic (only its top bits are ever tested). */
  table: Int32Array;
  min: number;
  avg: number;
  max: number;
  /** Mask used below `avg` (more bits: cuts are rarer) and from `avg` on (fewer bits: cuts are likelier). */
  maskSmall: number;
  maskLarge: number;
}

const gearCache = new Map<string, Gear>();

/** The gear table and masks for these settings (cached); TypeError when the settings are invalid. */
export function chunkerGear(p: ChunkerParams): Gear {
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
  const table = new Int32Array(256);
  const seed = Buffer.from(p.seed, 'hex');
  for (let block = 0; block < 32; block++) {
    const counter = Buffer.alloc(4);
    counter.writeUInt32BE(block);
    const digest = createHash('sha256').update('mailark-gear').update(seed).update(counter).digest();
    for (let w = 0; w < 8; w++) table[block * 8 + w] = digest.readInt32BE(w * 4);
  }
  const bits = Math.log2(p.avg);
  // Bit j of a gear hash depends on the last j+1 bytes only, so the mask takes the TOP bits (the
  // widest window). NC level 2: bits+2 below avg, bits-2 from avg on.
  const topBits = (n: number): number => (n <= 0 ? 0 : n >= 32 ? -1 : -1 << (32 - n));
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
 * A streaming chunker over a derived gear. push() returns the chunks completed by the new bytes;
 * finish() returns the last, possibly short, chunk. One instance chunks one stream.
 *
 * No copies where none are needed: a chunk that lies within one pushed piece is a view of it (mail
 * arrives as whole messages, so that is almost every chunk); only a chunk spanning pieces is joined
 * into a new buffer. So pushed bytes must not change while the chunks cut from them are in use, or
 * until detach() copied what the chunker holds of them.
 *
 * Self-contained on purpose (no imports, no module-level names): the seal pool's workers run this very
 * class, from its source text, so chunks cut there are those cut here, by construction.
 */
export class GearChunker {
  /** Bytes of the current chunk seen in earlier pieces (views, not copies), and their total length. */
  private held: Uint8Array[] = [];
  private heldLen = 0;
  private hash = 0;

  constructor(private readonly g: Gear) {}

  push(data: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = [];
    let start = 0;
    while (start < data.length) {
      const cut = this.scan(data, start);
      if (cut < 0) {
        this.held.push(data.subarray(start));
        this.heldLen += data.length - start;
        break;
      }
      out.push(this.take(data.subarray(start, cut)));
      start = cut;
    }
    return out;
  }

  /** The last chunk (shorter than `min` only if the whole stream was), or undefined if nothing is left. */
  finish(): Uint8Array | undefined {
    return this.heldLen === 0 ? undefined : this.take(new Uint8Array(0));
  }

  /** Copies the bytes held for the current chunk, so the pieces they came from may change or go. */
  detach(): void {
    if (this.held.length === 0) return;
    const copy = new Uint8Array(this.heldLen);
    let p = 0;
    for (const part of this.held) {
      copy.set(part, p);
      p += part.length;
    }
    this.held = [copy];
  }

  /**
   * Runs the gear hash over data[off..] and returns the index in `data` just past the cut point, or -1
   * when the data ran out first. Loop bounds are precomputed from the chunk position so the inner loops
   * do one table lookup, one add and one mask test per byte (this loop sees every byte of every mail).
   */
  private scan(data: Uint8Array, off: number): number {
    const { table, min, avg, max, maskSmall, maskLarge } = this.g;
    const n = data.length;
    // The chunk position of data[i] is base + i.
    const base = this.heldLen - off;
    let h = this.hash;
    // Below `min` no cut is possible: those bytes are not hashed (FastCDC's "cut-point skipping").
    let i = Math.max(off, min - base);
    const avgAt = Math.min(n, avg - base);
    for (; i < avgAt; i++) {
      h = ((h << 1) + (table[data[i] as number] as number)) | 0;
      if ((h & maskSmall) === 0) return this.cutAt(i + 1);
    }
    const maxAt = Math.min(n, max - base);
    for (; i < maxAt; i++) {
      h = ((h << 1) + (table[data[i] as number] as number)) | 0;
      if ((h & maskLarge) === 0) return this.cutAt(i + 1);
    }
    if (maxAt === max - base) return this.cutAt(maxAt);
    this.hash = h;
    return -1;
  }

  private cutAt(i: number): number {
    this.hash = 0;
    return i;
  }

  /** The current chunk: the held bytes followed by `tail`; a view when it lies in one piece. */
  private take(tail: Uint8Array): Uint8Array {
    const held = this.held;
    this.held = [];
    const total = this.heldLen + tail.length;
    this.heldLen = 0;
    if (held.length === 0) return tail;
    if (held.length === 1 && tail.length === 0) return held[0] as Uint8Array;
    const chunk = new Uint8Array(total);
    let p = 0;
    for (const part of held) {
      chunk.set(part, p);
      p += part.length;
    }
    chunk.set(tail, p);
    return chunk;
  }
}

/** A streaming chunker with the repository's chunker settings (see GearChunker). */
export class Chunker extends GearChunker {
  constructor(params: ChunkerParams) {
    super(chunkerGear(params));
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
