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
