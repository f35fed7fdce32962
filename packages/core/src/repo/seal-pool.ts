/**
 * The seal pool: the backup's per-byte work on worker threads, so the thread that parses IMAP and
 * assembles packs never waits on it. Two kinds of work (the worker is seal-pool-worker.ts):
 * - sealing: compress and seal blobs (pack.ts's sealBlob);
 * - cutting: hash a message (SHA-256), cut it into its header block and chunks (MessageCutter) and
 *   compute the blobs' ids (HMAC), returning ids and lengths only: the caller keeps the bytes, checks
 *   the ids against its index and asks for only the new blobs to be sealed.
 *
 * Rules it keeps:
 * - the results are exactly those of the caller's thread: sealBlob's bytes (format byte ‖ brotli or
 *   raw, sealed with AES-256-GCM under the caller's key and aad), MessageCutter's blobs, blobId's ids;
 * - one pool per process, started on first use and sized from the cores (none on one core: the
 *   caller's thread does everything, as before); idle workers never keep the process alive;
 * - calls are batched into jobs of ~1 MiB (one copy of the input into a lent buffer, transferred and
 *   given back): a job goes out when full, the rest at the end of the event loop turn, so per-blob and
 *   per-message messaging costs nothing measurable and workers are woken rarely;
 * - a message stream stays on one worker (its hash and chunker state live there), so its results come
 *   back in order;
 * - a worker that dies fails its pending work (the caller's error path) and is not replaced: later
 *   work goes to the other worker, or runs on the caller's thread.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { type ChunkerParams, chunkerGear, type Gear } from '../backup/chunker.js';
import type { CutBlobs, RemoteCut } from '../backup/message-record.js';
import { compress } from './compression.js';
import { SEAL_OVERHEAD, seal } from './crypto.js';
import { type BlobType, blobAad, sealBlob } from './pack.js';
import { type CutOp, type CutResult, sealWorkerSource } from './seal-pool-worker.js';

/** Input bytes per worker message: big enough to amortise messaging, small enough to spread load. */
const JOB_BYTES = 1024 * 1024;
/**
 * Jobs a worker may have in flight before smaller jobs wait for one to come back. IMAP data arrives in
 * 64 KiB reads, each its own event loop turn: sending a job per turn cost a postMessage per 64 KiB
 * (and as many answers). Batching while the workers are busy lets jobs grow with the load.
 */
const MAX_IN_FLIGHT = 2;

interface SealItem {
  aad: Uint8Array;
  length: number;
  land: (sealed: Uint8Array) => void;
  resolve: () => void;
  reject: (err: unknown) => void;
}

interface QueuedCut {
  op: CutOp;
  /** As SealItem.plain. */
  plain: Uint8Array;
  resolve: (r: CutResult) => void;
  reject: (err: unknown) => void;
}

type Job =
  | { kind: 'seal'; items: SealItem[]; bytes: number }
  | { kind: 'cut'; cuts: QueuedCut[]; bytes: number };

interface PoolWorker {
  worker: Worker;
  dead: unknown;
  /** Input bytes sent and not yet answered, plus cut bytes queued: how busy the worker is. */
  pendingBytes: number;
  jobs: Map<number, Job>;
  cuts: QueuedCut[];
  cutBytes: number;
  /** Key and gear references this worker has been given, and those its queued cuts need (see refOf). */
  known: Set<number>;
  toSend: Ref[];
}

let threads: number | undefined;
let workers: PoolWorker[] | undefined;
/**
 * The seal job being filled. Plaintexts are copied into its input as they come, not when it leaves:
 * a job may wait for a busy worker, and must not hold the messages it was cut from meanwhile.
 */
interface FillingJob {
  key: Uint8Array;
  items: SealItem[];
  input: Uint8Array<ArrayBuffer>;
  bytes: number;
}
let filling: FillingJob | undefined;
let scheduled = false;
let nextJob = 0;
let nextStream = 0;

/**
 * Worker threads: by default one per core beyond the first, at most 2 (the main thread and the IMAP
 * server need the rest; on 2 cores a second worker cost ~1 s more CPU per 500 MB for the same
 * main-thread time). 0 does everything on the caller's thread. Takes effect before first use.
 */
export function setSealThreads(n: number): void {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`seal threads must be an integer >= 0, got ${n}`);
  threads = n;
}

/** Live worker threads in the pool (0 before first use, or when everything runs on the caller's thread). */
export function sealPoolSize(): number {
  return workers?.length ?? 0;
}

/** Stops every worker (their pending work fails); later work runs on the caller's thread. */
export async function stopSealWorkers(): Promise<void> {
  await Promise.all((workers ?? []).map((w) => w.worker.terminate()));
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
  if (ensurePool().length === 0) {
    try {
      land(sealBlob(key, type, id, plain));
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
  }
  return new Promise((resolve, reject) => {
    const length = plain.byteLength;
    // One key per job (several repositories may share the process, as in tests).
    if (filling !== undefined && (filling.key !== key || filling.bytes + length > filling.input.byteLength))
      sendFilling(true);
    filling ??= { key, items: [], input: new Uint8Array(borrow(Math.max(length, JOB_BYTES))), bytes: 0 };
    filling.input.set(plain, filling.bytes);
    filling.bytes += length;
    filling.items.push({ aad: blobAad(type, id), length, land, resolve, reject });
    // A full job goes out at once; the rest when this turn of the event loop is done, so that the
    // blobs of everything processed in it (a fetch batch's messages) share a few worker messages.
    if (filling.bytes >= JOB_BYTES) sendFilling(true);
    else schedule();
  });
}

/**
 * A message stream hashed and cut on a worker, with blob ids under `idKey` (see RemoteCut); undefined
 * when the pool has no worker (the caller then does it all on its thread).
 */
export function openCutStream(idKey: Uint8Array, chunker: ChunkerParams): RemoteCut | undefined {
  const pool = ensurePool();
  if (pool.length === 0) return undefined;
  // The least busy worker; all of this stream's pieces go there.
  let pw = pool[0] as PoolWorker;
  for (const w of pool) if (w.pendingBytes < pw.pendingBytes) pw = w;
  return new PoolCut(pw, nextStream++, refOf(idKey), refOf(chunkerGear(chunker)));
}

class PoolCut implements RemoteCut {
  private done = false;

  constructor(
    private readonly pw: PoolWorker,
    private readonly stream: number,
    private readonly key: Ref,
    private readonly gear: Ref,
  ) {}

  push(piece: Uint8Array): Promise<CutBlobs> {
    if (this.done) return Promise.reject(new Error('seal pool: push after the end of a message stream'));
    return this.enqueue(piece, false, false);
  }

  finish(): Promise<CutBlobs & { sha256: string; size: number }> {
    if (this.done) return Promise.reject(new Error('seal pool: message stream ended twice'));
    this.done = true;
    return this.enqueue(NOTHING, true, false).then((r) => ({
      ids: r.ids,
      lengths: r.lengths,
      sha256: r.sha256 ?? '',
      size: r.size ?? -1,
    }));
  }

  abort(): void {
    if (this.done) return;
    this.done = true;
    this.enqueue(NOTHING, true, true).catch(() => {});
  }

  private enqueue(plain: Uint8Array, end: boolean, abort: boolean): Promise<CutResult> {
    const pw = this.pw;
    if (pw.dead !== undefined) return Promise.reject(pw.dead);
    return new Promise((resolve, reject) => {
      const op: CutOp = {
        stream: this.stream,
        length: plain.byteLength,
        end,
        key: this.key.n,
        gear: this.gear.n,
      };
      if (abort) op.abort = true;
      for (const r of [this.key, this.gear])
        if (!pw.known.has(r.n) && !pw.toSend.includes(r)) pw.toSend.push(r);
      pw.cuts.push({ op, plain, resolve, reject });
      pw.cutBytes += plain.byteLength;
      pw.pendingBytes += plain.byteLength;
      if (pw.cutBytes >= JOB_BYTES) sendCuts(pw);
      else schedule();
    });
  }
}

/** A key or gear sent to workers once and named by a number afterwards. */
interface Ref {
  n: number;
  value: Uint8Array | Gear;
}
const refs = new WeakMap<object, Ref>();
let nextRef = 0;
function refOf(value: Uint8Array | Gear): Ref {
  let r = refs.get(value);
  if (r === undefined) {
    r = { n: nextRef++, value };
    refs.set(value, r);
  }
  return r;
}

function ensurePool(): PoolWorker[] {
  if (workers !== undefined) return workers;
  const n = threads ?? Math.min(2, Math.max(0, availableParallelism() - 1));
  workers = [];
  for (let i = 0; i < n; i++) {
    try {
      workers.push(startWorker());
    } catch {
      break; // no threads to be had (resource limits): work on the caller's thread
    }
  }
  return workers;
}

function startWorker(): PoolWorker {
  const worker = new Worker(sealWorkerSource(), {
    eval: true,
    // The worker allocates few JS objects but many buffers (inputs, brotli and AES outputs), which only
    // a GC frees: with the default young generation it would scavenge rarely and keep tens of MiB of
    // dead buffers until V8's external-memory trigger. A small one frees them every few MiB sealed.
    resourceLimits: { maxYoungGenerationSizeMb: 1 },
  });
  const pw: PoolWorker = {
    worker,
    dead: undefined,
    pendingBytes: 0,
    jobs: new Map(),
    cuts: [],
    cutBytes: 0,
    known: new Set(),
    toSend: [],
  };
  worker.unref();
  worker.on(
    'message',
    (msg: {
      id: number;
      input: ArrayBuffer;
      output?: ArrayBuffer;
      lengths?: number[];
      results?: CutResult[];
      error?: string;
    }) => {
      const job = pw.jobs.get(msg.id);
      if (job === undefined) return;
      pw.jobs.delete(msg.id);
      pw.pendingBytes -= job.bytes;
      if (pw.jobs.size === 0) worker.unref();
      giveBack(msg.input);
      // Work that waited for this worker to be less busy goes now (after this answer's consequences).
      if (pw.cuts.length > 0 || filling !== undefined) schedule();
      if (msg.error !== undefined) {
        const err = new Error(`seal pool worker failed: ${msg.error}`);
        for (const it of job.kind === 'seal' ? job.items : job.cuts) it.reject(err);
        return;
      }
      if (job.kind === 'cut') {
        for (const [i, c] of job.cuts.entries()) {
          const r = msg.results?.[i];
          if (r === undefined) c.reject(new Error('seal pool worker: a cut result is missing'));
          else c.resolve(r);
        }
        return;
      }
      landSealed(job.items, msg.output, msg.lengths);
    },
  );
  const fail = (err: unknown): void => {
    // A dead worker is dropped for good; what it held fails, later work goes elsewhere.
    pw.dead ??= err;
    workers = workers?.filter((w) => w !== pw);
    for (const job of pw.jobs.values())
      for (const it of job.kind === 'seal' ? job.items : job.cuts) it.reject(err);
    pw.jobs.clear();
    for (const c of pw.cuts) c.reject(err);
    pw.cuts = [];
    pw.cutBytes = 0;
    // Seals waiting for a worker go to another one, or run on the caller's thread.
    if (filling !== undefined) schedule();
  };
  worker.on('error', fail);
  worker.on('exit', (code) => fail(new Error(`seal pool worker exited with code ${code}`)));
  return pw;
}

function landSealed(items: SealItem[], output: ArrayBuffer | undefined, lengths: number[] | undefined): void {
  if (output === undefined || lengths === undefined) {
    const err = new Error('seal pool worker: no output');
    for (const it of items) it.reject(err);
    return;
  }
  let off = 0;
  for (const [i, it] of items.entries()) {
    const len = lengths[i] as number;
    try {
      it.land(new Uint8Array(output, off, len));
      it.resolve();
    } catch (err) {
      it.reject(err);
    }
    off += len;
  }
  // Every blob was copied out by its land(): the buffer can be lent again.
  giveBack(output);
}

/** Sends what is queued at the end of this event loop turn, to the workers that are not too busy. */
function schedule(): void {
  if (scheduled) return;
  scheduled = true;
  setImmediate(pump);
}

function pump(): void {
  scheduled = false;
  // Cuts first: their answers lead to seals, and a worker answers in order.
  for (const pw of workers ?? []) if (pw.cuts.length > 0 && pw.jobs.size < MAX_IN_FLIGHT) sendCuts(pw);
  if (filling !== undefined) sendFilling(false);
}

function sendCuts(pw: PoolWorker): void {
  const cuts = pw.cuts;
  const bytes = pw.cutBytes;
  pw.cuts = [];
  pw.cutBytes = 0;
  if (cuts.length === 0) return;
  // Copied into one lent buffer and transferred (see sendSeals for why).
  const input = new Uint8Array(borrow(bytes), 0, bytes);
  let off = 0;
  for (const c of cuts) {
    input.set(c.plain, off);
    off += c.plain.byteLength;
    c.plain = NOTHING;
  }
  const keys: Array<[number, Uint8Array]> = [];
  const gears: Array<[number, Gear]> = [];
  for (const r of pw.toSend) {
    pw.known.add(r.n);
    if (r.value instanceof Uint8Array) keys.push([r.n, Uint8Array.from(r.value)]);
    else gears.push([r.n, r.value]);
  }
  pw.toSend = [];
  const id = nextJob++;
  // pendingBytes already counts these bytes (from enqueue).
  pw.jobs.set(id, { kind: 'cut', cuts, bytes });
  pw.worker.ref();
  pw.worker.postMessage({ kind: 'cut', id, input: input.buffer, ops: cuts.map((c) => c.op), keys, gears }, [
    input.buffer,
  ]);
}

/**
 * Sends the seal job being filled to the least loaded worker: when `full`, to any; else only to one
 * that is not too busy (or it waits for an answer, and grows meanwhile). With no worker left, seals
 * on this thread.
 */
function sendFilling(full: boolean): void {
  const job = filling;
  if (job === undefined) return;
  const pool = workers ?? [];
  // The least loaded worker: jobs differ a lot in size (a header vs a 1 MiB run of chunks).
  let target: PoolWorker | undefined;
  for (const w of pool) {
    if (!full && w.jobs.size >= MAX_IN_FLIGHT) continue;
    if (target === undefined || w.pendingBytes < target.pendingBytes) target = w;
  }
  if (target === undefined && pool.length > 0) return;
  filling = undefined;
  const { items, input, bytes: size } = job;
  if (target === undefined) {
    let off = 0;
    for (const it of items) {
      try {
        it.land(seal(job.key, compress(input.subarray(off, off + it.length)), it.aad));
        it.resolve();
      } catch (err) {
        it.reject(err);
      }
      off += it.length;
    }
    giveBack(input.buffer);
    return;
  }
  // Aads are views into Node's shared 8 KiB pool: postMessage would clone it whole. One buffer, moved.
  // The input and output buffers are borrowed from a few kept for that: allocating and freeing ~1 MiB
  // twice per job made the allocator hold tens of MiB it could not return.
  let aadSize = 0;
  for (const it of items) aadSize += it.aad.byteLength;
  const lengths: number[] = [];
  const aads = new Uint8Array(aadSize);
  const aadLengths: number[] = [];
  let aadOff = 0;
  for (const it of items) {
    lengths.push(it.length);
    aads.set(it.aad, aadOff);
    aadOff += it.aad.byteLength;
    aadLengths.push(it.aad.byteLength);
  }
  const id = nextJob++;
  target.jobs.set(id, { kind: 'seal', items, bytes: size });
  target.pendingBytes += size;
  target.worker.ref();
  const key = Uint8Array.from(job.key);
  // Room for every blob stored raw: format byte, nonce and tag on top of its bytes.
  const output = borrow(size + items.length * (1 + SEAL_OVERHEAD));
  target.worker.postMessage(
    { kind: 'seal', id, key, input: input.buffer, lengths, aads: aads.buffer, aadLengths, output },
    [input.buffer, aads.buffer, output],
  );
}

const NOTHING = new Uint8Array(0);

/** Buffers lent to workers and given back, for the next jobs. */
const spareBuffers: ArrayBuffer[] = [];
/** Size of a lent buffer: a full job and the blob that overflows it. */
const LENT_BYTES = JOB_BYTES + 128 * 1024;
/**
 * Lent buffers come in two sizes, LENT_BYTES and twice that (a cut job of a 1 MiB piece on top of
 * queued ones), and are kept for good: with sizes that drifted with each job's need and a cap of six,
 * a run allocated and freed ~30 buffers of 1-2 MiB, and each big free lets glibc raise its mmap
 * threshold and keep the freed memory in the heap. Enough are kept for every job in flight at once
 * (MAX_IN_FLIGHT per worker, a seal job holding an input and an output, and the job being filled).
 */
const KEEP_BUFFERS = 12;

/** The size class for `size` bytes; beyond the two classes, the size itself (such buffers are not kept). */
function lentSize(size: number): number {
  if (size <= LENT_BYTES) return LENT_BYTES;
  if (size <= 2 * LENT_BYTES) return 2 * LENT_BYTES;
  return size;
}

function borrow(size: number): ArrayBuffer {
  const want = lentSize(size);
  // The smallest kept buffer that fits: a 1 MiB job must not take the rare 2 MiB one.
  let best = -1;
  for (const [i, b] of spareBuffers.entries())
    if (b.byteLength >= want && (best < 0 || b.byteLength < (spareBuffers[best] as ArrayBuffer).byteLength))
      best = i;
  if (best >= 0) return spareBuffers.splice(best, 1)[0] as ArrayBuffer;
  // Not zero-filled: every byte a worker reads is written first (inputs), or written by it (outputs).
  return Buffer.allocUnsafeSlow(want).buffer;
}

function giveBack(buffer: ArrayBuffer | undefined): void {
  // Only the two lent sizes are kept: a rare bigger job's buffers are let go.
  if (buffer === undefined || buffer.byteLength > 2 * LENT_BYTES) return;
  if (spareBuffers.length < KEEP_BUFFERS) spareBuffers.push(buffer);
}
