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
import { openSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { FileSpool } from './file-spool.js';

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

export class TempFileSpool extends FileSpool {
  constructor(
    private readonly put: (key: string, bytes: Uint8Array) => Promise<void>,
    private readonly upload: UploadBuffer,
    dir = tmpdir(),
  ) {
    const file = path.join(dir, `mailark-spool-${randomBytes(8).toString('hex')}`);
    const fd = openSync(file, 'wx+', 0o600);
    unlinkSync(file);
    super(fd);
  }

  protected override async publish(key: string, _fd: number, size: number): Promise<void> {
    const buf = this.upload.take(size);
    try {
      const view = buf.subarray(0, size);
      await this.readInto(view, 0);
      await this.put(key, view);
    } finally {
      this.upload.give(buf);
    }
  }
}
