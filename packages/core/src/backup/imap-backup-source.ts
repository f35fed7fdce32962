/**
 * The BackupSource of a real mailbox: a thin mapping of imap/imap-session.ts's MailboxSession onto the
 * interface the backup codes against (dates as ISO strings, capabilities as plain booleans). All IMAP
 * care (identity checks, reconnects, bounded fetches, BODY.PEEK) lives in the session.
 */
import type { FetchPlanOptions } from '../imap/fetch-plan.js';
import type { ImapEndpoint } from '../imap/imap-endpoint.js';
import { type MailboxSession, openMailbox } from '../imap/imap-session.js';
import type { Reporter } from '../progress.js';
import type { BackupSource, SourceFolder, SourceMessage } from './backup-source.js';
import type { FolderListing, FolderStatus, MessageMeta } from './plan-folder.js';

export interface ImapBackupSourceOptions {
  signal?: AbortSignal | undefined;
  reporter?: Reporter;
}

/**
 * Backup fetches in 1 MiB batches, and a large message streams in 1 MiB pieces: a mailbox holds about
 * three (one read ahead, one being chunked, one being sealed), and four mailboxes may each be in a
 * 25 MB message at once. Small batches also die young: a 4 MiB batch outlived the young generation's
 * collections and waited in old space for a full GC, ~60 MiB of dead mail at a time (measured). One
 * more round trip per MiB, fetched ahead, costs nothing next to its transfer.
 */
const BACKUP_FETCH_PLAN: FetchPlanOptions = {
  largeBytes: 1024 * 1024,
  chunkBytes: 1024 * 1024,
  batchBytes: 1024 * 1024,
};

/** Logs in as `user` (admin login per endpoint.auth, or the user's own password) and wraps the session. */
export async function openImapBackupSource(
  endpoint: ImapEndpoint,
  user: { user: string; password?: string },
  opts: ImapBackupSourceOptions = {},
): Promise<BackupSource> {
  const session = await openMailbox(endpoint, user.user, {
    fetchPlan: BACKUP_FETCH_PLAN,
    ...(opts.reporter === undefined ? {} : { reporter: opts.reporter }),
    ...(opts.signal === undefined ? {} : { signal: opts.signal }),
    ...(user.password === undefined ? {} : { userPassword: user.password }),
  });
  return sessionBackupSource(session);
}

/** The BackupSource over an open session (which it closes on close()). */
export function sessionBackupSource(session: MailboxSession): BackupSource {
  return new SessionSource(session);
}

/**
 * backupMailbox asks listFolders() then statusAll() of the selectable folders: with LIST-STATUS
 * (RFC 5819) the first answers both, so the statuses it brought are kept for the statusAll() that
 * follows it directly (an unchanged mailbox then costs ONE folder command). They are used once; a
 * path they lack, or any later statusAll(), asks the server.
 */
class SessionSource implements BackupSource {
  private listedStatuses: Map<string, FolderStatus> | undefined;

  constructor(private readonly s: MailboxSession) {}

  get condstore(): boolean {
    return this.s.capabilities.condstore;
  }

  get qresync(): boolean {
    return this.s.capabilities.qresync;
  }

  async listFolders(): Promise<SourceFolder[]> {
    const { folders, statuses } = await this.s.listFoldersWithStatus();
    this.listedStatuses = statuses.size > 0 ? statuses : undefined;
    return folders;
  }

  async statusAll(paths: readonly string[]): Promise<Map<string, FolderStatus>> {
    const listed = this.listedStatuses;
    this.listedStatuses = undefined;
    if (listed === undefined) return this.s.statusAll(paths);
    const out = new Map<string, FolderStatus>();
    const missing: string[] = [];
    for (const p of paths) {
      const st = listed.get(p);
      if (st === undefined) missing.push(p);
      else out.set(p, st);
    }
    if (missing.length > 0) for (const [p, st] of await this.s.statusAll(missing)) out.set(p, st);
    return out;
  }

  async listMessages(path: string, opts: { changedSince?: string } = {}): Promise<FolderListing> {
    this.listedStatuses = undefined;
    const l = await this.s.listMessages(path, opts);
    const out: FolderListing = { messages: l.messages };
    if (l.vanished !== undefined) out.vanished = l.vanished;
    if (l.allUids !== undefined) out.allUids = l.allUids;
    return out;
  }

  async fetchMeta(path: string, uids: readonly number[]): Promise<MessageMeta[]> {
    return (await this.s.fetchMeta(path, uids)).map((m) => {
      const meta: MessageMeta = {
        uid: m.uid,
        size: m.size,
        internalDate: m.internalDate.toISOString(),
        flags: m.flags,
      };
      if (m.messageId !== undefined) meta.messageId = m.messageId;
      if (m.modseq !== undefined) meta.modseq = m.modseq;
      return meta;
    });
  }

  async *fetchMessages(
    path: string,
    uids: readonly number[],
    sizes?: ReadonlyMap<number, number>,
  ): AsyncIterable<SourceMessage> {
    // Large messages stream in pieces straight into the repository: never held whole.
    for await (const m of this.s.streamMessages(path, uids, sizes)) {
      const msg: SourceMessage = {
        uid: m.uid,
        flags: m.flags,
        internalDate: m.internalDate.toISOString(),
        size: m.size,
        body: m.body,
      };
      if (m.modseq !== undefined) msg.modseq = m.modseq;
      yield msg;
    }
  }

  close(): Promise<void> {
    return this.s.close();
  }
}
