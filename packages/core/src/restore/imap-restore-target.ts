/**
 * The RestoreTarget of a real mailbox: a thin mapping of imap/imap-session.ts's MailboxSession onto
 * the surface restore codes against. All IMAP care lives in the session: identity checks, modified
 * UTF-7, SELECT before APPEND with PERMANENTFLAGS (RFC 3501 §7.1), APPENDUID (RFC 4315), BODY.PEEK[]
 * fetches, reconnects for reads; APPEND is never repeated by it.
 *
 * The one thing the session does not offer is a search by size, needed only for a message without
 * Message-ID: it is done here from the folder's listing and RFC822.SIZE (fetchMeta), then the bodies
 * of the few same-size messages.
 */
import { createHash } from 'node:crypto';
import type { ImapEndpoint } from '../imap/imap-endpoint.js';
import { type MailboxSession, openMailbox } from '../imap/imap-session.js';
import { type Reporter, silentReporter } from '../progress.js';
import type {
  AppendResult,
  RestoreConnector,
  RestoreTarget,
  TargetCopy,
  TargetFolder,
} from './restore-target.js';

export interface ImapRestoreOptions {
  reporter?: Reporter;
  signal?: AbortSignal;
}

/** A connector that opens one verified session per target user on this endpoint. */
export function imapRestoreConnector(
  endpoint: ImapEndpoint,
  opts: ImapRestoreOptions = {},
): RestoreConnector {
  return async (user) => {
    const session = await openMailbox(endpoint, user, {
      reporter: opts.reporter ?? silentReporter,
      ...(opts.signal === undefined ? {} : { signal: opts.signal }),
    });
    return sessionTarget(session);
  };
}

/** The restore surface of an open session (closing the target closes the session). */
export function sessionTarget(session: MailboxSession): RestoreTarget {
  const copies = async (path: string, uids: readonly number[]): Promise<TargetCopy[]> => {
    const out: TargetCopy[] = [];
    if (uids.length === 0) return out;
    for await (const m of session.fetchMessages(path, uids)) {
      out.push({
        uid: m.uid,
        size: m.size,
        sha256: createHash('sha256').update(m.body).digest('hex'),
        flags: m.flags,
      });
    }
    return out;
  };
  return {
    async listFolders(): Promise<TargetFolder[]> {
      return (await session.listFolders()).map((f) => ({ path: f.path, delimiter: f.delimiter }));
    },
    createFolder: (path) => session.createFolder(path),
    async append(path, body, flags, internalDate): Promise<AppendResult> {
      return session.append(path, body, flags, internalDate);
    },
    copiesByMessageId: (path, messageId) => session.fetchByMessageId(path, messageId),
    async copiesBySize(path, sizes) {
      const listing = await session.listMessages(path);
      const uids = listing.messages.map((m) => m.uid);
      if (uids.length === 0) return [];
      const same = (await session.fetchMeta(path, uids))
        .filter((m) => sizes.includes(m.size))
        .map((m) => m.uid);
      return copies(path, same);
    },
    copies,
    close: () => session.close(),
  };
}
