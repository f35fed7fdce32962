/**
 * A zip archive (PKWARE APPNOTE 6.3) on a ByteOutput, written here rather than with archiver because
 * an export needs what archiver does not give: names kept byte for byte (archiver turns "\" into "/",
 * which breaks Maildir's escaped folder names), each entry awaited until its bytes reached the output
 * (backpressure), exact modification times, ZIP64 in local headers of large streamed entries, and a
 * central directory that is spooled to disk instead of held in memory (one record per file).
 *
 * Per entry: a local header with bit 3 (sizes and CRC-32 in a data descriptor after the data, since a
 * deflated size is only known at the end) and bit 11 (UTF-8 name), the deflated data (stored when
 * level 0, and for directories), the data descriptor. Each entry carries an extended-timestamp field
 * (0x5455, Unix seconds) besides the MS-DOS time, which has 2-second steps and no zone (written as
 * UTC): Info-ZIP unzip restores the exact second (Dovecot reads Maildir internal dates from mtimes).
 * ZIP64 (0x0001) extra fields appear wherever a size or offset reaches 4 GiB, and the ZIP64 end
 * records when there are 65,535 entries or more or the directory lies beyond 4 GiB.
 * "Version made by" is Unix, and the external attributes carry the mode (0600 files, 0700 dirs).
 */
import { promisify } from 'node:util';
import { crc32, createDeflateRaw, deflateRaw, deflateRawSync } from 'node:zlib';
import type { ArchiveSink, EntryOptions, SinkResult } from './archive-sink.js';
import { type ByteOutput, fileError } from './byte-output.js';
import { SpoolFile } from './spool-file.js';

const deflateRawAsync = promisify(deflateRaw);
const MAX32 = 0xffffffff;
const MAX16 = 0xffff;
/** Entries at least this large get ZIP64 local fields: deflate may grow incompressible data slightly. */
const ZIP64_LOCAL_THRESHOLD = MAX32 - 64 * 1024 * 1024;
const FLAGS = 0x0808; // bit 3: data descriptor; bit 11: UTF-8 names
const MADE_BY = (3 << 8) | 45; // Unix, APPNOTE 4.5 (ZIP64)

export class ZipSink implements ArchiveSink {
  readonly kind = 'zip' as const;
  readonly location: string;
  private offset = 0;
  private entries = 0;
  private failure: unknown;
  private readonly failed: Promise<never>;
  private readonly centralSpool: Promise<SpoolFile>;

  private constructor(
    private readonly output: ByteOutput,
    private readonly level: number,
    tmpDir: string,
  ) {
    this.location = output.location;
    this.centralSpool = SpoolFile.create(tmpDir, 'zipdir');
    this.centralSpool.catch(() => {});
    this.failed = new Promise<never>((_, reject) => {
      output.writable.once('error', (err) => {
        this.failure = fileError(this.location, err);
        reject(this.failure);
      });
    });
    this.failed.catch(() => {});
  }

  /** A zip on `output`, deflated at `level` (0 = stored); the central directory spools in `tmpDir`. */
  static open(output: ByteOutput, level: number, tmpDir: string): ZipSink {
    return new ZipSink(output, level, tmpDir);
  }

  async addDirectory(path: string, opts: EntryOptions): Promise<void> {
    const name = Buffer.from(`${path}/`, 'utf8');
    const start = this.offset;
    await this.write(localHeader(name, 0, opts.mtime, false));
    await this.write(descriptor(0, 0, 0, false));
    await this.central(name, 0, 0, 0, 0, start, opts.mtime, 0o40700, 0x10);
  }

  async addFile(path: string, data: Uint8Array, opts: EntryOptions): Promise<void> {
    const name = Buffer.from(path, 'utf8');
    const method = this.level === 0 || data.byteLength === 0 ? 0 : 8;
    const big = data.byteLength >= ZIP64_LOCAL_THRESHOLD;
    const start = this.offset;
    const crc = crc32(data);
    // Small bodies deflate here: a thread-pool round trip costs more than compressing a few KiB.
    const body =
      method === 0
        ? data
        : data.byteLength < 64 * 1024
          ? deflateRawSync(data, { level: this.level })
          : await deflateRawAsync(data, { level: this.level });
    await this.write(localHeader(name, method, opts.mtime, big));
    await this.write(body);
    await this.write(descriptor(crc, body.byteLength, data.byteLength, big));
    await this.central(name, method, crc, body.byteLength, data.byteLength, start, opts.mtime, 0o100600, 0);
  }

  async addStream(
    path: string,
    size: number,
    data: AsyncIterable<Uint8Array>,
    opts: EntryOptions,
  ): Promise<void> {
    const name = Buffer.from(path, 'utf8');
    const method = this.level === 0 || size === 0 ? 0 : 8;
    const big = size >= ZIP64_LOCAL_THRESHOLD;
    const start = this.offset;
    await this.write(localHeader(name, method, opts.mtime, big));
    let crc = 0;
    let usize = 0;
    const before = this.offset;
    if (method === 0) {
      for await (const chunk of data) {
        crc = crc32(chunk, crc);
        usize += chunk.byteLength;
        await this.write(chunk);
      }
    } else {
      const deflate = createDeflateRaw({ level: this.level });
      const pump = (async () => {
        for await (const out of deflate) await this.write(out as Buffer);
      })();
      pump.catch(() => {});
      for await (const chunk of data) {
        crc = crc32(chunk, crc);
        usize += chunk.byteLength;
        if (!deflate.write(chunk))
          await Promise.race([new Promise((r) => deflate.once('drain', r)), pump, this.failed]);
      }
      deflate.end();
      await pump;
    }
    if (usize !== size) throw new Error(`zip entry ${path}: ${usize} bytes streamed, ${size} announced`);
    const csize = this.offset - before;
    await this.write(descriptor(crc, csize, usize, big));
    await this.central(name, method, crc, csize, usize, start, opts.mtime, 0o100600, 0);
  }

  async finish(): Promise<SinkResult> {
    if (this.failure !== undefined) throw this.failure;
    const spool = await this.centralSpool;
    const { size } = await spool.close();
    const cdOffset = this.offset;
    for await (const chunk of spool.read()) await this.write(chunk);
    await spool.dispose();
    const zip64 = this.entries >= MAX16 || cdOffset >= MAX32 || size >= MAX32;
    if (zip64) {
      const eocd64At = this.offset;
      const rec = Buffer.alloc(56);
      rec.writeUInt32LE(0x06064b50, 0);
      rec.writeBigUInt64LE(44n, 4); // size of the rest of the record
      rec.writeUInt16LE(MADE_BY, 12);
      rec.writeUInt16LE(45, 14);
      rec.writeBigUInt64LE(BigInt(this.entries), 24);
      rec.writeBigUInt64LE(BigInt(this.entries), 32);
      rec.writeBigUInt64LE(BigInt(size), 40);
      rec.writeBigUInt64LE(BigInt(cdOffset), 48);
      const loc = Buffer.alloc(20);
      loc.writeUInt32LE(0x07064b50, 0);
      loc.writeBigUInt64LE(BigInt(eocd64At), 8);
      loc.writeUInt32LE(1, 16);
      await this.write(Buffer.concat([rec, loc]));
    }
    const end = Buffer.alloc(22);
    end.writeUInt32LE(0x06054b50, 0);
    end.writeUInt16LE(Math.min(this.entries, MAX16), 8);
    end.writeUInt16LE(Math.min(this.entries, MAX16), 10);
    end.writeUInt32LE(Math.min(size, MAX32), 12);
    end.writeUInt32LE(Math.min(cdOffset, MAX32), 16);
    await this.write(end);
    await this.endOutput();
    const out = await this.output.finish();
    return { location: this.output.location, bytes: out.bytes, sha256: out.sha256 };
  }

  async abort(reason: unknown): Promise<void> {
    this.output.writable.destroy();
    await this.centralSpool.then((s) => s.dispose()).catch(() => {});
    await this.output.abort(reason);
  }

  private async central(
    name: Buffer,
    method: number,
    crc: number,
    csize: number,
    usize: number,
    offset: number,
    mtime: Date,
    mode: number,
    dosAttr: number,
  ): Promise<void> {
    const z64: Buffer[] = [];
    if (usize >= MAX32) z64.push(u64(usize));
    if (csize >= MAX32) z64.push(u64(csize));
    if (offset >= MAX32) z64.push(u64(offset));
    const extra = Buffer.concat([
      ...(z64.length > 0 ? [extraHeader(0x0001, z64.length * 8), ...z64] : []),
      timestampExtra(mtime),
    ]);
    const h = Buffer.alloc(46);
    h.writeUInt32LE(0x02014b50, 0);
    h.writeUInt16LE(MADE_BY, 4);
    h.writeUInt16LE(z64.length > 0 ? 45 : 20, 6);
    h.writeUInt16LE(FLAGS, 8);
    h.writeUInt16LE(method, 10);
    h.writeUInt32LE(dosDateTime(mtime), 12);
    h.writeUInt32LE(crc >>> 0, 16);
    h.writeUInt32LE(Math.min(csize, MAX32), 20);
    h.writeUInt32LE(Math.min(usize, MAX32), 24);
    h.writeUInt16LE(name.length, 28);
    h.writeUInt16LE(extra.length, 30);
    h.writeUInt32LE(((mode << 16) | dosAttr) >>> 0, 38);
    h.writeUInt32LE(Math.min(offset, MAX32), 42);
    this.entries++;
    await (await this.centralSpool).write(Buffer.concat([h, name, extra]));
  }

  /** Writes to the output, resolving once it accepted the bytes (drained when it was full). */
  private async write(chunk: Uint8Array): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    if (chunk.byteLength === 0) return;
    this.offset += chunk.byteLength;
    const w = this.output.writable;
    if (!w.write(chunk)) await Promise.race([new Promise((r) => w.once('drain', r)), this.failed]);
  }

  private endOutput(): Promise<void> {
    const w = this.output.writable;
    return Promise.race([new Promise<void>((r) => w.end(() => r())), this.failed]);
  }
}

function localHeader(name: Buffer, method: number, mtime: Date, zip64: boolean): Buffer {
  const extra = Buffer.concat([
    // ZIP64 local field with zero sizes: the real ones follow in the (8-byte) data descriptor.
    ...(zip64 ? [extraHeader(0x0001, 16), Buffer.alloc(16)] : []),
    timestampExtra(mtime),
  ]);
  const h = Buffer.alloc(30);
  h.writeUInt32LE(0x04034b50, 0);
  h.writeUInt16LE(zip64 ? 45 : 20, 4);
  h.writeUInt16LE(FLAGS, 6);
  h.writeUInt16LE(method, 8);
  h.writeUInt32LE(dosDateTime(mtime), 10);
  if (zip64) {
    h.writeUInt32LE(MAX32, 18);
    h.writeUInt32LE(MAX32, 22);
  }
  h.writeUInt16LE(name.length, 26);
  h.writeUInt16LE(extra.length, 28);
  return Buffer.concat([h, name, extra]);
}

function descriptor(crc: number, csize: number, usize: number, zip64: boolean): Buffer {
  const d = Buffer.alloc(zip64 ? 24 : 16);
  d.writeUInt32LE(0x08074b50, 0);
  d.writeUInt32LE(crc >>> 0, 4);
  if (zip64) {
    d.writeBigUInt64LE(BigInt(csize), 8);
    d.writeBigUInt64LE(BigInt(usize), 16);
  } else {
    d.writeUInt32LE(csize, 8);
    d.writeUInt32LE(usize, 12);
  }
  return d;
}

function extraHeader(id: number, size: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt16LE(id, 0);
  b.writeUInt16LE(size, 2);
  return b;
}

function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n), 0);
  return b;
}

/** Extended timestamp (0x5455), modification time only: Unix seconds. */
function timestampExtra(mtime: Date): Buffer {
  const b = Buffer.alloc(9);
  b.writeUInt16LE(0x5455, 0);
  b.writeUInt16LE(5, 2);
  b.writeUInt8(1, 4);
  b.writeUInt32LE(Math.max(0, Math.min(MAX32, Math.floor(mtime.getTime() / 1000))), 5);
  return b;
}

/** MS-DOS date and time (UTC fields, 2-second steps; 1980 is the earliest it can say). */
function dosDateTime(d: Date): number {
  if (Number.isNaN(d.getTime()) || d.getUTCFullYear() < 1980) return (1 << 21) | (1 << 16);
  const date = ((d.getUTCFullYear() - 1980) << 9) | ((d.getUTCMonth() + 1) << 5) | d.getUTCDate();
  const time = (d.getUTCHours() << 11) | (d.getUTCMinutes() << 5) | Math.floor(d.getUTCSeconds() / 2);
  return ((date << 16) | time) >>> 0;
}
