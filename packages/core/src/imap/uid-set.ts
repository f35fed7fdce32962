/**
 * IMAP sequence sets (RFC 3501 §9, `sequence-set`): "1:5,7,9:12" for UID commands. Pure.
 * The rule: a set never names a UID the caller did not ask for (ranges only over consecutive UIDs),
 * so UID FETCH of a set returns exactly the asked-for messages that still exist.
 */

/** Compresses UIDs (any order, duplicates allowed) into a sequence set; "" for none. */
export function uidSet(uids: Iterable<number>): string {
  const sorted = [...new Set(uids)].sort((a, b) => a - b);
  const parts: string[] = [];
  let i = 0;
  while (i < sorted.length) {
    const start = sorted[i]!;
    if (!Number.isInteger(start) || start < 1) throw new RangeError(`invalid UID ${start}`);
    let end = start;
    while (i + 1 < sorted.length && sorted[i + 1] === end + 1) {
      end++;
      i++;
    }
    parts.push(start === end ? String(start) : `${start}:${end}`);
    i++;
  }
  return parts.join(',');
}

/** Splits UIDs into sets of at most `max` UIDs each, so a command line stays short. */
export function uidSetChunks(uids: readonly number[], max = 1000): string[] {
  const sorted = [...new Set(uids)].sort((a, b) => a - b);
  const out: string[] = [];
  for (let i = 0; i < sorted.length; i += max) out.push(uidSet(sorted.slice(i, i + max)));
  return out;
}
