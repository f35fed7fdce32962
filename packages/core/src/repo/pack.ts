/**
 * Pack format v1 (pure encode/decode; the packer and repository do the I/O).
 *
 *   blob 0 … blob n-1   seal(encKey, compress(plain), aad = "blob" ‖ type ‖ id)   (crypto.ts, compression.ts)
 *   header              seal(encKey, version 1 ‖ n × entry, aad = "pack-header")
 *   header length       uint32 little-endian: byte length of the sealed header
 *
 *   entry (45 bytes)    type u8 (0 data, 1 tree) ‖ id 32 bytes ‖ offset u32 ‖ length u32 ‖ rawLength u32
 *
 * Blobs come first so a pack streams out as it fills; the header sits at the end so a reader learns
 * the pack's contents with one ranged read of its tail (the size comes from stat(): never a suffix
 * range, which S3-compatible servers get wrong). Each blob is sealed on its own, and its id and type
 * are bound as associated data, so one blob is read with one ranged GET and authenticates only as
 * the blob the index says it is.
 */

import { compress, decompress } from './compression.js';
import { corrupt, open, SEAL_OVERHEAD, seal } from './crypto.js';

export type BlobType = 'data' | 'tree';

export interface PackEntry {
  type: BlobType;
  id: string;
  /** Offset of the sealed blob in the pack. */
  offset: number;
  /** Length of the sealed blob (compressed + format byte + SEAL_OVERHEAD). */
  length: number;
  /** Length of the plaintext. */
  rawLength: number;
}

const HEADER_VERSION = 1;
export const ENTRY_BYTES = 45;
const LENGTH_BYTES = 4;
const HEADER_AAD = Buffer.from('pack-header');

/** The exact byte length of a pack's tail (sealed header + length field) for `count` blobs. */
export function tailLength(count: number): number {
  return SEAL_OVERHEAD + 1 + count * ENTRY_BYTES + LENGTH_BYTES;
}

/** The associated data that binds a sealed blob to its type and id. */
export function blobAad(type: BlobType, id: string): Uint8Array {
  return Buffer.concat([Buffer.from('blob'), Buffer.of(type === 'data' ? 0 : 1), Buffer.from(id, 'hex')]);
}

/** Compresses and seals one blob for a pack. */
export function sealBlob(key: Uint8Array, type: BlobType, id: string, plain: Uint8Array): Uint8Array {
  return seal(key, compress(plain), blobAad(type, id));
}

/** Authenticates, decrypts and decompresses one blob read from a pack; `what` names it for errors. */
export function openBlob(key: Uint8Array, entry: PackEntry, sealed: Uint8Array, what: string): Uint8Array {
  return decompress(open(key, sealed, what, blobAad(entry.type, entry.id)), entry.rawLength, what);
}

/** The sealed header and length field to append after the blobs. */
export function encodePackTail(key: Uint8Array, entries: readonly PackEntry[]): Uint8Array {
  const plain = Buffer.alloc(1 + entries.length * ENTRY_BYTES);
  plain[0] = HEADER_VERSION;
  let p = 1;
  for (const e of entries) {
    plain[p] = e.type === 'data' ? 0 : 1;
    plain.write(e.id, p + 1, 32, 'hex');
    plain.writeUInt32LE(e.offset, p + 33);
    plain.writeUInt32LE(e.length, p + 37);
    plain.writeUInt32LE(e.rawLength, p + 41);
    p += ENTRY_BYTES;
  }
  const header = seal(key, plain, HEADER_AAD);
  const len = Buffer.alloc(LENGTH_BYTES);
  len.writeUInt32LE(header.byteLength, 0);
  return Buffer.concat([header, len]);
}

/**
 * How many tail bytes decodePackTail needs, given the last 4 bytes of a pack of `packSize` bytes.
 * Throws CORRUPT if the length field cannot be right.
 */
export function tailLengthFromField(field: Uint8Array, packSize: number, what: string): number {
  if (field.byteLength < LENGTH_BYTES || packSize < tailLength(0))
    throw corrupt(what, 'is too short to be a pack');
  const headerLength = Buffer.from(field.buffer, field.byteOffset, field.byteLength).readUInt32LE(
    field.byteLength - LENGTH_BYTES,
  );
  const total = headerLength + LENGTH_BYTES;
  if (
    headerLength < SEAL_OVERHEAD + 1 ||
    total > packSize ||
    (headerLength - SEAL_OVERHEAD - 1) % ENTRY_BYTES !== 0
  ) {
    throw corrupt(what, `has an impossible header length ${headerLength}`);
  }
  return total;
}

/**
 * Decodes a pack's header from its tail (at least tailLengthFromField bytes, ending at the pack's end).
 * Checks that the blobs tile the pack exactly up to the header: a pack that does not is CORRUPT.
 */
export function decodePackTail(
  key: Uint8Array,
  tail: Uint8Array,
  packSize: number,
  what: string,
): PackEntry[] {
  const total = tailLengthFromField(tail, packSize, what);
  if (tail.byteLength < total) throw corrupt(what, 'tail read is shorter than its header');
  const sealedHeader = tail.subarray(tail.byteLength - total, tail.byteLength - LENGTH_BYTES);
  const plain = Buffer.from(open(key, sealedHeader, `${what} (header)`, HEADER_AAD));
  if (plain[0] !== HEADER_VERSION) throw corrupt(what, `has unknown header version ${String(plain[0])}`);
  const entries: PackEntry[] = [];
  let expectedOffset = 0;
  for (let p = 1; p + ENTRY_BYTES <= plain.byteLength; p += ENTRY_BYTES) {
    const type = plain[p] === 0 ? 'data' : plain[p] === 1 ? 'tree' : undefined;
    const e = {
      id: plain.toString('hex', p + 1, p + 33),
      offset: plain.readUInt32LE(p + 33),
      length: plain.readUInt32LE(p + 37),
      rawLength: plain.readUInt32LE(p + 41),
    };
    if (type === undefined || e.offset !== expectedOffset || e.length < SEAL_OVERHEAD + 1) {
      throw corrupt(what, `header entry for blob ${e.id} is inconsistent`);
    }
    expectedOffset += e.length;
    entries.push({ type, ...e });
  }
  if (expectedOffset + total !== packSize) {
    throw corrupt(
      what,
      `blobs cover ${expectedOffset} bytes but the pack holds ${packSize - total} before its header`,
    );
  }
  return entries;
}
