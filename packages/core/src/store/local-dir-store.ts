/**
 * LocalDirStore: the default ObjectStore, one file per object under a root directory.
 *
 * The rule it keeps: a file at a key's path is always complete. put() writes a temp file
 * (`.tmp-<random>`) in the target's own directory, fsyncs it, then hard-links it to its final name and
 * fsyncs the directory. link(2) fails with EEXIST atomically when the name exists, so two writers of the
 * same key can never both win and nothing is ever overwritten; rename(2) would silently replace an
 * existing file, and "check, then rename" leaves a window between the check and the rename. Leftover
 * temp files from a crash are invisible to list() and removed by sweepTemp(). spool() gives the same
 * temp file to a writer that appends as it goes (packs: see local-spool.ts); its commit links it the
 * same way.
 */
import { randomBytes } from 'node:crypto';
import { type Dirent, promises as fs, read as fsRead, fsync, mkdirSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { MailarkError } from '../errors.js';
import { LocalSpool } from './local-spool.js';
import { errnoOf, localStoreError } from './local-store-errors.js';
import { OpenFileCache } from './open-file-cache.js';

export { localStoreError } from './local-store-errors.js';

import {
  assertValidKey,
  type ByteRange,
  newCounters,
  type ObjectInfo,
  type ObjectSpool,
  type ObjectStore,
} from './object-store.js';

/** Prefix of in-flight files; list() never shows them, sweepTemp() removes them. */
export const TEMP_PREFIX = '.tmp-';

/** Where the hard-link is refused by the file system (FAT, some FUSE/SMB mounts). */
const NO_LINK_CODES = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

export class LocalDirStore implements ObjectStore {
  readonly location: string;
  readonly counters = newCounters();
  private readonly root: string;
  /** Packs read blob by blob stay open between reads (see open-file-cache.ts); objects never change. */
  private readonly files = new OpenFileCache(8);
  /**
   * Spool directories whose stale temp files (a killed run's open packs) this store swept, with the
   * sweep itself: it runs in the background and close() waits for it.
   */
  private readonly sweeps = new Map<string, Promise<unknown>>();

  /** @param root the repository directory; created on the first put if absent. */
  constructor(root: string) {
    this.root = path.resolve(root);
    this.location = this.root;
  }

  async put(key: string, data: Uint8Array): Promise<void> {
    this.checkKey(key);
    const file = this.pathOf(key);
    const dir = path.dirname(file);
    const tmp = path.join(dir, `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`);
    try {
      await this.makeDurableDirs(dir);
      const fh = await fs.open(tmp, 'wx', 0o600);
      try {
        await fh.writeFile(data);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await this.publish(tmp, file, key);
      await syncDir(dir);
    } catch (err) {
      throw localStoreError(err, 'put', key, this.location);
    } finally {
      // After a successful link the temp name is a second link to the same inode: drop it. After a
      // failure it is a partial file: drop it too, so a failed put leaves nothing behind.
      await fs.rm(tmp, { force: true }).catch(() => {});
    }
    this.counters.puts++;
    this.counters.bytesWritten += data.byteLength;
  }

  /**
   * A temp file under `dir` written through as bytes come (see ObjectStore.spool); commit() then does
   * what put() does after writing its temp file: fsync, link to the key's name, fsync the directory.
   */
  spool(dir: string): ObjectSpool {
    const dirKey = dir.replace(/\/$/, '');
    this.checkKey(dirKey);
    const tmpDir = this.pathOf(dirKey);
    let createdTop: string | undefined;
    try {
      createdTop = mkdirSync(tmpDir, { recursive: true });
    } catch (err) {
      throw localStoreError(err, 'put', dir, this.location);
    }
    const tmp = path.join(tmpDir, `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`);
    // A run killed while packs were open left their spools here: remove those older than an hour
    // (sweepTemp's rule, so another process's open spool is never touched), once per store.
    if (!this.sweeps.has(tmpDir)) {
      this.sweeps.set(
        tmpDir,
        sweepDir(tmpDir, 3_600_000, Date.now(), false).catch(() => {}),
      );
    }
    return new LocalSpool(tmp, async (fd, size, key) => {
      if (!key.startsWith(dir)) throw new TypeError(`spool for ${dir} cannot commit ${key}`);
      this.checkKey(key);
      const file = this.pathOf(key);
      const target = path.dirname(file);
      try {
        // The spool's own directory (and its parents) may be new: sync them as put() does its own.
        await this.makeDurableDirs(target, createdTop);
        createdTop = undefined;
        await fsyncFd(fd);
        await this.publish(tmp, file, key);
        await syncDir(target);
      } catch (err) {
        throw localStoreError(err, 'put', key, this.location);
      }
      this.counters.puts++;
      this.counters.bytesWritten += size;
    });
  }

  /**
   * mkdir -p `dir`; a new directory entry is durable only once its parent directory is synced, so
   * every parent of a directory created here is synced (the target directory itself is synced by the
   * caller after the link). `earlier`: the first of `dir`'s ancestors created before without that
   * care (by spool(), which must create its directory synchronously).
   */
  private async makeDurableDirs(dir: string, earlier?: string): Promise<void> {
    const created = await makeDirs(dir);
    const first =
      created === undefined || (earlier !== undefined && earlier.length < created.length) ? earlier : created;
    if (first === undefined) return;
    const top = path.dirname(first);
    for (let d = path.dirname(dir); ; d = path.dirname(d)) {
      await syncDir(d);
      if (d === top || d === path.dirname(d)) break;
    }
  }

  /** Makes `tmp` visible as `file`, refusing to replace an existing object. */
  private async publish(tmp: string, file: string, key: string): Promise<void> {
    try {
      await fs.link(tmp, file);
      return;
    } catch (err) {
      if (errnoOf(err) === 'EEXIST') throw this.exists(key);
      if (!NO_LINK_CODES.has(errnoOf(err) ?? '')) throw err;
    }
    // No hard links on this file system: check, then rename. Two writers of one key can race in the
    // gap, which is harmless for mailark's objects: keys are content hashes or random ids, so both
    // writers hold identical bytes (the same argument as S3 without conditional writes).
    if (await exists(file)) throw this.exists(key);
    await fs.rename(tmp, file);
  }

  async get(key: string, range?: ByteRange): Promise<Uint8Array> {
    this.checkKey(key);
    const file = this.pathOf(key);
    let out: Uint8Array;
    try {
      out = range === undefined ? await readWhole(file) : await this.readRangeOf(file, range, key);
    } catch (err) {
      throw localStoreError(err, 'get', key, this.location);
    }
    this.counters.gets++;
    this.counters.bytesRead += out.byteLength;
    return out;
  }

  private async readRangeOf(file: string, range: ByteRange, key: string): Promise<Uint8Array> {
    const f = await this.files.acquire(file);
    let failed = true;
    try {
      const out = await readRange(f.handle, range, key, this.location);
      failed = false;
      return out;
    } finally {
      f.release(failed);
    }
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    this.checkKey(key);
    this.counters.stats++;
    try {
      const st = await fs.stat(this.pathOf(key));
      return st.isFile() ? { key, size: st.size } : undefined;
    } catch (err) {
      const code = errnoOf(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      throw localStoreError(err, 'stat', key, this.location);
    }
  }

  /**
   * Every object whose key starts with `prefix`, in ascending key order, streamed. Entries of each
   * directory are ordered as `name` for files and `name/` for directories, which makes a depth-first
   * walk yield keys in exactly the order a sort of the full keys would ('a/b-c' before 'a/b/x').
   */
  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    this.counters.lists++;
    const slash = prefix.lastIndexOf('/');
    const base = slash < 0 ? '' : prefix.slice(0, slash);
    yield* this.walk(base, prefix);
  }

  private async *walk(dirKey: string, prefix: string): AsyncGenerator<ObjectInfo> {
    const dir = dirKey === '' ? this.root : this.pathOf(dirKey);
    let entries: Dirent[];
    try {
      entries = await fs.readdir(dir, { withFileTypes: true });
    } catch (err) {
      const code = errnoOf(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') return;
      throw localStoreError(err, 'list', dirKey, this.location);
    }
    const items = entries
      .filter((e) => !e.name.startsWith(TEMP_PREFIX) && (e.isFile() || e.isDirectory()))
      .map((e) => ({ name: e.name, dir: e.isDirectory(), sortKey: e.isDirectory() ? `${e.name}/` : e.name }))
      .sort((a, b) => (a.sortKey < b.sortKey ? -1 : a.sortKey > b.sortKey ? 1 : 0));
    // Files are stat'ed in batches (sizes for the listing); directories are walked in their turn.
    const BATCH = 64;
    for (let i = 0; i < items.length; ) {
      const item = items[i] as (typeof items)[number];
      const key = dirKey === '' ? item.name : `${dirKey}/${item.name}`;
      if (item.dir) {
        i++;
        // Descend only where a key under this directory can match the prefix.
        const sub = `${key}/`;
        if (sub.startsWith(prefix) || prefix.startsWith(sub)) yield* this.walk(key, prefix);
        continue;
      }
      const batch: string[] = [];
      while (i < items.length && batch.length < BATCH && !(items[i] as (typeof items)[number]).dir) {
        const name = (items[i] as (typeof items)[number]).name;
        const k = dirKey === '' ? name : `${dirKey}/${name}`;
        if (k.startsWith(prefix)) batch.push(k);
        i++;
      }
      const infos = await Promise.all(batch.map((k) => this.sizeOf(k)));
      for (const info of infos) if (info !== undefined) yield info;
    }
  }

  /** Size of a listed file; undefined when it was deleted between readdir and stat (not an error). */
  private async sizeOf(key: string): Promise<ObjectInfo | undefined> {
    try {
      const st = await fs.stat(this.pathOf(key));
      return { key, size: st.size };
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return undefined;
      throw localStoreError(err, 'list', key, this.location);
    }
  }

  async delete(key: string): Promise<void> {
    this.checkKey(key);
    this.counters.deletes++;
    // An open handle would keep reading the deleted object: ranged gets must see it gone.
    this.files.drop(this.pathOf(key));
    try {
      await fs.unlink(this.pathOf(key));
    } catch (err) {
      const code = errnoOf(err);
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return; // idempotent: no object there
      throw localStoreError(err, 'delete', key, this.location);
    }
  }

  /**
   * Closes the file handles kept open for ranged reads and waits for the background sweeps of stale
   * spools; the store stays usable.
   */
  async close(): Promise<void> {
    await Promise.all(this.sweeps.values());
    await this.files.closeAll();
  }

  /** Local files have atomic no-overwrite (link fails with EEXIST): see the module header. */
  async probeCapabilities(): Promise<{ conditionalWrites: boolean }> {
    return { conditionalWrites: true };
  }

  /**
   * Removes temp files left by crashed writers. Only files older than `olderThanMs` (default one hour)
   * are removed, so a put in flight in another process is never disturbed. Returns how many went.
   */
  async sweepTemp(olderThanMs = 3_600_000, now = Date.now()): Promise<number> {
    try {
      return await sweepDir(this.root, olderThanMs, now, true);
    } catch (err) {
      const where = (err as { path?: string }).path ?? this.root;
      throw localStoreError(err, 'sweep', path.relative(this.root, where), this.location);
    }
  }

  private checkKey(key: string): void {
    assertValidKey(key);
    // A key ending in a temp-file name would be hidden from list() and eaten by sweepTemp().
    if (key.split('/').some((s) => s.startsWith(TEMP_PREFIX))) {
      throw new TypeError(
        `invalid object key ${JSON.stringify(key)}: segments may not start with ${TEMP_PREFIX}`,
      );
    }
  }

  private pathOf(key: string): string {
    return path.join(this.root, ...key.split('/'));
  }

  private exists(key: string): MailarkError {
    return new MailarkError('OBJECT_EXISTS', `object ${key} already exists in ${this.location}`);
  }
}

async function readWhole(file: string): Promise<Uint8Array> {
  const buf = await fs.readFile(file);
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/**
 * Reads exactly range.length bytes at range.offset through a file handle, never the whole file. The
 * size is only asked for when a read comes up short (objects never change, so a range inside one
 * reads whole): with the handle kept open, one file-system round trip per blob.
 */
async function readRange(
  fh: FileHandle,
  range: ByteRange,
  key: string,
  location: string,
): Promise<Uint8Array> {
  const outside = (size: number) =>
    new MailarkError(
      'CORRUPT',
      `range ${range.offset}+${range.length} is outside object ${key} (${size} bytes) in ${location}`,
    );
  if (range.offset < 0 || range.length <= 0) {
    const { size } = await fh.stat();
    if (range.offset < 0 || range.length < 0 || range.offset > size) throw outside(size);
    return new Uint8Array(0);
  }
  const out = new Uint8Array(range.length);
  let done = 0;
  while (done < range.length) {
    const { bytesRead } = await preadInto(fh, out, done, range.length - done, range.offset + done);
    if (bytesRead === 0) {
      const { size } = await fh.stat();
      if (range.offset + range.length > size) throw outside(size);
      throw new MailarkError('CORRUPT', `object ${key} in ${location} shrank while being read`);
    }
    done += bytesRead;
  }
  return out;
}

/**
 * pread(2) through the callback API on the handle's descriptor: the same read as FileHandle.read for
 * ~25% less CPU per call (no promise-based request object; measured 28 vs 35 us per 40 KB read), which
 * counts at one read per blob. The handle stays owned (and closed) by the OpenFileCache.
 */
function preadInto(
  fh: FileHandle,
  buf: Uint8Array,
  offset: number,
  length: number,
  position: number,
): Promise<{ bytesRead: number }> {
  return new Promise((resolve, reject) => {
    fsRead(fh.fd, buf, offset, length, position, (err, bytesRead) =>
      err ? reject(err) : resolve({ bytesRead }),
    );
  });
}

/**
 * `mkdir -p` that returns the first directory it created (as fs.mkdir with `recursive` does), but
 * fails where Node's recursive mkdir spins forever: under a parent that exists yet refuses new
 * entries with ENOENT (/proc, some FUSE file systems), `mailark init` hung at 100 % CPU.
 */
async function makeDirs(dir: string): Promise<string | undefined> {
  const missing: string[] = [];
  for (let d = dir; ; d = path.dirname(d)) {
    let isDir: boolean;
    try {
      isDir = (await fs.stat(d)).isDirectory();
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT' || d === path.dirname(d)) throw err;
      missing.push(d);
      continue;
    }
    if (!isDir) throw Object.assign(new Error(`${d} is not a directory`), { code: 'ENOTDIR' });
    break;
  }
  let first: string | undefined;
  for (const d of missing.reverse()) {
    try {
      await fs.mkdir(d);
      first ??= d;
    } catch (err) {
      if (errnoOf(err) !== 'EEXIST') throw err; // EEXIST: a concurrent put made it
    }
  }
  return first;
}

/**
 * Removes the temp files in `dir` (and below it when `deep`) older than `olderThanMs`; returns how many
 * went. A directory gone meanwhile has none.
 */
async function sweepDir(dir: string, olderThanMs: number, now: number, deep: boolean): Promise<number> {
  let entries: Dirent[];
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return 0;
    throw err;
  }
  let removed = 0;
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (deep) removed += await sweepDir(p, olderThanMs, now, true);
    } else if (e.isFile() && e.name.startsWith(TEMP_PREFIX)) {
      const st = await fs.stat(p).catch(() => undefined);
      if (st !== undefined && now - st.mtimeMs >= olderThanMs) {
        await fs.rm(p, { force: true });
        removed++;
      }
    }
  }
  return removed;
}

function fsyncFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fsync(fd, (err) => (err ? reject(err) : resolve())));
}

/** fsync a directory so the entries created in it survive a crash. */
async function syncDir(dir: string): Promise<void> {
  const fh = await fs.open(dir, 'r');
  try {
    await fh.sync();
  } catch (err) {
    // Some file systems refuse fsync on directories; the data itself was already synced.
    if (errnoOf(err) !== 'EINVAL' && errnoOf(err) !== 'EISDIR') throw err;
  } finally {
    await fh.close();
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await fs.stat(file);
    return true;
  } catch {
    return false;
  }
}
