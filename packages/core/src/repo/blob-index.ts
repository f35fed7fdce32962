/**
 * The blob index: which pack holds each blob, where, and how long it is.
 *
 * In memory it is a Map from blob id to a slot in parallel typed arrays (about 120 bytes per blob
 * instead of ~250 for an object per entry), so a 250k-blob repository indexes in ~30 MB. A blob may
 * sit in several packs (a run that crashed after writing a pack but before its index re-saves the blob
 * later); every copy is kept so that each pack's entries stay complete, and lookups return the first.
 *
 * Index objects (index/<sha256 of stored bytes>) are sealed binary, aad "index":
 *   version u8 (1) ‖ packs u32 ‖ packs × (pack id 32 bytes ‖ blob count u32) ‖ entries, pack by pack,
 *   each type u8 ‖ id 32 ‖ offset u32 ‖ length u32 ‖ rawLength u32 (the pack header's entry format).
 * Binary because open() loads every index object: 250k entries decode in well under a second.
 */
import { corrupt, open, seal } from './crypto.js';
import { ENTRY_BYTES, type PackEntry } from './pack.js';

export interface IndexEntry extends PackEntry {
  pack: string;
}

const INDEX_VERSION = 1;
const INDEX_AAD = Buffer.from('index');

export class BlobIndex {
  private readonly slots = new Map<string, number>();
  private readonly packIds: string[] = [];
  private readonly packSlot = new Map<string, number>();
  private ids: string[] = [];
  private pack = new Uint32Array(1024);
  private offset = new Uint32Array(1024);
  private length = new Uint32Array(1024);
  private rawLength = new Uint32Array(1024);
  private type = new Uint8Array(1024);
  private count = 0;

  /** Number of entries, duplicates included. */
  get size(): number {
    return this.count;
  }

  has(id: string): boolean {
    return this.slots.has(id);
  }

  get(id: string): IndexEntry | undefined {
    const s = this.slots.get(id);
    return s === undefined ? undefined : this.at(s);
  }

  hasPack(packId: string): boolean {
    return this.packSlot.has(packId);
  }

  add(e: IndexEntry): void {
    this.addFields(this.packNumber(e.pack), e.type === 'data' ? 0 : 1, e.id, e.offset, e.length, e.rawLength);
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

  /** add() without an entry object: the hot path of loading index objects at open. */
  addFields(pack: number, type: 0 | 1, id: string, offset: number, length: number, rawLength: number): void {
    if (this.count === this.pack.length) this.grow();
    const s = this.count++;
    this.ids[s] = id;
    this.pack[s] = pack;
    this.offset[s] = offset;
    this.length[s] = length;
    this.rawLength[s] = rawLength;
    this.type[s] = type;
    if (!this.slots.has(id)) this.slots.set(id, s);
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
    this.slots.clear();
    this.packIds.length = 0;
    this.packSlot.clear();
    this.ids = [];
    this.count = 0;
    for (const e of keep) this.add(e);
  }

  private at(s: number): IndexEntry {
    return {
      id: this.ids[s] as string,
      type: this.type[s] === 0 ? 'data' : 'tree',
      pack: this.packIds[this.pack[s] as number] as string,
      offset: this.offset[s] as number,
      length: this.length[s] as number,
      rawLength: this.rawLength[s] as number,
    };
  }

  private grow(): void {
    const n = this.pack.length * 2;
    const g32 = (a: Uint32Array) => {
      const b = new Uint32Array(n);
      b.set(a);
      return b;
    };
    this.pack = g32(this.pack);
    this.offset = g32(this.offset);
    this.length = g32(this.length);
    this.rawLength = g32(this.rawLength);
    const t = new Uint8Array(n);
    t.set(this.type);
    this.type = t;
  }
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
    const pack = index.packNumber(packId);
    for (let i = 0; i < n; i++, p += ENTRY_BYTES) {
      index.addFields(
        pack,
        plain[p] as 0 | 1,
        plain.toString('hex', p + 1, p + 33),
        plain.readUInt32LE(p + 33),
        plain.readUInt32LE(p + 37),
        plain.readUInt32LE(p + 41),
      );
    }
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
