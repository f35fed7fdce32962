/**
 * THE adapter over imapflow: one mailbox (one user) on one IMAP connection. Backup, restore,
 * export-from-live and the agent use only this; no imapflow type leaks out of imap/.
 *
 * Rules it keeps:
 *  - bodies are the exact bytes of BODY.PEEK[] (RFC 3501 §6.4.5): reading never sets \Seen;
 *  - reads (list, status, fetch) survive a lost connection: the session reconnects, logs in again,
 *    re-checks the identity and UIDVALIDITY, and repeats the step (withRetry, back-off); APPEND and
 *    CREATE are not repeated (they are not idempotent), their callers decide;
 *  - memory stays bounded: bodies come in batches of at most a few MiB, and a large message alone,
 *    in pieces (fetch-plan.ts) that streamMessages hands out one by one; one batch or piece is
 *    fetched ahead while the caller works on the current one;
 *  - one operation at a time: calls are queued, and fetchMessages() takes the queue per batch, so
 *    other calls may run between its iterations.
 */
import { createHash } from 'node:crypto';
import type { ImapFlow } from 'imapflow';
import { MailarkError } from '../errors.js';
import { type Reporter, silentReporter } from '../progress.js';
import { DEFAULT_FETCH_PLAN, type FetchStep, planFetch } from './fetch-plan.js';
import { type Connection, connectAs, enableExtensions, type IdentityProof } from './imap-connect.js';
import type { ImapEndpoint } from './imap-endpoint.js';
import { imapError } from './imap-errors.js';
import { createFolderOps, listFolderInfos, listFoldersWithStatus, statusOfFolders } from './imap-folders.js';
import {
  fetchBatch,
  fetchLargeMeta,
  fetchMetaInfos,
  fetchPiece,
  fetchSizes,
  listFolderMessages,
  sizeMismatch,
  statusOf,
} from './imap-messages.js';
import { throwIfAborted, withRetry } from './imap-retry.js';
import type {
  AppendOutcome,
  FetchedMessage,
  FolderInfo,
  ImapFolderStatus,
  MailboxSession,
  MessageListing,
  MessageMetaInfo,
  OpenMailboxOptions,
  SessionCapabilities,
  SessionStats,
  StreamedMessage,
} from './mailbox-session.js';
import { normalizeMessageId } from './message-id-header.js';
import { permittedFlags } from './permitted-flags.js';

export type * from './mailbox-session.js';

/** Logs in as `user` (per endpoint.auth), verifies the identity, and returns the session. */
export async function openMailbox(
  endpoint: ImapEndpoint,
  user: string,
  opts: OpenMailboxOptions = {},
): Promise<MailboxSession> {
  const session = new ImapMailboxSession(endpoint, user, opts);
  await session.start();
  return session;
}

type Step<T> = (client: ImapFlow) => Promise<T>;

class ImapMailboxSession implements MailboxSession {
  readonly stats: SessionStats = { bytesFetched: 0, chunkedMessages: 0, reconnects: 0 };
  capabilities: SessionCapabilities = {
    condstore: false,
    qresync: false,
    listStatus: false,
    uidplus: false,
    specialUse: false,
    move: false,
  };
  identity: { verifiedBy: IdentityProof; serverConfirmed: boolean } = {
    verifiedBy: 'user-login',
    serverConfirmed: false,
  };
  private conn: Connection | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  private readonly reporter: Reporter;
  /** UIDVALIDITY seen per folder in this session: a change across a reconnect invalidates UIDs. */
  private readonly uidValidity = new Map<string, string>();
  /** Connections that ran their ENABLE (deferred from login to the first SELECT: see select). */
  private readonly enabled = new WeakSet<ImapFlow>();

  constructor(
    private readonly endpoint: ImapEndpoint,
    readonly user: string,
    private readonly opts: OpenMailboxOptions,
  ) {
    this.reporter = opts.reporter ?? silentReporter;
  }

  async start(): Promise<void> {
    await this.connect();
  }

  listFolders(): Promise<FolderInfo[]> {
    return this.read('LIST', (c) => listFolderInfos(c));
  }

  listFoldersWithStatus(): Promise<{ folders: FolderInfo[]; statuses: Map<string, ImapFolderStatus> }> {
    return this.read('LIST', (c) => listFoldersWithStatus(c, this.capabilities));
  }

  statusAll(paths?: readonly string[]): Promise<Map<string, ImapFolderStatus>> {
    return this.read('STATUS', (c) => statusOfFolders(c, this.capabilities, paths));
  }

  listMessages(path: string, opts: { changedSince?: string } = {}): Promise<MessageListing> {
    return this.read(`list ${path}`, async (c) => {
      const status = await this.select(c, path, true, true);
      return listFolderMessages(c, status, this.capabilities, opts.changedSince);
    });
  }

  async *fetchMessages(path: string, uids: readonly number[]): AsyncIterable<FetchedMessage> {
    for await (const m of this.streamMessages(path, uids)) {
      if (m.body instanceof Uint8Array) {
        yield m as FetchedMessage;
        continue;
      }
      // The pieces are checked to tile 0..RFC822.SIZE exactly, so the buffer ends up full.
      const body = Buffer.allocUnsafe(m.size);
      let off = 0;
      for await (const piece of m.body) {
        body.set(piece, off);
        off += piece.length;
      }
      yield { ...m, body };
    }
  }

  async *streamMessages(
    path: string,
    uids: readonly number[],
    known?: ReadonlyMap<number, number>,
  ): AsyncIterable<StreamedMessage> {
    if (uids.length === 0) return;
    const sizes: Array<{ uid: number; size: number }> = [];
    const unsized: number[] = [];
    for (const uid of new Set(uids)) {
      const size = known?.get(uid);
      if (size === undefined) unsized.push(uid);
      else sizes.push({ uid, size });
    }
    // A UID expunged since it was listed is simply missing from its batch (or its large-message meta).
    if (unsized.length > 0) {
      const fetched = await this.read(`sizes ${path}`, async (c) => {
        await this.select(c, path, true);
        return fetchSizes(c, unsized);
      });
      sizes.push(...fetched);
    }
    const plan = { ...DEFAULT_FETCH_PLAN, ...this.opts.fetchPlan };
    const where = { path, user: this.user };
    const steps = planFetch(sizes, plan);
    const fetchStep = (step: FetchStep & { kind: 'batch' }) =>
      ahead(
        this.read(`fetch ${path}`, async (c) => {
          await this.select(c, path, true);
          return fetchBatch(c, step.uids, where);
        }),
      );
    // One batch ahead: the next one is on the wire while the caller stores this one.
    let next: Promise<FetchedMessage[]> | undefined;
    for (const [i, step] of steps.entries()) {
      throwIfAborted(this.opts.signal);
      if (step.kind === 'batch') {
        const batch = await (next ?? fetchStep(step));
        const following = steps[i + 1];
        next = following?.kind === 'batch' ? fetchStep(following) : undefined;
        for (const m of batch) this.stats.bytesFetched += m.size;
        // Handed out one by one, and dropped from here: a message is only held while its caller needs it.
        for (let m = batch.shift(); m !== undefined; m = batch.shift()) yield m;
        continue;
      }
      next = undefined;
      const meta = await this.read(`fetch ${path} UID ${step.uid}`, async (c) => {
        await this.select(c, path, true);
        return fetchLargeMeta(c, step.uid, this.capabilities);
      });
      if (meta === undefined) continue; // expunged meanwhile
      this.reporter.log(
        'debug',
        `fetching ${path} UID ${step.uid} (${meta.size} bytes) in ${step.ranges.length} pieces`,
        { user: this.user },
      );
      this.stats.chunkedMessages++;
      yield { ...meta, body: this.pieces(path, meta.uid, meta.size, step.ranges) };
    }
  }

  /** A large message's body, piece by piece (each one read step, retried alone), one piece ahead. */
  private async *pieces(
    path: string,
    uid: number,
    size: number,
    ranges: ReadonlyArray<{ start: number; length: number }>,
  ): AsyncIterable<Uint8Array> {
    const where = { path, user: this.user };
    const fetchOne = (r: { start: number; length: number }) =>
      ahead(
        this.read(`fetch ${path} UID ${uid} at ${r.start}`, async (c) => {
          await this.select(c, path, true);
          return fetchPiece(c, uid, r, size, where);
        }),
      );
    let filled = 0;
    let next = ranges[0] === undefined ? undefined : fetchOne(ranges[0]);
    for (const [i, r] of ranges.entries()) {
      throwIfAborted(this.opts.signal);
      const piece = await next;
      const following = ranges[i + 1];
      next = following === undefined ? undefined : fetchOne(following);
      if (piece === undefined) {
        // Expunged between pieces: what was read is not the message; the next run sees it gone.
        throw new MailarkError('IMAP_PROTOCOL', `${path} UID ${uid} disappeared while it was being fetched`, {
          hint: 'run the backup again',
          details: { ...where, uid, transient: true },
        });
      }
      filled += piece.length;
      this.stats.bytesFetched += piece.length;
      yield piece;
      if (piece.length < r.length) break; // short piece: the size check below reports it
    }
    if (filled !== size) throw sizeMismatch(where, uid, filled, size);
  }

  fetchMeta(path: string, uids: readonly number[]): Promise<MessageMetaInfo[]> {
    return this.read(`meta ${path}`, async (c) => {
      if (uids.length === 0) return [];
      await this.select(c, path, true);
      return fetchMetaInfos(c, uids, this.capabilities);
    });
  }

  async fetchByMessageId(
    path: string,
    messageId: string,
  ): Promise<Array<{ uid: number; size: number; sha256: string }>> {
    const wanted = normalizeMessageId(messageId);
    if (wanted === undefined) return [];
    const candidates = await this.read(`search ${path}`, async (c) => {
      await this.select(c, path, true);
      // SEARCH HEADER is a substring match (RFC 3501 §6.4.4): exact matches are kept below.
      const found = await c.search({ header: { 'message-id': wanted } }, { uid: true });
      return Array.isArray(found) ? found : [];
    });
    const exact = (await this.fetchMeta(path, candidates))
      .filter((m) => m.messageId === wanted)
      .map((m) => m.uid);
    const out: Array<{ uid: number; size: number; sha256: string }> = [];
    for await (const m of this.fetchMessages(path, exact)) {
      out.push({ uid: m.uid, size: m.size, sha256: createHash('sha256').update(m.body).digest('hex') });
    }
    return out;
  }

  append(
    path: string,
    body: Uint8Array,
    flags: readonly string[],
    internalDate: Date,
  ): Promise<AppendOutcome> {
    return this.write(`APPEND ${path}`, async (c) => {
      await this.select(c, path, false);
      const { allowed, refused } = permittedFlags(flags, c.mailbox ? c.mailbox.permanentFlags : undefined);
      if (refused.length > 0) {
        this.reporter.log('warn', `${path} does not store ${refused.join(' ')}: appended without them`, {
          user: this.user,
        });
      }
      const res = await c.append(
        path,
        Buffer.from(body.buffer, body.byteOffset, body.byteLength),
        allowed,
        internalDate,
      );
      if (!res)
        throw new MailarkError('IMAP_PROTOCOL', `APPEND to ${path} was refused`, {
          hint: 'see the server log',
        });
      const out: AppendOutcome = { refusedFlags: refused };
      if (res.uid !== undefined) out.uid = res.uid;
      if (res.uidValidity !== undefined) out.uidValidity = String(res.uidValidity);
      return out;
    });
  }

  createFolder(path: string): Promise<void> {
    return this.write(`CREATE ${path}`, (c) => createFolderOps(c, path));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const conn = this.conn;
    this.conn = undefined;
    if (!conn) return;
    await this.queue.catch(() => {});
    // LOGOUT politely, but never hang on a dead server.
    await Promise.race([
      conn.client.logout().catch(() => {}),
      new Promise((r) => setTimeout(r, 5000).unref()),
    ]);
    conn.client.close();
  }

  // --- connection management ---

  private async connect(): Promise<ImapFlow> {
    const conn = await connectAs(this.endpoint, this.user, {
      reporter: this.reporter,
      ...(this.opts.userPassword === undefined ? {} : { userPassword: this.opts.userPassword }),
      ...(this.opts.signal === undefined ? {} : { signal: this.opts.signal }),
    });
    this.conn = conn;
    this.identity = { verifiedBy: conn.verifiedBy, serverConfirmed: conn.serverConfirmed };
    const caps = conn.client.capabilities;
    this.capabilities = {
      condstore: caps.has('CONDSTORE') || caps.has('QRESYNC'),
      // Offered; the ENABLE before the first SELECT (see select) confirms it or turns it off.
      qresync: caps.has('QRESYNC'),
      listStatus: caps.has('LIST-STATUS'),
      uidplus: caps.has('UIDPLUS'),
      specialUse: caps.has('SPECIAL-USE'),
      move: caps.has('MOVE'),
    };
    this.reporter.log('debug', `IMAP session open for ${this.user}`, {
      url: this.endpoint.url,
      verifiedBy: conn.verifiedBy,
    });
    return conn.client;
  }

  private async client(): Promise<ImapFlow> {
    if (this.closed) throw new MailarkError('INTERNAL', 'IMAP session used after close()');
    if (this.conn?.client.usable) return this.conn.client;
    if (this.conn) {
      this.conn.client.close();
      this.conn = undefined;
      this.stats.reconnects++;
      this.reporter.log('info', `reconnecting to ${this.endpoint.url} as ${this.user}`);
    }
    return this.connect();
  }

  /** A read step: queued, retried with reconnect on transient failures. */
  private read<T>(action: string, step: Step<T>): Promise<T> {
    return this.exclusive(() =>
      withRetry(() => this.attempt(action, step), {
        attempts: this.opts.retry?.attempts ?? 4,
        baseDelayMs: this.opts.retry?.baseDelayMs ?? 500,
        reporter: this.reporter,
        label: `${this.user}: ${action}`,
        ...(this.opts.signal === undefined ? {} : { signal: this.opts.signal }),
      }),
    );
  }

  /** A write step: queued, never repeated (APPEND twice would duplicate the message). */
  private write<T>(action: string, step: Step<T>): Promise<T> {
    return this.exclusive(() => this.attempt(action, step));
  }

  private async attempt<T>(action: string, step: Step<T>): Promise<T> {
    throwIfAborted(this.opts.signal);
    const c = await this.client();
    try {
      return await step(c);
    } catch (err) {
      const e = imapError(err, { url: this.endpoint.url, user: this.user, action });
      // Whatever broke the connection (a parser error, a BYE) is cured by reconnecting.
      if (!c.usable && e.code !== 'IMAP_AUTH' && e.details !== undefined) e.details.transient = true;
      throw e;
    }
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => {});
    return run;
  }

  /** SELECT/EXAMINE and the folder's status; refuses a UIDVALIDITY that changed within this session. */
  private async select(
    c: ImapFlow,
    path: string,
    readOnly: boolean,
    fresh = false,
  ): Promise<ImapFolderStatus> {
    // Batches of one fetchMessages() keep the folder selected: no EXAMINE round trip per batch. A new
    // connection has nothing selected, so the UIDVALIDITY check below always runs after a reconnect.
    const current = c.mailbox;
    if (!fresh && current && current.path === path && (readOnly || !current.readOnly))
      return statusOf(current);
    if (!this.enabled.has(c)) {
      await enableExtensions(c);
      this.enabled.add(c);
      this.capabilities.qresync = c.capabilities.has('QRESYNC') && c.enabled.has('QRESYNC');
    }
    const mb = await c.mailboxOpen(path, { readOnly });
    const status = statusOf(mb);
    const seen = this.uidValidity.get(path);
    if (seen !== undefined && seen !== status.uidValidity) {
      this.uidValidity.set(path, status.uidValidity);
      throw new MailarkError(
        'IMAP_PROTOCOL',
        `UIDVALIDITY of ${path} changed during the session (${seen} → ${status.uidValidity})`,
        {
          hint: 'the server renumbered the folder: run the operation again (backup re-maps by content)',
          details: { user: this.user, path },
        },
      );
    }
    this.uidValidity.set(path, status.uidValidity);
    return status;
  }
}

/** A read fetched ahead of its use: its failure is seen when awaited, and never unhandled if it is not. */
function ahead<T>(p: Promise<T>): Promise<T> {
  p.catch(() => {});
  return p;
}
