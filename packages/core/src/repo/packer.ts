/**
 * The packer: gathers sealed blobs into packs (~config.packSize), one open pack per blob type so tree
 * blobs (read often, by every walk) never hide among megabytes of message data. A pack is sealed when
 * it is full or on flush(); sealing builds its bytes, names it by their SHA-256 and writes it.
 *
 * Memory stays bounded: at most one open pack per type plus one pack being written (uploads are
 * chained, so a caller that fills a pack waits for the previous upload to end).
 *
 * A failed pack write is sticky: blobs already reported as added would be missing, so every later
 * add() and flush() rethrows the failure and no snapshot can be written on top of it.
 */
import { sha256Hex } from './crypto.js';
import { type BlobType, encodePackTail, type PackEntry } from './pack.js';

/** A blob that is not yet readable from the store: in an open pack or in one being written. */
export interface PendingBlob {
  entry: PackEntry;
  sealed: Uint8Array;
}

interface OpenPack {
  type: BlobType;
  parts: Uint8Array[];
  entries: PackEntry[];
  size: number;
}

export interface PackSink {
  /** Stores a sealed pack's bytes under its id. */
  writePack(packId: string, bytes: Uint8Array): Promise<void>;
  /** Called once the pack is in the store, before its blobs stop being pending. */
  packWritten(packId: string, entries: PackEntry[]): void;
}

export class Packer {
  private readonly open = new Map<BlobType, OpenPack>();
  private readonly pendingBlobs = new Map<string, PendingBlob>();
  private chain: Promise<void> = Promise.resolve();
  private failure: unknown;

  constructor(
    private readonly encKey: Uint8Array,
    private readonly packSize: number,
    private readonly sink: PackSink,
  ) {}

  pending(id: string): PendingBlob | undefined {
    return this.pendingBlobs.get(id);
  }

  /** Throws the sticky failure of an earlier pack write, if any. */
  assertHealthy(): void {
    if (this.failure !== undefined) throw this.failure;
  }

  /**
   * Adds a sealed blob (synchronously, so a caller's has-check and add cannot interleave with another
   * caller's); when its pack is full, seals and writes it before resolving.
   */
  async add(type: BlobType, id: string, sealed: Uint8Array, rawLength: number): Promise<void> {
    this.assertHealthy();
    let pack = this.open.get(type);
    if (pack === undefined) {
      pack = { type, parts: [], entries: [], size: 0 };
      this.open.set(type, pack);
    }
    const entry: PackEntry = { type, id, offset: pack.size, length: sealed.byteLength, rawLength };
    pack.parts.push(sealed);
    pack.entries.push(entry);
    pack.size += sealed.byteLength;
    this.pendingBlobs.set(id, { entry, sealed });
    if (pack.size >= this.packSize) await this.seal(type);
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
    pack.parts.push(encodePackTail(this.encKey, pack.entries));
    const bytes = Buffer.concat(pack.parts);
    pack.parts = [];
    // Pending blobs now point into the pack buffer, so the parts can be freed.
    for (const e of pack.entries)
      this.pendingBlobs.set(e.id, { entry: e, sealed: bytes.subarray(e.offset, e.offset + e.length) });
    const packId = sha256Hex(bytes);
    const write = this.chain.then(async () => {
      this.assertHealthy();
      await this.sink.writePack(packId, bytes);
      this.sink.packWritten(packId, pack.entries);
    });
    this.chain = write.then(
      () => this.release(pack.entries),
      (err: unknown) => {
        this.failure ??= err;
        this.release(pack.entries);
      },
    );
    await write;
  }

  private release(entries: readonly PackEntry[]): void {
    for (const e of entries) {
      const p = this.pendingBlobs.get(e.id);
      if (p?.entry === e) this.pendingBlobs.delete(e.id);
    }
  }
}
