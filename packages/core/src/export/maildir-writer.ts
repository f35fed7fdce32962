/**
 * Writes each mailbox as a Maildir++ tree (names and control files: maildir-layout.ts):
 *
 *   <tenant>/<user>/Maildir/{cur,new,tmp}/               INBOX
 *   <tenant>/<user>/Maildir/.<folder>/{cur,new,tmp}/     every other selectable folder, + maildirfolder
 *   .../dovecot-keywords   before the folder's messages (verify-export reads the letters first)
 *   .../cur/<name>         one file per message, the exact bytes, mtime = internal date
 *   .../dovecot-uidlist    after the messages: UIDVALIDITY, next UID and every UID → file name
 *   <tenant>/<user>/Maildir/subscriptions
 *
 * \Noselect parents get no directory: Maildir++ implies them from their children's names.
 */

import { maildirFolderPath, maildirRoot } from './export-paths.js';
import type { ExportFolder, ExportMessage } from './export-source.js';
import type {
  FolderOpened,
  FolderStart,
  FormatWriter,
  MessageWritten,
  WriterContext,
} from './format-writer.js';
import {
  dovecotKeywordsFile,
  dovecotUidlistHeader,
  dovecotUidlistLine,
  keywordLetters,
  maildirBaseName,
  maildirFileName,
  subscriptionName,
  subscriptionsFile,
} from './maildir-layout.js';
import type { SpoolFile } from './spool-file.js';

interface OpenFolder {
  folder: ExportFolder;
  dir: string;
  letters: Map<string, string>;
  uidlist?: SpoolFile;
  lastUid: number;
}

export class MaildirWriter implements FormatWriter {
  readonly format = 'maildir' as const;
  private user = '';
  private subscribed: string[] = [];
  private open: OpenFolder | undefined;

  constructor(private readonly ctx: WriterContext) {}

  async beginMailbox(user: string, folders: readonly ExportFolder[]): Promise<void> {
    this.user = user;
    this.subscribed = folders.filter((f) => f.subscribed).map((f) => subscriptionName(f.path, f.delimiter));
    // The root is INBOX's Maildir: it must exist even if the server listed no INBOX.
    const root = maildirRoot(this.ctx.tenant, user);
    for (const sub of ['cur', 'new', 'tmp'])
      await this.ctx.archive.addDirectory(`${root}/${sub}`, this.ctx.now);
  }

  async beginFolder({ folder, keywords }: FolderStart): Promise<FolderOpened> {
    if (!folder.selectable) return {};
    const { archive, now } = this.ctx;
    const dir = maildirFolderPath(this.ctx.tenant, this.user, folder);
    const isInbox = dir === maildirRoot(this.ctx.tenant, this.user);
    if (!isInbox) {
      for (const sub of ['cur', 'new', 'tmp']) await archive.addDirectory(`${dir}/${sub}`, now);
      // Maildir++ marks a folder directory with an empty "maildirfolder" file (Courier, Dovecot).
      await archive.addFile(`${dir}/maildirfolder`, '', now);
    }
    const { letters, overflow } = keywordLetters(keywords);
    if (letters.size > 0) await archive.addFile(`${dir}/dovecot-keywords`, dovecotKeywordsFile(letters), now);
    const open: OpenFolder = { folder, dir, letters, lastUid: 0 };
    // UIDs only mean something with their UIDVALIDITY (a nonzero 32-bit number).
    if (folder.uidValidity !== undefined && /^[1-9]\d{0,9}$/.test(folder.uidValidity)) {
      open.uidlist = await archive.spool('uidlist');
    }
    this.open = open;
    return overflow.length > 0 ? { path: dir, keywordsWithoutLetter: overflow } : { path: dir };
  }

  async addMessage({ entry, bytes }: ExportMessage): Promise<MessageWritten> {
    const open = this.current();
    const path = `${open.dir}/cur/${maildirFileName(entry, open.letters)}`;
    // The mtime is the internal date: Dovecot reports a Maildir file's mtime as INTERNALDATE.
    await this.ctx.archive.addFile(path, bytes, new Date(entry.internalDate), entry.sha256);
    await open.uidlist?.write(
      dovecotUidlistLine(entry.uid, maildirBaseName(entry.uid, entry.internalDate, entry.size)),
    );
    open.lastUid = Math.max(open.lastUid, entry.uid);
    return { path };
  }

  async endFolder(): Promise<void> {
    const open = this.open;
    this.open = undefined;
    if (open?.uidlist === undefined || open.folder.uidValidity === undefined) return;
    const next = Math.max(open.folder.uidNext ?? 1, open.lastUid + 1);
    await this.ctx.archive.addSpool(
      `${open.dir}/dovecot-uidlist`,
      open.uidlist,
      this.ctx.now,
      dovecotUidlistHeader(open.folder.uidValidity, next),
    );
  }

  async endMailbox(): Promise<void> {
    const root = maildirRoot(this.ctx.tenant, this.user);
    await this.ctx.archive.addFile(`${root}/subscriptions`, subscriptionsFile(this.subscribed), this.ctx.now);
  }

  async dispose(): Promise<void> {
    await this.open?.uidlist?.dispose();
    this.open = undefined;
  }

  private current(): OpenFolder {
    if (this.open === undefined) throw new Error('MaildirWriter.addMessage outside a selectable folder');
    return this.open;
  }
}
