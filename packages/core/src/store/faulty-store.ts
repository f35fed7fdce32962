/**
 * FaultyStore: an ObjectStore decorator that injects failures, for tests (kopia's fault-injecting
 * storage). Repository and backup tests wrap a MemoryStore in it to prove that nothing is lost and
 * nothing half-written is taken for complete when requests fail.
 *
 * The rule it keeps: every fault is deterministic. Rates draw from a seeded PRNG, counts are per
 * operation, so a failing test reproduces exactly. Injected errors are MailarkErrors shaped like a
 * real store's (STORE_IO by default, transient), with `details.injected = true`.
 */
import { type ErrorCode, MailarkError } from '../errors.js';
import type { ByteRange, ObjectInfo, ObjectStore } from './object-store.js';
import { applyCapabilities, probeCapabilities, type StoreCapabilities } from './probe.js';

export type StoreOp = 'put' | 'get' | 'stat' | 'list' | 'delete';

export interface FaultRule {
  /** Which operation fails; '*' for all of them. */
  op: StoreOp | '*';
  /** Fail each matching call with this probability (seeded). */
  rate?: number;
  /** Fail exactly these calls, counted 1-based per operation (e.g. [3] = "the 3rd put"). */
  nth?: number[];
  /** Fail every matching call after the first `after` calls of the operation. */
  after?: number;
  /** Only calls whose key (or list prefix) starts with this. */
  keyPrefix?: string;
  /** Error code (default STORE_IO). */
  code?: ErrorCode;
  /** Whether RetryingStore may retry it (default true). */
  transient?: boolean;
  /**
   * For put: 'before' (default) fails without writing; 'after' writes the object and then fails, as
   * when the response to a successful request is lost. For list: 'after' yields the first item, then
   * fails mid-listing.
   */
  when?: 'before' | 'after';
}

export interface FaultyStoreOptions {
  /** PRNG seed (default 1). */
  seed?: number;
  faults?: FaultRule[];
  /** Probability that a successful get returns only the first half of the bytes (default 0). */
  truncateReadRate?: number;
  /** Added latency per call: fixed, or uniform in [min, max] (seeded). */
  latencyMs?: number | { min: number; max: number };
  /** How to wait for latency (default setTimeout). */
  sleep?: (ms: number) => Promise<void>;
}

export interface InjectedFault {
  op: StoreOp;
  key: string;
  call: number;
  kind: ErrorCode | 'truncated';
}

/** mulberry32: a small, fast, seedable PRNG; quality is ample for fault injection. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class FaultyStore implements ObjectStore {
  readonly location: string;
  /** Calls seen per operation (including failed ones). */
  readonly calls: Record<StoreOp, number> = { put: 0, get: 0, stat: 0, list: 0, delete: 0 };
  /** Every fault injected so far, in order. */
  readonly injected: InjectedFault[] = [];
  private faults: FaultRule[];
  private truncateReadRate: number;
  private readonly random: () => number;
  private readonly latency: FaultyStoreOptions['latencyMs'];
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(
    readonly inner: ObjectStore,
    options: FaultyStoreOptions = {},
  ) {
    this.location = inner.location;
    this.random = seededRandom(options.seed ?? 1);
    this.faults = options.faults ?? [];
    this.truncateReadRate = options.truncateReadRate ?? 0;
    this.latency = options.latencyMs;
    this.sleep = options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  /** Replaces the fault rules (e.g. start failing halfway through a test). */
  setFaults(faults: FaultRule[], truncateReadRate = 0): void {
    this.faults = faults;
    this.truncateReadRate = truncateReadRate;
  }

  /** Stops injecting anything: the store behaves like its inner store from now on. */
  heal(): void {
    this.setFaults([]);
  }

  /** Counts the call, waits the latency, and returns the rule that fails it, if any. */
  private async enter(op: StoreOp, key: string): Promise<{ call: number; rule: FaultRule | undefined }> {
    const call = ++this.calls[op];
    await this.delay();
    const rule = this.faults.find((r) => this.matches(r, op, key, call));
    return { call, rule };
  }

  private matches(r: FaultRule, op: StoreOp, key: string, call: number): boolean {
    if (r.op !== '*' && r.op !== op) return false;
    if (r.keyPrefix !== undefined && !key.startsWith(r.keyPrefix)) return false;
    if (r.nth?.includes(call)) return true;
    if (r.after !== undefined && call > r.after) return true;
    // Draw only for rate rules, so adding an nth rule does not shift the random sequence.
    return r.rate !== undefined && this.random() < r.rate;
  }

  private async delay(): Promise<void> {
    if (this.latency === undefined) return;
    const ms =
      typeof this.latency === 'number'
        ? this.latency
        : this.latency.min + this.random() * (this.latency.max - this.latency.min);
    if (ms > 0) await this.sleep(ms);
  }

  private fail(op: StoreOp, key: string, call: number, rule: FaultRule): MailarkError {
    const code = rule.code ?? 'STORE_IO';
    this.injected.push({ op, key, call, kind: code });
    return new MailarkError(code, `injected fault: ${op} ${key} (call ${call}) in ${this.location}`, {
      hint: 'this is a FaultyStore, used by tests',
      details: { op, key, injected: true, transient: rule.transient ?? true },
    });
  }

  async put(key: string, data: Uint8Array): Promise<void> {
    const { call, rule } = await this.enter('put', key);
    if (rule !== undefined && rule.when !== 'after') throw this.fail('put', key, call, rule);
    await this.inner.put(key, data);
    if (rule !== undefined) throw this.fail('put', key, call, rule);
  }

  async get(key: string, range?: ByteRange): Promise<Uint8Array> {
    const { call, rule } = await this.enter('get', key);
    if (rule !== undefined) throw this.fail('get', key, call, rule);
    const data = await this.inner.get(key, range);
    if (this.truncateReadRate > 0 && data.byteLength > 0 && this.random() < this.truncateReadRate) {
      this.injected.push({ op: 'get', key, call, kind: 'truncated' });
      return data.slice(0, Math.floor(data.byteLength / 2));
    }
    return data;
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    const { call, rule } = await this.enter('stat', key);
    if (rule !== undefined) throw this.fail('stat', key, call, rule);
    return this.inner.stat(key);
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const { call, rule } = await this.enter('list', prefix);
    if (rule !== undefined && rule.when !== 'after') throw this.fail('list', prefix, call, rule);
    let yielded = 0;
    for await (const info of this.inner.list(prefix)) {
      if (rule !== undefined && yielded >= 1) throw this.fail('list', prefix, call, rule);
      yielded++;
      yield info;
    }
    if (rule !== undefined) throw this.fail('list', prefix, call, rule);
  }

  async delete(key: string): Promise<void> {
    const { call, rule } = await this.enter('delete', key);
    if (rule !== undefined) throw this.fail('delete', key, call, rule);
    await this.inner.delete(key);
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  /** Capabilities are the wrapped store's (faults do not apply to the probe). */
  probeCapabilities(): Promise<StoreCapabilities> {
    return probeCapabilities(this.inner);
  }

  applyCapabilities(caps: StoreCapabilities): void {
    applyCapabilities(this.inner, caps);
  }
}
