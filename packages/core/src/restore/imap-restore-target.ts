/**
 * The RestoreTarget surface over one imapflow connection, logged in (and identity-checked) by
 * imap/imap-connect.ts. Every imapflow failure becomes a MailarkError through imapError, here where
 * it arises; imapflow's `false` returns are turned into errors too.
 *
 * IMAP facts this relies on:
 * - imapflow takes Unicode folder names and encodes modified UTF-7 itself (RFC 3501 §5.1.3);
 * - SELECT's PERMANENTFLAGS (RFC 3501 §7.1) says which flags a folder stores; `\*` allows new
 *   keywords. Restore SELECTs before APPEND so it can name what the server will drop;
 * - APPENDUID (UIDPLUS, RFC 4315) gives the new UID; imapflow looks it up otherwise when the folder
 *   is selected;
 * - FETCH BODY.PEEK[] (imapflow's `source`) returns the exact stored bytes without setting \Seen.
 */
import type { ImapFlow } from 'imapflow';
import { MailarkError } from '../errors.js';
import { connectAs } from '../imap/imap-connect.js';
import type { ImapEndpoint } from '../imap/imap-endpoint.js';
import { imapError } from '../imap/imap-errors.js';
import { uidSet } from '../imap/uid-set.js';
import { type Reporter, silentReporter } from '../progress.js';
import type {
  AppendResult,
  RestoreConnector,
  RestoreTarget,
  TargetFolder,
  TargetMessage,
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
    const conn = await connectAs(endpoint, user, {
      reporter: opts.reporter ?? silentReporter,
      ...(opts.signal === undefined ? {} : { signal: opts.signal }),
    });
    return new ImapRestoreTarget(conn.client, endpoint.url, user);
  };
}

class ImapRestoreTarget implements RestoreTarget {
  constructor(
    private readonly client: ImapFlow,
    private readonly url: string,
    private readonly user: string,
  ) {}

  private async run<T>(action: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw imapError(err, { url: this.url, user: this.user, action });
    }
  }

  /** SELECT path unless it is already selected; returns its PERMANENTFLAGS (undefined: any flag). */
  private async select(path: string): Promise<Set<string> | undefined> {
    const current = this.client.mailbox;
    if (current !== false && current.path === path) return current.permanentFlags;
    const box = await this.run(`SELECT ${path}`, () => this.client.mailboxOpen(path));
    return box.permanentFlags;
  }

  listFolders(): Promise<TargetFolder[]> {
    return this.run('LIST', async () =>
      (await this.client.list()).map((f) => ({ path: f.path, delimiter: f.delimiter ?? '' })),
    );
  }

  async createFolder(path: string): Promise<void> {
    // imapflow treats ALREADYEXISTS (RFC 5530) as success (created: false).
    await this.run(`CREATE ${path}`, () => this.client.mailboxCreate(path));
  }

  async append(
    path: string,
    body: Uint8Array,
    flags: readonly string[],
    internalDate: Date,
  ): Promise<AppendResult> {
    const permanent = await this.select(path);
    const refusedFlags = refusedBy(permanent, flags);
    const res = await this.run(`APPEND ${path}`, () =>
      this.client.append(
        path,
        Buffer.from(body.buffer, body.byteOffset, body.byteLength),
        [...flags],
        internalDate,
      ),
    );
    if (res === false) {
      throw new MailarkError('IMAP_PROTOCOL', `${this.url} refused APPEND to "${path}" as ${this.user}`, {
        hint: 'check the quota and permissions of the mailbox, then run the restore again',
      });
    }
    const out: AppendResult = { refusedFlags };
    if (res.uid !== undefined) out.uid = res.uid;
    if (res.uidValidity !== undefined) out.uidValidity = String(res.uidValidity);
    return out;
  }

  async searchMessageId(path: string, messageId: string): Promise<number[]> {
    await this.select(path);
    // HEADER search is a substring match (RFC 3501 §6.4.4): candidates only, compared by SHA-256 after.
    const uids = await this.run(`SEARCH ${path}`, () =>
      this.client.search({ header: { 'message-id': messageId } }, { uid: true }),
    );
    return Array.isArray(uids) ? uids : [];
  }

  async searchSize(path: string, sizes: readonly number[]): Promise<number[]> {
    await this.select(path);
    const all = new Set<number>();
    for (const size of sizes) {
      const uids = await this.run(`SEARCH ${path}`, () =>
        this.client.search({ larger: size - 1, smaller: size + 1 }, { uid: true }),
      );
      if (Array.isArray(uids)) for (const u of uids) all.add(u);
    }
    return [...all].sort((a, b) => a - b);
  }

  async fetchMessages(path: string, uids: readonly number[]): Promise<TargetMessage[]> {
    if (uids.length === 0) return [];
    await this.select(path);
    const msgs = await this.run(`FETCH ${path}`, () =>
      this.client.fetchAll(
        uidSet(uids),
        { uid: true, flags: true, internalDate: true, source: true },
        { uid: true },
      ),
    );
    return msgs
      .filter((m) => m.source !== undefined)
      .map((m) => ({
        uid: m.uid,
        body: m.source as Buffer,
        flags: [...(m.flags ?? [])],
        internalDate:
          m.internalDate instanceof Date ? m.internalDate.toISOString() : String(m.internalDate ?? ''),
      }));
  }

  async close(): Promise<void> {
    try {
      await this.client.logout();
    } catch {
      this.client.close(); // the connection may already be gone: nothing left to say to the server
    }
  }
}

/** The flags a folder with these PERMANENTFLAGS will not store (RFC 3501 §7.1: `\*` allows keywords). */
export function refusedBy(permanent: Set<string> | undefined, flags: readonly string[]): string[] {
  if (permanent === undefined) return [];
  const allowed = new Set([...permanent].map((f) => f.toLowerCase()));
  const anyKeyword = allowed.has('\\*');
  return flags.filter((f) => {
    const lower = f.toLowerCase();
    if (allowed.has(lower)) return false;
    return f.startsWith('\\') || !anyKeyword;
  });
}
