/**
 * Ordered read-ahead: maps an async sequence through an async loader with several loads in flight, and
 * yields the results in input order. Enough in flight to hide a store's latency (one ranged GET per
 * blob on S3), bounded both in count and in bytes so memory stays flat whatever the folder holds.
 *
 * The budget counts the item the consumer is working on (until it asks for the next one) as well as
 * the loads in flight, and an item larger than the whole budget is only loaded when nothing else is
 * held: so at most max(budget, largest item) is held, never two large messages at once.
 */

export interface ReadAheadLimits {
  /** Loads in flight at most (default 8). */
  items?: number;
  /** Sum of weights held at most (default 8 MiB); an item larger than that is loaded alone. */
  weight?: number;
}

export async function* readAhead<T, R>(
  items: AsyncIterable<T> | Iterable<T>,
  load: (item: T) => Promise<R>,
  weightOf: (item: T) => number,
  limits: ReadAheadLimits = {},
): AsyncGenerator<R> {
  const maxItems = limits.items ?? 8;
  const maxWeight = limits.weight ?? 8 * 1024 * 1024;
  const queue: Array<{ result: Promise<R>; weight: number }> = [];
  let held = 0;
  const source =
    Symbol.asyncIterator in items
      ? (items as AsyncIterable<T>)[Symbol.asyncIterator]()
      : (items as Iterable<T>)[Symbol.iterator]();
  let exhausted = false;
  let waiting: { item: T } | undefined;
  try {
    while (true) {
      while (!exhausted && queue.length < maxItems) {
        if (waiting === undefined) {
          const next = await source.next();
          if (next.done === true) {
            exhausted = true;
            break;
          }
          waiting = { item: next.value };
        }
        const weight = weightOf(waiting.item);
        if (held > 0 && held + weight > maxWeight) break;
        const result = load(waiting.item);
        waiting = undefined;
        // Observed later by the consumer; this stops an early failure from being "unhandled".
        result.catch(() => {});
        queue.push({ result, weight });
        held += weight;
      }
      const head = queue.shift();
      if (head === undefined) return;
      yield await head.result;
      held -= head.weight; // the consumer is done with it: it asked for the next one
    }
  } finally {
    if (!exhausted) await source.return?.();
  }
}
