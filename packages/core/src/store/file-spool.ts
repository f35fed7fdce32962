/**
 * FileSpool: what both kinds of ObjectSpool (see object-store.ts) share: an open file that bytes are
 * appended to as they come and read back from (pending blobs) until close(). A close() while reads
 * are in flight releases the descriptor when the last of them ends. Each subclass publishes the bytes
 * its own way: local-spool.ts links the file into a local store, temp-file-spool.ts PUTs it.
 */
import { closeSync, read as fsRead, writeSync } from 'node:fs';
import type { ObjectSpool } from './object-store.js';

export abstract class FileSpool implements ObjectSpool {
  private bytes = 0;
  private committed = false;
  private closed = false;
  private reads = 0;

  /** `fd` is opened for reading and writing; the spool closes it. */
  constructor(private fd: number) {}

  get size(): number {
    return this.bytes;
  }

  append(bytes: Uint8Array): void {
    if (this.committed || this.closed) throw new Error('spool: append after commit or close');
    // Synchronous: into the page cache, so the caller's bytes may be reused at once; a regular file
    // takes a write whole, but a short one is continued rather than trusted.
    let done = 0;
    while (done < bytes.byteLength) {
      done += writeSync(this.fd, bytes, done, bytes.byteLength - done, this.bytes + done);
    }
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
    await this.publish(key, this.fd, this.bytes);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.closing();
    if (this.reads === 0) this.release();
  }

  /** Publishes the file's first `size` bytes as `key` (see ObjectSpool.commit). */
  protected abstract publish(key: string, fd: number, size: number): Promise<void>;

  /** What close() does besides releasing the descriptor. */
  protected closing(): void {}

  /** Fills `out` from the file at `offset`. */
  protected readInto(out: Uint8Array, offset: number): Promise<void> {
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
