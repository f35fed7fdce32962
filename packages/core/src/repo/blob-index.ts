/**
 * The blob index: which pack holds each blob, where, and how long it is.
 *
 * In memory it is a Map from blob id to a slot in parallel typed arrays (about 120 bytes per blob
 * instead of ~250 for an object per entry), so a 250k-blob repository indexes in ~30 MB. A blob may
 * sit in several packs (a run that crashed after writing a pack but before its index re-saves the blob
 * later); every copy is kept so that each pack's entries stay complete, and lookups return the first.
 *
 * Loading defers the data entries (measured on the 2 GB benchmark repository: 66k entries, of which
 * ~1k trees; turning every id into a string Map key was ~60% of opening the repository): tree entries
 * are keyed at once, data entries keep their slot and stay in the decoded index object until asked
 * for. A lookup that misses searches those bytes for the id (a restore asks for a handful of blobs);
 * the first change, iteration or many such lookups (a backup) key every entry. find reads only trees,
 * so it never keys a data entry. Slots, copies and "first copy wins" are as if all were keyed at once.
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
/** Lookups answered by searching deferred entries before keying them all is cheaper. */
const MAX_DEFERRED_LOOKUPS = 32;
const HEX_ID = /^[0-9a-f]{64}$/;

/** A decoded index object whose data entries are not keyed yet: its packs' entry runs and their slots. */
interface Deferred {
  plain: Buffer;
  runs: Array<{ start: number; count: number; firstSlot: number }>;
}

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
  private deferred: Deferred[] = [];
  private deferredLookups = 0;

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
    this.keyDeferred(); // a new copy must not be found before an older, deferred one
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

  /**
   * Adds the entries of one pack from a decoded index object (entry format at plain[start...]): tree
   * entries keyed now, data entries deferred (see the module comment).
   */
  addPackEntries(pack: number, plain: Buffer, start: number, count: number): void {
    this.reserve(count);
    const firstSlot = this.count;
    for (let i = 0, p = start; i < count; i++, p += ENTRY_BYTES) {
      const s = this.count++;
      const type = plain[p] as 0 | 1;
      this.pack[s] = pack;
      this.offset[s] = plain.readUInt32LE(p + 33);
      this.length[s] = plain.readUInt32LE(p + 37);
      this.rawLength[s] = plain.readUInt32LE(p + 41);
      this.type[s] = type;
      if (type === 1) this.key(s, plain.toString('hex', p + 1, p + 33));
    }
    const last = this.deferred.at(-1);
    const run = { start, count, firstSlot };
    if (last?.plain === plain) last.runs.push(run);
    else this.deferred.push({ plain, runs: [run] });
  }

  /** Every entry, duplicates included, in insertion order. */
  *entries(): IterableIterator<IndexEntry> {
    this.keyDeferred();
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
    this.deferred = [];
    this.slots.clear();
    this.packIds.length = 0;
    this.packSlot.clear();
    this.ids = [];
    this.count = 0;
    for (const e of keep) this.add(e);
  }

  /** The first slot holding this id: keyed, or found among the deferred entries. */
  private slotOf(id: string): number | undefined {
    const s = this.slots.get(id);
    if (s !== undefined || this.deferred.length === 0) return s;
    if (++this.deferredLookups > MAX_DEFERRED_LOOKUPS) {
      this.keyDeferred();
      return this.slots.get(id);
    }
    return this.searchDeferred(id);
  }

  /** Finds an id in the deferred entries by its bytes (earliest slot first) and keys that entry. */
  private searchDeferred(id: string): number | undefined {
    if (!HEX_ID.test(id)) return undefined;
    const bytes = Buffer.from(id, 'hex');
    for (const { plain, runs } of this.deferred) {
      const from = (runs[0] as { start: number }).start;
      for (let q = plain.indexOf(bytes, from); q !== -1; q = plain.indexOf(bytes, q + 1)) {
        // Only a match at an entry's id field (after its type byte) of a run loaded here is that entry.
        const run = runs.find((r) => q > r.start && q < r.start + r.count * ENTRY_BYTES);
        if (run === undefined || (q - 1 - run.start) % ENTRY_BYTES !== 0) continue;
        const s = run.firstSlot + (q - 1 - run.start) / ENTRY_BYTES;
        this.key(s, id);
        return s;
      }
    }
    return undefined;
  }

  /** Keys every deferred entry. */
  private keyDeferred(): void {
    for (const { plain, runs } of this.deferred) {
      for (const { start, count, firstSlot } of runs) {
        for (let i = 0, p = start + 1; i < count; i++, p += ENTRY_BYTES) {
          if (this.ids[firstSlot + i] === undefined)
            this.key(firstSlot + i, plain.toString('hex', p, p + 32));
        }
      }
    }
    this.deferred = [];
  }

  /** Names slot s by its id; the id's lookup stays on its earliest slot. */
  private key(s: number, id: string): void {
    this.ids[s] = id;
    const first = this.slots.get(id);
    if (first === undefined || first > s) this.slots.set(id, s);
  }

  private reserve(more: number): void {
    let n = this.pack.length;
    while (this.count + more > n) n *= 2;
    if (n > this.pack.length) this.grow(n);
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

  private grow(n = this.pack.length * 2): void {
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
