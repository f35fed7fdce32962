/**
 * LocalSpool: a local directory store's ObjectSpool (see object-store.ts), a temp file (`.tmp-<random>`,
 * invisible to list() and removed by sweepTemp() after a crash) that bytes are appended to as they
 * come. The store's `place` callback does what put() does after writing its temp file (fsync, link to
 * the key's name, fsync the directory). The descriptor stays open after commit() so reads of bytes
 * appended earlier keep working (the temp name may be gone by then); close() waits for reads in flight.
 */
import { openSync, rm } from 'node:fs';
import { FileSpool } from './file-spool.js';

export type PlaceSpooled = (fd: number, size: number, key: string) => Promise<void>;

export class LocalSpool extends FileSpool {
  constructor(
    private readonly tmp: string,
    private readonly place: PlaceSpooled,
  ) {
    super(openSync(tmp, 'wx+', 0o600)); // read back too: pending blobs
  }

  protected override publish(key: string, fd: number, size: number): Promise<void> {
    return this.place(fd, size, key);
  }

  protected override closing(): void {
    // After a commit the temp name is a second link to the published file; before, a partial object.
    rm(this.tmp, { force: true }, () => {});
  }
}
