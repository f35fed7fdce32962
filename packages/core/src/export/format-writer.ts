/**
 * One output format of an export (maildir-writer.ts, mbox-writer.ts, eml-writer.ts). export-tenant.ts
 * drives every selected writer through the same sequence, mailbox by mailbox and folder by folder:
 *
 *   beginMailbox → (beginFolder → addMessage* → endFolder)* → endMailbox,   dispose at the end
 *
 * A writer adds its entries through the ExportArchive, awaiting each (backpressure), and holds at most
 * one message and its own small per-folder state in memory; what grows with a folder (an mbox file, a
 * uidlist) goes to a spool file.
 */
import type { ExportArchive } from './export-archive.js';
import type { ExportFormat } from './export-paths.js';
import type { ExportFolder, ExportMessage } from './export-source.js';

export interface FolderStart {
  folder: ExportFolder;
  /** Keywords used in the folder, sorted. */
  keywords: readonly string[];
}

export interface FolderOpened {
  /** The folder's directory or file in this format; absent when the format has nothing for it. */
  path?: string;
  /** Facts for folders.jsonl (e.g. keywords that got no Maildir letter). */
  keywordsWithoutLetter?: string[];
}

export interface MessageWritten {
  path: string;
  /** Offset of the message in its file (mbox). */
  offset?: number;
}

export interface FormatWriter {
  readonly format: ExportFormat;
  beginMailbox(user: string, folders: readonly ExportFolder[]): Promise<void>;
  beginFolder(start: FolderStart): Promise<FolderOpened>;
  addMessage(message: ExportMessage): Promise<MessageWritten>;
  endFolder(): Promise<void>;
  endMailbox(): Promise<void>;
  /** Removes temporary files; never throws. */
  dispose(): Promise<void>;
}

export interface WriterContext {
  archive: ExportArchive;
  tenant: string;
  /** mtime for entries that are not messages (directories, control files). */
  now: Date;
}
