/**
 * The seal pool's worker thread, as source text (run with `eval`, so it needs no module resolution:
 * the same text works from dist and from TypeScript sources under test).
 *
 * Rule it keeps: the worker computes exactly what the caller's thread would. Cutting is not restated:
 * the worker runs GearChunker, MessageCutter and headerBlockEnd from their own source text (they are
 * self-contained for that), so its blobs are those of message-record.ts by construction. Sealing
 * repeats compression.ts's and crypto.ts's steps with their parameters (seal-pool.test.ts checks it).
 *
 * Two kinds of jobs, answered in the order received:
 * - seal: blobs (plaintexts, keys, aads) → sealed blobs, written into a buffer the caller lent;
 * - cut: pieces of message streams → per piece, the ids and lengths of the blobs it completed, and at
 *   a stream's end the SHA-256 and size of the message. A stream's state (hash, chunker) stays here
 *   between jobs; what it holds of a job's input is copied before the input goes back.
 */
import type * as Crypto from 'node:crypto';
import type * as WorkerThreads from 'node:worker_threads';
import type * as Zlib from 'node:zlib';
import { GearChunker } from '../backup/chunker.js';
import { headerBlockEnd, MAX_HEADER_BYTES, MessageCutter } from '../backup/message-record.js';
import { BROTLI_QUALITY, MIN_COMPRESS } from './compression.js';
import { NONCE_BYTES } from './crypto.js';

/** What a cut job's piece says: which stream, how many input bytes, and whether the stream ends. */
export interface CutOp {
  stream: number;
  length: number;
  end: boolean;
  /** Drop the stream without an answer worth reading (the caller gave up on the message). */
  abort?: boolean;
  /** References to the stream's id key and gear, defined in this or an earlier job for this worker. */
  key: number;
  gear: number;
}

/** A cut job's answer for one op. */
export interface CutResult {
  ids: string[];
  lengths: number[];
  sha256?: string;
  size?: number;
}

export interface WorkerSettings {
  quality: number;
  minCompress: number;
  nonceBytes: number;
}

export function sealWorkerSource(): string {
  const settings: WorkerSettings = {
    quality: BROTLI_QUALITY,
    minCompress: MIN_COMPRESS,
    nonceBytes: NONCE_BYTES,
  };
  return `"use strict";
const MAX_HEADER_BYTES = ${MAX_HEADER_BYTES};
${headerBlockEnd.toString()}
const GearChunker = ${GearChunker.toString()};
const MessageCutter = ${MessageCutter.toString()};
(${workerMain.toString()})(require('node:worker_threads'), require('node:zlib'), require('node:crypto'),
  MessageCutter, GearChunker, ${JSON.stringify(settings)});
`;
}

type Gear = ConstructorParameters<typeof GearChunker>[0];

/**
 * The worker's body. Runs from its source text: it may use only its parameters and globals.
 */
function workerMain(
  wt: typeof WorkerThreads,
  zlib: typeof Zlib,
  crypto: typeof Crypto,
  Cutter: typeof MessageCutter,
  Chunker: typeof GearChunker,
  settings: WorkerSettings,
): void {
  const port = wt.parentPort;
  if (port === null) throw new Error('seal pool worker started outside a worker thread');
  let nonces = Buffer.alloc(0);
  let noncePos = 0;
  const nonce = (): Buffer => {
    if (noncePos + settings.nonceBytes > nonces.length) {
      nonces = crypto.randomFillSync(Buffer.alloc(settings.nonceBytes * 341));
      noncePos = 0;
    }
    noncePos += settings.nonceBytes;
    return nonces.subarray(noncePos - settings.nonceBytes, noncePos);
  };
  const brotliParams = (length: number) => ({
    params: {
      [zlib.constants.BROTLI_PARAM_QUALITY]: settings.quality,
      [zlib.constants.BROTLI_PARAM_SIZE_HINT]: length,
    },
  });

  interface SealJob {
    kind: 'seal';
    id: number;
    key: Uint8Array;
    input: ArrayBuffer;
    lengths: number[];
    aads: ArrayBuffer;
    aadLengths: number[];
    output: ArrayBuffer;
  }
  const seal = (job: SealJob): void => {
    // Sealed blobs are written into the output buffer the main thread lent (room for every blob
    // stored raw); both buffers go back with the answer, to be lent again.
    let out = new Uint8Array(job.output);
    const outLengths: number[] = [];
    let off = 0;
    let aadOff = 0;
    let p = 0;
    const put = (bytes: Uint8Array): void => {
      if (p + bytes.length > out.length) {
        const bigger = new Uint8Array(Math.max(out.length * 2, p + bytes.length));
        bigger.set(out.subarray(0, p));
        out = bigger;
      }
      out.set(bytes, p);
      p += bytes.length;
    };
    for (let i = 0; i < job.lengths.length; i++) {
      const length = job.lengths[i] as number;
      const plain = new Uint8Array(job.input, off, length);
      off += length;
      const aad = new Uint8Array(job.aads, aadOff, job.aadLengths[i]);
      aadOff += aad.length;
      // compression.ts: format byte 2 (brotli) when it shrinks, else 0 (raw).
      let format = 0;
      let payload: Uint8Array = plain;
      if (plain.length >= settings.minCompress) {
        const packed = zlib.brotliCompressSync(plain, brotliParams(plain.length));
        if (packed.length < plain.length) {
          format = 2;
          payload = packed;
        }
      }
      // crypto.ts seal(): nonce ‖ AES-256-GCM(format ‖ payload, aad) ‖ tag.
      const start = p;
      const n = nonce();
      const cipher = crypto.createCipheriv('aes-256-gcm', job.key, n);
      cipher.setAAD(aad);
      put(n);
      put(cipher.update(Uint8Array.of(format)));
      put(cipher.update(payload));
      put(cipher.final());
      put(cipher.getAuthTag());
      outLengths.push(p - start);
    }
    port.postMessage({ id: job.id, input: job.input, output: out.buffer, lengths: outLengths }, [
      job.input,
      out.buffer,
    ]);
  };

  interface Stream {
    hash: Crypto.Hash;
    cutter: MessageCutter;
    key: Uint8Array;
    size: number;
  }
  const streams = new Map<number, Stream>();
  const keys = new Map<number, Uint8Array>();
  const gears = new Map<number, Gear>();
  interface CutJob {
    kind: 'cut';
    id: number;
    input: ArrayBuffer;
    ops: CutOp[];
    keys: Array<[number, Uint8Array]>;
    gears: Array<[number, Gear]>;
  }
  const cut = (job: CutJob): void => {
    for (const [ref, key] of job.keys) keys.set(ref, key);
    for (const [ref, gear] of job.gears) gears.set(ref, gear);
    const results: CutResult[] = [];
    const touched = new Set<Stream>();
    let off = 0;
    for (const op of job.ops) {
      const piece = new Uint8Array(job.input, off, op.length);
      off += op.length;
      let s = streams.get(op.stream);
      if (op.abort) {
        streams.delete(op.stream);
        results.push({ ids: [], lengths: [] });
        continue;
      }
      if (s === undefined) {
        const key = keys.get(op.key);
        const gear = gears.get(op.gear);
        if (key === undefined || gear === undefined)
          throw new Error(`stream ${op.stream}: unknown key or gear`);
        s = { hash: crypto.createHash('sha256'), cutter: new Cutter(new Chunker(gear)), key, size: 0 };
        streams.set(op.stream, s);
      }
      const stream = s;
      const r: CutResult = { ids: [], lengths: [] };
      const blob = (b: Uint8Array | undefined): void => {
        if (b === undefined || b.length === 0) return;
        // repository.ts blobId(): HMAC-SHA-256 under the id key, hex.
        r.ids.push(crypto.createHmac('sha256', stream.key).update(b).digest('hex'));
        r.lengths.push(b.length);
      };
      if (piece.length > 0) {
        stream.hash.update(piece);
        stream.size += piece.length;
        for (const b of stream.cutter.push(piece)) blob(b);
      }
      if (op.end) {
        blob(stream.cutter.finish());
        r.sha256 = stream.hash.digest('hex');
        r.size = stream.size;
        streams.delete(op.stream);
        touched.delete(stream);
      } else touched.add(stream);
      results.push(r);
    }
    // The input goes back to be lent again: streams still open must not keep views of it.
    for (const s of touched) s.cutter.detach();
    port.postMessage({ id: job.id, input: job.input, results }, [job.input]);
  };

  port.on('message', (job: SealJob | CutJob) => {
    try {
      if (job.kind === 'seal') seal(job);
      else cut(job);
    } catch (err) {
      const e = err as { stack?: string } | undefined;
      port.postMessage({ id: job.id, input: job.input, error: String(e?.stack ?? err) }, [job.input]);
    }
  });
}
