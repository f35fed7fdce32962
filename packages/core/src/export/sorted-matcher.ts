/**
 * A merge join of two streams sorted by the same order: what a snapshot says an export must hold, and
 * what the export holds, read in the order mailark wrote it. Exact, and O(1) in memory: each side is
 * read once, and only the head of the expected stream is held.
 *
 * An item found below the expected head is `unexpected`; expected items below the item found are
 * `missing`; equal keys are `matched`. An item found out of order (not above the previous one) cannot
 * be placed by a merge: it is reported `outOfOrder` (a repacked archive; verify the unpacked
 * directory instead).
 */

export interface SortedMatchHandlers<K, E, A> {
  matched(key: K, expected: E, actual: A): void;
  missing(key: K, expected: E): void;
  unexpected(key: K, actual: A): void;
  outOfOrder(key: K, actual: A): void;
}

export class SortedMatcher<K, E, A> {
  private readonly iterator: AsyncIterator<[K, E]>;
  private head: [K, E] | undefined;
  private done = false;
  private last: K | undefined;
  matchedCount = 0;

  constructor(
    expected: AsyncIterable<[K, E]>,
    private readonly compare: (a: K, b: K) => number,
    private readonly handlers: SortedMatchHandlers<K, E, A>,
  ) {
    this.iterator = expected[Symbol.asyncIterator]();
  }

  async found(key: K, actual: A): Promise<void> {
    if (this.last !== undefined && this.compare(key, this.last) <= 0) {
      this.handlers.outOfOrder(key, actual);
      return;
    }
    this.last = key;
    for (let head = await this.peek(); head !== undefined; head = await this.peek()) {
      const c = this.compare(head[0], key);
      if (c > 0) break;
      this.head = undefined;
      if (c === 0) {
        this.matchedCount++;
        this.handlers.matched(key, head[1], actual);
        return;
      }
      this.handlers.missing(head[0], head[1]);
    }
    this.handlers.unexpected(key, actual);
  }

  async finish(): Promise<void> {
    for (let head = await this.peek(); head !== undefined; head = await this.peek()) {
      this.head = undefined;
      this.handlers.missing(head[0], head[1]);
    }
  }

  private async peek(): Promise<[K, E] | undefined> {
    if (this.head !== undefined || this.done) return this.head;
    const next = await this.iterator.next();
    if (next.done === true) {
      this.done = true;
      return undefined;
    }
    this.head = next.value;
    return this.head;
  }
}

/** Lexicographic order of number tuples: the key order of export entries (user, folder, UID/index). */
export function compareTuples(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}
