/**
 * A tar (POSIX ustar + pax) or tar.gz archive on a ByteOutput, with tar-stream. Every entry's size is in
 * its header, so entries are written as they come and nothing is buffered whole; names longer than
 * ustar allows, or not ASCII, get a pax `path` record (GNU tar, bsdtar and Python read them), sizes
 * beyond 8 GiB the base-256 form GNU tar reads.
 *
 * tar-stream emits a header and the data of each entry as separate small chunks: they are gathered
 * into 256 KiB chunks before the output (a plain tar), or into the 1 MiB blocks that ParallelGzip
 * deflates on several pool threads at once (a .tar.gz: one zlib stream on one core was the
 * bottleneck of the export, as gzip is that of `tar czf`).
 *
 * Backpressure: tar-stream calls an entry's callback only once its bytes were pushed into the pack,
 * and the pack only takes more when the output drained; every add awaits that callback, and also the
 * pipeline's failure, so a dead output (disk full, S3 error) surfaces at once instead of hanging.
 */
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Header, Pack } from 'tar-stream';
import type { ArchiveSink, EntryOptions, SinkResult } from './archive-sink.js';
import { type ByteOutput, fileError } from './byte-output.js';
import { ParallelGzip } from './parallel-gzip.js';

// tar-stream is loaded by the first tar export, not by every command that loads @mailark/core.
let tarStream: typeof import('tar-stream') | undefined;
function newPack(): Pack {
  tarStream ??= createRequire(import.meta.url)('tar-stream') as typeof import('tar-stream');
  return tarStream.pack();
}

export class TarSink implements ArchiveSink {
  readonly kind: 'tar' | 'tgz';
  readonly location: string;
  private readonly pack: Pack;
  private readonly done: Promise<void>;
  private readonly failed: Promise<never>;
  private failure: unknown;

  private constructor(
    private readonly output: ByteOutput,
    gzipLevel: number | undefined,
  ) {
    this.kind = gzipLevel === undefined ? 'tar' : 'tgz';
    this.location = output.location;
    this.pack = newPack();
    // ParallelGzip gathers its input into blocks itself; a plain tar is gathered by Coalesce.
    const stage = gzipLevel === undefined ? new Coalesce(256 * 1024) : new ParallelGzip({ level: gzipLevel });
    this.done = pipeline([this.pack as unknown as NodeJS.ReadableStream, stage, output.writable]);
    this.failed = this.done.then(
      () => new Promise<never>(() => {}),
      (err) => {
        this.failure = fileError(this.location, err);
        throw this.failure;
      },
    );
    this.failed.catch(() => {});
  }

  /** A tar archive on `output`, gzip-compressed at `gzipLevel` when given. */
  static open(output: ByteOutput, gzipLevel?: number): TarSink {
    return new TarSink(output, gzipLevel);
  }

  addDirectory(path: string, opts: EntryOptions): Promise<void> {
    return this.entry({ name: `${path}/`, type: 'directory', mode: 0o700, mtime: clampDate(opts.mtime) });
  }

  addFile(path: string, data: Uint8Array, opts: EntryOptions): Promise<void> {
    const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    return this.entry({ name: path, size: buf.length, mode: 0o600, mtime: clampDate(opts.mtime) }, buf);
  }

  async addStream(
    path: string,
    size: number,
    data: AsyncIterable<Uint8Array>,
    opts: EntryOptions,
  ): Promise<void> {
    this.throwIfFailed();
    let sink!: ReturnType<Pack['entry']>;
    const entryDone = new Promise<void>((resolve, reject) => {
      sink = this.pack.entry({ name: path, size, mode: 0o600, mtime: clampDate(opts.mtime) }, (err) =>
        err ? reject(err) : resolve(),
      );
    });
    for await (const chunk of data) {
      if (!sink.write(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength))) {
        await Promise.race([once(sink as unknown as NodeJS.EventEmitter, 'drain'), this.failed]);
      }
    }
    sink.end(undefined);
    await Promise.race([entryDone, this.failed]);
  }

  async finish(): Promise<SinkResult> {
    this.throwIfFailed();
    this.pack.finalize();
    await this.done.catch((err) => {
      throw fileError(this.location, err);
    });
    const out = await this.output.finish();
    return { location: this.output.location, bytes: out.bytes, sha256: out.sha256 };
  }

  async abort(reason: unknown): Promise<void> {
    this.pack.destroy(reason instanceof Error ? reason : new Error(String(reason)));
    await this.done.catch(() => {});
    await this.output.abort(reason);
  }

  private entry(header: Partial<Header> & Pick<Header, 'name'>, buf?: Buffer): Promise<void> {
    this.throwIfFailed();
    const added = new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null) => (err ? reject(err) : resolve());
      if (buf === undefined) this.pack.entry(header, cb);
      else this.pack.entry(header, buf, cb);
    });
    return Promise.race([added, this.failed]);
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure;
  }
}

/** Gathers small chunks into chunks of at least `size` bytes (the last one may be shorter). */
class Coalesce extends Transform {
  private parts: Buffer[] = [];
  private bytes = 0;
  constructor(private readonly size: number) {
    super({ highWaterMark: size });
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.parts.push(chunk);
    this.bytes += chunk.length;
    if (this.bytes >= this.size) this.flushParts();
    done();
  }
  override _flush(done: TransformCallback): void {
    this.flushParts();
    done();
  }
  private flushParts(): void {
    if (this.bytes === 0) return;
    this.push(this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts, this.bytes));
    this.parts = [];
    this.bytes = 0;
  }
}

/** tar cannot hold times before 1970 in its octal field. */
function clampDate(d: Date): Date {
  return Number.isNaN(d.getTime()) || d.getTime() < 0 ? new Date(0) : d;
}
