/**
 * Folder-level IMAP: LIST (RFC 3501 §6.3.8 with RFC 6154 special-use and RFC 5258 attributes), STATUS
 * (RFC 3501 §6.3.10, or LIST-STATUS RFC 5819 in one round trip) and CREATE with parents (§6.3.3).
 * Paths are Unicode in and out: imapflow encodes and decodes modified UTF-7 (RFC 3501 §5.1.3), so
 * a path must never be encoded here as well ("&" would be encoded twice).
 */
import type { ImapFlow, ListResponse, StatusObject } from 'imapflow';
import { MailarkError } from '../errors.js';
import type { FolderInfo, ImapFolderStatus, SessionCapabilities } from './mailbox-session.js';

const NOT_SELECTABLE = /^\\(noselect|nonexistent)$/i;

/** Every folder, sorted by path (code-point order, as snapshot trees sort). */
export async function listFolderInfos(c: ImapFlow): Promise<FolderInfo[]> {
  const listed = await c.list();
  return listed
    .filter((l) => l.listed !== false) // LSUB-only entries: subscribed names that do not exist
    .map(folderInfo)
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

function folderInfo(l: ListResponse): FolderInfo {
  const flags = [...l.flags].sort();
  const f: FolderInfo = {
    path: l.path,
    rawPath: l.pathAsListed,
    delimiter: l.delimiter ?? '',
    flags,
    subscribed: l.subscribed === true,
    selectable: !flags.some((x) => NOT_SELECTABLE.test(x)),
  };
  // Only what the server says (SPECIAL-USE/XLIST): imapflow's guesses from names are not facts.
  if (l.specialUse !== undefined && l.specialUse !== '\\Inbox' && l.specialUseSource === 'extension') {
    f.specialUse = l.specialUse;
  }
  return f;
}

/**
 * Every folder and, with LIST-STATUS (RFC 5819), the status of each selectable one from the SAME
 * command: one round trip where LIST then STATUS took two. Without LIST-STATUS, statuses is empty
 * (the caller asks statusOfFolders for what it needs).
 */
export async function listFoldersWithStatus(
  c: ImapFlow,
  caps: SessionCapabilities,
): Promise<{ folders: FolderInfo[]; statuses: Map<string, ImapFolderStatus> }> {
  if (!caps.listStatus) return { folders: await listFolderInfos(c), statuses: new Map() };
  const listed = await c.list({ statusQuery: statusQuery(caps) });
  const statuses = new Map<string, ImapFolderStatus>();
  for (const l of listed) {
    if (l.listed !== false && l.status !== undefined && l.status.uidValidity !== undefined)
      statuses.set(l.path, folderStatus(l.status));
  }
  const folders = listed
    .filter((l) => l.listed !== false)
    .map(folderInfo)
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { folders, statuses };
}

function statusQuery(caps: SessionCapabilities) {
  return { messages: true, uidNext: true, uidValidity: true, highestModseq: caps.condstore };
}

/** Status of the given (default: every selectable) folder. */
export async function statusOfFolders(
  c: ImapFlow,
  caps: SessionCapabilities,
  paths?: readonly string[],
): Promise<Map<string, ImapFolderStatus>> {
  const query = statusQuery(caps);
  const out = new Map<string, ImapFolderStatus>();
  const wanted = paths === undefined ? undefined : new Set(paths);
  if (caps.listStatus) {
    for (const l of await c.list({ statusQuery: query })) {
      if (wanted !== undefined && !wanted.has(l.path)) continue;
      if (l.status !== undefined && l.status.uidValidity !== undefined)
        out.set(l.path, folderStatus(l.status));
    }
    // A folder LIST-STATUS skipped (or a path named but not listed) gets its own STATUS below.
  }
  const todo =
    wanted !== undefined
      ? [...wanted].filter((p) => !out.has(p))
      : out.size > 0
        ? []
        : (await listFolderInfos(c)).filter((f) => f.selectable).map((f) => f.path);
  for (const path of todo) {
    const s = await c.status(path, query);
    if (s && s.uidValidity !== undefined) out.set(path, folderStatus(s));
  }
  return out;
}

function folderStatus(s: StatusObject): ImapFolderStatus {
  const out: ImapFolderStatus = {
    uidValidity: String(s.uidValidity),
    uidNext: s.uidNext ?? 0,
    messages: s.messages ?? 0,
  };
  // HIGHESTMODSEQ 0 means the folder does not keep mod-sequences (RFC 7162 §3.1.2.1, NOMODSEQ).
  if (s.highestModseq !== undefined && s.highestModseq !== 0n) out.highestModseq = String(s.highestModseq);
  return out;
}

/**
 * CREATE `path`, then SUBSCRIBE it (so mail clients show a restored folder). Servers SHOULD create
 * missing parents themselves (RFC 3501 §6.3.3); for those that do not, the parents are created one
 * by one and the CREATE repeated. An existing folder is not an error.
 */
export async function createFolderOps(c: ImapFlow, path: string): Promise<void> {
  if (path === '' || path.toUpperCase() === 'INBOX') return;
  try {
    await c.mailboxCreate(path);
  } catch (err) {
    if (!isAlreadyExists(err)) {
      const delimiter = (await c.list()).find((l) => l.delimiter)?.delimiter ?? '/';
      const parts = path.split(delimiter);
      for (let i = 1; i <= parts.length; i++) {
        try {
          await c.mailboxCreate(parts.slice(0, i).join(delimiter));
        } catch (e) {
          if (!isAlreadyExists(e)) {
            throw i === parts.length
              ? e
              : new MailarkError('IMAP_PROTOCOL', `cannot create ${path}`, { cause: e });
          }
        }
      }
    }
  }
  await c.mailboxSubscribe(path);
}

function isAlreadyExists(err: unknown): boolean {
  const e = err as { serverResponseCode?: string; responseText?: string };
  return (
    e.serverResponseCode === 'ALREADYEXISTS' || /ALREADYEXISTS|already exists/i.test(e.responseText ?? '')
  );
}
