/**
 * The packer: gathers sealed blobs into packs (~config.packSize), one open pack per blob type so tree
 * blobs (read often, by every walk) never hide among megabytes of message data. A pack is sealed when
 * it is full or on flush(); sealing builds its bytes, names it by their SHA-256 and writes it.
 *
 * Where the sink offers a spool (the local directory and S3 stores), a pack's blobs are written through
 * to it as they come and only its SHA-256 state is kept: no pack is assembled in memory (restic spools
 * packs to temp files for the same reason), and pending blobs are read back from the spool. Otherwise
 * (the memory store) a pack is assembled in a buffer. Either way memory stays bounded: uploads are chained, and
 * while two sealed packs wait to be written ready() holds new blobs back, so a type has its open pack
 * and at most two sealed ones (usually one being written); their buffers are reused for later packs,
 * two per type kept.
 *
 * A failed pack write is sticky: blobs already reported as added would be missing, so every later
 * add() and flush() rethrows the failure and no snapshot can be written on top of it.
 */
import { createHash, type Hash } from 'node:crypto';
import { sha256Hex } from './crypto.js';
import { type BlobType, encodePackTail, type PackEntry } from './pack.js';

/** A blob that is not yet readable from the store: in an open pack or in one being written. */
export interface PendingBlob {
  entry: PackEntry;
  /** Its sealed bytes, a view of the pack's buffer (packs in memory); undefined when spooled. */
  sealed: Uint8Array | undefined;
  pack: OpenPack;
}

interface OpenPack {
  type: BlobType;
  /**
   * The pack's bytes so far, when assembled in memory: sealed blobs are copied in as they come (no
   * parts to join at the end). Empty when spooled.
   */
  buf: Buffer;
  /** Where the pack's bytes go as they come, and the running SHA-256 of them (its name). */
  spool: PackSpool | undefined;
  hash: Hash | undefined;
  entries: PackEntry[];
  size: number;
}

/** A pack's bytes written through to the store as they come (see ObjectSpool in object-store.ts). */
export interface PackSpool {
  /** Appends bytes (copied before it returns). */
  append(bytes: Uint8Array): void;
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Publishes the appended bytes as the pack `packId` (already there counts as done). */
  commit(packId: string): Promise<void>;
  /** Drops the spool (its uncommitted bytes); reads in flight finish. */
  close(): void;
}

export interface PackSink {
  /** Stores a sealed pack's bytes under its id. The bytes are the packer's to reuse once it resolves. */
  writePack(packId: string, bytes: Uint8Array): Promise<void>;
  /** A spool for a new pack, or undefined to assemble packs in memory and hand them to writePack. */
  spoolPack?(): PackSpool | undefined;
  /** Called once the pack is in the store, before its blobs stop being pending. */
  packWritten(packId: string, entries: PackEntry[]): void;
}

/** Room beyond packSize: the blob that fills a pack (a header block is at most 1 MiB) and the tail. */
const SLACK = 1024 * 1024 + 256 * 1024;
/** First buffer of a type (tree packs of a checkpoint stay small); written packs' buffers are reused. */
const FIRST_BUFFER = 1024 * 1024;
const NO_BUFFER = Buffer.alloc(0);

export class Packer {
  private readonly open = new Map<BlobType, OpenPack>();
  private readonly pendingBlobs = new Map<string, PendingBlob>();
  /**
   * A written pack's buffer, per type, for the next pack: a backup seals a pack every 16 MiB, and
   * allocating and freeing that much each time bloats the process (the allocator keeps freed big
   * blocks around), where two buffers per type, reused, cost no more than the packs themselves.
   */
  private readonly spare = new Map<BlobType, Buffer>();
  private chain: Promise<void> = Promise.resolve();
  private failure: unknown;
  /** Packs sealed and not yet written (the one being written included), and who waits for fewer. */
  private unwritten = 0;
  private waiting: Array<() => void> = [];

  constructor(
    private readonly encKey: Uint8Array,
    private readonly packSize: number,
    private readonly sink: PackSink,
  ) {}

  pending(id: string): PendingBlob | undefined {
    return this.pendingBlobs.get(id);
  }

  /** A pending blob's sealed bytes (from its pack's buffer, or read back from its spool). */
  readPending(p: PendingBlob): Promise<Uint8Array> {
    if (p.sealed !== undefined) return Promise.resolve(p.sealed);
    const spool = p.pack.spool;
    if (spool === undefined) return Promise.reject(new Error('packer: pending blob has no bytes'));
    return spool.read(p.entry.offset, p.entry.length);
  }

  /**
   * undefined when a new blob may be added now, else a promise that resolves when it may: while two
   * sealed packs wait to be written, callers hold back, so that writes slower than the backup cannot
   * make packs (16 MiB each) pile up in memory. Blobs already on their way still land.
   */
  ready(): Promise<void> | undefined {
    if (this.unwritten < 2) return undefined;
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** Throws the sticky failure of an earlier pack write, if any. */
  assertHealthy(): void {
    if (this.failure !== undefined) throw this.failure;
  }

  /**
   * Adds a sealed blob (synchronously, so a caller's has-check and add cannot interleave with another
   * caller's); when its pack is full, seals and writes it before resolving. The packer copies `sealed`.
   */
  async add(type: BlobType, id: string, sealed: Uint8Array, rawLength: number): Promise<void> {
    this.assertHealthy();
    const pack = this.open.get(type) ?? this.openPack(type);
    const entry: PackEntry = { type, id, offset: pack.size, length: sealed.byteLength, rawLength };
    let view: Uint8Array | undefined;
    if (pack.spool !== undefined) {
      this.append(pack, sealed);
    } else {
      reserve(pack, sealed.byteLength, this.packSize + SLACK);
      pack.buf.set(sealed, pack.size);
      view = pack.buf.subarray(entry.offset, entry.offset + entry.length);
    }
    pack.entries.push(entry);
    pack.size += sealed.byteLength;
    this.pendingBlobs.set(id, { entry, sealed: view, pack });
    if (pack.size >= this.packSize) await this.seal(type);
  }

  private openPack(type: BlobType): OpenPack {
    let pack: OpenPack;
    let spool: PackSpool | undefined;
    try {
      spool = this.sink.spoolPack?.();
    } catch (err) {
      this.failure ??= err;
      throw err;
    }
    if (spool !== undefined) {
      pack = { type, buf: NO_BUFFER, spool, hash: createHash('sha256'), entries: [], size: 0 };
    } else {
      const buf =
        this.spare.get(type) ?? Buffer.allocUnsafeSlow(Math.min(FIRST_BUFFER, this.packSize + SLACK));
      this.spare.delete(type);
      pack = { type, buf, spool: undefined, hash: undefined, entries: [], size: 0 };
    }
    this.open.set(type, pack);
    return pack;
  }

  /** Writes bytes through to a spooled pack. A failure is sticky: the pack can no longer be whole. */
  private append(pack: OpenPack, bytes: Uint8Array): void {
    try {
      pack.spool?.append(bytes);
      pack.hash?.update(bytes);
    } catch (err) {
      // The pack's blobs are lost with it (they were reported as added): sticky, and the pack dropped.
      this.failure ??= err;
      this.open.delete(pack.type);
      this.release(pack.entries);
      pack.spool?.close();
      throw err;
    }
  }

  /** Seals every open pack and waits until every pack is written. */
  async flush(): Promise<void> {
    const types = [...this.open.keys()];
    await Promise.all(types.map((t) => this.seal(t)));
    await this.chain;
    this.assertHealthy();
  }

  private async seal(type: BlobType): Promise<void> {
    const pack = this.open.get(type);
    if (pack === undefined || pack.entries.length === 0) return;
    this.open.delete(type);
    const tail = encodePackTail(this.encKey, pack.entries);
    const spool = pack.spool;
    let packId: string;
    let bytes: Uint8Array | undefined;
    if (spool !== undefined) {
      this.append(pack, tail);
      packId = (pack.hash as Hash).digest('hex');
    } else {
      reserve(pack, tail.byteLength, this.packSize + SLACK);
      pack.buf.set(tail, pack.size);
      bytes = pack.buf.subarray(0, pack.size + tail.byteLength);
      packId = sha256Hex(bytes);
    }
    this.unwritten++;
    const write = this.chain.then(async () => {
      this.assertHealthy();
      if (spool !== undefined) await spool.commit(packId);
      else await this.sink.writePack(packId, bytes as Uint8Array);
      this.sink.packWritten(packId, pack.entries);
    });
    this.chain = write.then(
      () => {
        this.written(pack.entries);
        // Nothing points into the buffer any more (pending blobs are released): reuse it, unless
        // that would keep more than two buffers of this type (after writes fell behind).
        const inUse = (this.open.has(type) ? 1 : 0) + this.unwritten;
        if (spool === undefined && !this.spare.has(type) && inUse < 2) this.spare.set(type, pack.buf);
        spool?.close();
      },
      (err: unknown) => {
        this.failure ??= err;
        this.written(pack.entries);
        spool?.close();
      },
    );
    await write;
  }

  private written(entries: readonly PackEntry[]): void {
    this.release(entries);
    this.unwritten--;
    if (this.unwritten < 2) for (const wake of this.waiting.splice(0)) wake();
  }

  private release(entries: readonly PackEntry[]): void {
    for (const e of entries) {
      const p = this.pendingBlobs.get(e.id);
      if (p?.entry === e) this.pendingBlobs.delete(e.id);
    }
  }
}

/**
 * Makes room for `more` bytes after the pack's content: from the small first buffer straight to the
 * full `target` (doubling would leave a trail of dead 1-8 MiB buffers per pack), or to what a blob
 * larger than that needs. Pending blobs keep their views of the old buffer, which stays valid.
 */
function reserve(pack: OpenPack, more: number, target: number): void {
  const need = pack.size + more;
  if (need <= pack.buf.byteLength) return;
  const grown = Buffer.allocUnsafeSlow(Math.max(need, target));
  pack.buf.copy(grown, 0, 0, pack.size);
  pack.buf = grown;
}
