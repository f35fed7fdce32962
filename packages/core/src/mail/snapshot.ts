/**
 * The snapshot data model: what one backup run of one tenant records.
 *
 *   snapshots/<id>  Snapshot (encrypted JSON object, the root; listed to find snapshots)
 *     tree ──────►  TenantTree     (tree blob)  one MailboxRef per user, sorted by user
 *                     └► MailboxTree (tree blob)  one FolderNode per folder, sorted by path
 *                          └► MessagePage[] (tree blobs) message entries in ascending UID order
 *                               └► content: BlobId[]  data blobs; their concatenation is the exact message
 *
 * Tree blobs are canonical JSON (see canonicalJson): the same content always yields the same bytes and
 * so the same keyed blob id. Unchanged mailboxes, folders and pages therefore share their blobs with the
 * previous snapshot for free, and a quiet tenant's daily snapshot costs a few small objects.
 *
 * Pages are cut content-defined (pageBoundary): a page ends after an entry whose UID hashes to a
 * boundary, so an expunge or a flag change rewrites only the page that holds that message, never
 * every page after it.
 */

/** A keyed hash (HMAC-SHA-256, hex, 64 chars) of a blob's plaintext. Reveals nothing without the key. */
export type BlobId = string;

export const SNAPSHOT_VERSION = 1;

export interface SnapshotStats {
  mailboxes: number;
  folders: number;
  messages: number;
  /** Sum of message sizes (exact bytes) in this snapshot. */
  bytes: number;
  durationMs: number;
  /** Messages whose bodies were fetched in this run (new, or re-hashed after a UIDVALIDITY change). */
  fetchedMessages: number;
  fetchedBytes: number;
  /** Messages new in this snapshot relative to its parent. */
  newMessages: number;
  /** Bytes added to the repository (after dedup and compression, before encryption overhead). */
  storedBytes: number;
}

export interface MailboxFailure {
  user: string;
  /** MailarkError code, e.g. IMAP_AUTH. */
  code: string;
  message: string;
}

/** The root of one backup run: stored encrypted as snapshots/<id>. */
export interface Snapshot {
  v: typeof SNAPSHOT_VERSION;
  /** ISO 8601 UTC time the run started. */
  time: string;
  /** ISO 8601 UTC time the run ended. */
  endTime: string;
  host: string;
  toolVersion: string;
  tenant: string;
  tags: string[];
  /** The snapshot this run was incremental from, if any. */
  parent?: string;
  tree: BlobId;
  /**
   * complete: every requested mailbox was captured in this run.
   * partial: some mailboxes failed; they are listed in failures, and their MailboxRef carries the last
   * good state (state 'stale') so that a partial snapshot never loses a mailbox that an earlier one had.
   */
  status: 'complete' | 'partial';
  failures: MailboxFailure[];
  stats: SnapshotStats;
}

export interface TenantTree {
  v: typeof SNAPSHOT_VERSION;
  mailboxes: MailboxRef[];
}

export interface MailboxRef {
  /** The login name of the mailbox, e.g. alice@example.com. */
  user: string;
  tree: BlobId;
  folders: number;
  messages: number;
  bytes: number;
  /** ok: captured in this run. stale: this run failed for the mailbox; tree is from staleFrom. */
  state: 'ok' | 'stale';
  /** Time of the snapshot whose capture this stale ref carries. */
  staleFrom?: string;
}

export interface MailboxTree {
  v: typeof SNAPSHOT_VERSION;
  user: string;
  folders: FolderNode[];
}

export interface FolderNode {
  /** Unicode path with the server's delimiter, e.g. "Projets/Été 2024". INBOX is always "INBOX". */
  path: string;
  /** The name as the server sends it (modified UTF-7, RFC 3501 §5.1.3), e.g. "Projets/&AMk-t&AOk- 2024". */
  rawPath: string;
  /** Hierarchy delimiter, e.g. "/" or "."; "" for a flat namespace. */
  delimiter: string;
  /** LIST attributes as the server sent them, sorted (\HasChildren, \Noselect, ...). */
  flags: string[];
  /** RFC 6154 special use (\Sent, \Trash, \Drafts, \Junk, \Archive, \All, \Flagged), if any. */
  specialUse?: string;
  subscribed: boolean;
  /** false for \Noselect / \NonExistent parents: kept so the tree restores, never holds messages. */
  selectable: boolean;
  /** Decimal strings: UIDVALIDITY and MODSEQ are 32/63-bit and must survive JSON exactly. */
  uidValidity?: string;
  uidNext?: number;
  highestModseq?: string;
  messages: number;
  bytes: number;
  pages: BlobId[];
}

export interface MessagePage {
  v: typeof SNAPSHOT_VERSION;
  entries: MessageEntry[];
}

export interface HeaderSummary {
  /** Message-ID without angle brackets. */
  messageId?: string;
  /** Decoded (RFC 2047) header text, as a person would read it. */
  from?: string;
  to?: string;
  cc?: string;
  subject?: string;
  /** The Date header as ISO 8601, when it parses. */
  date?: string;
  /** Decoded filenames of attachments. */
  attachments?: string[];
}

export interface MessageEntry {
  uid: number;
  /** Exact byte length of BODY[] as the server returned it. */
  size: number;
  /** SHA-256 (hex) of the exact bytes. */
  sha256: string;
  /** INTERNALDATE, ISO 8601 (UTC). */
  internalDate: string;
  /** System flags (\Answered \Deleted \Draft \Flagged \Seen), sorted. \Recent is never stored. */
  flags: string[];
  /** Keywords (user flags such as $Forwarded, Important), sorted. */
  keywords: string[];
  /** MODSEQ (RFC 7162) as a decimal string, when the server has CONDSTORE. */
  modseq?: string;
  /** Data blob ids: header block first, then content-defined chunks. Concatenated: the exact bytes. */
  content: BlobId[];
  h: HeaderSummary;
}

/** The flags IMAP defines (RFC 3501 §2.3.2); anything else is a keyword. */
export const SYSTEM_FLAGS = ['\\Answered', '\\Deleted', '\\Draft', '\\Flagged', '\\Seen'] as const;

/** Splits a server's flag list into sorted system flags and sorted keywords; drops \Recent. */
export function splitFlags(all: Iterable<string>): { flags: string[]; keywords: string[] } {
  const flags = new Set<string>();
  const keywords = new Set<string>();
  for (const f of all) {
    const system = SYSTEM_FLAGS.find((s) => s.toLowerCase() === f.toLowerCase());
    if (system !== undefined) flags.add(system);
    else if (f.toLowerCase() !== '\\recent') keywords.add(f);
  }
  return { flags: [...flags].sort(), keywords: [...keywords].sort() };
}

/**
 * Canonical JSON: object keys sorted, no whitespace, undefined members dropped. The same value always
 * gives the same bytes, which is what makes content-addressed tree blobs deduplicate.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[k];
      if (v !== undefined) out[k] = sortKeys(v);
    }
    return out;
  }
  return value;
}

/** Pages end after ~1 in 256 UIDs (by hash), and hold at most 4096 entries. */
const PAGE_MAX = 4096;
const PAGE_MASK = 0xff;

/** True when a page should end after the message with this UID (content-defined, stable across runs). */
export function pageBoundary(uid: number): boolean {
  // Murmur3's 32-bit finaliser: cheap, and spreads consecutive UIDs well.
  let h = uid >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h & PAGE_MASK) === 0;
}

/** Cuts entries (ascending UID) into pages at content-defined boundaries. */
export function paginate(entries: readonly MessageEntry[]): MessageEntry[][] {
  const pages: MessageEntry[][] = [];
  let page: MessageEntry[] = [];
  for (const e of entries) {
    page.push(e);
    if (pageBoundary(e.uid) || page.length >= PAGE_MAX) {
      pages.push(page);
      page = [];
    }
  }
  if (page.length > 0) pages.push(page);
  return pages;
}
