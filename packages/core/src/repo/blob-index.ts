/**
 * The blob index: which pack holds each blob, where, and how long it is.
 *
 * In memory it is a table of fixed-size binary slots outside the JavaScript heap: each entry's 32-byte
 * id and its pack, offset, lengths and type in typed arrays (49 bytes), found through an open-addressing
 * hash table of slot numbers (8 bytes per entry at most half full). About 60 bytes per blob, none of
 * them on the garbage-collected heap: a 64-character id string and a Map entry per blob cost ~130
 * bytes there, and the old generation the collector sizes from that live data grew with the
 * repository (measured on the 2 GB benchmark backup: 13 MB of the heap was the index's, before V8's
 * headroom on top). Ids are blob ids (keyed SHA-256, uniformly random), so their first four bytes are
 * a good hash as they are.
 *
 * A blob may sit in several packs (a run that crashed after writing a pack but before its index
 * re-saves the blob later); every copy is kept so that each pack's entries stay complete, and lookups
 * return the first added.
 *
 * Index objects (index/<sha256 of stored bytes>) are sealed binary, aad "index":
 *   version u8 (1) ‖ packs u32 ‖ packs × (pack id 32 bytes ‖ blob count u32) ‖ entries, pack by pack,
 *   each type u8 ‖ id 32 ‖ offset u32 ‖ length u32 ‖ rawLength u32 (the pack header's entry format).
 * Binary because open() loads every index object: their entries are copied into the table as they are,
 * with no object or string per entry.
 */
import { corrupt, open, seal } from './crypto.js';
import { ENTRY_BYTES, type PackEntry } from './pack.js';

export interface IndexEntry extends PackEntry {
  pack: string;
}

const INDEX_VERSION = 1;
const INDEX_AAD = Buffer.from('index');
const ID_BYTES = 32;
/** 32-bit words per id. */
const ID_WORDS = ID_BYTES / 4;
const FIRST_CAPACITY = 1024;
const HEX_ID = /^[0-9a-f]{64}$/;

export class BlobIndex {
  private readonly packIds: string[] = [];
  private readonly packSlot = new Map<string, number>();
  /** Slot s's id is ids[s * 32 ...]; `words` is the same memory as 32-bit words, for comparing. */
  private ids = Buffer.alloc(FIRST_CAPACITY * ID_BYTES);
  private words = new Uint32Array(this.ids.buffer, this.ids.byteOffset, FIRST_CAPACITY * ID_WORDS);
  private pack = new Uint32Array(FIRST_CAPACITY);
  private offset = new Uint32Array(FIRST_CAPACITY);
  private length = new Uint32Array(FIRST_CAPACITY);
  private rawLength = new Uint32Array(FIRST_CAPACITY);
  private type = new Uint8Array(FIRST_CAPACITY);
  private count = 0;
  /** Open addressing, linear probing: slot + 1 of each id's first copy, 0 for empty; at most half full. */
  private table = new Uint32Array(FIRST_CAPACITY * 2);
  /** A lookup's id as bytes and words (one buffer, reused: lookups are synchronous). */
  private readonly probe = Buffer.alloc(ID_BYTES);
  private readonly probeWords = new Uint32Array(this.probe.buffer, this.probe.byteOffset, ID_WORDS);

  /** Number of entries, duplicates included. */
  get size(): number {
    return this.count;
  }

  has(id: string): boolean {
    return this.slotOf(id) !== undefined;
  }

  get(id: string): IndexEntry | undefined {
    const s = this.slotOf(id);
    return s === undefined ? undefined : this.at(s);
  }

  hasPack(packId: string): boolean {
    return this.packSlot.has(packId);
  }

  /** Adds an entry; its id must be a blob id (64 lowercase hex characters). */
  add(e: IndexEntry): void {
    if (!this.readId(e.id)) throw new RangeError(`not a blob id: ${JSON.stringify(e.id)}`);
    this.reserve(1);
    const s = this.count++;
    this.ids.set(this.probe, s * ID_BYTES);
    this.setFields(s, this.packNumber(e.pack), e.type === 'data' ? 0 : 1, e.offset, e.length, e.rawLength);
    this.insert(s);
  }

  /** The small number standing for a pack id in this index. */
  packNumber(packId: string): number {
    let p = this.packSlot.get(packId);
    if (p === undefined) {
      p = this.packIds.length;
      this.packIds.push(packId);
      this.packSlot.set(packId, p);
    }
    return p;
  }

  /**
   * Adds the entries of one pack from a decoded index object (entry format at plain[start...]), copying
   * their bytes straight into the table. The caller has checked every type byte.
   */
  addPackEntries(pack: number, plain: Buffer, start: number, count: number): void {
    this.reserve(count);
    // The hot path of open(): fields in locals, the id copied byte by byte (Buffer#copy's call costs
    // more than 32 bytes' worth of a loop).
    const { ids, offset, length, rawLength, type } = this;
    for (let i = 0, p = start, s = this.count; i < count; i++, p += ENTRY_BYTES, s++) {
      for (let k = 0, d = s * ID_BYTES, q = p + 1; k < ID_BYTES; k++) ids[d + k] = plain[q + k] as number;
      type[s] = plain[p] as number;
      offset[s] = plain.readUInt32LE(p + 33);
      length[s] = plain.readUInt32LE(p + 37);
      rawLength[s] = plain.readUInt32LE(p + 41);
    }
    this.pack.fill(pack, this.count, this.count + count);
    for (let n = 0; n < count; n++) this.insert(this.count++);
  }

  /** Every entry, duplicates included, in insertion order. */
  *entries(): IterableIterator<IndexEntry> {
    for (let s = 0; s < this.count; s++) yield this.at(s);
  }

  /** Entries grouped by pack. */
  byPack(): Map<string, IndexEntry[]> {
    const out = new Map<string, IndexEntry[]>();
    for (const e of this.entries()) {
      const list = out.get(e.pack);
      if (list === undefined) out.set(e.pack, [e]);
      else list.push(e);
    }
    return out;
  }

  /** Forgets every entry of these packs (after they were deleted); other copies of a blob take over. */
  removePacks(packs: ReadonlySet<string>): void {
    const keep = [...this.entries()].filter((e) => !packs.has(e.pack));
    this.packIds.length = 0;
    this.packSlot.clear();
    this.count = 0;
    this.table.fill(0);
    for (const e of keep) this.add(e);
  }

  /** The first slot holding this id, or undefined (also for anything that is not a blob id). */
  private slotOf(id: string): number | undefined {
    if (!this.readId(id)) return undefined;
    const mask = this.table.length - 1;
    const q = this.probeWords;
    for (let h = (q[0] as number) & mask; ; h = (h + 1) & mask) {
      const v = this.table[h] as number;
      if (v === 0) return undefined;
      if (this.idEquals(v - 1, q, 0)) return v - 1;
    }
  }

  /** Decodes a blob id into the probe buffer; false when it is not one (64 lowercase hex characters). */
  private readId(id: string): boolean {
    // Buffer's hex decoding would also take upper case: an id in upper case is not a blob id here.
    return HEX_ID.test(id) && this.probe.write(id, 'hex') === ID_BYTES;
  }

  /** Makes slot s findable by its id, unless an earlier slot holds the same id (first copy wins). */
  private insert(s: number): void {
    const mask = this.table.length - 1;
    const w = this.words;
    const base = s * ID_WORDS;
    for (let h = (w[base] as number) & mask; ; h = (h + 1) & mask) {
      const v = this.table[h] as number;
      if (v === 0) {
        this.table[h] = s + 1;
        return;
      }
      if (this.idEquals(v - 1, w, base)) return;
    }
  }

  /** Whether slot s's id is the one at q[from...]. */
  private idEquals(s: number, q: Uint32Array, from: number): boolean {
    const w = this.words;
    const base = s * ID_WORDS;
    for (let i = 0; i < ID_WORDS; i++) if (w[base + i] !== q[from + i]) return false;
    return true;
  }

  private setFields(s: number, pack: number, type: 0 | 1, offset: number, length: number, rawLength: number) {
    this.pack[s] = pack;
    this.offset[s] = offset;
    this.length[s] = length;
    this.rawLength[s] = rawLength;
    this.type[s] = type;
  }

  private at(s: number): IndexEntry {
    return {
      id: this.ids.toString('hex', s * ID_BYTES, (s + 1) * ID_BYTES),
      type: this.type[s] === 0 ? 'data' : 'tree',
      pack: this.packIds[this.pack[s] as number] as string,
      offset: this.offset[s] as number,
      length: this.length[s] as number,
      rawLength: this.rawLength[s] as number,
    };
  }

  /** Room for `more` entries: slot arrays doubled as needed, the hash table kept at most half full. */
  private reserve(more: number): void {
    let n = this.pack.length;
    while (this.count + more > n) n *= 2;
    if (n === this.pack.length) return;
    const ids = Buffer.alloc(n * ID_BYTES);
    this.ids.copy(ids, 0, 0, this.count * ID_BYTES);
    this.ids = ids;
    this.words = new Uint32Array(ids.buffer, ids.byteOffset, n * ID_WORDS);
    this.pack = grown(this.pack, n);
    this.offset = grown(this.offset, n);
    this.length = grown(this.length, n);
    this.rawLength = grown(this.rawLength, n);
    const type = new Uint8Array(n);
    type.set(this.type);
    this.type = type;
    // Rehash into a table twice the slot capacity; slots go in in order, so first copies stay first.
    this.table = new Uint32Array(n * 2);
    for (let s = 0; s < this.count; s++) this.insert(s);
  }
}

function grown(a: Uint32Array, n: number): Uint32Array<ArrayBuffer> {
  const b = new Uint32Array(n);
  b.set(a);
  return b;
}

/** Seals an index object for these packs' entries (grouped by pack, in the order given). */
export function encodeIndexObject(
  key: Uint8Array,
  packs: ReadonlyMap<string, readonly PackEntry[]>,
): Uint8Array {
  let entryCount = 0;
  for (const list of packs.values()) entryCount += list.length;
  const plain = Buffer.alloc(1 + 4 + packs.size * 36 + entryCount * ENTRY_BYTES);
  plain[0] = INDEX_VERSION;
  plain.writeUInt32LE(packs.size, 1);
  let p = 5;
  for (const [packId, list] of packs) {
    plain.write(packId, p, 32, 'hex');
    plain.writeUInt32LE(list.length, p + 32);
    p += 36;
  }
  for (const list of packs.values()) {
    for (const e of list) {
      plain[p] = e.type === 'data' ? 0 : 1;
      plain.write(e.id, p + 1, 32, 'hex');
      plain.writeUInt32LE(e.offset, p + 33);
      plain.writeUInt32LE(e.length, p + 37);
      plain.writeUInt32LE(e.rawLength, p + 41);
      p += ENTRY_BYTES;
    }
  }
  return seal(key, plain, INDEX_AAD);
}

/**
 * Opens an index object straight into `index` (no intermediate objects: open() of a 250k-blob
 * repository spends its time here). Returns the packs it covers. Validates fully before adding.
 */
export function loadIndexObject(
  index: BlobIndex,
  key: Uint8Array,
  sealed: Uint8Array,
  what: string,
): string[] {
  const plain = Buffer.from(open(key, sealed, what, INDEX_AAD));
  const heads = parseHeads(plain, what);
  for (let p = heads.entriesStart; p < plain.byteLength; p += ENTRY_BYTES) {
    const t = plain[p];
    if (t !== 0 && t !== 1) throw corrupt(what, `has an unknown blob type ${String(t)}`);
  }
  let p = heads.entriesStart;
  for (const [packId, n] of heads.packs) {
    // Packs are immutable, so a pack covered by two index objects (a repack or rebuild interrupted
    // between writing the new index and deleting the old) has the same entries in both: load once.
    if (index.hasPack(packId)) {
      p += n * ENTRY_BYTES;
      continue;
    }
    index.addPackEntries(index.packNumber(packId), plain, p, n);
    p += n * ENTRY_BYTES;
  }
  return heads.packs.map(([id]) => id);
}

/** The pack list of an index object's plaintext; checks that the entries fill the rest exactly. */
function parseHeads(plain: Buffer, what: string): { packs: Array<[string, number]>; entriesStart: number } {
  if (plain.byteLength < 5 || plain[0] !== INDEX_VERSION) throw corrupt(what, 'is not a v1 index');
  const packCount = plain.readUInt32LE(1);
  if (5 + packCount * 36 > plain.byteLength) throw corrupt(what, 'is truncated');
  const packs: Array<[string, number]> = [];
  let total = 0;
  for (let i = 0, p = 5; i < packCount; i++, p += 36) {
    const n = plain.readUInt32LE(p + 32);
    packs.push([plain.toString('hex', p, p + 32), n]);
    total += n;
  }
  const entriesStart = 5 + packCount * 36;
  if (entriesStart + total * ENTRY_BYTES !== plain.byteLength)
    throw corrupt(what, 'is truncated or has trailing bytes');
  return { packs, entriesStart };
}
