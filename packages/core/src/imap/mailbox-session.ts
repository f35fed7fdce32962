/**
 * The contract of an IMAP mailbox session (implemented by imap-session.ts over imapflow): what
 * backup, restore, export-from-live and the agent may ask of one user's mailbox. Every error is a
 * MailarkError (IMAP_CONNECT, IMAP_AUTH, IMAP_USER_MISMATCH, IMAP_PROTOCOL, INTERRUPTED).
 */
import type { Reporter } from '../progress.js';
import type { FetchPlanOptions } from './fetch-plan.js';
import type { IdentityProof } from './imap-connect.js';

/** A folder as LIST returns it (RFC 3501 §6.3.8, RFC 6154 special-use, RFC 5258 \NonExistent). */
export interface FolderInfo {
  /** Unicode path with the server's delimiter, e.g. "Projets/Été 2024". */
  path: string;
  /** As on the wire (modified UTF-7, RFC 3501 §5.1.3), e.g. "Projets/&AMk-t&AOk- 2024". */
  rawPath: string;
  delimiter: string;
  /** LIST attributes, sorted. */
  flags: string[];
  /** \Sent, \Trash, \Drafts, \Junk, \Archive, \All, \Flagged — as the server reports (never guessed). */
  specialUse?: string;
  subscribed: boolean;
  /** false for \Noselect and \NonExistent parents. */
  selectable: boolean;
}

/** Decimal strings for 32/63-bit values, so they survive JSON exactly. */
export interface ImapFolderStatus {
  uidValidity: string;
  uidNext: number;
  /** RFC 7162 HIGHESTMODSEQ; absent without CONDSTORE or for a NOMODSEQ folder. */
  highestModseq?: string;
  messages: number;
}

export interface ListedMessage {
  uid: number;
  /** Flags and keywords as the server sent them, sorted, \Recent dropped. */
  flags: string[];
  modseq?: string;
  /** RFC822.SIZE (the listing asks for it: it spares a round of size fetches before the bodies). */
  size?: number;
}

export interface MessageListing {
  /** The folder's state at the SELECT this listing came from. */
  status: ImapFolderStatus;
  /** Every message, or with changedSince (and CONDSTORE) only those changed since that modseq. */
  messages: ListedMessage[];
  /** changedSince with QRESYNC: UIDs expunged since then (VANISHED (EARLIER), RFC 7162 §3.2.5.2). */
  vanished?: number[];
  /** changedSince without QRESYNC: every UID in the folder now, to diff expunges against. */
  allUids?: number[];
}

export interface FetchedMessage {
  uid: number;
  flags: string[];
  internalDate: Date;
  /** RFC822.SIZE, equal to body.length (checked). */
  size: number;
  modseq?: string;
  /** The exact bytes of BODY.PEEK[]. */
  body: Uint8Array;
}

/**
 * A message from streamMessages: small ones whole, large ones (fetch plan's largeBytes) as their
 * pieces in order, which the caller reads to the end before asking for the next message. The pieces
 * add up to RFC822.SIZE exactly, or reading them fails with IMAP_PROTOCOL.
 */
export interface StreamedMessage extends Omit<FetchedMessage, 'body'> {
  body: Uint8Array | AsyncIterable<Uint8Array>;
}

export interface MessageMetaInfo {
  uid: number;
  size: number;
  internalDate: Date;
  /** Without angle brackets. */
  messageId?: string;
  flags: string[];
  modseq?: string;
}

export interface AppendOutcome {
  /** APPENDUID (RFC 4315 UIDPLUS), when the server sends it. */
  uid?: number;
  uidValidity?: string;
  /** Flags and keywords the folder's PERMANENTFLAGS do not allow (not sent). */
  refusedFlags: string[];
}

export interface SessionCapabilities {
  condstore: boolean;
  qresync: boolean;
  listStatus: boolean;
  uidplus: boolean;
  specialUse: boolean;
  move: boolean;
}

export interface SessionStats {
  /** Body bytes downloaded. */
  bytesFetched: number;
  /** Messages fetched alone and in pieces (above the large threshold). */
  chunkedMessages: number;
  /** Times the connection was re-established after a transient failure. */
  reconnects: number;
}

export interface OpenMailboxOptions {
  reporter?: Reporter;
  signal?: AbortSignal;
  /** The user's own password, for endpoint.auth 'user'. */
  userPassword?: string;
  /** Batch and piece sizes for fetchMessages (defaults: 4 MiB large/pieces, 4 MiB batches). */
  fetchPlan?: FetchPlanOptions;
  /** Attempts per read step on transient failures (default 4), first back-off (default 500 ms). */
  retry?: { attempts?: number; baseDelayMs?: number };
}

/** One user's mailbox on one connection. Every error is a MailarkError (IMAP_*). */
export interface MailboxSession {
  readonly user: string;
  readonly capabilities: SessionCapabilities;
  /** How the identity was proven, and whether the server's ID response confirmed it too. */
  readonly identity: { verifiedBy: IdentityProof; serverConfirmed: boolean };
  readonly stats: SessionStats;
  /** ALL folders, \Noselect parents included, sorted by path. */
  listFolders(): Promise<FolderInfo[]>;
  /**
   * listFolders() and, in the same round trip where LIST-STATUS (RFC 5819) is offered, the status of
   * every selectable folder the server reported one for (empty map without LIST-STATUS).
   */
  listFoldersWithStatus(): Promise<{ folders: FolderInfo[]; statuses: Map<string, ImapFolderStatus> }>;
  /** Status of every selectable folder (or of `paths`): LIST-STATUS (RFC 5819) when offered. */
  statusAll(paths?: readonly string[]): Promise<Map<string, ImapFolderStatus>>;
  /** EXAMINE, then UID FETCH 1:* (UID FLAGS RFC822.SIZE MODSEQ) [(CHANGEDSINCE m VANISHED)]. */
  listMessages(path: string, opts?: { changedSince?: string }): Promise<MessageListing>;
  /** Bodies of the given UIDs in ascending UID order; UIDs that no longer exist are left out. */
  fetchMessages(path: string, uids: readonly number[]): AsyncIterable<FetchedMessage>;
  /**
   * As fetchMessages, but a large message comes as its pieces instead of one buffer, so memory holds
   * a piece or two, not the message (backup streams them into the repository). `sizes` may give the
   * RFC822.SIZE of some UIDs as this session listed them (a UID's size never changes under one
   * UIDVALIDITY, RFC 3501 §2.3.1.1): only the others are asked before planning the batches. Each body
   * is still checked against the RFC822.SIZE fetched with it.
   */
  streamMessages(
    path: string,
    uids: readonly number[],
    sizes?: ReadonlyMap<number, number>,
  ): AsyncIterable<StreamedMessage>;
  /** RFC822.SIZE INTERNALDATE FLAGS MODSEQ and the Message-ID, without bodies. */
  fetchMeta(path: string, uids: readonly number[]): Promise<MessageMetaInfo[]>;
  /** Messages whose Message-ID is exactly this (UID SEARCH HEADER, then checked), with size and SHA-256. */
  fetchByMessageId(
    path: string,
    messageId: string,
  ): Promise<Array<{ uid: number; size: number; sha256: string }>>;
  /** SELECT (PERMANENTFLAGS tell which keywords are allowed), then APPEND the exact bytes. */
  append(
    path: string,
    body: Uint8Array,
    flags: readonly string[],
    internalDate: Date,
  ): Promise<AppendOutcome>;
  /** CREATE with parents, idempotent, then SUBSCRIBE. Unicode path in; encoded on the wire. */
  createFolder(path: string): Promise<void>;
  close(): Promise<void>;
}
