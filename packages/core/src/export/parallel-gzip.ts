/**
 * ParallelGzip: a gzip compressor (RFC 1952) that deflates several blocks of its input at once on the
 * libuv thread pool, pigz-style, so a .tar.gz export is not held to the speed of one core running
 * deflate (the bottleneck of `tar czf` as of a single zlib stream).
 *
 * The input is cut into blocks (1 MiB by default). Each block is raw-deflated (RFC 1951) on its own,
 * primed with the last 32 KiB of the block before it as the preset dictionary (the whole window
 * deflate could have looked back into), and ended with a sync flush: an empty stored block that
 * byte-aligns the output, so blocks can be appended one after the other. The last block is ended
 * with Z_FINISH (its final block has BFINAL set). The blocks form ONE deflate stream in ONE gzip
 * member; the CRC-32 and the input size of the trailer are computed here, in input order.
 *
 * Why one member and not one gzip member per block (RFC 1952 §2.2 allows several, and would need no
 * dictionary nor CRC bookkeeping): every gzip reader reads a single member, whereas some stop after
 * the first of several (Go's gzip.Reader with Multistream(false), old Java and .NET streams) and
 * `gzip -l` reports only the last member's size; and a member cannot take a preset dictionary, so
 * each would restart with an empty window. Measured on 64 MiB of the rig's tar, against one zlib
 * stream at level 6: +0.003% with dictionaries, +0.058% as separate members; the whole 500 MB rig
 * export came out 0.006% smaller than with Node's gzip stream. The level is the caller's (6, as
 * gzip and `tar czf`): the same deflate work as the reference, spread over more cores.
 *
 * Memory: at most `concurrency` blocks deflate at once, each holding its input and its output, plus
 * the block being filled; the output side honours backpressure like any Transform.
 */
import { availableParallelism } from 'node:os';
import { Transform, type TransformCallback } from 'node:stream';
import { constants, crc32, createDeflateRaw, type ZlibOptions } from 'node:zlib';

export interface ParallelGzipOptions {
  /** Deflate level 0-9 (default 6, as gzip). */
  level?: number;
  /** Input bytes per independently deflated block (default 1 MiB; at least 64 KiB). */
  blockSize?: number;
  /** Blocks deflating at once (default: the cores, at most one less than the thread pool's threads). */
  concurrency?: number;
}

const WINDOW = 32 * 1024; // deflate's window: what a block's dictionary must hold (RFC 1951 §2)
// RFC 1952 §2.3: ID1 ID2, CM = 8 (deflate), FLG = 0, MTIME = 0 (none, as Node's gzip), XFL = 0, OS = 3 (Unix).
const HEADER = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);

/** The default number of blocks deflating at once: the cores, leaving a pool thread for file I/O. */
export function defaultGzipConcurrency(): number {
  const pool = Number(process.env.UV_THREADPOOL_SIZE) || 4;
  return Math.max(1, Math.min(availableParallelism(), pool - 1));
}

interface Job {
  done: boolean;
  /** The block's deflated bytes, as zlib gave them. */
  out: Buffer[];
  settled: Promise<void>;
  input: Buffer;
}

export class ParallelGzip extends Transform {
  private readonly level: number;
  private readonly blockSize: number;
  private readonly concurrency: number;
  private block: Buffer;
  private fill = 0;
  private readonly dict = Buffer.allocUnsafe(WINDOW);
  private dictBytes = 0;
  private readonly jobs: Job[] = [];
  /** Input buffers of finished blocks, reused for the next ones (no 1 MiB allocation per block). */
  private readonly spare: Buffer[] = [];
  private crc = 0;
  private size = 0;
  private headerSent = false;
  private failure: Error | undefined;
  /** The most blocks that were deflating at once (for tests: never above `concurrency`). */
  peakInFlight = 0;

  constructor(opts: ParallelGzipOptions = {}) {
    super({ readableHighWaterMark: 1024 * 1024 });
    this.level = opts.level ?? 6;
    if (!Number.isInteger(this.level) || this.level < 0 || this.level > 9) {
      throw new RangeError(`gzip level ${this.level} is not 0-9`);
    }
    this.blockSize = Math.max(64 * 1024, opts.blockSize ?? 1024 * 1024);
    this.concurrency = Math.max(1, opts.concurrency ?? defaultGzipConcurrency());
    this.block = Buffer.allocUnsafe(this.blockSize);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.consume(chunk, 0, done);
  }

  /**
   * Copies `chunk` from `at` into blocks, dispatching each full one; when `concurrency` blocks are
   * already deflating it waits for the oldest, so that one large chunk (a 20 MiB message arrives
   * whole from tar-stream) never puts more than that many blocks in flight.
   */
  private consume(chunk: Buffer, at: number, done: TransformCallback): void {
    while (true) {
      if (this.failure !== undefined) {
        done(this.failure);
        return;
      }
      if (this.destroyed) return; // the pipeline failed elsewhere: no more blocks to start
      const n = Math.min(chunk.length - at, this.blockSize - this.fill);
      chunk.copy(this.block, this.fill, at, at + n);
      this.fill += n;
      at += n;
      if (this.fill === this.blockSize) {
        const head = this.jobs[0];
        if (head !== undefined && this.jobs.length >= this.concurrency) {
          head.settled.then(() => this.consume(chunk, at, done));
          return;
        }
        this.dispatch(false);
      }
      if (at === chunk.length) {
        done();
        return;
      }
    }
  }

  override _flush(done: TransformCallback): void {
    if (this.failure !== undefined) {
      done(this.failure);
      return;
    }
    const head = this.jobs[0];
    if (head !== undefined && this.jobs.length >= this.concurrency) {
      head.settled.then(() => this._flush(done));
      return;
    }
    this.dispatch(true);
    Promise.all(this.jobs.map((j) => j.settled)).then(() => {
      if (this.failure !== undefined) {
        done(this.failure);
        return;
      }
      this.emitReady();
      const trailer = Buffer.allocUnsafe(8);
      trailer.writeUInt32LE(this.crc >>> 0, 0);
      trailer.writeUInt32LE(this.size % 2 ** 32, 4); // ISIZE: the input size modulo 2^32
      this.push(trailer);
      done();
    }, done);
  }

  /** Starts deflating the filled part of the current block on the pool; CRC and dictionary advance in order. */
  private dispatch(last: boolean): void {
    const input = this.block.subarray(0, this.fill);
    this.crc = crc32(input, this.crc);
    this.size += input.length;
    const opts: ZlibOptions = {
      level: this.level,
      // A few pool round trips per block, not one per 16 KiB; output buffers of a whole block (1 MiB
      // each, one per block) raised the export's peak RSS by ~20 MiB over 256 KiB ones (measured).
      chunkSize: 256 * 1024,
      finishFlush: last ? constants.Z_FINISH : constants.Z_SYNC_FLUSH,
    };
    // A copy of its own: zlib applies the dictionary when the stream first runs, not at this call,
    // and `dict` moves on with the next block (sharing one buffer corrupted the output: tested).
    if (this.dictBytes > 0) opts.dictionary = Buffer.from(this.dict.subarray(0, this.dictBytes));
    this.keepTail(input);
    const job: Job = { done: false, out: [], input: this.block, settled: Promise.resolve() };
    job.settled = new Promise<void>((resolve) => {
      const z = createDeflateRaw(opts);
      z.on('data', (out: Buffer) => job.out.push(out));
      z.once('error', (err) => {
        job.done = true;
        this.fail(err);
        resolve();
      });
      z.once('end', () => {
        job.done = true;
        resolve();
        this.emitReady();
      });
      z.end(input);
    });
    this.jobs.push(job);
    this.peakInFlight = Math.max(this.peakInFlight, this.jobs.filter((j) => !j.done).length);
    this.block = this.spare.pop() ?? Buffer.allocUnsafe(this.blockSize);
    this.fill = 0;
  }

  /** The last 32 KiB of a block: the next block's dictionary (blocks are never shorter, bar the last). */
  private keepTail(input: Buffer): void {
    this.dictBytes = Math.min(WINDOW, input.length);
    input.copy(this.dict, 0, input.length - this.dictBytes);
  }

  /** Pushes the finished blocks at the head of the queue, in input order. */
  private emitReady(): void {
    if (this.failure !== undefined || this.destroyed) return;
    while (this.jobs[0]?.done === true) {
      const job = this.jobs.shift() as Job;
      if (!this.headerSent) {
        this.push(HEADER);
        this.headerSent = true;
      }
      for (const out of job.out) this.push(out);
      if (this.spare.length <= this.concurrency) this.spare.push(job.input);
    }
  }

  /** A failed block fails the stream at once, whether or not input is waiting. */
  private fail(err: Error): void {
    if (this.failure !== undefined) return;
    this.failure = err;
    this.destroy(err);
  }
}
