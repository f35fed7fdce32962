import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isMailarkError } from '../errors.js';
import { decompress } from './compression.js';
import { hmacId, open } from './crypto.js';
import {
  decodePackTail,
  encodePackTail,
  openBlob,
  type PackEntry,
  sealBlob,
  tailLength,
  tailLengthFromField,
} from './pack.js';

const key = randomBytes(32);
const idKey = randomBytes(32);

function buildPack(blobs: Array<{ type: 'data' | 'tree'; plain: Uint8Array }>) {
  const parts: Uint8Array[] = [];
  const entries: PackEntry[] = [];
  let offset = 0;
  for (const b of blobs) {
    const id = hmacId(idKey, b.plain);
    const sealed = sealBlob(key, b.type, id, b.plain);
    entries.push({ type: b.type, id, offset, length: sealed.byteLength, rawLength: b.plain.byteLength });
    parts.push(sealed);
    offset += sealed.byteLength;
  }
  parts.push(encodePackTail(key, entries));
  return { bytes: Buffer.concat(parts), entries };
}

function corruptCode(f: () => unknown): string {
  try {
    f();
    return 'ok';
  } catch (err) {
    return isMailarkError(err) ? err.code : String(err);
  }
}

describe('pack format', () => {
  const blobs = [
    { type: 'data' as const, plain: Buffer.from('Subject: x\r\n\r\n'.repeat(300)) }, // compresses
    { type: 'data' as const, plain: randomBytes(3000) }, // does not: stored raw
    { type: 'tree' as const, plain: Buffer.from('{"v":1}') }, // tiny
    { type: 'data' as const, plain: new Uint8Array(0) }, // empty
  ];

  it('decodes its header from the tail and every blob from its range', () => {
    const { bytes, entries } = buildPack(blobs);
    const tail = bytes.subarray(bytes.byteLength - tailLength(entries.length));
    expect(tailLengthFromField(tail.subarray(tail.byteLength - 4), bytes.byteLength, 'p')).toBe(
      tail.byteLength,
    );
    expect(decodePackTail(key, tail, bytes.byteLength, 'p')).toEqual(entries);
    for (const [i, e] of entries.entries()) {
      const plain = openBlob(key, e, bytes.subarray(e.offset, e.offset + e.length), 'p');
      expect(Buffer.from(plain).equals(Buffer.from(blobs[i]?.plain as Uint8Array))).toBe(true);
    }
    // Compression: the repetitive blob shrank, the random one costs only the format byte + seal.
    expect(entries[0]?.length).toBeLessThan(200);
    expect(entries[1]?.length).toBe(3000 + 1 + 28);
  });

  it('a blob authenticates only as its own id and type', () => {
    const { bytes, entries } = buildPack(blobs);
    const e = entries[0] as PackEntry;
    const sealed = bytes.subarray(e.offset, e.offset + e.length);
    expect(corruptCode(() => openBlob(key, { ...e, type: 'tree' }, sealed, 'p'))).toBe('CORRUPT');
    expect(corruptCode(() => openBlob(key, { ...e, id: entries[1]?.id as string }, sealed, 'p'))).toBe(
      'CORRUPT',
    );
    expect(corruptCode(() => openBlob(key, { ...e, rawLength: e.rawLength + 1 }, sealed, 'p'))).toBe(
      'CORRUPT',
    );
  });

  it('rejects a header that does not tile the pack, and impossible length fields', () => {
    const { bytes, entries } = buildPack(blobs);
    const tail = bytes.subarray(bytes.byteLength - tailLength(entries.length));
    expect(corruptCode(() => decodePackTail(key, tail, bytes.byteLength + 1, 'p'))).toBe('CORRUPT');
    const bad = Buffer.from(bytes);
    bad.writeUInt32LE(0xffffff, bad.byteLength - 4);
    expect(corruptCode(() => tailLengthFromField(bad.subarray(-4), bad.byteLength, 'p'))).toBe('CORRUPT');
    expect(corruptCode(() => tailLengthFromField(Buffer.alloc(4), 1000, 'p'))).toBe('CORRUPT');
  });

  it('decompress refuses unknown formats and wrong lengths', () => {
    expect(corruptCode(() => decompress(Buffer.from([7, 1, 2]), 2, 'p'))).toBe('CORRUPT');
    expect(corruptCode(() => decompress(Buffer.from([0, 1, 2]), 3, 'p'))).toBe('CORRUPT');
    expect(Buffer.from(decompress(Buffer.from([0, 1, 2]), 2, 'p'))).toEqual(Buffer.from([1, 2]));
    expect(corruptCode(() => open(key, Buffer.alloc(10), 'p'))).toBe('CORRUPT');
  });
});
