/**
 * The object store: where a repository's objects live (a local directory, an S3 bucket, memory).
 *
 * Keys are relative slash-separated paths such as `config`, `keys/<id>`, `data/ab/<id>`. A store is
 * a dumb byte container: encryption, packing and meaning live in the repository above it.
 *
 * Every implementation guarantees (the contract suite in store-contract.ts checks each one):
 * - read-after-write: once put() resolves, get(), stat() and list() see the object;
 * - atomic put: no reader ever sees part of an object, and a failed put leaves nothing behind;
 * - no overwrite: put() on an existing key rejects with code OBJECT_EXISTS (where the backend cannot
 *   make this atomic, e.g. S3 without conditional writes, it checks first: objects are content-addressed
 *   or carry random ids, so a lost race writes identical bytes);
 * - ranged get: get(key, {offset, length}) returns exactly those bytes, or rejects CORRUPT/STORE_IO if the
 *   object is shorter; never a suffix range (S3-compatible servers get those wrong);
 * - paginated list: list(prefix) yields every key under the prefix exactly once, however many there are;
 *   `prefix` is a string prefix, as on S3 ('a/b' matches 'a/bc'). Memory, local directories and AWS
 *   list in ascending key order, but some S3-compatible servers do not (s3rver walks its directories,
 *   'a/b/x' before 'a/b-c'): callers must not rely on the order;
 * - idempotent delete: deleting an absent key succeeds;
 * - errors are MailarkErrors: OBJECT_NOT_FOUND, OBJECT_EXISTS, STORE_UNREACHABLE, STORE_AUTH,
 *   STORE_BUCKET_MISSING or STORE_IO, with a hint.
 */

export interface ObjectInfo {
  key: string;
  size: number;
}

export interface ByteRange {
  offset: number;
  length: number;
}

export interface ObjectStore {
  /** Where this store points, for messages: `/srv/mailark/acme` or `s3://bucket/prefix`. Never a secret. */
  readonly location: string;
  put(key: string, data: Uint8Array): Promise<void>;
  get(key: string, range?: ByteRange): Promise<Uint8Array>;
  /** The object's size, or undefined when absent. */
  stat(key: string): Promise<ObjectInfo | undefined>;
  list(prefix: string): AsyncIterable<ObjectInfo>;
  delete(key: string): Promise<void>;
  /** Releases connections; the store is unusable afterwards. */
  close(): Promise<void>;
  /**
   * Optional: a spool for one new object whose bytes are written through as they are produced, so a
   * big object (a 16 MiB pack) never sits whole in memory: the local directory store appends to the
   * object's temp file, the S3 store (and RetryingStore around it) to an unlinked temp file PUT at
   * commit. Stores without it (memory) are given whole objects by put(). `dir` is a key prefix ending
   * in '/' under which the object's key will lie.
   */
  spool?(dir: string): ObjectSpool;
}

/**
 * One object being written through (see ObjectStore.spool). Its bytes are invisible to get(), stat()
 * and list() until commit() resolves; commit() keeps put()'s rules (atomic, durable, no overwrite:
 * OBJECT_EXISTS). Whatever happens, the owner calls close() once, which drops any uncommitted bytes.
 */
export interface ObjectSpool {
  /** Bytes appended so far. */
  readonly size: number;
  /** Appends bytes; they are copied out before it returns (so the caller may reuse them). */
  append(bytes: Uint8Array): void;
  /** Reads back appended bytes, also after commit() and until close() (reads in flight finish). */
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Publishes the bytes appended so far as `key`, as put(key, bytes) would; appends end here. */
  commit(key: string): Promise<void>;
  /** Releases the spool: uncommitted bytes are dropped; reads in flight still complete. */
  close(): void;
}

/** Request counts, kept by every store for stats and benchmarks. */
export interface StoreCounters {
  puts: number;
  gets: number;
  stats: number;
  lists: number;
  deletes: number;
  bytesWritten: number;
  bytesRead: number;
}

export function newCounters(): StoreCounters {
  return { puts: 0, gets: 0, stats: 0, lists: 0, deletes: 0, bytesWritten: 0, bytesRead: 0 };
}

/** Keys are relative paths of safe characters: no leading slash, no `..`, no empty segment. */
export function assertValidKey(key: string): void {
  if (
    key.length === 0 ||
    key.startsWith('/') ||
    key.endsWith('/') ||
    key.split('/').some((s) => s === '' || s === '.' || s === '..')
  ) {
    throw new TypeError(`invalid object key ${JSON.stringify(key)}`);
  }
}
