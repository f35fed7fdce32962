/**
 * A test on a message page's raw bytes (canonical JSON) before it is parsed, for a query by
 * Message-ID: find by Message-ID parsed every page of a snapshot, and all but one or two cannot hold
 * the id (2 GB benchmark repository: 256 pages, 18 MB of JSON, ~40% of find's time in JSON.parse).
 *
 * The rule it keeps: never a false negative. matchesEntry compares NFC-normalised, lower-cased ids;
 * for an id of printable ASCII without a quote or backslash (what Message-IDs are), a stored id that
 * folds to it is written in the page as `"<id>"` up to ASCII case, or holds one of the only three
 * characters that fold to ASCII (checked over all of Unicode: KELVIN SIGN, GREEK QUESTION MARK, GREEK
 * VARIA). Any other query gets no prefilter (every page is parsed, as before).
 */
import type { MessageQuery } from './message-query.js';

/** The UTF-8 bytes of the non-ASCII characters whose NFC lower case is ASCII (U+212A, U+037E, U+1FEF). */
const FOLDS_TO_ASCII = ['\u212a', '\u037e', '\u1fef'].map((c) => Buffer.from(c, 'utf8'));

/** A predicate "this page may hold a match" for the query, or undefined when every page must be parsed. */
export function pagePrefilter(q: MessageQuery): ((page: Uint8Array) => boolean) | undefined {
  if (q.messageId === undefined) return undefined;
  const folded = q.messageId.normalize('NFC').toLowerCase();
  if (!/^[\x20-\x7e]+$/.test(folded) || /["\\]/.test(folded)) return undefined;
  // Without the u flag, /i folds ASCII letters to ASCII letters only: on a latin1 view of UTF-8
  // bytes it is exactly an ASCII-case-insensitive byte search.
  const quoted = new RegExp(`"${folded.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}"`, 'i');
  return (page) => {
    const bytes = Buffer.from(page.buffer, page.byteOffset, page.byteLength);
    return FOLDS_TO_ASCII.some((c) => bytes.includes(c)) || quoted.test(bytes.toString('latin1'));
  };
}
