/**
 * What a backup needs from one mailbox's IMAP session: the narrow, typed surface run-backup codes
 * against. The IMAP adapter (imap/imap-session.ts) provides it through sessionSource(); unit tests
 * provide a fake. Keeping the backup on this interface means no imapflow detail leaks into planning.
 *
 * Contract of every implementation:
 * - one connection, used by one caller at a time (backupMailbox never issues two calls at once);
 * - errors are MailarkErrors (IMAP_CONNECT, IMAP_AUTH, IMAP_USER_MISMATCH, IMAP_PROTOCOL);
 * - bodies are the exact bytes of BODY.PEEK[] (RFC 3501 §6.4.5: PEEK never sets \Seen).
 */
import type { FolderListing, FolderStatus, MessageMeta } from './plan-folder.js';

/** A folder as LIST (RFC 3501 §6.3.8, RFC 6154 special-use) returns it. */
export interface SourceFolder {
  /** Unicode path (modified UTF-7 decoded). */
  path: string;
  /** The name as the server sends it. */
  rawPath: string;
  delimiter: string;
  /** LIST attributes, as sent. */
  flags: string[];
  specialUse?: string;
  subscribed: boolean;
  selectable: boolean;
}

/** One fetched message: metadata and the exact bytes, whole or in pieces (large messages). */
export interface SourceMessage {
  uid: number;
  flags: string[];
  /** ISO 8601 UTC. */
  internalDate: string;
  /** RFC822.SIZE as the server announced it. */
  size: number;
  modseq?: string;
  body: Uint8Array | AsyncIterable<Uint8Array>;
}

export interface BackupSource {
  /** RFC 7162 CONDSTORE and QRESYNC as the server advertises them. */
  readonly condstore: boolean;
  readonly qresync: boolean;
  listFolders(): Promise<SourceFolder[]>;
  /** STATUS of every given selectable folder (LIST-STATUS, RFC 5819, where offered). */
  statusAll(paths: readonly string[]): Promise<Map<string, FolderStatus>>;
  /**
   * Every message's UID+FLAGS(+MODSEQ), or with changedSince only those changed since that modseq plus
   * the expunged UIDs (vanished, QRESYNC) or every current UID (allUids) to diff against.
   */
  listMessages(path: string, opts?: { changedSince?: string }): Promise<FolderListing>;
  /** Size, INTERNALDATE, Message-ID, flags of the given UIDs (UIDs expunged meanwhile are left out). */
  fetchMeta(path: string, uids: readonly number[]): Promise<MessageMeta[]>;
  /**
   * Bodies of the given UIDs, one at a time, in bounded memory. Expunged UIDs are left out. `sizes`:
   * RFC822.SIZE of UIDs as listMessages or fetchMeta reported them, which the source need not ask again.
   */
  fetchMessages(
    path: string,
    uids: readonly number[],
    sizes?: ReadonlyMap<number, number>,
  ): AsyncIterable<SourceMessage>;
  close(): Promise<void>;
}
