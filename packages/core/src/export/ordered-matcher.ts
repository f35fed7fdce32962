/**
 * Matches two keyed streams that should hold the same items in (nearly) the same order: what was
 * expected (walked from a snapshot, or read from SHA256SUMS) and what was found (read from an export).
 * Memory is bounded by `window`, not by the streams' length: in a faithful export the two advance in
 * lockstep and nothing is held.
 *
 * For each item found, the matcher looks among the expected items already pulled, then pulls more
 * (holding at most `window`). A found item with no counterpart within reach waits (at most `window`
 * of them) in case its counterpart comes later, and is `unexpected` if none does. An expected item
 * still unmatched after 2 × `window` more items were found is `missing` (the found stream has moved
 * past it), as is every expected item left at the end. A key found twice is a `duplicate`.
 * Streams reordered by more than the window show as missing + unexpected pairs.
 */

export interface MatchHandlers<K, E, A> {
  matched(key: K, expected: E, actual: A): void;
  missing(key: K, expected: E): void;
  unexpected(key: K, actual: A): void;
  duplicate?(key: K, actual: A): void;
}

export class OrderedMatcher<K, E, A> {
  private readonly pendingExpected = new Map<K, { value: E; at: number }>();
  private readonly pendingActual = new Map<K, A>();
  private readonly recent = new Set<K>();
  private readonly iterator: AsyncIterator<[K, E]>;
  private exhausted = false;
  private foundCount = 0;
  /** Keys matched so far. */
  matchedCount = 0;

  constructor(
    expected: AsyncIterable<[K, E]>,
    private readonly handlers: MatchHandlers<K, E, A>,
    private readonly window = 10_000,
  ) {
    this.iterator = expected[Symbol.asyncIterator]();
  }

  /** One item found. */
  async found(key: K, actual: A): Promise<void> {
    this.foundCount++;
    try {
      if (this.pendingActual.has(key) || this.recent.has(key)) {
        (this.handlers.duplicate ?? this.handlers.unexpected)(key, actual);
        return;
      }
      const pending = this.pendingExpected.get(key);
      if (pending !== undefined) {
        this.pendingExpected.delete(key);
        this.match(key, pending.value, actual);
        return;
      }
      while (!this.exhausted && this.pendingExpected.size < this.window) {
        const next = await this.iterator.next();
        if (next.done === true) {
          this.exhausted = true;
          break;
        }
        const [k, v] = next.value;
        if (k === key) {
          this.match(k, v, actual);
          return;
        }
        if (this.pendingActual.has(k)) {
          const waiting = this.pendingActual.get(k) as A;
          this.pendingActual.delete(k);
          this.match(k, v, waiting);
          continue;
        }
        this.pendingExpected.set(k, { value: v, at: this.foundCount });
      }
      this.pendingActual.set(key, actual);
      if (this.pendingActual.size > this.window) {
        const [k, a] = this.pendingActual.entries().next().value as [K, A];
        this.pendingActual.delete(k);
        this.handlers.unexpected(k, a);
      }
    } finally {
      this.evictStale();
    }
  }

  /** Call once every item was found: drains the expected stream and reports what is left. */
  async finish(): Promise<void> {
    while (!this.exhausted) {
      const next = await this.iterator.next();
      if (next.done === true) {
        this.exhausted = true;
        break;
      }
      const [k, v] = next.value;
      if (this.pendingActual.has(k)) {
        const waiting = this.pendingActual.get(k) as A;
        this.pendingActual.delete(k);
        this.match(k, v, waiting);
      } else {
        this.handlers.missing(k, v);
      }
    }
    for (const [k, p] of this.pendingExpected) this.handlers.missing(k, p.value);
    this.pendingExpected.clear();
    for (const [k, a] of this.pendingActual) this.handlers.unexpected(k, a);
    this.pendingActual.clear();
  }

  private match(key: K, expected: E, actual: A): void {
    this.matchedCount++;
    this.recent.add(key);
    if (this.recent.size > this.window) this.recent.delete(this.recent.values().next().value as K);
    this.handlers.matched(key, expected, actual);
  }

  /** Expected items pulled long before what is found now will not come: they are missing. */
  private evictStale(): void {
    for (const [k, p] of this.pendingExpected) {
      if (p.at >= this.foundCount - 2 * this.window) break; // insertion order: the rest are newer
      this.pendingExpected.delete(k);
      this.handlers.missing(k, p.value);
    }
  }
}
