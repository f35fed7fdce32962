/**
 * The files at the root of an export that describe it, so a third party can check it without mailark:
 *
 * - manifest.jsonl: one JSON object per message (ManifestLine), in export order;
 * - folders.jsonl: one JSON object per folder (FolderLine), every folder of every mailbox, \Noselect
 *   parents and empty folders included;
 * - export.json: what is exported, from where, when, with which options (ExportInfo); the first file
 *   of the export, so a reader of a tar stream knows it before anything else;
 * - SHA256SUMS: the SHA-256 of every other file, in the format of GNU `sha256sum` (so
 *   `sha256sum -c SHA256SUMS` checks an unpacked export; names holding "\" or a line break are escaped
 *   as sha256sum does: the line starts with "\", and "\\", "\n", "\r" stand for those characters);
 * - README.txt: what is inside and how to import it, in English and French (readme.ts).
 */
import type { ExportFormat } from './export-paths.js';

export interface ManifestLine {
  user: string;
  /** Unicode folder path with the server's delimiter. */
  folder: string;
  /** The folder's name as the server sent it (modified UTF-7). */
  folderRaw: string;
  delimiter: string;
  uid: number;
  uidValidity?: string;
  /** System flags, sorted. */
  flags: string[];
  /** Keywords, sorted. */
  keywords: string[];
  /** The internal date, ISO 8601 with its zone (UTC, "Z"). */
  internalDate: string;
  size: number;
  sha256: string;
  /** Where the message is in each format written. */
  paths: Partial<Record<ExportFormat, string>>;
  /** Byte offset of the message's "From " line in its mbox file. */
  mboxOffset?: number;
}

export interface FolderLine {
  user: string;
  folder: string;
  folderRaw: string;
  delimiter: string;
  /** LIST attributes as the server sent them. */
  flags: string[];
  specialUse?: string;
  subscribed: boolean;
  selectable: boolean;
  uidValidity?: string;
  uidNext?: number;
  messages: number;
  bytes: number;
  /** The folder's directory (Maildir, eml) or file (mbox) in each format written. */
  paths: Partial<Record<ExportFormat, string>>;
  /** Keywords that have no Maildir letter (beyond 26 in this folder): in manifest.jsonl only. */
  keywordsWithoutLetter?: string[];
}

export type ExportOrigin =
  | { kind: 'snapshot'; snapshotId: string; time: string; repository?: string }
  | { kind: 'imap'; server: string; time: string };

export interface ExportCounts {
  users: number;
  folders: number;
  messages: number;
  /** Sum of message sizes. */
  bytes: number;
}

export interface ExportInfo {
  format: 'mailark-export';
  version: 1;
  tenant: string;
  users: string[];
  origin: ExportOrigin;
  /** When the export was made (ISO 8601 UTC). */
  created: string;
  formats: ExportFormat[];
  options: { mboxStatusHeaders: boolean };
  toolVersion?: string;
}

/** One line of SHA256SUMS, escaped as GNU sha256sum does. */
export function sha256SumsLine(sha256: string, path: string): string {
  if (!/[\\\n\r]/.test(path)) return `${sha256}  ${path}\n`;
  const escaped = path.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/\r/g, '\\r');
  return `\\${sha256}  ${escaped}\n`;
}

/** Parses one line of SHA256SUMS (without its newline); undefined when it is not one. */
export function parseSha256SumsLine(line: string): { sha256: string; path: string } | undefined {
  const escaped = line.startsWith('\\');
  const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(escaped ? line.slice(1) : line);
  if (m === null) return undefined;
  const raw = m[2] as string;
  if (!escaped) return { sha256: m[1] as string, path: raw };
  const path = raw.replace(/\\(\\|n|r)/g, (_, c: string) => (c === 'n' ? '\n' : c === 'r' ? '\r' : '\\'));
  return { sha256: m[1] as string, path };
}
