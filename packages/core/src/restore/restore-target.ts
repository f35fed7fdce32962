/**
 * What restore needs from one mailbox's IMAP session: the narrow surface restore-messages.ts codes
 * against. The IMAP adapter provides it for a real server; unit tests provide a fake. No imapflow
 * detail leaks into the restore logic.
 *
 * Contract of every implementation:
 * - one connection, one caller at a time (restore never issues two calls at once);
 * - errors are MailarkErrors (IMAP_CONNECT when the connection is gone or cannot be made, IMAP_AUTH,
 *   IMAP_USER_MISMATCH, IMAP_PROTOCOL for a NO/BAD answer);
 * - folder paths are Unicode with the server's delimiter (the adapter encodes modified UTF-7,
 *   RFC 3501 §5.1.3).
 */

/** A folder as LIST returns it (only what restore looks at). */
export interface TargetFolder {
  path: string;
  delimiter: string;
}

export interface AppendResult {
  /** UIDPLUS (RFC 4315): the APPENDUID response code, when the server sends one. */
  uid?: number;
  uidValidity?: string;
  /** Flags and keywords the server said it would not store (PERMANENTFLAGS without them or \*). */
  refusedFlags: string[];
}

/** A message on the server, fingerprinted: the SHA-256 of the exact bytes of BODY.PEEK[]. */
export interface TargetCopy {
  uid: number;
  size: number;
  sha256: string;
  /** System flags and keywords as FETCH FLAGS returns them (when fetched). */
  flags?: string[];
}

export interface RestoreTarget {
  /** Every folder (LIST). */
  listFolders(): Promise<TargetFolder[]>;
  /** CREATE (RFC 3501 §6.3.3); a folder that already exists is not an error. */
  createFolder(path: string): Promise<void>;
  /**
   * SELECT the folder (so its PERMANENTFLAGS tell which keywords are allowed), then APPEND
   * (RFC 3501 §6.3.11) the exact bytes with these flags and keywords and this INTERNALDATE.
   * Never repeated on failure: a second APPEND could duplicate the message.
   */
  append(path: string, body: Uint8Array, flags: readonly string[], internalDate: Date): Promise<AppendResult>;
  /** The messages whose Message-ID is exactly this (without angle brackets). */
  copiesByMessageId(path: string, messageId: string): Promise<TargetCopy[]>;
  /** The messages of exactly one of these sizes. */
  copiesBySize(path: string, sizes: readonly number[]): Promise<TargetCopy[]>;
  /** The given messages, with their flags (UIDs that do not exist are left out). */
  copies(path: string, uids: readonly number[]): Promise<TargetCopy[]>;
  close(): Promise<void>;
}

/** Opens a session as `user` (through the admin login when configured). */
export type RestoreConnector = (user: string) => Promise<RestoreTarget>;
