/**
 * A temporary file that an export appends to while it streams, for the archive entries whose size is
 * only known at the end (an mbox file, manifest.jsonl, SHA256SUMS, dovecot-uidlist): tar needs every
 * entry's size up front, and holding them in memory would grow with the tenant.
 *
 * Rules kept: writes are buffered (1 MiB) and awaited (a full disk surfaces as the write's error);
 * the file is removed by dispose(), which callers run in a finally.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { type FileHandle, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { errorText, MailarkError } from '../errors.js';

const BUFFER = 1024 * 1024;

export class SpoolFile {
  readonly path: string;
  private handle: FileHandle | undefined;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private closed: { size: number } | undefined;
  /** Bytes written so far. */
  size = 0;

  private constructor(path: string, handle: FileHandle) {
    this.path = path;
    this.handle = handle;
  }

  /** Creates an empty spool file in `dir` (e.g. os.tmpdir()). */
  static async create(dir: string, label: string): Promise<SpoolFile> {
    const path = join(dir, `.mailark-spool-${label}-${process.pid}-${randomBytes(6).toString('hex')}`);
    try {
      return new SpoolFile(path, await open(path, 'wx', 0o600));
    } catch (err) {
      throw spoolError(`cannot create a temporary file in ${dir}`, err);
    }
  }

  async write(data: Uint8Array | string): Promise<void> {
    if (this.closed !== undefined) throw new Error('spool file already closed');
    const buf =
      typeof data === 'string'
        ? Buffer.from(data, 'utf8')
        : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    if (buf.length === 0) return;
    this.size += buf.length;
    this.pending.push(buf);
    this.pendingBytes += buf.length;
    if (this.pendingBytes >= BUFFER) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.pendingBytes === 0 || this.handle === undefined) return;
    const bufs = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    try {
      // writev, not concat: a large message is written from where it is, never copied.
      while (bufs.length > 0) {
        let written = (await this.handle.writev(bufs)).bytesWritten;
        while (bufs.length > 0 && written >= (bufs[0] as Buffer).length)
          written -= (bufs.shift() as Buffer).length;
        if (written > 0) bufs[0] = (bufs[0] as Buffer).subarray(written);
      }
    } catch (err) {
      throw spoolError(`cannot write the temporary file ${this.path}`, err);
    }
  }

  /** Flushes and closes; returns the size of everything written. */
  async close(): Promise<{ size: number }> {
    if (this.closed !== undefined) return this.closed;
    await this.flush();
    await this.handle?.close();
    this.handle = undefined;
    this.closed = { size: this.size };
    return this.closed;
  }

  /** The content, after close(). */
  read(): AsyncIterable<Uint8Array> {
    if (this.closed === undefined) throw new Error('spool file read before close');
    return createReadStream(this.path, { highWaterMark: 256 * 1024 });
  }

  /** Closes (if needed) and removes the file; never throws. */
  async dispose(): Promise<void> {
    await this.handle?.close().catch(() => {});
    this.handle = undefined;
    this.pending = [];
    await rm(this.path, { force: true }).catch(() => {});
  }
}

function spoolError(what: string, err: unknown): MailarkError {
  const code = (err as NodeJS.ErrnoException).code;
  return new MailarkError('STORE_IO', `${what}: ${errorText(err)}`, {
    cause: err,
    hint:
      code === 'ENOSPC'
        ? 'the temporary directory is full: free space or point TMPDIR at a larger disk (mbox files are staged there)'
        : 'check that the temporary directory (TMPDIR) exists and is writable',
  });
}
