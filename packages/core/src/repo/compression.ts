/**
 * Blob compression: a blob's stored plaintext is one format byte followed by its payload.
 *
 *   0  raw
 *   1  deflate-raw (RFC 1951) — read only (early v1 repositories, e.g. the frozen v1 fixture)
 *   2  brotli (RFC 7932), quality 0 — what v1 writes (early v1 wrote quality 1: readers do not care)
 *
 * Why brotli: mail is mostly base64 attachments, on which deflate's match search finds nothing and
 * crawls (~9-15 MB/s at any level on this machine), making compression the backup's bottleneck. On
 * 16 KiB pieces (the chunker's average) of the fixtures plus base64 data, brotli q1 compresses ~3x
 * faster than deflate 6 at the same ratio (0.717 both), and prose ~2x faster and tighter (0.030 vs
 * 0.057). Why q0 rather than q1: on the blobs of the 500 MB bench corpus (header blocks and chunks,
 * deduplicated: 32k blobs, 296 MB) q0 spends ~18% less CPU (2.0 s vs 2.4 s) for 0.9% more stored
 * (ratio 0.683 vs 0.676); in a whole backup of that corpus the seal worker's brotli time fell from
 * 2.1 s to 1.55 s and the repository grew from 200.5 MB to 202.2 MB. A blob that does not shrink is
 * stored raw (already-compressed attachments, tiny headers), so compression never costs space beyond
 * the format byte.
 */
import { brotliCompressSync, brotliDecompressSync, constants, inflateRawSync } from 'node:zlib';
import { corrupt } from './crypto.js';

const RAW = 0;
const DEFLATE = 1;
const BROTLI = 2;
/** Below this size deflate's framing eats any gain: store raw without trying. */
export const MIN_COMPRESS = 64;
/** The brotli quality v1 writes (the seal pool's workers use it too). */
export const BROTLI_QUALITY = 0;

export function compress(plain: Uint8Array): Uint8Array {
  if (plain.byteLength >= MIN_COMPRESS) {
    const packed = brotliCompressSync(plain, {
      params: {
        [constants.BROTLI_PARAM_QUALITY]: BROTLI_QUALITY,
        [constants.BROTLI_PARAM_SIZE_HINT]: plain.byteLength,
      },
    });
    if (packed.byteLength < plain.byteLength) return prefix(BROTLI, packed);
  }
  return prefix(RAW, plain);
}

/** Inverse of compress(); `rawLength` (from the index) bounds inflation, so a bomb cannot blow memory. */
export function decompress(stored: Uint8Array, rawLength: number, what: string): Uint8Array {
  const format = stored[0];
  const payload = stored.subarray(1);
  let out: Uint8Array;
  if (format === RAW) out = payload;
  else if (format === DEFLATE) {
    try {
      out = inflateRawSync(payload, { maxOutputLength: Math.max(rawLength, 1) });
    } catch (err) {
      throw corrupt(what, 'does not decompress', err);
    }
  } else if (format === BROTLI) {
    try {
      out = brotliDecompressSync(payload, { maxOutputLength: Math.max(rawLength, 1) });
    } catch (err) {
      throw corrupt(what, 'does not decompress', err);
    }
  } else throw corrupt(what, `has unknown compression format ${String(format)}`);
  if (out.byteLength !== rawLength) {
    throw corrupt(what, `decompresses to ${out.byteLength} bytes, the index says ${rawLength}`);
  }
  return out;
}

function prefix(format: number, payload: Uint8Array): Uint8Array {
  const out = Buffer.allocUnsafe(payload.byteLength + 1);
  out[0] = format;
  out.set(payload, 1);
  return out;
}
