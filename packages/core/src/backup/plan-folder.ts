/**
 * Pure planning of one folder's incremental backup: previous state + what the server says now → what to
 * fetch, what to carry, which flags changed, what was expunged. No I/O here; run-backup does the
 * talking and follows these plans, so every decision is unit-tested in isolation.
 *
 * Folder state is keyed on (path, UIDVALIDITY) (RFC 3501 §2.3.1.1: a UID names one message for as long
 * as the UIDVALIDITY stays the same). Three steps:
 *   1. planListing(prev, status): carry the folder as is (one STATUS cost), list changes since the last
 *      HIGHESTMODSEQ (RFC 7162 CONDSTORE CHANGEDSINCE, QRESYNC VANISHED), list all UID+FLAGS, or re-map.
 *   2. planFolder(prev entries, listing): keep known UIDs with their current flags, count flag changes
 *      and expunges, and name the UIDs whose content is unknown.
 *   3. matchUnknown(metas, index): unknown UIDs whose (Message-ID, size, INTERNALDATE) match an entry
 *      anywhere in the user's previous state (moved messages, renamed folders, UIDVALIDITY changes)
 *      reuse its stored content; only the rest is fetched.
 */
import { type FolderNode, type MessageEntry, splitFlags } from '../mail/snapshot.js';

/** What STATUS (RFC 3501 §6.3.10; LIST-STATUS RFC 5819) says about a selectable folder now. */
export interface FolderStatus {
  uidValidity: string;
  uidNext: number;
  messages: number;
  /** RFC 7162 HIGHESTMODSEQ; absent without CONDSTORE or for a NOMODSEQ folder. */
  highestModseq?: string;
}

export type RemapReason = 'new-folder' | 'uidvalidity-changed' | 'modseq-backwards';

/** Step 1's decision: which listing (if any) the folder needs. */
export type ListingRequest =
  /** Nothing changed: the previous FolderNode's pages are reused unread. */
  | { kind: 'carry' }
  /** UID FETCH 1:* (FLAGS) (CHANGEDSINCE changedSince [VANISHED]): only what moved since then. */
  | { kind: 'changes'; changedSince: string }
  /** UID FETCH 1:* (FLAGS): the whole UID+FLAGS list, diffed against the previous entries. */
  | { kind: 'full' }
  /** Previous UIDs mean nothing now: list everything, then match by content key before fetching. */
  | { kind: 'remap'; reason: RemapReason };

export interface ServerCapabilities {
  /** RFC 7162 CONDSTORE (CHANGEDSINCE fetch modifier). */
  condstore: boolean;
}

function modseqCmp(a: string, b: string): number {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Step 1. `prev` is the previous node at the same path, if any. */
export function planListing(
  prev: FolderNode | undefined,
  status: FolderStatus,
  caps: ServerCapabilities,
): ListingRequest {
  if (prev === undefined || !prev.selectable || prev.uidValidity === undefined) {
    return { kind: 'remap', reason: 'new-folder' };
  }
  if (prev.uidValidity !== status.uidValidity) return { kind: 'remap', reason: 'uidvalidity-changed' };
  const hasModseqs = prev.highestModseq !== undefined && status.highestModseq !== undefined;
  if (hasModseqs) {
    const cmp = modseqCmp(status.highestModseq as string, prev.highestModseq as string);
    // RFC 7162 §3.1.2.1: HIGHESTMODSEQ never decreases for a given UIDVALIDITY. If it did, the server's
    // state was restored or rebuilt and its UIDs can no longer be trusted.
    if (cmp < 0) return { kind: 'remap', reason: 'modseq-backwards' };
    // Same modseq, same UIDNEXT, same count: no flag change, no new mail, no expunge (the count catches
    // servers that do not bump HIGHESTMODSEQ on expunge without QRESYNC).
    if (cmp === 0 && prev.uidNext === status.uidNext && prev.messages === status.messages)
      return { kind: 'carry' };
    if (caps.condstore) return { kind: 'changes', changedSince: prev.highestModseq as string };
  }
  return { kind: 'full' };
}

/** One message as a UID+FLAGS listing returns it. */
export interface ListedMessage {
  uid: number;
  /** All flags as the server sent them (system flags and keywords mixed; \Recent is dropped). */
  flags: string[];
  modseq?: string;
  /** RFC822.SIZE, when the listing brought it. */
  size?: number;
}

/** What the listing returned. */
export interface FolderListing {
  /** changes: the messages changed since the modseq; full/remap: every message of the folder. */
  messages: ListedMessage[];
  /** changes only: UIDs expunged since the modseq (QRESYNC VANISHED, RFC 7162 §3.2.10). */
  vanished?: number[];
  /** changes only, without QRESYNC: every UID in the folder now (UID SEARCH ALL), to diff expunges. */
  allUids?: number[];
}

/** Step 2's result. */
export interface FolderPlan {
  mode: 'changes' | 'full' | 'remap';
  reason?: RemapReason;
  /** Entries already stored that are still in the folder, with their current flags/keywords/modseq. */
  keep: MessageEntry[];
  /** UIDs whose content this folder state does not know yet (new mail, moved in, or re-mapped). */
  unknown: ListedMessage[];
  /** Kept entries whose flags or keywords changed. */
  flagChanges: number;
  /** Previous UIDs no longer in the folder (for remap: every previous UID). */
  expunged: number[];
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** A previous entry updated with what the listing says now; `changed` if flags or keywords differ. */
function refresh(prev: MessageEntry, listed: ListedMessage): { entry: MessageEntry; changed: boolean } {
  const { flags, keywords } = splitFlags(listed.flags);
  const changed = !sameList(flags, prev.flags) || !sameList(keywords, prev.keywords);
  const entry: MessageEntry = { ...prev, flags, keywords };
  if (listed.modseq !== undefined) entry.modseq = listed.modseq;
  return { entry, changed };
}

/**
 * Step 2. `prevEntries` are the previous node's entries (ascending UID); `request` is step 1's answer
 * (never 'carry': a carried folder needs no plan).
 */
export function planFolder(
  prevEntries: readonly MessageEntry[],
  request: Exclude<ListingRequest, { kind: 'carry' }>,
  listing: FolderListing,
): FolderPlan {
  if (request.kind === 'remap') {
    return {
      mode: 'remap',
      reason: request.reason,
      keep: [],
      unknown: sortByUid(dedupe(listing.messages)),
      flagChanges: 0,
      expunged: prevEntries.map((e) => e.uid),
    };
  }
  const byUid = new Map(prevEntries.map((e) => [e.uid, e]));
  const keep: MessageEntry[] = [];
  const unknown: ListedMessage[] = [];
  let flagChanges = 0;
  const listed = dedupe(listing.messages);
  const listedUids = new Set(listed.map((m) => m.uid));
  for (const m of listed) {
    const prev = byUid.get(m.uid);
    if (prev === undefined) {
      unknown.push(m);
      continue;
    }
    const r = refresh(prev, m);
    if (r.changed) flagChanges++;
    keep.push(r.entry);
  }

  let present: (uid: number) => boolean;
  if (request.kind === 'full') {
    present = (uid) => listedUids.has(uid);
  } else if (listing.vanished !== undefined) {
    const gone = new Set(listing.vanished);
    present = (uid) => !gone.has(uid);
  } else if (listing.allUids !== undefined) {
    const all = new Set(listing.allUids);
    present = (uid) => all.has(uid);
  } else {
    throw new TypeError(
      'planFolder: a CHANGEDSINCE listing needs vanished (QRESYNC) or allUids (UID SEARCH)',
    );
  }
  const expunged: number[] = [];
  for (const e of prevEntries) {
    if (listedUids.has(e.uid)) continue;
    if (present(e.uid)) keep.push(e);
    else expunged.push(e.uid);
  }
  const plan: FolderPlan = {
    mode: request.kind,
    keep: keep.sort((a, b) => a.uid - b.uid),
    unknown: sortByUid(unknown),
    flagChanges,
    expunged,
  };
  return plan;
}

function dedupe(messages: readonly ListedMessage[]): ListedMessage[] {
  // A server may report a UID twice (an untagged FETCH for a flag change racing the listing): last wins.
  const byUid = new Map<number, ListedMessage>();
  for (const m of messages) byUid.set(m.uid, m);
  return [...byUid.values()];
}

function sortByUid<T extends { uid: number }>(xs: T[]): T[] {
  return xs.sort((a, b) => a.uid - b.uid);
}

/** What FETCH (UID RFC822.SIZE INTERNALDATE FLAGS ENVELOPE/Message-ID) says about an unknown message. */
export interface MessageMeta {
  uid: number;
  size: number;
  /** ISO 8601 UTC. */
  internalDate: string;
  /** Without angle brackets, as HeaderSummary.messageId. */
  messageId?: string;
  flags: string[];
  modseq?: string;
}

/**
 * The content key of a message: Message-ID + exact size + INTERNALDATE. Messages without a Message-ID
 * have no key (matching them by size and date alone would be a guess).
 */
export function contentKey(m: {
  messageId?: string | undefined;
  size: number;
  internalDate: string;
}): string | undefined {
  if (m.messageId === undefined || m.messageId === '') return undefined;
  return `${m.messageId}\u0000${m.size}\u0000${new Date(m.internalDate).toISOString()}`;
}

/** Previous entries of one user (every folder), by content key. */
export class ContentIndex {
  private readonly byKey = new Map<string, MessageEntry>();
  private readonly shas = new Set<string>();
  /** Sizes of the keyed entries: a message of another size cannot match (see mayMatch). */
  private readonly sizes = new Set<number>();

  add(entries: Iterable<MessageEntry>): this {
    for (const e of entries) {
      this.shas.add(e.sha256);
      const key = contentKey({ messageId: e.h.messageId, size: e.size, internalDate: e.internalDate });
      if (key !== undefined && !this.byKey.has(key)) {
        this.byKey.set(key, e);
        this.sizes.add(e.size);
      }
    }
    return this;
  }

  /**
   * False when a message of this size cannot match any entry (the content key holds the exact size),
   * so its Message-ID need not be fetched; true when it may, or when the size is not known.
   */
  mayMatch(size: number | undefined): boolean {
    return size === undefined || this.sizes.has(size);
  }

  get size(): number {
    return this.byKey.size;
  }

  /** True when a message with exactly these bytes is among the entries (a download was a re-download). */
  hasContent(sha256: string): boolean {
    return this.shas.has(sha256);
  }

  lookup(meta: MessageMeta): MessageEntry | undefined {
    const key = contentKey(meta);
    return key === undefined ? undefined : this.byKey.get(key);
  }
}

/** Step 3's result. */
export interface MatchResult {
  /** Entries rebuilt from stored content under their new UIDs, with current flags and dates. */
  matched: MessageEntry[];
  /** Metas of messages that must be fetched. */
  fetch: MessageMeta[];
}

/** Step 3: reuse stored content for unknown messages that match by content key. */
export function matchUnknown(metas: readonly MessageMeta[], index: ContentIndex): MatchResult {
  const matched: MessageEntry[] = [];
  const fetch: MessageMeta[] = [];
  for (const meta of metas) {
    const prev = index.lookup(meta);
    if (prev === undefined) {
      fetch.push(meta);
      continue;
    }
    const { flags, keywords } = splitFlags(meta.flags);
    const entry: MessageEntry = {
      ...prev,
      uid: meta.uid,
      flags,
      keywords,
      internalDate: new Date(meta.internalDate).toISOString(),
    };
    if (meta.modseq !== undefined) entry.modseq = meta.modseq;
    else delete entry.modseq;
    matched.push(entry);
  }
  return { matched, fetch };
}
