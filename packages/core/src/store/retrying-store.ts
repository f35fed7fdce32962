/**
 * RetryingStore: an ObjectStore decorator that retries transient failures with exponential backoff
 * and full jitter (restic's backend/retry). It wraps S3 (whose SDK retries single HTTP calls, but not
 * everything around them) and is harmless around a local directory.
 *
 * The rule it keeps: a retry never changes what a caller observes except that it succeeds later.
 * - Only transient errors are retried: STORE_UNREACHABLE and STORE_IO, unless the error says
 *   `details.transient === false` (disk full, permission denied, 4xx refusals).
 * - put() is not idempotent under no-overwrite: when an attempt failed ambiguously (the object may have
 *   been written before the connection dropped), a later OBJECT_EXISTS is checked by reading the
 *   object back; identical bytes mean our own earlier attempt landed, and the put succeeds.
 * - list() restarts after a failure and skips the keys it already yielded, so no key comes twice. It
 *   remembers them in a set rather than trusting key order: not every S3-compatible server sorts.
 */
import { errorText, isMailarkError } from '../errors.js';
import { type Reporter, silentReporter } from '../progress.js';
import type { ByteRange, ObjectInfo, ObjectSpool, ObjectStore, StoreCounters } from './object-store.js';
import { applyCapabilities, probeCapabilities, type StoreCapabilities } from './probe.js';
import { TempFileSpool, UploadBuffer } from './temp-file-spool.js';

export interface StoreRetryOptions {
  /** Attempts in all, including the first (default 5). */
  maxAttempts?: number;
  /** Backoff cap before jitter for the first retry (default 200 ms); doubles each retry. */
  baseDelayMs?: number;
  /** Largest backoff (default 20 s). */
  maxDelayMs?: number;
  /** Source of jitter in [0, 1) (default Math.random); injectable for tests. */
  random?: () => number;
  /** How to wait (default setTimeout); injectable so unit tests never sleep. */
  sleep?: (ms: number) => Promise<void>;
  /** Which errors to retry (default: isTransientStoreError). */
  isTransient?: (err: unknown) => boolean;
  /** Told about each retry at level 'warn'. */
  reporter?: Reporter;
}

/** STORE_UNREACHABLE and STORE_IO are worth another try unless the store marked them permanent. */
export function isTransientStoreError(err: unknown): boolean {
  if (!isMailarkError(err)) return false;
  if (err.code !== 'STORE_UNREACHABLE' && err.code !== 'STORE_IO') return false;
  return err.details?.transient !== false;
}

/**
 * Delay before retry number `retry` (1 = first retry): "full jitter", a uniform pick in
 * [0, min(max, base * 2^(retry-1))), which spreads retrying clients apart (AWS architecture blog).
 */
export function backoffDelay(
  retry: number,
  baseDelayMs: number,
  maxDelayMs: number,
  random: () => number,
): number {
  const cap = Math.min(maxDelayMs, baseDelayMs * 2 ** Math.max(0, retry - 1));
  return Math.floor(random() * cap);
}

const realSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class RetryingStore implements ObjectStore {
  readonly location: string;
  private readonly maxAttempts: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly random: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly isTransient: (err: unknown) => boolean;
  private readonly reporter: Reporter;
  private readonly upload = new UploadBuffer();

  constructor(
    readonly inner: ObjectStore,
    options: StoreRetryOptions = {},
  ) {
    this.location = inner.location;
    this.maxAttempts = Math.max(1, options.maxAttempts ?? 5);
    this.baseDelayMs = options.baseDelayMs ?? 200;
    this.maxDelayMs = options.maxDelayMs ?? 20_000;
    this.random = options.random ?? Math.random;
    this.sleep = options.sleep ?? realSleep;
    this.isTransient = options.isTransient ?? isTransientStoreError;
    this.reporter = options.reporter ?? silentReporter;
  }

  /** Runs `fn` until it succeeds, fails permanently, or attempts run out (then the last error). */
  private async retry<T>(op: string, key: string, fn: (attempt: number) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn(attempt);
      } catch (err) {
        if (attempt >= this.maxAttempts || !this.isTransient(err)) throw err;
        const delayMs = backoffDelay(attempt, this.baseDelayMs, this.maxDelayMs, this.random);
        this.reporter.log('warn', `store ${op} ${key} failed, retrying`, {
          store: this.location,
          attempt,
          delayMs,
          error: errorText(err),
        });
        await this.sleep(delayMs);
      }
    }
  }

  async put(key: string, data: Uint8Array): Promise<void> {
    let ambiguous = false;
    await this.retry('put', key, async () => {
      try {
        await this.inner.put(key, data);
      } catch (err) {
        if (isMailarkError(err, 'OBJECT_EXISTS') && ambiguous) {
          // An earlier attempt may have landed: it is ours if the bytes are ours.
          const stored = await this.inner.get(key);
          if (sameBytes(stored, data)) return;
        }
        if (this.isTransient(err)) ambiguous = true;
        throw err;
      }
    });
  }

  /**
   * A temp-file spool whose commit is this store's put() (retried as any put): the wrapped store's own
   * spool, if any, would bypass the retries.
   */
  spool(_dir: string): ObjectSpool {
    return new TempFileSpool((key, bytes) => this.put(key, bytes), this.upload);
  }

  get(key: string, range?: ByteRange): Promise<Uint8Array> {
    return this.retry('get', key, () => this.inner.get(key, range));
  }

  stat(key: string): Promise<ObjectInfo | undefined> {
    return this.retry('stat', key, () => this.inner.stat(key));
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const seen = new Set<string>();
    for (let attempt = 1; ; attempt++) {
      try {
        for await (const info of this.inner.list(prefix)) {
          if (seen.has(info.key)) continue;
          seen.add(info.key);
          yield info;
        }
        return;
      } catch (err) {
        if (attempt >= this.maxAttempts || !this.isTransient(err)) throw err;
        const delayMs = backoffDelay(attempt, this.baseDelayMs, this.maxDelayMs, this.random);
        this.reporter.log('warn', `store list ${prefix} failed, retrying`, {
          store: this.location,
          attempt,
          delayMs,
          alreadyListed: seen.size,
          error: errorText(err),
        });
        await this.sleep(delayMs);
      }
    }
  }

  delete(key: string): Promise<void> {
    return this.retry('delete', key, () => this.inner.delete(key));
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  /** The wrapped store's request counters (each attempt that succeeded), for --json figures on S3. */
  get counters(): StoreCounters | undefined {
    return (this.inner as { counters?: StoreCounters }).counters;
  }

  /** Capabilities are the wrapped store's. */
  probeCapabilities(): Promise<StoreCapabilities> {
    return this.retry('probe', 'probe/', () => probeCapabilities(this.inner));
  }

  applyCapabilities(caps: StoreCapabilities): void {
    applyCapabilities(this.inner, caps);
  }
}
