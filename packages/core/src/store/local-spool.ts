/**
 * LocalSpool: a local directory store's ObjectSpool (see object-store.ts), a temp file (`.tmp-<random>`,
 * invisible to list() and removed by sweepTemp() after a crash) that bytes are appended to as they
 * come. The store's `place` callback does what put() does after writing its temp file (fsync, link to
 * the key's name, fsync the directory). The descriptor stays open after commit() so reads of bytes
 * appended earlier keep working (the temp name may be gone by then); close() waits for reads in flight.
 */
import { closeSync, read as fsRead, openSync, rm, writeSync } from 'node:fs';
import type { ObjectSpool } from './object-store.js';

export type PlaceSpooled = (fd: number, size: number, key: string) => Promise<void>;

export class LocalSpool implements ObjectSpool {
  private fd: number;
  private bytes = 0;
  private committed = false;
  private closed = false;
  private reads = 0;

  constructor(
    private readonly tmp: string,
    private readonly place: PlaceSpooled,
  ) {
    this.fd = openSync(tmp, 'wx+', 0o600); // read back too: pending blobs
  }

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

  read(offset: number, length: number): Promise<Uint8Array> {
    if (this.closed) return Promise.reject(new Error('spool: read after close'));
    if (offset < 0 || length < 0 || offset + length > this.bytes)
      return Promise.reject(
        new RangeError(`spool: range ${offset}+${length} is outside ${this.bytes} bytes`),
      );
    const out = new Uint8Array(length);
    this.reads++;
    return new Promise<Uint8Array>((resolve, reject) => {
      const next = (done: number): void => {
        if (done === length) {
          resolve(out);
          return;
        }
        fsRead(this.fd, out, done, length - done, offset + done, (err, n) => {
          if (err) reject(err);
          else if (n === 0) reject(new Error('spool: temp file shrank'));
          else next(done + n);
        });
      };
      next(0);
    }).finally(() => {
      this.reads--;
      if (this.closed && this.reads === 0) this.release();
    });
  }

  async commit(key: string): Promise<void> {
    if (this.committed || this.closed) throw new Error('spool: committed twice or after close');
    this.committed = true;
    await this.place(this.fd, this.bytes, key);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    // After a commit the temp name is a second link to the published file; before, a partial object.
    rm(this.tmp, { force: true }, () => {});
    if (this.reads === 0) this.release();
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
