/**
 * An in-memory IMAP-like server for unit tests of the backup: folders with UIDVALIDITY, UIDNEXT and
 * per-message MODSEQ (RFC 7162 semantics: every change bumps the folder's HIGHESTMODSEQ, expunges are
 * remembered for VANISHED), with CONDSTORE/QRESYNC switchable, request counters and fault injection.
 * It implements BackupSource exactly as the IMAP adapter must. Test code only.
 */
import { MailarkError } from '../errors.js';
import type { BackupSource, SourceFolder, SourceMessage } from './backup-source.js';
import { summarizeMessage } from './header-summary.js';
import type { FolderListing, FolderStatus, ListedMessage, MessageMeta } from './plan-folder.js';

interface FakeMessage {
  raw: Buffer;
  flags: Set<string>;
  internalDate: string;
  modseq: bigint;
}

interface FakeFolder {
  path: string;
  specialUse?: string;
  selectable: boolean;
  uidValidity: number;
  uidNext: number;
  modseq: bigint;
  messages: Map<number, FakeMessage>;
  vanished: Array<{ uid: number; modseq: bigint }>;
}

export interface FakeCounters {
  opens: number;
  statusCalls: number;
  listings: number;
  metaFetches: number;
  /** UIDs asked in meta fetches. */
  metaMessages: number;
  bodies: number;
  bodyBytes: number;
}

let nextUidValidity = 1_700_000_000;

export class FakeMailServer {
  condstore = true;
  qresync = true;
  readonly counters: FakeCounters = {
    opens: 0,
    statusCalls: 0,
    listings: 0,
    metaFetches: 0,
    metaMessages: 0,
    bodies: 0,
    bodyBytes: 0,
  };
  /** Users whose login fails (IMAP_AUTH, not transient). */
  readonly refuse = new Set<string>();
  /** Called after each STATUS round (e.g. to delete a folder before it is listed). */
  afterStatus: ((user: string) => void) | undefined;
  /** Called before each body is served; may throw (fault injection) or stall. */
  beforeBody: ((user: string, uid: number, served: number) => Promise<void> | void) | undefined;
  private readonly accounts = new Map<string, Map<string, FakeFolder>>();

  addUser(user: string): void {
    if (this.accounts.has(user)) return;
    this.accounts.set(user, new Map());
    this.createFolder(user, 'INBOX');
  }

  createFolder(user: string, path: string, opts: { specialUse?: string; selectable?: boolean } = {}): void {
    const folders = this.account(user);
    if (folders.has(path)) throw new Error(`folder ${path} exists`);
    const f: FakeFolder = {
      path,
      selectable: opts.selectable ?? true,
      uidValidity: nextUidValidity++,
      uidNext: 1,
      modseq: 1n,
      messages: new Map(),
      vanished: [],
    };
    if (opts.specialUse !== undefined) f.specialUse = opts.specialUse;
    folders.set(path, f);
  }

  deleteFolder(user: string, path: string): void {
    this.account(user).delete(path);
  }

  /** RENAME keeps UIDs and UIDVALIDITY (RFC 3501 §6.3.5 lets servers do either; Dovecot keeps them). */
  renameFolder(user: string, from: string, to: string): void {
    const folders = this.account(user);
    const f = this.folder(user, from);
    folders.delete(from);
    f.path = to;
    folders.set(to, f);
  }

  append(
    user: string,
    path: string,
    raw: Buffer,
    flags: string[] = [],
    internalDate = '2024-06-01T10:00:00.000Z',
  ): number {
    const f = this.folder(user, path);
    const uid = f.uidNext++;
    f.modseq++;
    f.messages.set(uid, { raw, flags: new Set(flags), internalDate, modseq: f.modseq });
    return uid;
  }

  setFlags(user: string, path: string, uid: number, flags: string[]): void {
    const f = this.folder(user, path);
    const m = f.messages.get(uid);
    if (m === undefined) throw new Error(`no uid ${uid}`);
    f.modseq++;
    m.flags = new Set(flags);
    m.modseq = f.modseq;
  }

  expunge(user: string, path: string, uid: number): void {
    const f = this.folder(user, path);
    if (!f.messages.delete(uid)) throw new Error(`no uid ${uid}`);
    f.modseq++;
    f.vanished.push({ uid, modseq: f.modseq });
  }

  /** RFC 6851 MOVE: same bytes, flags and INTERNALDATE under a new UID in the target. */
  move(user: string, from: string, uid: number, to: string): number {
    const m = this.folder(user, from).messages.get(uid);
    if (m === undefined) throw new Error(`no uid ${uid}`);
    const newUid = this.append(user, to, m.raw, [...m.flags], m.internalDate);
    this.expunge(user, from, uid);
    return newUid;
  }

  /** Ground truth: selectable folder path → messages (ascending UID). */
  state(
    user: string,
  ): Map<string, Array<{ uid: number; raw: Buffer; flags: string[]; internalDate: string }>> {
    const out = new Map<string, Array<{ uid: number; raw: Buffer; flags: string[]; internalDate: string }>>();
    for (const f of this.account(user).values()) {
      if (!f.selectable) continue;
      out.set(
        f.path,
        [...f.messages.entries()]
          .sort((a, b) => a[0] - b[0])
          .map(([uid, m]) => ({ uid, raw: m.raw, flags: [...m.flags].sort(), internalDate: m.internalDate })),
      );
    }
    return out;
  }

  uidValidityOf(user: string, path: string): string {
    return String(this.folder(user, path).uidValidity);
  }

  async open(user: string): Promise<BackupSource> {
    this.counters.opens++;
    if (this.refuse.has(user) || !this.accounts.has(user)) {
      throw new MailarkError('IMAP_AUTH', `login as ${user} refused`, {
        hint: 'check the admin credentials',
        details: { transient: false },
      });
    }
    return new FakeSource(this, user);
  }

  account(user: string): Map<string, FakeFolder> {
    const a = this.accounts.get(user);
    if (a === undefined) throw new Error(`no user ${user}`);
    return a;
  }

  folder(user: string, path: string): FakeFolder {
    const f = this.account(user).get(path);
    if (f === undefined) {
      throw new MailarkError('IMAP_PROTOCOL', `SELECT ${path} failed: Mailbox doesn't exist`, {
        hint: 'the folder does not exist (any more) on the server',
        details: { responseCode: 'NONEXISTENT' },
      });
    }
    return f;
  }
}

class FakeSource implements BackupSource {
  readonly condstore: boolean;
  readonly qresync: boolean;
  private closed = false;

  constructor(
    private readonly server: FakeMailServer,
    private readonly user: string,
  ) {
    this.condstore = server.condstore;
    this.qresync = server.qresync;
  }

  async listFolders(): Promise<SourceFolder[]> {
    this.check();
    return [...this.server.account(this.user).values()].map((f) => {
      const folder: SourceFolder = {
        path: f.path,
        rawPath: f.path,
        delimiter: '/',
        flags: f.selectable ? [] : ['\\Noselect'],
        subscribed: true,
        selectable: f.selectable,
      };
      if (f.specialUse !== undefined) folder.specialUse = f.specialUse;
      return folder;
    });
  }

  async statusAll(paths: readonly string[]): Promise<Map<string, FolderStatus>> {
    this.check();
    this.server.counters.statusCalls++;
    const out = new Map<string, FolderStatus>();
    for (const p of paths) {
      const f = this.server.account(this.user).get(p);
      if (f === undefined) continue;
      const s: FolderStatus = {
        uidValidity: String(f.uidValidity),
        uidNext: f.uidNext,
        messages: f.messages.size,
      };
      if (this.condstore) s.highestModseq = String(f.modseq);
      out.set(p, s);
    }
    this.server.afterStatus?.(this.user);
    return out;
  }

  async listMessages(path: string, opts: { changedSince?: string } = {}): Promise<FolderListing> {
    this.check();
    this.server.counters.listings++;
    const f = this.server.folder(this.user, path);
    const since = opts.changedSince === undefined ? undefined : BigInt(opts.changedSince);
    const messages: ListedMessage[] = [];
    for (const [uid, m] of f.messages) {
      if (since !== undefined && m.modseq <= since) continue;
      const l: ListedMessage = { uid, flags: [...m.flags], size: m.raw.length };
      if (this.condstore) l.modseq = String(m.modseq);
      messages.push(l);
    }
    if (since === undefined) return { messages };
    if (this.qresync)
      return { messages, vanished: f.vanished.filter((v) => v.modseq > since).map((v) => v.uid) };
    return { messages, allUids: [...f.messages.keys()] };
  }

  async fetchMeta(path: string, uids: readonly number[]): Promise<MessageMeta[]> {
    this.check();
    this.server.counters.metaFetches++;
    this.server.counters.metaMessages += uids.length;
    const f = this.server.folder(this.user, path);
    const out: MessageMeta[] = [];
    for (const uid of uids) {
      const m = f.messages.get(uid);
      if (m === undefined) continue;
      const meta: MessageMeta = {
        uid,
        size: m.raw.length,
        internalDate: m.internalDate,
        flags: [...m.flags],
      };
      const id = summarizeMessage(m.raw).messageId;
      if (id !== undefined) meta.messageId = id;
      if (this.condstore) meta.modseq = String(m.modseq);
      out.push(meta);
    }
    return out;
  }

  async *fetchMessages(path: string, uids: readonly number[]): AsyncIterable<SourceMessage> {
    this.check();
    const f = this.server.folder(this.user, path);
    for (const uid of uids) {
      const m = f.messages.get(uid);
      if (m === undefined) continue;
      await this.server.beforeBody?.(this.user, uid, this.server.counters.bodies);
      this.check();
      this.server.counters.bodies++;
      this.server.counters.bodyBytes += m.raw.length;
      const msg: SourceMessage = {
        uid,
        flags: [...m.flags],
        internalDate: m.internalDate,
        size: m.raw.length,
        // Large bodies arrive in pieces, as the IMAP adapter streams them.
        body: m.raw.length > 100_000 ? pieces(m.raw, 65_536) : m.raw,
      };
      if (this.condstore) msg.modseq = String(m.modseq);
      yield msg;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private check(): void {
    if (this.closed) throw new Error('FakeSource used after close');
  }
}

async function* pieces(raw: Buffer, size: number): AsyncIterable<Uint8Array> {
  for (let o = 0; o < raw.length; o += size) yield raw.subarray(o, o + size);
}
