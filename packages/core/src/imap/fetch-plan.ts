/**
 * How to download message bodies in bounded memory. Pure: sizes in, plan out.
 *
 * Small messages go in batches (one UID FETCH per batch, at most `batchBytes` and `batchCount`),
 * so a folder of 50,000 small mails costs a few hundred round trips, not 50,000. A message above
 * `largeBytes` is fetched alone and in pieces of `chunkBytes` (BODY.PEEK[]<offset.length>, RFC 3501
 * §6.4.5 partial fetch), so no single IMAP literal, and no parser copy of it, exceeds one piece.
 */

export interface FetchPlanOptions {
  /** Messages above this are fetched alone, in pieces (default 4 MiB). */
  largeBytes?: number;
  /** Piece size for large messages (default 4 MiB). */
  chunkBytes?: number;
  /** Upper bound of one batch's total size (default 4 MiB: the session holds two, one fetched ahead). */
  batchBytes?: number;
  /** Upper bound of one batch's message count (default 200). */
  batchCount?: number;
}

export type FetchStep =
  | { kind: 'batch'; uids: number[] }
  | { kind: 'large'; uid: number; size: number; ranges: Array<{ start: number; length: number }> };

export const DEFAULT_FETCH_PLAN: Required<FetchPlanOptions> = {
  largeBytes: 4 * 1024 * 1024,
  chunkBytes: 4 * 1024 * 1024,
  batchBytes: 4 * 1024 * 1024,
  batchCount: 200,
};

/** Steps in ascending UID order; every input UID appears in exactly one step. */
export function planFetch(
  messages: ReadonlyArray<{ uid: number; size: number }>,
  opts: FetchPlanOptions = {},
): FetchStep[] {
  const o = { ...DEFAULT_FETCH_PLAN, ...opts };
  const sorted = [...messages].sort((a, b) => a.uid - b.uid);
  const steps: FetchStep[] = [];
  let batch: number[] = [];
  let batchSize = 0;
  const flush = () => {
    if (batch.length > 0) steps.push({ kind: 'batch', uids: batch });
    batch = [];
    batchSize = 0;
  };
  for (const m of sorted) {
    if (m.size > o.largeBytes) {
      flush();
      steps.push({ kind: 'large', uid: m.uid, size: m.size, ranges: chunkRanges(m.size, o.chunkBytes) });
      continue;
    }
    if (batch.length > 0 && (batchSize + m.size > o.batchBytes || batch.length >= o.batchCount)) flush();
    batch.push(m.uid);
    batchSize += m.size;
  }
  flush();
  return steps;
}

/** [start, length) pieces covering 0..size. */
export function chunkRanges(size: number, chunk: number): Array<{ start: number; length: number }> {
  if (chunk < 1) throw new RangeError('chunk must be positive');
  const out: Array<{ start: number; length: number }> = [];
  for (let start = 0; start < size; start += chunk)
    out.push({ start, length: Math.min(chunk, size - start) });
  return out;
}
