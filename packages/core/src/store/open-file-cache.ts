/**
 * OpenFileCache: a few read-only file handles kept open between reads, least recently used first out.
 * A repository reads a pack blob by blob (one ranged read each): opening and closing the pack around
 * every blob cost more than the read itself (an export spent ~16% of its CPU in open and close).
 *
 * The rules it keeps:
 * - at most `max` handles stay open while idle; a handle in use is never closed under its reader
 *   (it is closed when the last reader releases it, if it was evicted or dropped meanwhile);
 * - drop(path) forgets a file (its object was deleted): the next read opens the path again, and so
 *   sees that it is gone; a handle that failed a read is dropped too;
 * - closeAll() closes every idle handle at once and the others on release; the cache stays usable.
 * Only immutable files may be read through it: a handle keeps reading the file it opened, even after
 * another process removed or replaced the name (repository objects are written once, never changed).
 */
import { type FileHandle, open } from 'node:fs/promises';

interface Entry {
  readonly path: string;
  readonly handle: Promise<FileHandle>;
  users: number;
  /** Evicted or dropped: close once no reader holds it. */
  retired: boolean;
}

export interface OpenFile {
  readonly handle: FileHandle;
  /** Ends this use; `failed` drops the handle (a read error may mean it went bad). */
  release(failed?: boolean): void;
}

export class OpenFileCache {
  /** Idle and busy entries by path; Map order is the recency order (oldest first). */
  private readonly entries = new Map<string, Entry>();
  /** Opens done (handles created), for tests. */
  opens = 0;

  /** @param max idle handles kept open at most. */
  constructor(private readonly max = 8) {}

  /** A handle on `path`, opened read-only or reused; rejects as fs.open does (ENOENT, EACCES...). */
  async acquire(path: string): Promise<OpenFile> {
    let entry = this.entries.get(path);
    if (entry === undefined) {
      this.opens++;
      entry = { path, handle: open(path, 'r'), users: 1, retired: false };
      this.entries.set(path, entry);
      this.trim(); // after counting this reader: the new handle is never the one retired
    } else {
      // Most recently used: move to the end of the Map.
      this.entries.delete(path);
      this.entries.set(path, entry);
      entry.users++;
    }
    const e = entry;
    let handle: FileHandle;
    try {
      handle = await e.handle;
    } catch (err) {
      e.users--;
      // A failed open is never cached: the next read tries again (the file may appear).
      if (this.entries.get(path) === e) this.entries.delete(path);
      throw err;
    }
    let released = false;
    return {
      handle,
      release: (failed = false) => {
        if (released) return;
        released = true;
        e.users--;
        if (failed) this.retire(e);
        else if (e.retired && e.users === 0) this.closeEntry(e);
        else this.trim();
      },
    };
  }

  /** Forgets `path` (its file was deleted): the handle closes once idle. */
  drop(path: string): void {
    const e = this.entries.get(path);
    if (e !== undefined) this.retire(e);
  }

  /** Closes every handle (idle ones now, busy ones on release). */
  async closeAll(): Promise<void> {
    const idle: Array<Promise<void>> = [];
    for (const e of [...this.entries.values()]) {
      this.entries.delete(e.path);
      e.retired = true;
      if (e.users === 0) idle.push(this.closeEntry(e));
    }
    await Promise.all(idle);
  }

  /** Handles currently open or opening (for tests). */
  get size(): number {
    return this.entries.size;
  }

  /** Retires the least recently used idle handles beyond `max`. */
  private trim(): void {
    if (this.entries.size <= this.max) return;
    for (const e of this.entries.values()) {
      if (this.entries.size <= this.max) break;
      if (e.users === 0) this.retire(e);
    }
  }

  private retire(e: Entry): void {
    if (this.entries.get(e.path) === e) this.entries.delete(e.path);
    e.retired = true;
    if (e.users === 0) void this.closeEntry(e);
  }

  private closeEntry(e: Entry): Promise<void> {
    // A failed open or close leaves nothing to clean up: the error was the reader's to see.
    return e.handle
      .then(
        (h) => h.close(),
        () => {},
      )
      .catch(() => {});
  }
}
