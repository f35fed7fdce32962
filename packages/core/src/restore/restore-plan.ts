/**
 * Pure restore decisions: where each message goes, which folders must be created first, whether a
 * copy already on the server is "the same message", and whether the server's copy after APPEND is
 * the one we sent. No I/O here; restore-messages.ts does the IMAP side.
 *
 * Rules it keeps:
 * - A message goes back to its user and its original folder path, unless toUser/toFolder say
 *   otherwise. toFolder is written with "/" between levels; paths are re-joined with the target
 *   server's delimiter, so a tree backed up from a "/" server restores onto a "." server.
 * - Missing folders are created parent first (a server may refuse "a/b" without "a").
 * - Same message = same SHA-256 of the bytes, compared both as stored and in the CRLF-normalised
 *   form (servers such as Dovecot serve bare LF back as CRLF, so an earlier restore of such a
 *   message must still count as present). With a Message-ID the candidates are the messages with
 *   that Message-ID; without one, the messages of exactly the same size (or the normalised size).
 */

import { createHash } from 'node:crypto';
import type { FolderNode, MessageEntry } from '../mail/snapshot.js';

/** One message to put back, as find or a reference resolved it. */
export interface RestoreSource {
  ref: string;
  user: string;
  folder: Pick<FolderNode, 'path' | 'delimiter'>;
  entry: MessageEntry;
}

export interface PlannedItem<T extends RestoreSource = RestoreSource> {
  source: T;
  /** Target user (login name). */
  user: string;
  /** Target folder as levels (Unicode), joined with the server's delimiter when known. */
  levels: string[];
}

/** The levels of a folder path: "Clients/Été" with delimiter "/" -> ["Clients", "Été"]. */
export function folderLevels(path: string, delimiter: string): string[] {
  if (delimiter === '') return [path];
  return path.split(delimiter).filter((l) => l !== '');
}

/** Where each item goes, grouped by target user (one IMAP session each), in a stable order. */
export function planRestore<T extends RestoreSource>(
  items: readonly T[],
  opts: { toUser?: string; toFolder?: string } = {},
): Map<string, PlannedItem<T>[]> {
  const byUser = new Map<string, PlannedItem<T>[]>();
  const toLevels = opts.toFolder === undefined ? undefined : folderLevels(opts.toFolder, '/');
  for (const source of items) {
    const user = opts.toUser ?? source.user;
    const levels = toLevels ?? folderLevels(source.folder.path, source.folder.delimiter);
    const list = byUser.get(user) ?? [];
    list.push({ source, user, levels });
    byUser.set(user, list);
  }
  return byUser;
}

/** A folder path on a server with this delimiter. INBOX keeps its canonical spelling (RFC 3501 §5.1). */
export function joinLevels(levels: readonly string[], delimiter: string): string {
  const out = [...levels];
  if (out[0] !== undefined && out[0].toUpperCase() === 'INBOX') out[0] = 'INBOX';
  return out.join(delimiter === '' ? '/' : delimiter);
}

/**
 * The folders to create, parents first, so that `levels` exists on a server that has `existing`
 * (paths in the server's delimiter). INBOX always exists.
 */
export function foldersToCreate(
  levels: readonly string[],
  delimiter: string,
  existing: Iterable<string>,
): string[] {
  const have = new Set([...existing].map((p) => (p.toUpperCase() === 'INBOX' ? 'INBOX' : p)));
  have.add('INBOX');
  const out: string[] = [];
  for (let i = 1; i <= levels.length; i++) {
    const path = joinLevels(levels.slice(0, i), delimiter);
    if (!have.has(path)) {
      out.push(path);
      have.add(path);
    }
  }
  return out;
}

/** Bare LF -> CRLF, as servers that store CRLF do to an APPENDed message. */
export function normalizeLineEnds(bytes: Uint8Array): Uint8Array {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let bare = 0;
  for (let i = 0; i < b.length; i++) if (b[i] === 0x0a && (i === 0 || b[i - 1] !== 0x0d)) bare++;
  if (bare === 0) return bytes;
  const out = Buffer.allocUnsafe(b.length + bare);
  let o = 0;
  for (let i = 0; i < b.length; i++) {
    if (b[i] === 0x0a && (i === 0 || b[i - 1] !== 0x0d)) out[o++] = 0x0d;
    out[o++] = b[i] as number;
  }
  return out;
}

export function digestHex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The identities of a message on a server: its exact SHA-256 and its CRLF-normalised one. */
export interface MessageFingerprint {
  sha256: string;
  size: number;
  /** Set only when normalisation changes the bytes. */
  normalizedSha256?: string;
  normalizedSize?: number;
}

export function fingerprint(bytes: Uint8Array): MessageFingerprint {
  const fp: MessageFingerprint = { sha256: digestHex(bytes), size: bytes.byteLength };
  const norm = normalizeLineEnds(bytes);
  if (norm !== bytes) {
    fp.normalizedSha256 = digestHex(norm);
    fp.normalizedSize = norm.byteLength;
  }
  return fp;
}

/** The sizes a server copy of this message can have (candidates for the no-Message-ID check). */
export function candidateSizes(fp: MessageFingerprint): number[] {
  return fp.normalizedSize === undefined ? [fp.size] : [fp.size, fp.normalizedSize];
}

export type CopyVerdict = 'identical' | 'normalized' | 'different';

/** How a server copy (its SHA-256) relates to the message we hold. */
export function compareCopy(fp: MessageFingerprint, serverSha256: string): CopyVerdict {
  if (serverSha256 === fp.sha256) return 'identical';
  if (fp.normalizedSha256 !== undefined && serverSha256 === fp.normalizedSha256) return 'normalized';
  return 'different';
}

/** The first candidate on the server that is the same message, if any. */
export function findPresent<C extends { sha256: string }>(
  fp: MessageFingerprint,
  candidates: readonly C[],
): C | undefined {
  return candidates.find((c) => compareCopy(fp, c.sha256) !== 'different');
}
