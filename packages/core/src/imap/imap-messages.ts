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
import { throwIfAborted } from './imap-retry.js';
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
 * UID FETCH 1:* (UID FLAGS [MODSEQ]) [(CHANGEDSINCE m [VANISHED])]. With changedSince the listing has
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
    const query = { uid: true, flags: true, modseq: caps.condstore };
    const opts = useChanged ? { uid: true, changedSince: BigInt(changedSince ?? '0') } : { uid: true };
    for await (const m of c.fetch('1:*', query, opts)) messages.push(listed(m));
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
    for await (const m of c.fetch(set, { uid: true, size: true }, { uid: true }))
      out.push({ uid: m.uid, size: m.size ?? 0 });
  }
  return out;
}

/** Bodies and metadata of a batch of (small) messages, ascending UID. */
export async function fetchBatch(
  c: ImapFlow,
  uids: readonly number[],
  caps: SessionCapabilities,
  place: MessagePlace,
): Promise<FetchedMessage[]> {
  const query = {
    uid: true,
    flags: true,
    internalDate: true,
    size: true,
    source: true,
    modseq: caps.condstore,
  };
  const got: FetchedMessage[] = [];
  for (const set of uidSetChunks(uids)) {
    for await (const m of c.fetch(set, query, { uid: true })) got.push(checked(m, m.source, place));
  }
  return got.sort((a, b) => a.uid - b.uid);
}

/**
 * One large message in BODY.PEEK[]<start.length> pieces (RFC 3501 §6.4.5 partial fetch), copied into
 * one buffer of RFC822.SIZE: no IMAP literal, nor imapflow's parse of it, is larger than one piece.
 * undefined when the message was expunged meanwhile.
 */
export async function fetchLarge(
  c: ImapFlow,
  uid: number,
  ranges: ReadonlyArray<{ start: number; length: number }>,
  caps: SessionCapabilities,
  place: MessagePlace,
  signal: AbortSignal | undefined,
): Promise<FetchedMessage | undefined> {
  const query = { uid: true, flags: true, internalDate: true, size: true, modseq: caps.condstore };
  const meta = await c.fetchOne(String(uid), query, { uid: true });
  if (!meta) return undefined;
  const size = meta.size ?? 0;
  const body = Buffer.alloc(size);
  let filled = 0;
  for (const r of ranges) {
    throwIfAborted(signal);
    const piece = await c.fetchOne(
      String(uid),
      { uid: true, source: { start: r.start, maxLength: r.length } },
      { uid: true },
    );
    if (!piece) return undefined;
    const src = piece.source ?? Buffer.alloc(0);
    if (r.start + src.length > size) {
      throw new MailarkError(
        'IMAP_PROTOCOL',
        `${place.path} UID ${uid}: piece at ${r.start} overruns RFC822.SIZE ${size}`,
        {
          hint: 'the server returned more bytes than it announced: report the server',
          details: { ...place, uid },
        },
      );
    }
    src.copy(body, r.start);
    filled += src.length;
    if (src.length < r.length) break; // short piece: the size check below reports it
  }
  return checked(meta, body.subarray(0, filled), place);
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
        flags: flagsOf(m),
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
function checked(m: FetchMessageObject, source: Buffer | undefined, place: MessagePlace): FetchedMessage {
  const body = source ?? Buffer.alloc(0);
  const size = m.size ?? body.length;
  if (body.length !== size) {
    throw new MailarkError(
      'IMAP_PROTOCOL',
      `${place.path} UID ${m.uid}: got ${body.length} bytes, RFC822.SIZE says ${size}`,
      {
        hint: 'the server returned a truncated or altered message: run again; report the server if it persists',
        details: { ...place, uid: m.uid },
      },
    );
  }
  const out: FetchedMessage = { uid: m.uid, flags: flagsOf(m), internalDate: dateOf(m), size, body };
  if (m.modseq !== undefined) out.modseq = String(m.modseq);
  return out;
}

function listed(m: FetchMessageObject): ListedMessage {
  const out: ListedMessage = { uid: m.uid, flags: flagsOf(m) };
  if (m.modseq !== undefined) out.modseq = String(m.modseq);
  return out;
}

/** Server flags, sorted, without \Recent (session-local, RFC 3501 §2.3.2: never stored or restored). */
function flagsOf(m: FetchMessageObject): string[] {
  return [...(m.flags ?? [])].filter((f) => f.toLowerCase() !== '\\recent').sort();
}

function dateOf(m: FetchMessageObject): Date {
  const d = m.internalDate;
  return d instanceof Date ? d : new Date(d ?? 0);
}
