/**
 * CachedStore: an ObjectStore decorator keeping a local copy of immutable metadata objects (restic's
 * internal/cache), so a run stops downloading every index object and snapshot from S3.
 *
 * The rule it keeps: the cache is never the truth and never the only copy of anything.
 * - Only whole objects under the cached prefixes whose last key segment is the SHA-256 of their bytes
 *   are cached: such an object can never change, so a copy is valid forever, and every cached read is
 *   checked against its name. A damaged or truncated file is dropped and the object read through again.
 * - Files hold the stored bytes exactly (still sealed): the repository authenticates them as any read.
 * - put() writes through first, then caches; delete() deletes from the store, then the copy.
 * - list() always asks the store; a complete listing also drops the cached files of objects it no
 *   longer shows (forget, prune, another machine), except files written since the listing began.
 * - stat() and ranged gets pass through. Local failures (disk full, read-only home) never fail an
 *   operation: the store answers, and the first such failure is reported once as a warning.
 * - `counters` are the inner store's, so figures count only requests that reached the real store.
 */
import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { errorText } from '../errors.js';
import { type Reporter, silentReporter } from '../progress.js';
import { errnoOf } from './local-store-errors.js';
import type { ByteRange, ObjectInfo, ObjectSpool, ObjectStore, StoreCounters } from './object-store.js';
import { applyCapabilities, probeCapabilities, type StoreCapabilities } from './probe.js';

export interface CachedStoreOptions {
  /** This repository's cache directory (created on the first write, mode 0700). */
  dir: string;
  /** Folders whose objects are named by the SHA-256 of their bytes, e.g. ['index/', 'snapshots/']. */
  prefixes: readonly string[];
  /** Told (once) when the cache cannot be read or written, and when a damaged file is replaced. */
  reporter?: Reporter;
}

/** What the cache did, for tests and debug output. */
export interface CacheCounters {
  /** Whole-object reads answered from a cache file (no store request). */
  hits: number;
  /** Cacheable reads that went to the store. */
  misses: number;
  bytesFromCache: number;
  /** Cache files written (after a miss or a put). */
  stored: number;
  /** Damaged cache files dropped and read through again. */
  repaired: number;
  /** Cache files dropped because the store no longer lists their object. */
  dropped: number;
}

/**
 * A cache directory, created on first use (mode 0700) and tagged with CACHEDIR.TAG so backup tools
 * skip it (a tag already there is left alone).
 */
export class CacheDir {
  private made: Promise<void> | undefined;

  constructor(readonly path: string) {}

  /** Resolves once the directory exists. A failure is not remembered: the next call tries again. */
  ready(): Promise<void> {
    if (this.made === undefined) {
      const made = (async () => {
        await fs.mkdir(this.path, { recursive: true, mode: 0o700 });
        await fs
          .writeFile(path.join(this.path, 'CACHEDIR.TAG'), CACHEDIR_TAG, { flag: 'wx' })
          .catch((err) => {
            if (errnoOf(err) !== 'EEXIST') throw err;
          });
      })();
      made.catch(() => {
        if (this.made === made) this.made = undefined;
      });
      this.made = made;
    }
    return this.made;
  }
}

/** Marks the directory as a cache for backup tools (https://bford.info/cachedir/). */
const CACHEDIR_TAG =
  'Signature: 8a477f597d28d172789f06886806bc55\n' +
  '# This file is a cache directory tag created by mailark.\n' +
  '# For information about cache directory tags see https://bford.info/cachedir/\n';
const TEMP_PREFIX = '.tmp-';
/** Temp files of a crashed writer older than this are swept with unlisted objects. */
const TEMP_MAX_AGE_MS = 3_600_000;
const SHA256_HEX = /^[0-9a-f]{64}$/;

export class CachedStore implements ObjectStore {
  readonly location: string;
  readonly cacheCounters: CacheCounters = {
    hits: 0,
    misses: 0,
    bytesFromCache: 0,
    stored: 0,
    repaired: 0,
    dropped: 0,
  };
  private readonly dir: string;
  private readonly prefixes: readonly string[];
  private readonly reporter: Reporter;
  /** The directory itself, created on the first write. */
  private readonly root: CacheDir;
  private warned = false;
  /** The inner store's spool, when it has one; spooled objects (packs) lie outside the cached folders. */
  readonly spool?: (dir: string) => ObjectSpool;

  constructor(
    readonly inner: ObjectStore,
    options: CachedStoreOptions,
  ) {
    this.location = inner.location;
    this.dir = path.resolve(options.dir);
    this.root = new CacheDir(this.dir);
    // Folders only: a file path is derived from the key, and a listing walks the prefix's folder.
    for (const p of options.prefixes) {
      if (!p.endsWith('/') || p.startsWith('/') || p.split('/').includes('..'))
        throw new TypeError(`cache prefix ${JSON.stringify(p)} must be a folder such as 'index/'`);
    }
    this.prefixes = options.prefixes;
    this.reporter = options.reporter ?? silentReporter;
    const spool = inner.spool?.bind(inner);
    if (spool !== undefined)
      this.spool = (dir) => {
        if (this.prefixes.some((p) => p.startsWith(dir) || dir.startsWith(p)))
          throw new TypeError(`cannot spool into cached folder ${dir}`);
        return spool(dir);
      };
  }

  /** The inner store's request counters: cache hits never count as store reads. */
  get counters(): StoreCounters | undefined {
    return (this.inner as { counters?: StoreCounters }).counters;
  }

  async put(key: string, data: Uint8Array): Promise<void> {
    await this.inner.put(key, data);
    if (this.cacheable(key) && sha256Hex(data) === nameOf(key)) await this.store(key, data);
  }

  async get(key: string, range?: ByteRange): Promise<Uint8Array> {
    if (range !== undefined || !this.cacheable(key)) return this.inner.get(key, range);
    const cached = await this.load(key);
    if (cached !== undefined) {
      this.cacheCounters.hits++;
      this.cacheCounters.bytesFromCache += cached.byteLength;
      return cached;
    }
    this.cacheCounters.misses++;
    const bytes = await this.inner.get(key);
    // Damaged bytes from the store are returned (the repository names the damage) but never cached.
    if (sha256Hex(bytes) === nameOf(key)) await this.store(key, bytes);
    return bytes;
  }

  stat(key: string): Promise<ObjectInfo | undefined> {
    return this.inner.stat(key);
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const covered = this.prefixes.filter((p) => p.startsWith(prefix) || prefix.startsWith(p));
    const started = Date.now();
    const seen = new Set<string>();
    for await (const info of this.inner.list(prefix)) {
      if (covered.length > 0) seen.add(info.key);
      yield info;
    }
    // Only after a complete listing (a consumer that stops early never gets here).
    for (const p of covered) await this.dropUnlisted(p, prefix, seen, started);
  }

  async delete(key: string): Promise<void> {
    await this.inner.delete(key);
    if (this.cacheable(key)) await this.remove(key);
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  /** Capabilities are the wrapped store's. */
  probeCapabilities(): Promise<StoreCapabilities> {
    return probeCapabilities(this.inner);
  }

  applyCapabilities(caps: StoreCapabilities): void {
    applyCapabilities(this.inner, caps);
  }

  // ---- the cache directory ----

  private cacheable(key: string): boolean {
    return this.prefixes.some((p) => key.startsWith(p)) && SHA256_HEX.test(nameOf(key));
  }

  private fileOf(key: string): string {
    return path.join(this.dir, ...key.split('/'));
  }

  /** The cached bytes when present and intact; a damaged file is dropped (the caller reads through). */
  private async load(key: string): Promise<Uint8Array | undefined> {
    const file = this.fileOf(key);
    let buf: Buffer;
    try {
      buf = await fs.readFile(file);
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT') this.warnOnce('read', key, err);
      return undefined;
    }
    const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    if (sha256Hex(bytes) === nameOf(key)) return bytes;
    this.cacheCounters.repaired++;
    this.reporter.log('warn', `cache file ${file} is damaged: reading ${key} from the store again`, {
      store: this.location,
    });
    await this.remove(key);
    return undefined;
  }

  /** Writes a cache file atomically (temp file, then rename); a crash leaves a temp file, never half a file. */
  private async store(key: string, bytes: Uint8Array): Promise<void> {
    const file = this.fileOf(key);
    const tmp = path.join(path.dirname(file), `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`);
    try {
      await this.root.ready();
      await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
      await fs.writeFile(tmp, bytes, { mode: 0o600, flag: 'wx' });
      // rename replaces a damaged copy; two processes caching one object write identical bytes.
      await fs.rename(tmp, file);
      this.cacheCounters.stored++;
    } catch (err) {
      await fs.rm(tmp, { force: true }).catch(() => {});
      this.warnOnce('write', key, err);
    }
  }

  private async remove(key: string): Promise<void> {
    try {
      await fs.rm(this.fileOf(key), { force: true });
    } catch (err) {
      this.warnOnce('remove', key, err);
    }
  }

  /**
   * After a complete listing of `listed`, drops the cache files under `cached` (and the listing) that
   * it did not show: their objects are gone from the store. Files written since `since` stay: another
   * process may have stored the object after the listing passed its key.
   */
  private async dropUnlisted(
    cached: string,
    listed: string,
    seen: Set<string>,
    since: number,
  ): Promise<void> {
    for (const key of await this.cachedKeys(cached)) {
      const isTemp = nameOf(key).startsWith(TEMP_PREFIX);
      if (!isTemp && (!key.startsWith(listed) || seen.has(key))) continue;
      const file = this.fileOf(key);
      try {
        const st = await fs.stat(file);
        if (isTemp ? since - st.mtimeMs < TEMP_MAX_AGE_MS : st.mtimeMs >= since) continue;
        await fs.rm(file, { force: true });
        if (!isTemp) this.cacheCounters.dropped++;
      } catch (err) {
        if (errnoOf(err) !== 'ENOENT') this.warnOnce('clean', key, err);
      }
    }
  }

  /** Keys of the files cached under a prefix (temp files included), from the directory tree. */
  private async cachedKeys(prefix: string): Promise<string[]> {
    const out: string[] = [];
    const walk = async (dirKey: string): Promise<void> => {
      let entries: import('node:fs').Dirent[];
      try {
        entries = await fs.readdir(this.fileOf(dirKey), { withFileTypes: true });
      } catch (err) {
        if (errnoOf(err) !== 'ENOENT' && errnoOf(err) !== 'ENOTDIR') this.warnOnce('list', dirKey, err);
        return;
      }
      for (const e of entries) {
        const key = `${dirKey}/${e.name}`;
        if (e.isDirectory()) await walk(key);
        else if (e.isFile()) out.push(key);
      }
    };
    await walk(prefix.replace(/\/+$/, ''));
    return out;
  }

  private warnOnce(op: string, key: string, err: unknown): void {
    if (this.warned) return;
    this.warned = true;
    this.reporter.log(
      'warn',
      `local cache ${this.dir} is not usable (${op} ${key}): reading from the store instead`,
      {
        store: this.location,
        error: errorText(err),
      },
    );
  }
}

/** The last segment of a key: an object's id. */
function nameOf(key: string): string {
  return key.slice(key.lastIndexOf('/') + 1);
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
