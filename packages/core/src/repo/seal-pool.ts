/**
 * The seal pool: compresses and seals blobs (pack.ts's sealBlob) on worker threads, so the thread
 * that parses IMAP, chunks and hashes never waits on brotli or AES. On the initial backup, compression
 * alone was a third of the main thread's time.
 *
 * Rules it keeps:
 * - the bytes are exactly sealBlob's: format byte ‖ brotli (or raw when it does not shrink), sealed
 *   with AES-256-GCM under the caller's key and aad (the worker repeats compression.ts's and
 *   crypto.ts's steps with their parameters; seal-pool.test.ts checks it opens as a pack blob);
 * - one pool per process, started on the first seal and sized from the cores (none on one core: the
 *   caller's thread seals, as before); idle workers never keep the process alive;
 * - calls are batched into jobs of ~1 MiB (one copy of the input into a transferred buffer, one
 *   transferred buffer back): a job goes out when full, the rest at the end of the event loop turn,
 *   so per-blob messaging costs nothing measurable and the worker is woken rarely;
 * - a worker that dies fails its pending seals (the caller's error path) and is not replaced: later
 *   seals run on the caller's thread.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { BROTLI_QUALITY, compress, MIN_COMPRESS } from './compression.js';
import { NONCE_BYTES, SEAL_OVERHEAD, seal } from './crypto.js';
import { type BlobType, blobAad, sealBlob } from './pack.js';

/** Input bytes per worker message: big enough to amortise messaging, small enough to spread load. */
const JOB_BYTES = 1024 * 1024;

// Plain JavaScript run with `eval`: the worker needs no module resolution (dist or TypeScript sources).
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { brotliCompressSync, constants } = require('node:zlib');
const { createCipheriv, randomFillSync } = require('node:crypto');
const { quality, minCompress, nonceBytes } = workerData;
let nonces = Buffer.alloc(0);
let noncePos = 0;
function nonce() {
  if (noncePos + nonceBytes > nonces.length) {
    nonces = randomFillSync(Buffer.alloc(nonceBytes * 341));
    noncePos = 0;
  }
  noncePos += nonceBytes;
  return nonces.subarray(noncePos - nonceBytes, noncePos);
}
parentPort.on('message', ({ id, key, input, lengths, aads, aadLengths, output }) => {
  try {
    // Sealed blobs are written into the output buffer the main thread lent (room for every blob
    // stored raw); both buffers go back with the answer, to be lent again.
    let out = new Uint8Array(output);
    const outLengths = [];
    let off = 0;
    let aadOff = 0;
    let p = 0;
    const put = (bytes) => {
      if (p + bytes.length > out.length) {
        const bigger = new Uint8Array(Math.max(out.length * 2, p + bytes.length));
        bigger.set(out.subarray(0, p));
        out = bigger;
      }
      out.set(bytes, p);
      p += bytes.length;
    };
    for (let i = 0; i < lengths.length; i++) {
      const plain = new Uint8Array(input, off, lengths[i]);
      off += lengths[i];
      const aad = new Uint8Array(aads, aadOff, aadLengths[i]);
      aadOff += aadLengths[i];
      // compression.ts: format byte 2 (brotli) when it shrinks, else 0 (raw).
      let format = 0;
      let payload = plain;
      if (plain.length >= minCompress) {
        const packed = brotliCompressSync(plain, {
          params: { [constants.BROTLI_PARAM_QUALITY]: quality, [constants.BROTLI_PARAM_SIZE_HINT]: plain.length },
        });
        if (packed.length < plain.length) {
          format = 2;
          payload = packed;
        }
      }
      // crypto.ts seal(): nonce ‖ AES-256-GCM(format ‖ payload, aad) ‖ tag.
      const start = p;
      const n = nonce();
      const cipher = createCipheriv('aes-256-gcm', key, n);
      cipher.setAAD(aad);
      put(n);
      put(cipher.update(Uint8Array.of(format)));
      put(cipher.update(payload));
      put(cipher.final());
      put(cipher.getAuthTag());
      outLengths.push(p - start);
    }
    parentPort.postMessage({ id, input, output: out.buffer, lengths: outLengths }, [input, out.buffer]);
  } catch (err) {
    parentPort.postMessage({ id, input, error: String((err && err.stack) || err) }, [input]);
  }
});
`;

interface Item {
  key: Uint8Array;
  aad: Uint8Array;
  /** The bytes until they are copied into a job: then dropped, so the message they came from can go. */
  plain: Uint8Array;
  length: number;
  land: (sealed: Uint8Array) => void;
  resolve: () => void;
  reject: (err: unknown) => void;
}

interface PoolWorker {
  worker: Worker;
  pendingBytes: number;
  jobs: Map<number, Item[]>;
}

let threads: number | undefined;
let workers: PoolWorker[] | undefined;
let queued: Item[] = [];
let queuedBytes = 0;
let scheduled = false;
let nextJob = 0;

/**
 * Worker threads for sealing: by default one per core beyond the first, at most 2 (the main thread
 * and the IMAP server need the rest). 0 seals on the caller's thread. Takes effect before the first seal.
 */
export function setSealThreads(n: number): void {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`seal threads must be an integer >= 0, got ${n}`);
  threads = n;
}

/** Live worker threads in the pool (0 before the first seal, or when sealing runs on the caller's thread). */
export function sealPoolSize(): number {
  return workers?.length ?? 0;
}

/**
 * sealBlob(key, type, id, plain), computed on a worker thread when the pool has one, and handed to
 * `land` as soon as it is ready. `sealed` is only valid during that call (it lives in a buffer the
 * pool reuses): land copies it where it belongs (the packer does). Resolves after land ran; rejects,
 * without calling land, when sealing failed.
 */
export function sealBlobAsync(
  key: Uint8Array,
  type: BlobType,
  id: string,
  plain: Uint8Array,
  land: (sealed: Uint8Array) => void,
): Promise<void> {
  const pool = ensurePool();
  if (pool.length === 0) {
    try {
      land(sealBlob(key, type, id, plain));
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
  }
  return new Promise((resolve, reject) => {
    queued.push({ key, aad: blobAad(type, id), plain, length: plain.byteLength, land, resolve, reject });
    queuedBytes += plain.byteLength;
    // A full job goes out at once; the rest when this turn of the event loop is done, so that the
    // blobs of everything processed in it (a fetch batch's messages) share a few worker messages.
    if (queuedBytes >= JOB_BYTES) dispatch();
    else if (!scheduled) {
      scheduled = true;
      setImmediate(dispatch);
    }
  });
}

function ensurePool(): PoolWorker[] {
  if (workers !== undefined) return workers;
  const n = threads ?? Math.min(2, Math.max(0, availableParallelism() - 1));
  workers = [];
  for (let i = 0; i < n; i++) {
    try {
      workers.push(startWorker());
    } catch {
      break; // no threads to be had (resource limits): seal on the caller's thread
    }
  }
  return workers;
}

function startWorker(): PoolWorker {
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    // The worker allocates few JS objects but many buffers (inputs, brotli and AES outputs), which only
    // a GC frees: with the default young generation it would scavenge rarely and keep tens of MiB of
    // dead buffers until V8's external-memory trigger. A small one frees them every few MiB sealed.
    resourceLimits: { maxYoungGenerationSizeMb: 1 },
    workerData: { quality: BROTLI_QUALITY, minCompress: MIN_COMPRESS, nonceBytes: NONCE_BYTES },
  });
  const pw: PoolWorker = { worker, pendingBytes: 0, jobs: new Map() };
  worker.unref();
  worker.on(
    'message',
    (msg: { id: number; input: ArrayBuffer; output?: ArrayBuffer; lengths?: number[]; error?: string }) => {
      const items = pw.jobs.get(msg.id);
      if (items === undefined) return;
      pw.jobs.delete(msg.id);
      pw.pendingBytes -= sum(items);
      if (pw.jobs.size === 0) worker.unref();
      giveBack(msg.input);
      if (msg.error !== undefined || msg.output === undefined || msg.lengths === undefined) {
        const err = new Error(`seal worker failed: ${msg.error ?? 'no output'}`);
        for (const it of items) it.reject(err);
        return;
      }
      let off = 0;
      for (const [i, it] of items.entries()) {
        const len = msg.lengths[i] as number;
        try {
          it.land(new Uint8Array(msg.output, off, len));
          it.resolve();
        } catch (err) {
          it.reject(err);
        }
        off += len;
      }
      // Every blob was copied out by its land(): the buffer can be lent again.
      giveBack(msg.output);
    },
  );
  const fail = (err: unknown): void => {
    // A dead worker is dropped for good; what it held fails, later seals go elsewhere.
    workers = workers?.filter((w) => w !== pw);
    for (const items of pw.jobs.values()) for (const it of items) it.reject(err);
    pw.jobs.clear();
  };
  worker.on('error', fail);
  worker.on('exit', (code) => fail(new Error(`seal worker exited with code ${code}`)));
  return pw;
}

function dispatch(): void {
  scheduled = false;
  const items = queued;
  queued = [];
  queuedBytes = 0;
  let job: Item[] = [];
  let bytes = 0;
  for (const it of items) {
    // One key per job (several repositories may share the process, as in tests).
    if (job.length > 0 && (bytes >= JOB_BYTES || job[0]?.key !== it.key)) {
      send(job);
      job = [];
      bytes = 0;
    }
    job.push(it);
    bytes += it.length;
  }
  if (job.length > 0) send(job);
}

function send(items: Item[]): void {
  const pool = workers ?? [];
  // The least loaded worker: jobs differ a lot in size (a header vs a 1 MiB run of chunks).
  let target: PoolWorker | undefined;
  for (const w of pool) if (target === undefined || w.pendingBytes < target.pendingBytes) target = w;
  if (target === undefined) {
    for (const it of items) {
      try {
        it.land(seal(it.key, compress(it.plain), it.aad));
        it.resolve();
      } catch (err) {
        it.reject(err);
      }
    }
    return;
  }
  // Inputs, and aads, are views into larger buffers (whole IMAP batches, Node's shared 8 KiB pool):
  // postMessage would clone each underlying buffer whole. Copy them into one buffer each and transfer.
  // The input and output buffers are borrowed from a few kept for that: allocating and freeing ~1 MiB
  // twice per job made the allocator hold tens of MiB it could not return.
  const size = sum(items);
  const input = new Uint8Array(borrow(size), 0, size);
  const lengths: number[] = [];
  let aadSize = 0;
  for (const it of items) aadSize += it.aad.byteLength;
  const aads = new Uint8Array(aadSize);
  const aadLengths: number[] = [];
  let off = 0;
  let aadOff = 0;
  for (const it of items) {
    input.set(it.plain, off);
    off += it.length;
    lengths.push(it.length);
    it.plain = NOTHING;
    aads.set(it.aad, aadOff);
    aadOff += it.aad.byteLength;
    aadLengths.push(it.aad.byteLength);
  }
  const id = nextJob++;
  target.jobs.set(id, items);
  target.pendingBytes += size;
  target.worker.ref();
  const key = Uint8Array.from(items[0]?.key ?? []);
  // Room for every blob stored raw: format byte, nonce and tag on top of its bytes.
  const output = borrow(size + items.length * (1 + SEAL_OVERHEAD));
  target.worker.postMessage(
    { id, key, input: input.buffer, lengths, aads: aads.buffer, aadLengths, output },
    [input.buffer, aads.buffer, output],
  );
}

const NOTHING = new Uint8Array(0);

/** Buffers lent to workers and given back, for the next jobs. */
const spareBuffers: ArrayBuffer[] = [];
/** Enough for the jobs in flight at once (an input and an output each); more would only stay resident. */
const KEEP_BUFFERS = 4;
/** Size of a lent buffer: a full job and the blob that overflows it. */
const LENT_BYTES = JOB_BYTES + 128 * 1024;

function borrow(size: number): ArrayBuffer {
  const i = spareBuffers.findIndex((b) => b.byteLength >= size);
  if (i >= 0) return spareBuffers.splice(i, 1)[0] as ArrayBuffer;
  return new ArrayBuffer(Math.max(size, LENT_BYTES));
}

function giveBack(buffer: ArrayBuffer | undefined): void {
  // Only the usual size is kept: a rare big job's buffers are let go.
  if (buffer !== undefined && buffer.byteLength <= 2 * LENT_BYTES && spareBuffers.length < KEEP_BUFFERS)
    spareBuffers.push(buffer);
}

function sum(items: readonly Item[]): number {
  let n = 0;
  for (const it of items) n += it.length;
  return n;
}
