/**
 * TempFileSpool: an ObjectSpool (see object-store.ts) for stores that take whole objects only (S3):
 * the bytes go to an anonymous temp file (created in the OS temp directory and unlinked at once, so a
 * crash leaves nothing behind) as they come, and commit() reads them back into an upload buffer the
 * store keeps for good and put()s them. A pack is then in memory only while it is uploaded, one at a
 * time per buffer, instead of being assembled in memory while earlier packs upload (restic spools packs
 * to temp files the same way). The bytes are sealed (encrypted) before they reach the file.
 *
 * The cost: each spooled byte is written to and read back from the page cache once (sys time).
 */
import { randomBytes } from 'node:crypto';
import { closeSync, read as fsRead, openSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { ObjectSpool } from './object-store.js';

/**
 * One buffer reused by a store's uploads from spools: freeing a 16 MiB buffer per pack would let glibc
 * raise its mmap threshold and keep freed memory in the heap. A commit that finds it busy (two
 * repositories on one store) gets a buffer of its own.
 */
export class UploadBuffer {
  private buf: Buffer | undefined;
  private busy = false;

  take(size: number): Buffer {
    if (this.busy) return Buffer.allocUnsafeSlow(size);
    this.busy = true;
    if (this.buf === undefined || this.buf.byteLength < size) this.buf = Buffer.allocUnsafeSlow(size);
    return this.buf;
  }

  give(buf: Buffer): void {
    if (buf === this.buf) this.busy = false;
  }
}

export class TempFileSpool implements ObjectSpool {
  private fd: number;
  private bytes = 0;
  private committed = false;
  private closed = false;
  private reads = 0;

  constructor(
    private readonly put: (key: string, bytes: Uint8Array) => Promise<void>,
    private readonly upload: UploadBuffer,
    dir = tmpdir(),
  ) {
    const file = path.join(dir, `mailark-spool-${randomBytes(8).toString('hex')}`);
    this.fd = openSync(file, 'wx+', 0o600);
    unlinkSync(file);
  }

  get size(): number {
    return this.bytes;
  }

  append(bytes: Uint8Array): void {
    if (this.committed || this.closed) throw new Error('spool: append after commit or close');
    let done = 0;
    while (done < bytes.byteLength)
      done += writeSync(this.fd, bytes, done, bytes.byteLength - done, this.bytes + done);
    this.bytes += done;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    if (this.closed) throw new Error('spool: read after close');
    if (offset < 0 || length < 0 || offset + length > this.bytes)
      throw new RangeError(`spool: range ${offset}+${length} is outside ${this.bytes} bytes`);
    const out = new Uint8Array(length);
    this.reads++;
    try {
      await this.readInto(out, offset);
      return out;
    } finally {
      this.reads--;
      if (this.closed && this.reads === 0) this.release();
    }
  }

  async commit(key: string): Promise<void> {
    if (this.committed || this.closed) throw new Error('spool: committed twice or after close');
    this.committed = true;
    const buf = this.upload.take(this.bytes);
    try {
      const view = buf.subarray(0, this.bytes);
      await this.readInto(view, 0);
      await this.put(key, view);
    } finally {
      this.upload.give(buf);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.reads === 0) this.release();
  }

  private readInto(out: Uint8Array, offset: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const next = (done: number): void => {
        if (done === out.byteLength) {
          resolve();
          return;
        }
        fsRead(this.fd, out, done, out.byteLength - done, offset + done, (err, n) => {
          if (err) reject(err);
          else if (n === 0) reject(new Error('spool: temp file shrank'));
          else next(done + n);
        });
      };
      next(0);
    });
  }

  private release(): void {
    if (this.fd < 0) return;
    try {
      closeSync(this.fd);
    } catch {
      // Nothing to do: the descriptor is gone either way.
    }
    this.fd = -1;
  }
}
