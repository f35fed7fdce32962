/**
 * An ExportSource over a live IMAP server, for a tenant that was never backed up: the same layout as
 * an export of a snapshot, read straight from the mailboxes through imap/imap-session.ts (the one
 * adapter over imapflow: identity checks, reconnects, BODY.PEEK so nothing is marked read, bodies in
 * bounded batches).
 *
 * Each folder is listed once (UID FETCH 1:* (UID FLAGS)) for its keywords and UIDs; its messages are
 * then fetched in that UID order. Messages that arrive during the export are not in it; messages
 * expunged meanwhile are left out (the session skips UIDs that no longer exist). The SHA-256 of each
 * message is computed from the bytes the server sent.
 */
import { createHash } from 'node:crypto';
import type { ImapEndpoint } from '../imap/imap-endpoint.js';
import {
  type FolderInfo,
  type MailboxSession,
  type OpenMailboxOptions,
  openMailbox,
} from '../imap/imap-session.js';
import { splitFlags } from '../mail/snapshot.js';
import type { Reporter } from '../progress.js';
import {
  byPath,
  type ExportFolder,
  type ExportMailbox,
  type ExportMessage,
  type ExportSource,
  folderListing,
} from './export-source.js';
import type { ExportOrigin } from './manifest.js';

export interface ImapExportUser {
  user: string;
  /** The user's own password (per-user login); otherwise the endpoint's admin login is used. */
  password?: string;
}

export interface ImapExportSourceOptions {
  endpoint: ImapEndpoint;
  users: readonly ImapExportUser[];
  /** The tenant's name in the export (e.g. the users' domain). */
  tenant: string;
  reporter?: Reporter;
  signal?: AbortSignal;
  /** Opens a mailbox session (tests inject a fake server); default imap-session's openMailbox. */
  open?: (endpoint: ImapEndpoint, user: string, opts: OpenMailboxOptions) => Promise<MailboxSession>;
  /** Clock (tests). */
  now?: () => Date;
}

export class ImapExportSource implements ExportSource {
  readonly tenant: string;
  readonly origin: ExportOrigin;

  constructor(private readonly opts: ImapExportSourceOptions) {
    this.tenant = opts.tenant;
    this.origin = {
      kind: 'imap',
      server: opts.endpoint.url,
      time: (opts.now?.() ?? new Date()).toISOString(),
    };
  }

  async users(): Promise<string[]> {
    return this.opts.users.map((u) => u.user).sort();
  }

  /** Unknown before each mailbox is listed. */
  async totals(): Promise<undefined> {
    return undefined;
  }

  async openMailbox(user: string): Promise<ExportMailbox> {
    const u = this.opts.users.find((x) => x.user === user);
    const open = this.opts.open ?? openMailbox;
    const session = await open(this.opts.endpoint, user, {
      ...(this.opts.reporter === undefined ? {} : { reporter: this.opts.reporter }),
      ...(this.opts.signal === undefined ? {} : { signal: this.opts.signal }),
      ...(u?.password === undefined ? {} : { userPassword: u.password }),
    });
    return new LiveMailbox(user, session);
  }

  async close(): Promise<void> {}
}

class LiveMailbox implements ExportMailbox {
  /** The current folder's listing: UIDs in order and the keywords seen (one folder at a time). */
  private listed: { path: string; uids: number[]; keywords: string[] } | undefined;

  constructor(
    readonly user: string,
    private readonly session: MailboxSession,
  ) {}

  async folders(): Promise<ExportFolder[]> {
    const infos = await this.session.listFolders();
    const selectable = infos.filter((f) => f.selectable).map((f) => f.path);
    const status = selectable.length === 0 ? new Map() : await this.session.statusAll(selectable);
    return infos
      .map((f: FolderInfo): ExportFolder => {
        const s = status.get(f.path);
        return {
          ...folderListing(f),
          ...(s === undefined
            ? {}
            : { uidValidity: s.uidValidity, uidNext: s.uidNext, messages: s.messages }),
        };
      })
      .sort(byPath);
  }

  async keywords(folder: ExportFolder): Promise<string[]> {
    return (await this.listing(folder)).keywords;
  }

  async *messages(folder: ExportFolder, signal?: AbortSignal): AsyncIterable<ExportMessage> {
    const { uids } = await this.listing(folder);
    this.listed = undefined;
    if (uids.length === 0) return;
    for await (const m of this.session.fetchMessages(folder.path, uids)) {
      signal?.throwIfAborted();
      const { flags, keywords } = splitFlags(m.flags);
      yield {
        entry: {
          uid: m.uid,
          size: m.body.byteLength,
          sha256: createHash('sha256').update(m.body).digest('hex'),
          internalDate: m.internalDate.toISOString(),
          flags,
          keywords,
        },
        bytes: m.body,
      };
    }
  }

  async close(): Promise<void> {
    await this.session.close();
  }

  private async listing(folder: ExportFolder): Promise<{ uids: number[]; keywords: string[] }> {
    if (this.listed?.path === folder.path) return this.listed;
    const l = await this.session.listMessages(folder.path);
    const keywords = new Set<string>();
    for (const m of l.messages) for (const k of splitFlags(m.flags).keywords) keywords.add(k);
    this.listed = {
      path: folder.path,
      uids: l.messages.map((m) => m.uid).sort((a, b) => a - b),
      keywords: [...keywords].sort(),
    };
    return this.listed;
  }
}
