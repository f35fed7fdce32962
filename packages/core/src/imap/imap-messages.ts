/**
 * Message-level IMAP on an already selected folder: the UID/FLAGS/MODSEQ listing (with CONDSTORE
 * CHANGEDSINCE and QRESYNC VANISHED, RFC 7162), sizes, metadata and bodies. The session
 * (imap-session.ts) selects the folder, queues the calls and retries them; these functions only
 * speak IMAP and check what comes back.
 *
 * Bodies are BODY.PEEK[] (RFC 3501 §6.4.5: never sets \Seen). Every body is checked against
 * RFC822.SIZE: a server that truncates or pads a message fails loudly (IMAP_PROTOCOL), never silently.
 */
import type { FetchMessageObject, ImapFlow, MailboxObject } from 'imapflow';
import { MailarkError } from '../errors.js';
import { type FetchRow, fetchRows, rowOf } from './fetch-rows.js';
import type {
  FetchedMessage,
  ImapFolderStatus,
  ListedMessage,
  MessageListing,
  MessageMetaInfo,
  SessionCapabilities,
} from './mailbox-session.js';
import { parseMessageIdHeader } from './message-id-header.js';
import { uidSetChunks } from './uid-set.js';

/** Where a message comes from, for error messages. */
export interface MessagePlace {
  path: string;
  user: string;
}

/** The folder state a SELECT/EXAMINE reported (RFC 3501 §6.3.1, RFC 7162 §3.1.2.1 HIGHESTMODSEQ). */
export function statusOf(mb: MailboxObject): ImapFolderStatus {
  const s: ImapFolderStatus = {
    uidValidity: String(mb.uidValidity),
    uidNext: mb.uidNext,
    messages: mb.exists,
  };
  if (mb.highestModseq !== undefined && !mb.noModseq) s.highestModseq = String(mb.highestModseq);
  return s;
}

/**
 * UID FETCH 1:* (UID FLAGS RFC822.SIZE [MODSEQ]) [(CHANGEDSINCE m [VANISHED])]. The size costs the
 * server nothing (it is cached) and spares a size round before the bodies. With changedSince the listing has
 * either `vanished` (QRESYNC: expunged UIDs, RFC 7162 §3.2.5.2) or `allUids` (to diff expunges):
 * without CONDSTORE it is simply complete.
 */
export async function listFolderMessages(
  c: ImapFlow,
  status: ImapFolderStatus,
  caps: SessionCapabilities,
  changedSince: string | undefined,
): Promise<MessageListing> {
  const selectedPath = c.mailbox ? c.mailbox.path : '';
  const useChanged = changedSince !== undefined && caps.condstore && status.highestModseq !== undefined;
  const vanished: number[] = [];
  // imapflow reports VANISHED (EARLIER) lines as 'expunge' events with vanished: true.
  const onExpunge = (ev: { path?: string; uid?: number; vanished?: boolean }) => {
    if (ev.vanished && ev.uid !== undefined && ev.path === selectedPath) vanished.push(ev.uid);
  };
  const messages: ListedMessage[] = [];
  c.on('expunge', onExpunge);
  try {
    if (useChanged) {
      const query = { uid: true, flags: true, size: true, modseq: caps.condstore };
      const opts = { uid: true, changedSince: BigInt(changedSince ?? '0') };
      for await (const m of c.fetch('1:*', query, opts)) {
        const row = rowOf(m);
        if (row !== undefined) messages.push(listed(row));
      }
    } else if (status.messages > 0) {
      // An empty folder (EXISTS 0 at the SELECT just made) needs no listing round trip.
      for (const row of await fetchRows(c, '1:*', { flags: true, size: true })) messages.push(listed(row));
    }
  } finally {
    c.off('expunge', onExpunge);
  }
  messages.sort((a, b) => a.uid - b.uid);
  const listing: MessageListing = { status, messages };
  if (changedSince === undefined) return listing;
  if (useChanged && caps.qresync) {
    listing.vanished = [...new Set(vanished)].sort((a, b) => a - b);
  } else if (useChanged) {
    // CONDSTORE without QRESYNC: expunges show only as UIDs missing from the full list.
    const all = await c.search({ all: true }, { uid: true });
    listing.allUids = (Array.isArray(all) ? all : []).sort((a, b) => a - b);
  } else {
    listing.allUids = messages.map((m) => m.uid);
  }
  return listing;
}

/** RFC822.SIZE of the given UIDs that exist. */
export async function fetchSizes(
  c: ImapFlow,
  uids: readonly number[],
): Promise<Array<{ uid: number; size: number }>> {
  const out: Array<{ uid: number; size: number }> = [];
  for (const set of uidSetChunks(uids)) {
    for (const row of await fetchRows(c, set, { size: true }))
      out.push({ uid: row.uid, size: row.size ?? 0 });
  }
  return out;
}

/** Bodies and metadata of a batch of (small) messages, ascending UID. */
export async function fetchBatch(
  c: ImapFlow,
  uids: readonly number[],
  place: MessagePlace,
): Promise<FetchedMessage[]> {
  const query = { flags: true, internalDate: true, size: true, body: true } as const;
  const got: FetchedMessage[] = [];
  for (const set of uidSetChunks(uids)) {
    for (const row of await fetchRows(c, set, query)) {
      // A row without the body is an unsolicited update (a flag change meanwhile), not the message.
      if (row.body !== undefined) got.push(checked(row, place));
    }
  }
  return got.sort((a, b) => a.uid - b.uid);
}

/**
 * A large message's metadata (FLAGS INTERNALDATE RFC822.SIZE [MODSEQ]), before its body is fetched in
 * pieces with fetchPiece. undefined when the message was expunged meanwhile.
 */
export async function fetchLargeMeta(
  c: ImapFlow,
  uid: number,
  caps: SessionCapabilities,
): Promise<Omit<FetchedMessage, 'body'> | undefined> {
  const query = { uid: true, flags: true, internalDate: true, size: true, modseq: caps.condstore };
  const m = await c.fetchOne(String(uid), query, { uid: true });
  if (!m) return undefined;
  const out: Omit<FetchedMessage, 'body'> = {
    uid: m.uid,
    flags: flagsOf(m.flags),
    internalDate: dateOf(m),
    size: m.size ?? 0,
  };
  if (m.modseq !== undefined) out.modseq = String(m.modseq);
  return out;
}

/**
 * One piece of a large message: BODY.PEEK[]<start.length> (RFC 3501 §6.4.5 partial fetch), so no IMAP
 * literal, nor imapflow's parse of it, is larger than one piece. Checked not to run past RFC822.SIZE;
 * undefined when the message was expunged meanwhile.
 */
export async function fetchPiece(
  c: ImapFlow,
  uid: number,
  range: { start: number; length: number },
  size: number,
  place: MessagePlace,
): Promise<Buffer | undefined> {
  const rows = await fetchRows(c, String(uid), { body: { start: range.start, length: range.length } });
  const src = rows.find((r) => r.uid === uid && r.body !== undefined)?.body;
  if (src === undefined) return undefined;
  if (range.start + src.length > size) {
    throw new MailarkError(
      'IMAP_PROTOCOL',
      `${place.path} UID ${uid}: piece at ${range.start} overruns RFC822.SIZE ${size}`,
      {
        hint: 'the server returned more bytes than it announced: report the server',
        details: { ...place, uid },
      },
    );
  }
  return src;
}

/** The error for a body whose length is not its RFC822.SIZE. */
export function sizeMismatch(place: MessagePlace, uid: number, got: number, size: number): MailarkError {
  return new MailarkError(
    'IMAP_PROTOCOL',
    `${place.path} UID ${uid}: got ${got} bytes, RFC822.SIZE says ${size}`,
    {
      hint: 'the server returned a truncated or altered message: run again; report the server if it persists',
      details: { ...place, uid },
    },
  );
}

/** RFC822.SIZE INTERNALDATE FLAGS [MODSEQ] BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)], ascending UID. */
export async function fetchMetaInfos(
  c: ImapFlow,
  uids: readonly number[],
  caps: SessionCapabilities,
): Promise<MessageMetaInfo[]> {
  const query = {
    uid: true,
    size: true,
    internalDate: true,
    flags: true,
    modseq: caps.condstore,
    headers: ['message-id'],
  };
  const out: MessageMetaInfo[] = [];
  for (const set of uidSetChunks(uids)) {
    for await (const m of c.fetch(set, query, { uid: true })) {
      const meta: MessageMetaInfo = {
        uid: m.uid,
        size: m.size ?? 0,
        internalDate: dateOf(m),
        flags: flagsOf(m.flags),
      };
      const id = m.headers === undefined ? undefined : parseMessageIdHeader(m.headers);
      if (id !== undefined) meta.messageId = id;
      if (m.modseq !== undefined) meta.modseq = String(m.modseq);
      out.push(meta);
    }
  }
  return out.sort((a, b) => a.uid - b.uid);
}

/** A fetched message whose body length is exactly its RFC822.SIZE, else IMAP_PROTOCOL. */
function checked(row: FetchRow, place: MessagePlace): FetchedMessage {
  const body = row.body ?? Buffer.alloc(0);
  const size = row.size ?? body.length;
  if (body.length !== size) throw sizeMismatch(place, row.uid, body.length, size);
  const out: FetchedMessage = {
    uid: row.uid,
    flags: flagsOf(row.flags),
    internalDate: row.internalDate ?? new Date(0),
    size,
    body,
  };
  if (row.modseq !== undefined) out.modseq = row.modseq;
  return out;
}

function listed(row: FetchRow): ListedMessage {
  const out: ListedMessage = { uid: row.uid, flags: flagsOf(row.flags) };
  if (row.modseq !== undefined) out.modseq = row.modseq;
  if (row.size !== undefined) out.size = row.size;
  return out;
}

/** Server flags, sorted, without \Recent (session-local, RFC 3501 §2.3.2: never stored or restored). */
function flagsOf(flags: Iterable<string> | undefined): string[] {
  return [...(flags ?? [])].filter((f) => f.toLowerCase() !== '\\recent').sort();
}

function dateOf(m: FetchMessageObject): Date {
  const d = m.internalDate;
  return d instanceof Date ? d : new Date(d ?? 0);
}
