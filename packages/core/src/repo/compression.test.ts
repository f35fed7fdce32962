import { randomBytes } from 'node:crypto';
import { deflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { compress, decompress } from './compression.js';

describe('blob compression', () => {
  it('writes brotli (format 2) for compressible data and round-trips it exactly', () => {
    const plain = Buffer.from('Subject: hello\r\n\r\n'.repeat(500));
    const stored = compress(plain);
    expect(stored[0]).toBe(2);
    expect(stored.byteLength).toBeLessThan(plain.byteLength / 10);
    expect(Buffer.from(decompress(stored, plain.byteLength, 'blob x'))).toEqual(plain);
  });

  it('stores incompressible and tiny data raw (format 0), never larger than plain + 1', () => {
    for (const plain of [randomBytes(20_000), Buffer.from('tiny')]) {
      const stored = compress(plain);
      expect(stored[0]).toBe(0);
      expect(stored.byteLength).toBe(plain.byteLength + 1);
      expect(Buffer.from(decompress(stored, plain.byteLength, 'blob x'))).toEqual(plain);
    }
  });

  it('still reads deflate-raw blobs (format 1) of early v1 repositories', () => {
    const plain = Buffer.from('From: a@b\r\n\r\nbody body body body body\r\n'.repeat(40));
    const stored = Buffer.concat([Buffer.from([1]), deflateRawSync(plain)]);
    expect(Buffer.from(decompress(stored, plain.byteLength, 'blob x'))).toEqual(plain);
  });

  it('names corruption: unknown format, garbage payload, wrong length, decompression bomb', () => {
    const plain = Buffer.from('abc'.repeat(1000));
    const stored = Buffer.from(compress(plain));
    expect(() =>
      decompress(Buffer.concat([Buffer.from([9]), stored.subarray(1)]), plain.byteLength, 'blob x'),
    ).toThrow(/blob x.*unknown compression format 9/);
    expect(() => decompress(Buffer.from([2, 0xff, 0xfe, 0xfd]), 100, 'blob y')).toThrow(/blob y/);
    expect(() => decompress(stored, plain.byteLength - 1, 'blob z')).toThrow(/blob z/);
    expect(() => decompress(stored, 10, 'blob w')).toThrow(/blob w/);
  });
});
