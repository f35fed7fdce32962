/**
 * What an export reads from: a snapshot in a repository (snapshot-export-source.ts) or a live IMAP
 * server (imap-export-source.ts). The writers see only this interface, so both produce the same layout.
 *
 * Contract:
 * - stable order: users sorted, each user's folders sorted by path, each folder's messages in
 *   ascending UID order; two exports of the same snapshot write the same entries in the same order;
 * - bounded memory: messages() yields bodies one at a time (a source may read a few ahead within a
 *   byte budget to hide latency), never a whole folder;
 * - exact bytes: `bytes` is what BODY.PEEK[] returned (snapshot: checked against its SHA-256 on read),
 *   and entry.size/sha256 describe exactly those bytes.
 */
import type { FolderInfo } from '../imap/mailbox-session.js';
import type { FolderNode } from '../mail/snapshot.js';
import type { ExportOrigin } from './manifest.js';

/** A folder as LIST described it: the FolderNode fields an export needs (see mail/snapshot.ts). */
export type ExportFolder = Pick<
  FolderNode,
  | 'path'
  | 'rawPath'
  | 'delimiter'
  | 'flags'
  | 'specialUse'
  | 'subscribed'
  | 'selectable'
  | 'uidValidity'
  | 'uidNext'
> & {
  /** Counts when known before reading (snapshot), for progress. */
  messages?: number;
  bytes?: number;
};

/** The listing part of an ExportFolder (name, hierarchy, attributes), from a LIST reply or a FolderNode. */
export function folderListing(f: FolderInfo): FolderInfo {
  return {
    path: f.path,
    rawPath: f.rawPath,
    delimiter: f.delimiter,
    flags: f.flags,
    ...(f.specialUse === undefined ? {} : { specialUse: f.specialUse }),
    subscribed: f.subscribed,
    selectable: f.selectable,
  };
}

/** The order of folders in an export: by Unicode path, code unit order. */
export function byPath(a: { path: string }, b: { path: string }): number {
  return a.path < b.path ? -1 : a.path > b.path ? 1 : 0;
}

export interface ExportEntry {
  uid: number;
  size: number;
  sha256: string;
  /** ISO 8601 UTC. */
  internalDate: string;
  /** System flags, sorted. */
  flags: string[];
  /** Keywords, sorted. */
  keywords: string[];
}

export interface ExportMessage {
  entry: ExportEntry;
  bytes: Uint8Array;
}

export interface ExportMailbox {
  readonly user: string;
  /** Every folder, sorted by path, \Noselect parents included. */
  folders(): Promise<ExportFolder[]>;
  /** The keywords set on any message of the folder, sorted (Maildir letters are assigned before writing). */
  keywords(folder: ExportFolder): Promise<string[]>;
  /** The folder's messages, ascending UID, with their exact bytes. */
  messages(folder: ExportFolder, signal?: AbortSignal): AsyncIterable<ExportMessage>;
  close(): Promise<void>;
}

export interface ExportSource {
  readonly tenant: string;
  readonly origin: ExportOrigin;
  /** The mailboxes, sorted. */
  users(): Promise<string[]>;
  /** Message count and bytes of these users when known up front (progress, ETA, S3 part size). */
  totals(users: readonly string[]): Promise<{ messages: number; bytes: number } | undefined>;
  /** Warnings about a user's data to show before exporting it (e.g. a stale mailbox in a partial snapshot). */
  notes?(user: string): Promise<string[]>;
  openMailbox(user: string): Promise<ExportMailbox>;
  close(): Promise<void>;
}
