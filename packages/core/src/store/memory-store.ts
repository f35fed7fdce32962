/**
 * An ObjectStore in memory, for unit tests. Keeps the full contract (no overwrite, ranged reads,
 * sorted paginated listing) so that code tested on it behaves the same on disk and S3.
 */
import { MailarkError } from '../errors.js';
import {
  assertValidKey,
  type ByteRange,
  newCounters,
  type ObjectInfo,
  type ObjectStore,
} from './object-store.js';

export class MemoryStore implements ObjectStore {
  readonly location: string;
  readonly counters = newCounters();
  private readonly objects = new Map<string, Uint8Array>();

  constructor(name = 'memory') {
    this.location = `memory:${name}`;
  }

  async put(key: string, data: Uint8Array): Promise<void> {
    assertValidKey(key);
    if (this.objects.has(key)) {
      throw new MailarkError('OBJECT_EXISTS', `object ${key} already exists in ${this.location}`);
    }
    this.counters.puts++;
    this.counters.bytesWritten += data.byteLength;
    // Copy: the caller may reuse its buffer, and a store never shares memory with its callers.
    this.objects.set(key, Uint8Array.prototype.slice.call(data));
  }

  async get(key: string, range?: ByteRange): Promise<Uint8Array> {
    assertValidKey(key);
    const data = this.objects.get(key);
    if (data === undefined) {
      throw new MailarkError('OBJECT_NOT_FOUND', `object ${key} not found in ${this.location}`);
    }
    this.counters.gets++;
    if (range === undefined) {
      this.counters.bytesRead += data.byteLength;
      // TypedArray#slice copies; Buffer#slice would alias the stored object.
      return Uint8Array.prototype.slice.call(data);
    }
    if (range.offset < 0 || range.length < 0 || range.offset + range.length > data.byteLength) {
      throw new MailarkError(
        'CORRUPT',
        `range ${range.offset}+${range.length} is outside object ${key} (${data.byteLength} bytes) in ${this.location}`,
      );
    }
    this.counters.bytesRead += range.length;
    return Uint8Array.prototype.slice.call(data, range.offset, range.offset + range.length);
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    assertValidKey(key);
    this.counters.stats++;
    const data = this.objects.get(key);
    return data === undefined ? undefined : { key, size: data.byteLength };
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    this.counters.lists++;
    const keys = [...this.objects.keys()].filter((k) => k.startsWith(prefix)).sort();
    for (const key of keys) {
      const data = this.objects.get(key);
      if (data !== undefined) yield { key, size: data.byteLength };
    }
  }

  async delete(key: string): Promise<void> {
    assertValidKey(key);
    this.counters.deletes++;
    this.objects.delete(key);
  }

  async close(): Promise<void> {}

  /** Test hook: the raw stored bytes, to flip or truncate them. */
  raw(key: string): Uint8Array | undefined {
    return this.objects.get(key);
  }

  /** Test hook: replace stored bytes behind the contract's back (simulates disk corruption). */
  corrupt(key: string, data: Uint8Array): void {
    this.objects.set(key, data);
  }
}
