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
 *   hold more than `max` bytes (as views of the pieces pushed, see Chunker);
 * - the hash loop (every byte of every mail goes through it) runs as a tiny hand-assembled WebAssembly
 *   module when the runtime has WebAssembly, else as JavaScript: both cut exactly where v1 cuts
 *   (chunker.test.ts checks both against the recurrence spelled out byte by byte).
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

/** The little of the WebAssembly API the scan loop needs (not in the ES lib or @types/node 20). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (
    module: object,
  ) => { exports: { scan: GearWasm['scan']; h: GearWasm['h']; mem: { buffer: ArrayBuffer } } };
}

/** The thread's WebAssembly scan loop: see GearChunker.wasm. */
interface GearWasm {
  scan(i: number, end: number, h: number, mask: number): number;
  h: { value: number };
  /** The loop's memory: gear table at 0, the window's bytes from 1024. */
  bytes: Uint8Array;
  /** The gear whose table is loaded. */
  gear: Gear | undefined;
}

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
   * when the data ran out first. Bounds are precomputed from the chunk position so each run tests one
   * mask (this loop sees every byte of every mail).
   */
  private scan(data: Uint8Array, off: number): number {
    const g = this.g;
    const n = data.length;
    // The chunk position of data[i] is base + i.
    const base = this.heldLen - off;
    // Below `min` no cut is possible: those bytes are not hashed (FastCDC's "cut-point skipping").
    const from = Math.max(off, g.min - base);
    const avgAt = Math.min(n, g.avg - base);
    const maxAt = Math.min(n, g.max - base);
    const wasm = GearChunker.wasm(g);
    let at: number;
    if (wasm !== undefined) {
      at = this.runWasm(wasm, data, from, avgAt, g.maskSmall);
      if (at < 0) at = this.runWasm(wasm, data, Math.max(from, avgAt), maxAt, g.maskLarge);
    } else {
      at = this.run(data, from, avgAt, g.maskSmall);
      if (at < 0) at = this.run(data, Math.max(from, avgAt), maxAt, g.maskLarge);
    }
    if (at >= 0) return at;
    if (maxAt === g.max - base) {
      this.hash = 0;
      return maxAt;
    }
    return -1;
  }

  /**
   * The recurrence over data[i..end): h = 2h + table[byte] (int32), cut just past the first byte where
   * h & mask is zero. Returns that index (the hash restarts from 0) or -1 (this.hash carries on).
   */
  private run(data: Uint8Array, i: number, end: number, mask: number): number {
    const table = this.g.table;
    let h = this.hash;
    for (; i < end; i++) {
      h = ((h << 1) + (table[data[i] as number] as number)) | 0;
      if ((h & mask) === 0) {
        this.hash = 0;
        return i + 1;
      }
    }
    this.hash = h;
    return -1;
  }

  /** run(), by the WebAssembly loop: the bytes are copied into its memory a window at a time. */
  private runWasm(w: GearWasm, data: Uint8Array, i: number, end: number, mask: number): number {
    // Bytes are copied in windows of 16 KiB (a cut falls in the first window or two: little is copied
    // for nothing), to offset 1024 of the loop's memory (the gear table is below). Constants here, not
    // static fields: the class must work from its source text, whatever a compiler does with those.
    let h = this.hash;
    while (i < end) {
      const stop = Math.min(end, i + 16384);
      w.bytes.set(data.subarray(i, stop), 1024);
      const r = w.scan(0, stop - i, h, mask);
      if (r >= 0) {
        this.hash = 0;
        return i + r;
      }
      h = w.h.value;
      i = stop;
    }
    this.hash = h;
    return -1;
  }

  /** Set false to use the JavaScript loop (tests compare both; without WebAssembly it is the only one). */
  static useWasm = true;
  /** The thread's WebAssembly scan loop (undefined: not built yet; null: not available). */
  private static wasmLoop: GearWasm | null | undefined;

  /**
   * The WebAssembly scan loop, loaded with this gear's table, or undefined to use run(). The loop does
   * what run() does, copy included, about 2.3x as fast (base64 input, one thread: ~1600 vs ~690 MiB
   * of input per CPU second; JIT-compiled JS keeps a bounds check per access and a heavier loop). One
   * instance per thread; its table is rewritten when another gear comes.
   */
  private static wasm(g: Gear): GearWasm | undefined {
    if (GearChunker.useWasm === false) return undefined;
    let w = GearChunker.wasmLoop;
    if (w === undefined) {
      const api = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
      w = GearChunker.wasmLoop = api === undefined ? null : GearChunker.buildWasm(api);
    }
    if (w === null) return undefined;
    if (w.gear !== g) {
      const view = new DataView(w.bytes.buffer);
      for (let b = 0; b < 256; b++) view.setInt32(b * 4, g.table[b] as number, true);
      w.gear = g;
    }
    return w;
  }

  /**
   * Assembles the loop (WebAssembly 1.0 binary format, by hand: a few dozen opcodes, no toolchain):
   *   scan(i, end, h, mask): for (; i < end;) { h = (h << 1) + table[mem[1024 + i]]; i++;
   *                                            if ((h & mask) == 0) return i; }  global h = h; return -1
   * with the table as little-endian int32s at 0 (WebAssembly memory is little-endian everywhere) and
   * one 64 KiB page of memory.
   */
  private static buildWasm(api: WasmApi): GearWasm {
    const [get, set, i32] = [0x20, 0x21, 0x41];
    const [I, END, H, MASK] = [0, 1, 2, 3];
    // One instruction (with its immediates) per line.
    const code = [
      [0x00], // no locals beyond the parameters
      [0x02, 0x40], // block
      [get, I, get, END, 0x4f, 0x0d, 0], //   br_if 0 (leave) when i >= end
      [0x03, 0x40], //   loop
      [get, H, i32, 1, 0x74], //     h << 1
      [get, I, 0x2d, 0, 0x80, 0x08], //     i32.load8_u offset=1024: the byte
      [i32, 2, 0x74, 0x28, 2, 0], //     i32.load table[byte] (at byte << 2)
      [0x6a, set, H], //     h = the sum
      [get, I, i32, 1, 0x6a, set, I], //     i++
      [get, H, get, MASK, 0x71, 0x45], //     (h & mask) == 0
      [0x04, 0x40, get, I, 0x0f, 0x0b], //     if: return i
      [get, I, get, END, 0x49, 0x0d, 0], //     br_if loop when i < end
      [0x0b, 0x0b], //   end loop, end block
      [get, H, 0x24, 0], // global h = h
      [i32, 0x7f, 0x0b], // return -1
    ].flat();
    // Every section is < 128 bytes, so its size is one LEB128 byte.
    const section = (id: number, body: number[]): number[] => [id, body.length, ...body];
    const name = (s: string): number[] => [s.length, ...Array.from(s, (c) => c.charCodeAt(0))];
    const bytes = Uint8Array.from([
      ...[0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0], // magic, version 1
      ...section(1, [1, 0x60, 4, 0x7f, 0x7f, 0x7f, 0x7f, 1, 0x7f]), // type: (i32 x4) -> i32
      ...section(3, [1, 0]), // function 0 has type 0
      ...section(5, [1, 0, 1]), // memory: min 1 page
      ...section(6, [1, 0x7f, 1, i32, 0, 0x0b]), // global: mutable i32 = 0
      ...section(7, [3, ...name('scan'), 0, 0, ...name('mem'), 2, 0, ...name('h'), 3, 0]), // exports
      ...section(10, [1, code.length, ...code]),
    ]);
    const e = new api.Instance(new api.Module(bytes)).exports;
    return { scan: e.scan, h: e.h, bytes: new Uint8Array(e.mem.buffer), gear: undefined };
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
