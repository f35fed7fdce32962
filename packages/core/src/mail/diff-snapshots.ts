/**
 * diff: what changed in a tenant between two snapshots: mailboxes and folders that appeared or
 * disappeared, messages added, expunged or moved, and flag/keyword changes.
 *
 * Message identity inside a folder follows IMAP (RFC 3501 §2.3.1.1): while UIDVALIDITY is unchanged
 * a UID names one message forever, so entries are matched by UID; after a UIDVALIDITY change the
 * server has renumbered everything, so entries are matched by the SHA-256 of their bytes instead
 * (a renumbering is not reported as "all expunged, all added"). Across folders of one user, an
 * expunged message whose exact bytes were added to another folder is reported as moved.
 *
 * Only subtrees that differ are read: a mailbox or folder whose tree blob (or page list) is the same
 * in both snapshots is identical by construction (content-addressed trees) and is skipped, so
 * diffing two snapshots of a quiet tenant reads a handful of small objects.
 * The comparison itself (compareFolderEntries, pairMoves) is pure.
 */
import { MailarkError } from '../errors.js';
import { type LocatedMessage, locate, type MessageMatch, toMatch } from '../find/find-messages.js';
import type { FolderNode, MailboxRef, MessageEntry, Snapshot } from './snapshot.js';
import { loadFolderEntries, loadMailboxTree, loadTenantTree, type TreeReader } from './snapshot-tree.js';

export interface SnapshotSide {
  id: string;
  snapshot: Snapshot;
}

export interface DiffOptions {
  /** Only this mailbox (exact login name). */
  user?: string;
}

/** A folder that exists in only one of the snapshots. */
export interface FolderChange {
  user: string;
  folder: string;
  /** Messages it holds in the snapshot where it exists. */
  messages: number;
}

export interface MovedMessage {
  /** The message where it was (in the first snapshot). */
  from: MessageMatch;
  /** The message where it is now (in the second snapshot). */
  to: MessageMatch;
}

export interface FlagChange {
  /** The message as it is in the second snapshot (its ref points there). */
  message: MessageMatch;
  flags: { added: string[]; removed: string[] };
  keywords: { added: string[]; removed: string[] };
}

export interface SnapshotDiff {
  from: { id: string; time: string };
  to: { id: string; time: string };
  mailboxesAdded: string[];
  mailboxesRemoved: string[];
  foldersAdded: FolderChange[];
  foldersRemoved: FolderChange[];
  /** In the second snapshot only (refs point into the second snapshot). */
  added: MessageMatch[];
  /** In the first snapshot only (refs point into the first: restore takes them as they are). */
  expunged: MessageMatch[];
  moved: MovedMessage[];
  flagChanges: FlagChange[];
  summary: {
    mailboxesAdded: number;
    mailboxesRemoved: number;
    foldersAdded: number;
    foldersRemoved: number;
    added: number;
    addedBytes: number;
    expunged: number;
    expungedBytes: number;
    moved: number;
    flagChanges: number;
  };
}

/** Compares snapshot a (older, usually) with snapshot b, reading only the subtrees that differ. */
export async function diffSnapshots(
  repo: TreeReader,
  a: SnapshotSide,
  b: SnapshotSide,
  opts: DiffOptions = {},
): Promise<SnapshotDiff> {
  const [ta, tb] = await Promise.all([loadTenantTree(repo, a.snapshot), loadTenantTree(repo, b.snapshot)]);
  const refsA = new Map(ta.mailboxes.map((m) => [m.user, m]));
  const refsB = new Map(tb.mailboxes.map((m) => [m.user, m]));
  let users = [...new Set([...refsA.keys(), ...refsB.keys()])].sort();
  if (opts.user !== undefined) {
    if (!users.includes(opts.user)) {
      throw new MailarkError('NOT_FOUND', `mailbox ${opts.user} is in neither snapshot`, {
        hint: `run "mailark ls ${a.id.slice(0, 8)}" to list the mailboxes of a snapshot`,
      });
    }
    users = [opts.user];
  }

  const diff = emptyDiff(a, b);
  for (const user of users) {
    const ra = refsA.get(user);
    const rb = refsB.get(user);
    if (ra === undefined) diff.mailboxesAdded.push(user);
    if (rb === undefined) diff.mailboxesRemoved.push(user);
    if (ra !== undefined && rb !== undefined && ra.tree === rb.tree) continue;
    await diffMailbox(repo, a, b, user, ra, rb, diff);
  }
  diff.summary = summarize(diff);
  return diff;
}

async function diffMailbox(
  repo: TreeReader,
  a: SnapshotSide,
  b: SnapshotSide,
  user: string,
  ra: MailboxRef | undefined,
  rb: MailboxRef | undefined,
  diff: SnapshotDiff,
): Promise<void> {
  const [ma, mb] = await Promise.all([
    ra === undefined ? undefined : loadMailboxTree(repo, ra),
    rb === undefined ? undefined : loadMailboxTree(repo, rb),
  ]);
  const foldersA = new Map((ma?.folders ?? []).map((f) => [f.path, f]));
  const foldersB = new Map((mb?.folders ?? []).map((f) => [f.path, f]));
  const paths = [...new Set([...foldersA.keys(), ...foldersB.keys()])].sort();
  const added: LocatedMessage[] = [];
  const expunged: LocatedMessage[] = [];
  for (const path of paths) {
    const fa = foldersA.get(path);
    const fb = foldersB.get(path);
    if (fa === undefined && fb !== undefined)
      diff.foldersAdded.push({ user, folder: path, messages: fb.messages });
    if (fb === undefined && fa !== undefined)
      diff.foldersRemoved.push({ user, folder: path, messages: fa.messages });
    if (fa !== undefined && fb !== undefined && sameContent(fa, fb)) continue;
    const [ea, eb] = await Promise.all([
      fa === undefined ? [] : loadFolderEntries(repo, fa),
      fb === undefined ? [] : loadFolderEntries(repo, fb),
    ]);
    const sameUidValidity = fa !== undefined && fb !== undefined && fa.uidValidity === fb.uidValidity;
    const cmp = compareFolderEntries(ea, eb, sameUidValidity);
    for (const e of cmp.expunged) expunged.push(locate(a.id, a.snapshot, user, fa!, e));
    for (const e of cmp.added) added.push(locate(b.id, b.snapshot, user, fb!, e));
    for (const { before, after } of cmp.changed) {
      diff.flagChanges.push({
        message: toMatch(locate(b.id, b.snapshot, user, fb!, after)),
        flags: setChange(before.flags, after.flags),
        keywords: setChange(before.keywords, after.keywords),
      });
    }
  }
  const paired = pairMoves(expunged, added);
  diff.expunged.push(...paired.expunged.map(toMatch));
  diff.added.push(...paired.added.map(toMatch));
  diff.moved.push(...paired.moved.map(([from, to]) => ({ from: toMatch(from), to: toMatch(to) })));
}

/** Same pages and same UIDVALIDITY: the folder's messages are identical (flags included). */
function sameContent(fa: FolderNode, fb: FolderNode): boolean {
  return (
    fa.uidValidity === fb.uidValidity &&
    fa.pages.length === fb.pages.length &&
    fa.pages.every((id, i) => fb.pages[i] === id)
  );
}

export interface FolderComparison {
  added: MessageEntry[];
  expunged: MessageEntry[];
  /** The same message with different flags or keywords. */
  changed: Array<{ before: MessageEntry; after: MessageEntry }>;
}

/**
 * Compares one folder's entries in two snapshots. With the same UIDVALIDITY, messages are matched
 * by UID (a UID whose bytes changed, which a correct server never does, counts as expunged + added);
 * otherwise by SHA-256, each entry of a matching at most once (duplicates pair up one to one).
 */
export function compareFolderEntries(
  a: readonly MessageEntry[],
  b: readonly MessageEntry[],
  sameUidValidity: boolean,
): FolderComparison {
  const out: FolderComparison = { added: [], expunged: [], changed: [] };
  const key = (e: MessageEntry) => (sameUidValidity ? `${e.uid}` : e.sha256);
  const pending = new Map<string, MessageEntry[]>();
  for (const e of a) {
    const list = pending.get(key(e));
    if (list === undefined) pending.set(key(e), [e]);
    else list.push(e);
  }
  for (const e of b) {
    const list = pending.get(key(e));
    const before = list?.[0];
    if (before === undefined || before.sha256 !== e.sha256) {
      out.added.push(e);
      continue;
    }
    list!.shift();
    if (!sameStrings(before.flags, e.flags) || !sameStrings(before.keywords, e.keywords)) {
      out.changed.push({ before, after: e });
    }
  }
  // What was not matched is gone; keep ascending UID order.
  const matchedOut = new Set([...pending.values()].flat());
  out.expunged = a.filter((e) => matchedOut.has(e));
  return out;
}

/**
 * Pairs messages of one user that were expunged from one folder and added, with the same bytes, to
 * another: those were moved. Pairs are taken in order (first expunged with first added).
 */
export function pairMoves(
  expunged: readonly LocatedMessage[],
  added: readonly LocatedMessage[],
): { moved: Array<[LocatedMessage, LocatedMessage]>; expunged: LocatedMessage[]; added: LocatedMessage[] } {
  const gone = new Map<string, LocatedMessage[]>();
  for (const m of expunged) {
    const list = gone.get(m.entry.sha256);
    if (list === undefined) gone.set(m.entry.sha256, [m]);
    else list.push(m);
  }
  const moved: Array<[LocatedMessage, LocatedMessage]> = [];
  const paired = new Set<LocatedMessage>();
  const remainingAdded: LocatedMessage[] = [];
  for (const m of added) {
    const list = gone.get(m.entry.sha256) ?? [];
    const i = list.findIndex((x) => x.folder.path !== m.folder.path);
    if (i === -1) {
      remainingAdded.push(m);
      continue;
    }
    const [from] = list.splice(i, 1);
    paired.add(from!);
    moved.push([from!, m]);
  }
  return { moved, expunged: expunged.filter((m) => !paired.has(m)), added: remainingAdded };
}

function setChange(
  before: readonly string[],
  after: readonly string[],
): { added: string[]; removed: string[] } {
  const b = new Set(before);
  const a = new Set(after);
  return { added: after.filter((f) => !b.has(f)), removed: before.filter((f) => !a.has(f)) };
}

function sameStrings(x: readonly string[], y: readonly string[]): boolean {
  return x.length === y.length && x.every((v, i) => y[i] === v);
}

function emptyDiff(a: SnapshotSide, b: SnapshotSide): SnapshotDiff {
  return {
    from: { id: a.id, time: a.snapshot.time },
    to: { id: b.id, time: b.snapshot.time },
    mailboxesAdded: [],
    mailboxesRemoved: [],
    foldersAdded: [],
    foldersRemoved: [],
    added: [],
    expunged: [],
    moved: [],
    flagChanges: [],
    summary: summarize(undefined),
  };
}

function summarize(d: SnapshotDiff | undefined): SnapshotDiff['summary'] {
  const bytes = (ms: readonly MessageMatch[]) => ms.reduce((n, m) => n + m.size, 0);
  return {
    mailboxesAdded: d?.mailboxesAdded.length ?? 0,
    mailboxesRemoved: d?.mailboxesRemoved.length ?? 0,
    foldersAdded: d?.foldersAdded.length ?? 0,
    foldersRemoved: d?.foldersRemoved.length ?? 0,
    added: d?.added.length ?? 0,
    addedBytes: bytes(d?.added ?? []),
    expunged: d?.expunged.length ?? 0,
    expungedBytes: bytes(d?.expunged ?? []),
    moved: d?.moved.length ?? 0,
    flagChanges: d?.flagChanges.length ?? 0,
  };
}
