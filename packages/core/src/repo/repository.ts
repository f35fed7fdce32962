/**
 * The repository: one tenant's encrypted, deduplicated, content-addressed store of mail.
 *
 * It owns the format (see layout.ts for where objects live, pack.ts and blob-index.ts for their
 * bytes) and keeps its invariants:
 * - every object is sealed (AES-256-GCM) under the master key, which only key files hold, wrapped
 *   by a password-derived key; every read authenticates, and failures are CORRUPT naming the object;
 * - objects are written once and never modified; write order is packs → index → snapshot, so a
 *   snapshot only ever references blobs whose packs and index entries are already stored;
 * - a blob is stored once per repository (keyed id), and read back with one ranged GET of its pack;
 * - with `index: 'deferred'` (backup) the index loads when first needed, not at open: a run on an
 *   unchanged tenant reads its trees from the tree cache and never needs it (see tree-cache.ts).
 */
import * as path from 'node:path';
import type { ChunkerParams } from '../backup/chunker.js';
import type { RemoteCut } from '../backup/message-record.js';
import { isMailarkError, MailarkError } from '../errors.js';
import { type BlobId, canonicalJson, type Snapshot } from '../mail/snapshot.js';
import type { TreeWriter } from '../mail/snapshot-tree.js';
import { type Reporter, silentReporter } from '../progress.js';
import { CachedStore } from '../store/cached-store.js';
import type { ObjectStore, StoreCounters } from '../store/object-store.js';
import { applyCapabilities, probeCapabilities } from '../store/probe.js';
import { BlobIndex, encodeIndexObject, type IndexEntry, loadIndexObject } from './blob-index.js';
import {
  corrupt,
  DEFAULT_KDF,
  hmacId,
  type MasterKey,
  newMasterKey,
  open,
  type ScryptParams,
  seal,
  sha256Hex,
} from './crypto.js';
import { createKeyFile, type KeyInfo } from './key-file.js';
import { addKey, findKey, listKeys, removeKey } from './key-ring.js';
import { CONFIG_KEY, idOfKey, type JsonKind, objectKey, packKey } from './layout.js';
import {
  acquireLock,
  type HeldLock,
  type LockEnv,
  type LockInfo,
  type LockMode,
  type LockRecord,
  type LockStore,
  listLocks,
  type RepoLock,
  removeAllLocks,
  removeStaleLocks,
} from './lock.js';
import { mapLimit } from './map-limit.js';
import {
  type BlobType,
  decodePackTail,
  openBlob,
  type PackEntry,
  tailLength,
  tailLengthFromField,
} from './pack.js';
import { Packer } from './packer.js';
import { type RepackResult, repackPacks } from './repack.js';
import { DEFAULT_PACK_SIZE, newConfig, openConfig, type RepoConfig, sealConfig } from './repo-config.js';
import { resolveSnapshotRef } from './resolve-snapshot.js';
import { openCutStream, sealBlobAsync } from './seal-pool.js';
import { TreeCache } from './tree-cache.js';

export type { RepoLock } from './lock.js';
export type { RepackResult } from './repack.js';
export type { RepoConfig } from './repo-config.js';

export interface InitOptions {
  packSize?: number;
  /** scrypt parameters; default N=2^15, r=8, p=1. Tests pass {N: 1024, r: 8, p: 1}. */
  kdf?: ScryptParams;
  reporter?: Reporter;
}

export interface OpenOptions {
  reporter?: Reporter;
  /**
   * How to treat index objects at open: 'strict' (default) fails CORRUPT on a damaged one; 'lenient'
   * skips it and records the error in `indexErrors` (check, repair); 'skip' loads no index (repair).
   * 'deferred' (backup): loaded as 'strict' when first needed (storing or locating a blob), so a run
   * that stores nothing never loads it; the synchronous index accessors refuse until then.
   */
  index?: 'strict' | 'lenient' | 'skip' | 'deferred';
  /** Test hook: the host/pid/clock locks see. */
  lockEnv?: LockEnv;
  /**
   * Base directory of the local cache (see store/cache-dir.ts): index and snapshot objects are kept in
   * `<cacheDir>/<repository id>/` and read from there on later opens. Absent: no cache.
   */
  cacheDir?: string;
  /**
   * Called once, as the password's key derivation starts (scrypt: ~100 ms on the thread pool, the
   * main thread idle). A caller with CPU work of its own (loading a library) starts it then, so that
   * work does not hold back the reads before the derivation (measured: ~0.2 s later index load).
   */
  onKeyDerivation?: () => void;
}

/** A repository id as init writes it (it names the cache's directory). */
const REPO_ID = /^[0-9a-f]{64}$/;
/** Index objects load this many at a time: enough to hide S3 latency, few enough for memory. */
const LOAD_CONCURRENCY = 8;
/** Where packKey() puts packs: a store's spool for a new pack lives there (same file system). */
const PACK_DIR = 'data/';
/** First tail read when a pack's blob count is unknown: covers ~1,400 blobs. */
const TAIL_GUESS = 64 * 1024;

export class Repository implements TreeWriter, LockStore {
  readonly store: ObjectStore;
  readonly config: RepoConfig;
  readonly keyId: string;
  /** Damaged index objects skipped at open with `index: 'lenient'`. */
  readonly indexErrors: MailarkError[] = [];

  private readonly master: MasterKey;
  private readonly reporter: Reporter;
  private readonly lockEnv: LockEnv | undefined;
  private readonly index = new BlobIndex();
  /** Whether the index is loaded: true, or the load (deferred: started when first needed, once). */
  private indexLoaded: true | Promise<void> | undefined = true;
  /**
   * Tree blobs read in this process (from a pack or the tree cache): reached from a snapshot or
   * checkpoint while a lock held off prune, so they are in the repository without asking the index.
   */
  private readonly knownTrees = new Set<BlobId>();
  private readonly treeCache: TreeCache | undefined;
  /** Index object id → the packs it covers. */
  private readonly indexObjects = new Map<string, string[]>();
  /** Packs written since the last index object, with their entries. */
  private unindexed = new Map<string, PackEntry[]>();
  private readonly packer: Packer;
  /** Blobs being sealed on the seal pool: id → settles once the blob is in the packer (or failed). */
  private readonly sealing = new Map<BlobId, Promise<void>>();
  private readonly snapshotCache = new Map<string, Snapshot>();
  private readonly heldLocks = new Set<HeldLock>();
  private flushing: Promise<void> = Promise.resolve();

  private constructor(
    store: ObjectStore,
    config: RepoConfig,
    keyId: string,
    master: MasterKey,
    opts: OpenOptions,
  ) {
    this.store = store;
    this.config = config;
    this.keyId = keyId;
    this.master = master;
    this.reporter = opts.reporter ?? silentReporter;
    this.lockEnv = opts.lockEnv;
    if (opts.cacheDir !== undefined && REPO_ID.test(config.id)) {
      this.treeCache = new TreeCache({
        dir: path.join(opts.cacheDir, config.id, 'trees'),
        key: master.encKey,
        verify: (id, plain) => this.blobId(plain) === id,
        reporter: this.reporter,
      });
    }
    this.packer = new Packer(master.encKey, config.packSize, {
      writePack: (id, bytes) => this.putNew(packKey(id), bytes),
      spoolPack: () => {
        const spool = this.store.spool?.(PACK_DIR);
        if (spool === undefined) return undefined;
        return {
          append: (bytes) => spool.append(bytes),
          read: (offset, length) => spool.read(offset, length),
          commit: (id) => ignoreExists(spool.commit(packKey(id))),
          close: () => spool.close(),
        };
      },
      packWritten: (id, entries) => {
        for (const e of entries) this.index.add({ ...e, pack: id });
        this.unindexed.set(id, entries);
      },
    });
  }

  /** Creates a repository at an empty location; REPOSITORY_EXISTS if one (or a part of one) is there. */
  static async init(store: ObjectStore, password: string, opts: InitOptions = {}): Promise<Repository> {
    if ((await store.stat(CONFIG_KEY)) !== undefined || (await firstKey(store, 'keys/')) !== undefined) {
      throw new MailarkError('REPOSITORY_EXISTS', `a repository already exists at ${store.location}`, {
        hint: 'use it as it is, or choose another location for a new repository',
      });
    }
    const packSize = opts.packSize ?? DEFAULT_PACK_SIZE;
    if (!Number.isInteger(packSize) || packSize < 1024 || packSize > 1024 ** 3) {
      throw new MailarkError('USAGE', `pack size ${packSize} is out of range`, {
        hint: 'use 1 KiB .. 1 GiB; the default 16 MiB suits most stores',
      });
    }
    const capabilities = await probeCapabilities(store);
    applyCapabilities(store, capabilities);
    const config = newConfig(packSize, capabilities);
    const master = newMasterKey();
    const key = await createKeyFile(master, password, opts.kdf ?? DEFAULT_KDF);
    // Key before config: a location with a config always has a key to open it.
    await store.put(objectKey('keys', key.id), key.bytes);
    await store.put(CONFIG_KEY, sealConfig(master.encKey, config));
    return new Repository(store, config, key.id, master, opts);
  }

  /** Opens a repository: NO_REPOSITORY, WRONG_PASSWORD, FORMAT_UNSUPPORTED or CORRUPT (naming the object). */
  static async open(store: ObjectStore, password: string, opts: OpenOptions = {}): Promise<Repository> {
    let sealedConfig: Uint8Array;
    try {
      sealedConfig = await store.get(CONFIG_KEY);
    } catch (err) {
      if (!isMailarkError(err, 'OBJECT_NOT_FOUND')) throw err;
      throw new MailarkError('NO_REPOSITORY', `there is no mailark repository at ${store.location}`, {
        hint: 'check the location, or create one with "mailark init"',
        cause: err,
      });
    }
    const { id, master } = await findKey(store, password, opts.onKeyDerivation);
    const config = openConfig(master.encKey, sealedConfig, store.location);
    // The store may now rely on what init proved (S3: If-None-Match instead of HEAD-then-PUT).
    applyCapabilities(store, config.capabilities);
    const repo = new Repository(withCache(store, config.id, opts), config, id, master, opts);
    if (opts.index === 'deferred') repo.indexLoaded = undefined;
    else await repo.loadIndex(opts.index ?? 'strict');
    return repo;
  }

  // ---- blobs ----

  /** The keyed id of a blob's plaintext. */
  blobId(plain: Uint8Array): BlobId {
    return hmacId(this.master.idKey, plain);
  }

  /** True when the blob is indexed or pending in a pack not yet written. */
  hasBlob(id: BlobId): boolean {
    return this.loadedIndex().has(id) || this.packer.pending(id) !== undefined;
  }

  /**
   * Resolves once the index is loaded: at once unless it was deferred, else it starts the load (once).
   * A deferred load fails as a strict open would (CORRUPT naming the index object), for every caller.
   */
  whenIndexed(): Promise<void> {
    if (this.indexLoaded === true) return Promise.resolve();
    if (this.indexLoaded === undefined) {
      const load = this.loadIndex('strict').then(() => {
        this.indexLoaded = true;
      });
      load.catch(() => {});
      this.indexLoaded = load;
    }
    return this.indexLoaded;
  }

  /**
   * Stores a blob once. Compression and sealing run on the seal pool's threads, so several saves may
   * be in flight at once (a message's chunks are saved together); a save of a blob already in flight
   * waits for that one and reports added=false. Either way, once it resolves the blob is in the packer.
   * `id`, when given, must be blobId(plain), computed elsewhere (cutMessage's worker): it is trusted.
   */
  saveBlob(
    type: BlobType,
    plain: Uint8Array,
    id?: BlobId,
  ): Promise<{ id: BlobId; added: boolean; storedBytes: number }> {
    try {
      if (this.indexLoaded !== true) return this.whenIndexed().then(() => this.saveBlob(type, plain, id));
      this.packer.assertHealthy();
      // Packs waiting to be written hold memory: wait for the store before sealing more.
      const backlog = this.packer.ready();
      if (backlog !== undefined) return backlog.then(() => this.saveBlob(type, plain, id));
      const blobId = id ?? this.blobId(plain);
      if (this.hasBlob(blobId)) return Promise.resolve({ id: blobId, added: false, storedBytes: 0 });
      const inFlight = this.sealing.get(blobId);
      if (inFlight !== undefined) return inFlight.then(() => ({ id: blobId, added: false, storedBytes: 0 }));
      return this.sealNew(type, blobId, plain);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * A message hashed, cut and given blob ids under this repository's id key on a seal pool worker (see
   * message-record.ts); undefined when the pool has no worker.
   */
  cutMessage(chunker: ChunkerParams): RemoteCut | undefined {
    return openCutStream(this.master.idKey, chunker);
  }

  /**
   * Seals a new blob and adds it to the packer. Not an async function on purpose: a suspended async
   * frame would hold `plain`, and with it the whole IMAP message it is a view of, until the blob is
   * stored; the seal pool lets go of it as soon as it is copied into a job.
   */
  private sealNew(
    type: BlobType,
    id: BlobId,
    plain: Uint8Array,
  ): Promise<{ id: BlobId; added: boolean; storedBytes: number }> {
    let storedBytes = 0;
    let full: Promise<void> | undefined;
    const rawLength = plain.byteLength;
    const settled = sealBlobAsync(this.master.encKey, type, id, plain, (sealed) => {
      // Called while `sealed` is valid: add() copies it into the pack and registers the blob at once
      // (so hasBlob() sees it from here on); it resolves once a pack it filled is written.
      full = this.packer.add(type, id, sealed, rawLength);
      full.catch(() => {});
      storedBytes = sealed.byteLength;
    }).finally(() => this.sealing.delete(id));
    // Handled here so a failure nobody else awaits is not an unhandled rejection; awaiters still see it.
    settled.catch(() => {});
    this.sealing.set(id, settled);
    return settled.then(() => full).then(() => ({ id, added: true, storedBytes }));
  }

  /** One ranged GET of the blob's pack; authenticated and checked against its id. */
  async loadBlob(id: BlobId): Promise<Uint8Array> {
    const pending = this.packer.pending(id);
    if (pending !== undefined) {
      const sealed = await this.packer.readPending(pending);
      return this.checkId(
        id,
        openBlob(this.master.encKey, pending.entry, sealed, `pending blob ${id}`),
        'pending pack',
      );
    }
    await this.whenIndexed();
    const e = this.index.get(id);
    if (e === undefined) {
      throw new MailarkError('NOT_FOUND', `blob ${id} is not in the index of ${this.store.location}`, {
        hint: 'run "mailark check"; if the index is damaged, "mailark repair index" rebuilds it',
      });
    }
    const key = packKey(e.pack);
    let sealed: Uint8Array;
    try {
      sealed = await this.store.get(key, { offset: e.offset, length: e.length });
    } catch (err) {
      if (isMailarkError(err, 'OBJECT_NOT_FOUND'))
        throw corrupt(key, `is missing (it holds blob ${id})`, err);
      throw err;
    }
    return this.checkId(id, openBlob(this.master.encKey, e, sealed, `${key} (blob ${id})`), key);
  }

  /**
   * Stores a tree blob once. `cache`: also keep it in the tree cache (the trees the next backup starts
   * from). A tree read in this process is known to be stored: saving it again asks nothing of the index.
   */
  async saveTree(value: unknown, opts: { cache?: boolean } = {}): Promise<BlobId> {
    const plain = Buffer.from(canonicalJson(value));
    const id = this.blobId(plain);
    if (!this.knownTrees.has(id)) await this.saveBlob('tree', plain, id);
    if (opts.cache === true) this.treeCache?.put(id, plain);
    return id;
  }

  /**
   * Reads a tree blob. `cache`: read it from the tree cache when it is there, and keep it there (the
   * tenant and mailbox trees a backup starts from), so that it needs neither the index nor the store.
   */
  async loadTree<T>(id: BlobId, opts: { cache?: boolean } = {}): Promise<T> {
    const cache = opts.cache === true ? this.treeCache : undefined;
    let bytes = await cache?.get(id);
    if (bytes === undefined) {
      bytes = await this.loadBlob(id);
      cache?.put(id, bytes);
    }
    this.knownTrees.add(id);
    try {
      return JSON.parse(Buffer.from(bytes).toString('utf8')) as T;
    } catch (err) {
      throw new MailarkError('CORRUPT', `tree blob ${id} is not valid JSON`, { cause: err });
    }
  }

  /** Seals open packs and writes the index object for every pack written since the last one. */
  flush(): Promise<void> {
    // One flush at a time: two concurrent ones would both index the same packs.
    const run = this.flushing.then(() => this.flushNow());
    this.flushing = run.catch(() => {});
    return run;
  }

  private async flushNow(): Promise<void> {
    // Blobs still being sealed belong to the packs this flush writes.
    await Promise.allSettled([...this.sealing.values()]);
    await this.packer.flush();
    if (this.unindexed.size === 0) return;
    this.assertLocksValid();
    // A copy: packs that finish writing while this index object is stored must stay unindexed (for the
    // next flush), not be dropped with the ones this object covers.
    const packs = new Map(this.unindexed);
    const id = await this.putSealed('index', encodeIndexObject(this.master.encKey, packs));
    this.indexObjects.set(id, [...packs.keys()]);
    // Only now: a failed index write leaves the packs listed for the next flush.
    this.unindexed = new Map([...this.unindexed].filter(([p]) => !packs.has(p)));
  }

  // ---- snapshots ----

  async saveSnapshot(s: Snapshot): Promise<string> {
    await this.flush();
    if (!(await this.treeStored(s.tree))) {
      throw new MailarkError(
        'INTERNAL',
        `snapshot tree ${s.tree} is not in the index: refusing to write a dangling snapshot`,
      );
    }
    this.assertLocksValid();
    const id = await this.saveJson('snapshots', s);
    this.snapshotCache.set(id, s);
    return id;
  }

  /** Every snapshot, ascending by time (then id). */
  async listSnapshots(): Promise<Array<{ id: string; snapshot: Snapshot }>> {
    const ids = await this.listJson('snapshots');
    const out = await mapLimit(ids, LOAD_CONCURRENCY, async (id) => ({
      id,
      snapshot: await this.loadSnapshot(id),
    }));
    // Plain code-unit order (ISO times, hex ids): localeCompare's first call loads ICU data (~40 ms).
    return out.sort((a, b) => byCodeUnits(a.snapshot.time, b.snapshot.time) || byCodeUnits(a.id, b.id));
  }

  async loadSnapshot(id: string): Promise<Snapshot> {
    const cached = this.snapshotCache.get(id);
    if (cached !== undefined) return cached;
    const s = await this.loadJson<Snapshot>('snapshots', id);
    this.snapshotCache.set(id, s);
    return s;
  }

  /** 'latest' (of the tenant, if given), a full id, or a unique prefix of at least 4 hex characters. */
  resolveSnapshot(
    ref: string,
    filter: { tenant?: string } = {},
  ): Promise<{ id: string; snapshot: Snapshot }> {
    return resolveSnapshotRef(ref, filter, {
      location: this.store.location,
      listIds: () => this.listJson('snapshots'),
      listAll: () => this.listSnapshots(),
      load: (id) => this.loadSnapshot(id),
    });
  }

  async deleteSnapshot(id: string): Promise<void> {
    await this.store.delete(objectKey('snapshots', id));
    this.snapshotCache.delete(id);
  }

  // ---- other sealed JSON objects ----

  saveObject(kind: 'checkpoints', value: unknown): Promise<string> {
    return this.saveJson(kind, value);
  }

  loadObject<T>(kind: 'checkpoints', id: string): Promise<T> {
    return this.loadJson<T>(kind, id);
  }

  listObjects(kind: 'checkpoints'): Promise<string[]> {
    return this.listJson(kind);
  }

  deleteObject(kind: 'checkpoints', id: string): Promise<void> {
    return this.store.delete(objectKey(kind, id));
  }

  // ---- locks ----

  async lock(mode: LockMode, owner = 'mailark'): Promise<RepoLock> {
    const held = await acquireLock(this, mode, owner, {
      reporter: this.reporter,
      ...(this.lockEnv === undefined ? {} : { env: this.lockEnv }),
    });
    const lock: RepoLock = {
      get id() {
        return held.id;
      },
      release: async () => {
        this.heldLocks.delete(held);
        await held.release();
      },
    };
    this.heldLocks.add(held);
    return lock;
  }

  listLocks(): Promise<LockInfo[]> {
    return listLocks(this, this.lockEnv);
  }

  removeStaleLocks(): Promise<string[]> {
    return removeStaleLocks(this, this.lockEnv);
  }

  removeAllLocks(): Promise<string[]> {
    return removeAllLocks(this);
  }

  get location(): string {
    return this.store.location;
  }

  /** @internal LockStore */
  saveLockRecord(record: LockRecord): Promise<string> {
    return this.saveJson('locks', record);
  }

  /** @internal LockStore */
  async loadLockRecord(id: string): Promise<LockRecord | undefined> {
    try {
      return await this.loadJson<LockRecord>('locks', id);
    } catch (err) {
      if (isMailarkError(err, 'OBJECT_NOT_FOUND')) return undefined;
      throw err;
    }
  }

  /** @internal LockStore */
  listLockIds(): Promise<string[]> {
    return this.listJson('locks');
  }

  /** @internal LockStore */
  deleteLockRecord(id: string): Promise<void> {
    return this.store.delete(objectKey('locks', id));
  }

  // ---- keys ----

  /** Adds a password; returns the new key's id. */
  addKey(password: string, opts: { kdf?: ScryptParams } = {}): Promise<string> {
    return addKey(this.store, this.master, password, opts.kdf ?? DEFAULT_KDF);
  }

  listKeys(): Promise<Array<KeyInfo & { current: boolean }>> {
    return listKeys(this.store, this.keyId);
  }

  /** Removes a password; refuses the key in use and the last key (USAGE). */
  removeKey(id: string): Promise<void> {
    return removeKey(this.store, id, this.keyId);
  }

  // ---- maintenance (check, stats, prune, repair) ----

  /** Every index entry (a blob stored in two packs appears twice). */
  indexEntries(): Iterable<IndexEntry> {
    return this.loadedIndex().entries();
  }

  /** The index objects loaded or written, with the packs each covers. */
  indexObjectPacks(): ReadonlyMap<string, readonly string[]> {
    this.loadedIndex();
    return this.indexObjects;
  }

  /** Every pack in the store, with its size. */
  async listPacks(): Promise<Array<{ id: string; size: number }>> {
    const out: Array<{ id: string; size: number }> = [];
    for await (const { key, size } of this.store.list('data/')) {
      const id = idOfKey(key);
      if (id !== undefined && key === packKey(id)) out.push({ id, size });
    }
    return out;
  }

  /**
   * A pack's entries, read from its header with one ranged GET of its tail (two when `count` is
   * unknown and the header is larger than the first guess). `size` saves a stat when known.
   */
  async readPackHeader(packId: string, size?: number, count?: number): Promise<PackEntry[]> {
    const key = packKey(packId);
    const packSize = size ?? (await this.store.stat(key))?.size;
    if (packSize === undefined) throw corrupt(key, 'is missing');
    let want = Math.min(packSize, count === undefined ? TAIL_GUESS : tailLength(count));
    let tail = await this.store.get(key, { offset: packSize - want, length: want });
    const need = tailLengthFromField(tail, packSize, key);
    if (need > want) {
      want = need;
      tail = await this.store.get(key, { offset: packSize - want, length: want });
    }
    return decodePackTail(this.master.encKey, tail, packSize, key);
  }

  /** The store's request counters, when the store keeps them. */
  get counters(): StoreCounters | undefined {
    return (this.store as { counters?: StoreCounters }).counters;
  }

  /** The master key, for the repo/ and check/ modules that decode packs themselves. @internal */
  get encKey(): Uint8Array {
    return this.master.encKey;
  }

  /**
   * Drops the cached trees this process neither read nor stored (after a backup's snapshot: the cache
   * keeps what the next run starts from). Never fails.
   */
  async sweepTreeCache(): Promise<void> {
    await this.treeCache?.sweep();
  }

  /** The tree cache's counters, when there is a cache. */
  get treeCacheCounters(): TreeCache['counters'] | undefined {
    return this.treeCache?.counters;
  }

  /** Releases this instance's locks after flushing. The store stays open: it belongs to the caller. */
  async close(): Promise<void> {
    try {
      await this.flush();
      await this.treeCache?.settled();
    } finally {
      for (const l of [...this.heldLocks]) await l.release();
      this.heldLocks.clear();
    }
  }

  // ---- internals ----

  private assertLocksValid(): void {
    for (const l of this.heldLocks) l.assertValid();
  }

  /** Whether a tree blob is in the repository: read in this process (see knownTrees), or indexed. */
  private async treeStored(id: BlobId): Promise<boolean> {
    if (this.knownTrees.has(id)) return true;
    await this.whenIndexed();
    return this.index.has(id);
  }

  /** The index, which must be loaded (a deferred one is loaded by whenIndexed() first). */
  private loadedIndex(): BlobIndex {
    if (this.indexLoaded !== true)
      throw new Error('Repository: the index is deferred and not loaded yet (await whenIndexed() first)');
    return this.index;
  }

  private checkId(id: BlobId, plain: Uint8Array, where: string): Uint8Array {
    if (this.blobId(plain) !== id)
      throw corrupt(where, `returned blob ${id} whose content does not match its id`);
    return plain;
  }

  private async loadIndex(mode: 'strict' | 'lenient' | 'skip'): Promise<void> {
    if (mode === 'skip') return;
    const started = Date.now();
    const ids = await this.listJson('index');
    // Fetch in parallel, decode as each arrives (decoding is synchronous, so entries never interleave).
    await mapLimit(ids, LOAD_CONCURRENCY, async (id) => {
      try {
        const sealed = await this.getVerified('index', id);
        this.indexObjects.set(
          id,
          loadIndexObject(this.index, this.master.encKey, sealed, objectKey('index', id)),
        );
      } catch (err) {
        if (mode === 'strict' || !isMailarkError(err, 'CORRUPT')) throw err;
        this.indexErrors.push(err);
      }
    });
    this.reporter.log('debug', `index loaded: ${ids.length} object(s), ${this.index.size} blob(s)`, {
      indexObjects: ids.length,
      blobs: this.index.size,
      ms: Date.now() - started,
    });
  }

  /** @internal Adds index entries (repair, repack); does not write anything. */
  addIndexEntries(packId: string, entries: readonly PackEntry[]): void {
    for (const e of entries) this.index.add({ ...e, pack: packId });
  }

  /** @internal Writes an index object for these packs; returns its id. */
  async writeIndexObject(packs: ReadonlyMap<string, readonly PackEntry[]>): Promise<string> {
    const id = await this.putSealed('index', encodeIndexObject(this.master.encKey, packs));
    this.indexObjects.set(id, [...packs.keys()]);
    return id;
  }

  /** @internal Deletes an index object (after its replacement is written). */
  async deleteIndexObject(id: string): Promise<void> {
    await this.store.delete(objectKey('index', id));
    this.indexObjects.delete(id);
  }

  /** @internal Forgets the index entries of packs that are gone. */
  forgetPacks(packs: ReadonlySet<string>): void {
    this.index.removePacks(packs);
  }

  /** @internal Replaces the in-memory index with these packs' entries (after a rebuild). */
  replaceIndexEntries(packs: ReadonlyMap<string, readonly PackEntry[]>, indexIds: readonly string[]): void {
    this.index.removePacks(new Set(this.index.byPack().keys()));
    for (const [pack, entries] of packs) this.addIndexEntries(pack, entries);
    for (const id of [...this.indexObjects.keys()]) if (!indexIds.includes(id)) this.indexObjects.delete(id);
  }

  /** The ids of the index objects in the store. */
  listIndexIds(): Promise<string[]> {
    return this.listJson('index');
  }

  /**
   * @internal Copies a sealed blob read from a pack into the packer as it is (its seal binds its type
   * and id, so it stays valid in any pack), after authenticating it. For repack.
   */
  async copySealedBlob(entry: PackEntry, sealed: Uint8Array, where: string): Promise<void> {
    this.checkId(entry.id, openBlob(this.master.encKey, entry, sealed, where), where);
    await this.packer.add(entry.type, entry.id, sealed, entry.rawLength);
  }

  /**
   * Rewrites the given packs, keeping the blobs for which `keep` is true (and that have no copy in a
   * pack outside the set), then writes the new index, replaces or deletes the index objects that
   * covered the old packs, and only then deletes the old packs. See repack.ts. Needs an exclusive lock.
   */
  repack(packIds: readonly string[], keep: (blobId: string) => boolean): Promise<RepackResult> {
    return repackPacks(this, packIds, keep);
  }

  /** @internal Stores a sealed JSON object; returns its id. */
  async saveJson(kind: JsonKind, value: unknown): Promise<string> {
    return this.putSealed(
      kind,
      seal(this.master.encKey, Buffer.from(JSON.stringify(value)), Buffer.from(kind)),
    );
  }

  /** @internal Loads a sealed JSON object; CORRUPT names it, OBJECT_NOT_FOUND passes through. */
  async loadJson<T>(kind: JsonKind, id: string): Promise<T> {
    const what = objectKey(kind, id);
    const plain = open(this.master.encKey, await this.getVerified(kind, id), what, Buffer.from(kind));
    try {
      return JSON.parse(Buffer.from(plain).toString('utf8')) as T;
    } catch (err) {
      throw corrupt(what, 'is not valid JSON', err);
    }
  }

  private async listJson(kind: JsonKind | 'index'): Promise<string[]> {
    const ids: string[] = [];
    for await (const { key } of this.store.list(`${kind}/`)) {
      const id = idOfKey(key);
      if (id !== undefined && key === objectKey(kind, id)) ids.push(id);
    }
    return ids;
  }

  /** Stores sealed bytes under <kind>/<sha256>; returns the id. */
  private async putSealed(kind: JsonKind | 'index', sealed: Uint8Array): Promise<string> {
    const id = sha256Hex(sealed);
    await this.putNew(objectKey(kind, id), sealed);
    return id;
  }

  /** put() that treats "already there" as done: ids are content hashes, so the bytes are the same. */
  private putNew(key: string, bytes: Uint8Array): Promise<void> {
    return ignoreExists(this.store.put(key, bytes));
  }

  /** The whole object, checked against its id (the SHA-256 of its bytes). */
  private async getVerified(kind: JsonKind | 'index', id: string): Promise<Uint8Array> {
    const key = objectKey(kind, id);
    const bytes = await this.store.get(key);
    if (sha256Hex(bytes) !== id) throw corrupt(key, 'does not match its id (damaged or truncated)');
    return bytes;
  }
}

/**
 * The store behind a local cache of the objects that are immutable and named by the SHA-256 of their
 * bytes (index, snapshots), when a cache directory is given. `repo.store` is then the CachedStore.
 */
function withCache(store: ObjectStore, repoId: string, opts: OpenOptions): ObjectStore {
  // The id names a directory: only the 64 hex characters init writes.
  if (opts.cacheDir === undefined || !REPO_ID.test(repoId)) return store;
  return new CachedStore(store, {
    dir: path.join(opts.cacheDir, repoId),
    prefixes: ['index/', 'snapshots/'],
    reporter: opts.reporter ?? silentReporter,
  });
}

/** A write that treats "already there" as done: ids are content hashes, so the bytes are the same. */
async function ignoreExists(write: Promise<void>): Promise<void> {
  try {
    await write;
  } catch (err) {
    if (!isMailarkError(err, 'OBJECT_EXISTS')) throw err;
  }
}

function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

async function firstKey(store: ObjectStore, prefix: string): Promise<string | undefined> {
  for await (const { key } of store.list(prefix)) return key;
  return undefined;
}
