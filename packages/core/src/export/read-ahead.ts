/**
 * Ordered read-ahead: maps an async sequence through an async loader with several loads in flight, and
 * yields the results in input order. Enough in flight to hide a store's latency (one ranged GET per
 * blob on S3), bounded both in count and in bytes so memory stays flat whatever the folder holds.
 */

export interface ReadAheadLimits {
  /** Loads in flight at most (default 8). */
  items?: number;
  /** Sum of weights in flight at most (default 16 MiB); one item alone may exceed it. */
  weight?: number;
}

export async function* readAhead<T, R>(
  items: AsyncIterable<T> | Iterable<T>,
  load: (item: T) => Promise<R>,
  weightOf: (item: T) => number,
  limits: ReadAheadLimits = {},
): AsyncGenerator<R> {
  const maxItems = limits.items ?? 8;
  const maxWeight = limits.weight ?? 16 * 1024 * 1024;
  const queue: Array<{ result: Promise<R>; weight: number }> = [];
  let inFlight = 0;
  const source =
    Symbol.asyncIterator in items
      ? (items as AsyncIterable<T>)[Symbol.asyncIterator]()
      : (items as Iterable<T>)[Symbol.iterator]();
  let exhausted = false;
  try {
    while (true) {
      while (!exhausted && queue.length < maxItems && (queue.length === 0 || inFlight < maxWeight)) {
        const next = await source.next();
        if (next.done === true) {
          exhausted = true;
          break;
        }
        const weight = weightOf(next.value);
        const result = load(next.value);
        // Observed later by the consumer; this stops an early failure from being "unhandled".
        result.catch(() => {});
        queue.push({ result, weight });
        inFlight += weight;
      }
      const head = queue.shift();
      if (head === undefined) return;
      inFlight -= head.weight;
      yield await head.result;
    }
  } finally {
    if (!exhausted) await source.return?.();
  }
}
