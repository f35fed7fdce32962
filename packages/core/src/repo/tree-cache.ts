/**
 * TreeCache: local copies of the tree blobs a backup starts from (the tenant tree and the mailbox
 * trees), so that a run on an unchanged tenant reads them without the blob index and without a ranged
 * GET of a pack each (restic keeps tree packs in its cache for the same reason).
 *
 * Why it exists: reading a tree blob from the repository needs its pack and offset, that is the whole
 * index (every index object fetched, decrypted and decoded: on the 2 GB benchmark repository ~0.2 s of
 * CPU, a fifth of a no-change run). With the trees here, a backup opens the repository with the index
 * deferred and loads it only when it stores something (see Repository's `index: 'deferred'`).
 *
 * The rules it keeps:
 * - the cache is never the truth: a file holds a blob exactly as a pack does (compressed, sealed with
 *   the repository's key and bound to its type and id), and every read is authenticated and checked
 *   against the blob's keyed id; a damaged file is dropped and the blob read from the repository;
 * - a file is named by the blob id, and a blob never changes, so a copy is valid for as long as the
 *   blob exists; the repository only ever asks for ids it reached from a snapshot or checkpoint it
 *   holds a lock against pruning, so an entry whose blob was pruned is never used;
 * - local failures (disk full, read-only home) never fail an operation: the first is reported once;
 * - bounded: after a backup, sweep() drops every file this process neither read nor wrote, so the
 *   cache holds the trees of the latest run and the one before it, not the history of the tenant.
 *
 * File format: rawLength u32 LE ‖ the sealed blob (pack.ts's sealBlob).
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { errorText } from '../errors.js';
import type { BlobId } from '../mail/snapshot.js';
import { type Reporter, silentReporter } from '../progress.js';
import { CacheDir } from '../store/cached-store.js';
import { errnoOf } from '../store/local-store-errors.js';
import { openBlob, sealBlob } from './pack.js';

const TEMP_PREFIX = '.tmp-';
/** Temp files of a crashed writer older than this are swept. */
const TEMP_MAX_AGE_MS = 3_600_000;
const BLOB_ID = /^[0-9a-f]{64}$/;

export interface TreeCacheOptions {
  /** The folder of this repository's cached trees (created on the first write, mode 0700). */
  dir: string;
  /** The repository's encryption key. */
  key: Uint8Array;
  /** True when `plain` is the blob with this id (the repository's keyed hash). */
  verify: (id: BlobId, plain: Uint8Array) => boolean;
  reporter?: Reporter;
}

/** What the cache did, for tests and debug output. */
export interface TreeCacheCounters {
  hits: number;
  misses: number;
  stored: number;
  /** Damaged files dropped. */
  repaired: number;
  /** Files dropped by sweep(). */
  swept: number;
}

export class TreeCache {
  readonly counters: TreeCacheCounters = { hits: 0, misses: 0, stored: 0, repaired: 0, swept: 0 };
  private readonly dir: string;
  private readonly key: Uint8Array;
  private readonly verify: (id: BlobId, plain: Uint8Array) => boolean;
  private readonly reporter: Reporter;
  /** Ids this process read from here or stored here: what sweep() keeps. */
  private readonly used = new Set<BlobId>();
  private readonly writes = new Set<Promise<void>>();
  private readonly made: CacheDir;
  private warned = false;

  constructor(o: TreeCacheOptions) {
    this.dir = o.dir;
    this.made = new CacheDir(o.dir);
    this.key = o.key;
    this.verify = o.verify;
    this.reporter = o.reporter ?? silentReporter;
  }

  /** The blob's plaintext when a cached copy is there and intact; undefined otherwise. */
  async get(id: BlobId): Promise<Uint8Array | undefined> {
    if (!BLOB_ID.test(id)) return undefined;
    const file = path.join(this.dir, id);
    let buf: Buffer;
    try {
      buf = await fs.readFile(file);
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT') this.warnOnce('read', err);
      this.counters.misses++;
      return undefined;
    }
    let plain: Uint8Array | undefined;
    try {
      if (buf.byteLength < 4) throw new Error('truncated');
      const rawLength = buf.readUInt32LE(0);
      const sealed = buf.subarray(4);
      const entry = { type: 'tree' as const, id, offset: 0, length: sealed.byteLength, rawLength };
      plain = openBlob(this.key, entry, sealed, `cached tree ${id}`);
      if (!this.verify(id, plain)) plain = undefined;
    } catch {
      plain = undefined;
    }
    if (plain === undefined) {
      this.counters.repaired++;
      this.reporter.log('warn', `cache file ${file} is damaged: reading tree ${id} from the repository`);
      await fs.rm(file, { force: true }).catch((err) => this.warnOnce('remove', err));
      this.counters.misses++;
      return undefined;
    }
    this.counters.hits++;
    this.used.add(id);
    return plain;
  }

  /** Stores a copy in the background (a temp file renamed into place); close() waits for it. */
  put(id: BlobId, plain: Uint8Array): void {
    if (!BLOB_ID.test(id) || this.used.has(id)) return;
    this.used.add(id);
    const sealed = sealBlob(this.key, 'tree', id, plain);
    const head = Buffer.alloc(4);
    head.writeUInt32LE(plain.byteLength, 0);
    const write = this.write(id, [head, sealed]).finally(() => this.writes.delete(write));
    this.writes.add(write);
  }

  /** Drops every cached tree this process did not read or store (and stale temp files). */
  async sweep(): Promise<void> {
    await this.settled();
    let names: string[];
    try {
      names = await fs.readdir(this.dir);
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT') this.warnOnce('list', err);
      return;
    }
    const now = Date.now();
    for (const name of names) {
      if (BLOB_ID.test(name) && this.used.has(name)) continue;
      const file = path.join(this.dir, name);
      try {
        if (name.startsWith(TEMP_PREFIX)) {
          // Another process may be writing it right now: only a crashed writer's old temp file goes.
          if (now - (await fs.stat(file)).mtimeMs < TEMP_MAX_AGE_MS) continue;
        } else if (!BLOB_ID.test(name)) continue;
        await fs.rm(file, { force: true });
        if (!name.startsWith(TEMP_PREFIX)) this.counters.swept++;
      } catch (err) {
        if (errnoOf(err) !== 'ENOENT') this.warnOnce('remove', err);
      }
    }
  }

  /** Resolves when every put() has been written (or given up). */
  async settled(): Promise<void> {
    while (this.writes.size > 0) await Promise.all([...this.writes]);
  }

  private async write(id: BlobId, parts: Uint8Array[]): Promise<void> {
    const file = path.join(this.dir, id);
    const tmp = path.join(this.dir, `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`);
    try {
      await this.made.ready();
      await fs.writeFile(tmp, Buffer.concat(parts), { mode: 0o600, flag: 'wx' });
      await fs.rename(tmp, file);
      this.counters.stored++;
    } catch (err) {
      await fs.rm(tmp, { force: true }).catch(() => {});
      this.warnOnce('write', err);
    }
  }

  private warnOnce(op: string, err: unknown): void {
    if (this.warned) return;
    this.warned = true;
    this.reporter.log(
      'warn',
      `the tree cache in ${this.dir} cannot ${op} (${errorText(err)}): trees are read from the repository`,
    );
  }
}
