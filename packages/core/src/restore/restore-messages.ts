/**
 * restore: puts messages from snapshots back into mailboxes, exactly, once, and checked.
 *
 * For each target user one session; for each message, in order:
 * 1. read its bytes from the repository (readMessageBytes verifies the SHA-256: corruption is a
 *    failed item, never a wrong message on the server);
 * 2. create the target folder and its missing parents;
 * 3. skip it as 'already-present' if the folder holds the same message: the messages with the same
 *    Message-ID (or, without one, of the same size) are fetched and compared by SHA-256, exact or
 *    CRLF-normalised (restore-plan.ts). So a re-run, or a restore after an interrupted one, never
 *    creates a duplicate;
 * 4. APPEND the exact bytes with flags, keywords and internal date (the adapter SELECTs first so the
 *    folder's PERMANENTFLAGS allow keywords);
 * 5. verify: fetch the server copy (by APPENDUID, RFC 4315, or by the same search as in 3) and
 *    compare its SHA-256; a copy normalised from bare LF to CRLF is accepted and reported as
 *    normalized; anything else fails the item. Flags or keywords the server did not keep are
 *    reported in refusedFlags.
 *
 * Failures are per item: the run goes on and the outcome says what happened to each message. When
 * the connection is lost, the remaining items of that user fail at once with that error; what was
 * restored is reported, and running the same restore again completes the rest (step 3).
 */
import { isMailarkError, MailarkError } from '../errors.js';
import type { LocatedMessage } from '../find/find-messages.js';
import { readMessageBytes, type TreeReader } from '../mail/snapshot-tree.js';
import { type Reporter, silentReporter } from '../progress.js';
import { writeEmlFile } from './eml-files.js';
import {
  candidateSizes,
  compareCopy,
  findPresent,
  fingerprint,
  foldersToCreate,
  joinLevels,
  type MessageFingerprint,
  type PlannedItem,
  planRestore,
} from './restore-plan.js';
import type { RestoreConnector, RestoreTarget, TargetCopy } from './restore-target.js';

export type RestoreStatus = 'restored' | 'already-present' | 'failed' | 'would-restore';

/** What happened to one message. */
export interface RestoreOutcome {
  ref: string;
  /** Target user and folder (Unicode path as on the target server). */
  user: string;
  folder: string;
  status: RestoreStatus;
  /** UID of the server copy (restored or already present). */
  uid?: number;
  size: number;
  sha256: string;
  error?: { code: string; message: string; hint?: string };
  /** Flags or keywords the server did not store. */
  refusedFlags?: string[];
  /** The server stored the message with bare LF turned into CRLF; verified in that form. */
  normalized?: boolean;
  /** With --eml: the file written. */
  file?: string;
}

export interface RestoreOptions {
  /** Restore into this user's mailbox instead of the original one. */
  toUser?: string;
  /** Restore into this folder (levels separated by "/") instead of the original one. */
  toFolder?: string;
  /** Decide and report ('would-restore', 'already-present'), change nothing. */
  dryRun?: boolean;
  reporter?: Reporter;
  signal?: AbortSignal;
}

/** Restores items into mailboxes; one outcome per item, in the order given. Never throws per item. */
export async function restoreMessages(
  repo: TreeReader,
  connect: RestoreConnector,
  items: readonly LocatedMessage[],
  opts: RestoreOptions = {},
): Promise<RestoreOutcome[]> {
  const reporter = opts.reporter ?? silentReporter;
  const outcomes = new Map<LocatedMessage, RestoreOutcome>();
  const progress = { done: 0, total: items.length };
  for (const [user, planned] of planRestore(items, opts)) {
    let session: RestoreTarget | undefined;
    try {
      session = await connect(user);
      await restoreForUser(repo, session, planned, opts, (item, outcome) => {
        outcomes.set(item.source, outcome);
        progress.done++;
        reporter.progress({ phase: 'restore', ...progress, current: `${user} ${outcome.folder}` });
      });
    } catch (err) {
      // The session could not be opened (unknown user, refused login, server down) or broke down.
      for (const item of planned) {
        if (!outcomes.has(item.source))
          outcomes.set(item.source, failed(item, joinLevels(item.levels, '/'), err));
      }
      reporter.log('error', `restore into ${user} failed: ${errorOf(err).message}`, {
        user,
        code: errorOf(err).code,
      });
    } finally {
      await session?.close().catch(() => {});
    }
  }
  return items.map((item) => outcomes.get(item) as RestoreOutcome);
}

async function restoreForUser(
  repo: TreeReader,
  session: RestoreTarget,
  planned: readonly PlannedItem<LocatedMessage>[],
  opts: RestoreOptions,
  done: (item: PlannedItem<LocatedMessage>, outcome: RestoreOutcome) => void,
): Promise<void> {
  const folders = await session.listFolders();
  const existing = new Set(folders.map((f) => f.path));
  // The server's delimiter: INBOX's, or any folder's; "/" on a server with only INBOX and no hint.
  const delimiter = (folders.find((f) => f.path.toUpperCase() === 'INBOX') ?? folders[0])?.delimiter || '/';
  for (const [i, item] of planned.entries()) {
    const folder = joinLevels(item.levels, delimiter);
    if (opts.signal?.aborted === true) {
      const stop = new MailarkError('INTERRUPTED', 'restore interrupted before this message');
      for (const rest of planned.slice(i)) done(rest, failed(rest, joinLevels(rest.levels, delimiter), stop));
      return;
    }
    try {
      done(item, await restoreOne(repo, session, item, folder, delimiter, existing, opts));
    } catch (err) {
      done(item, failed(item, folder, err));
      if (isMailarkError(err, 'IMAP_CONNECT')) {
        // The connection is gone: say so for every remaining message instead of retrying each one.
        for (const rest of planned.slice(i + 1))
          done(rest, failed(rest, joinLevels(rest.levels, delimiter), err));
        return;
      }
    }
  }
}

async function restoreOne(
  repo: TreeReader,
  session: RestoreTarget,
  item: PlannedItem<LocatedMessage>,
  folder: string,
  delimiter: string,
  existing: Set<string>,
  opts: RestoreOptions,
): Promise<RestoreOutcome> {
  const { entry } = item.source;
  const base = { ref: item.source.ref, user: item.user, folder, size: entry.size, sha256: entry.sha256 };
  const bytes = await readMessageBytes(repo, entry);
  const fp = fingerprint(bytes);
  const missing = foldersToCreate(item.levels, delimiter, existing);
  if (missing.length > 0) {
    if (opts.dryRun === true) return { ...base, status: 'would-restore' };
    for (const path of missing) {
      await session.createFolder(path);
      existing.add(path);
    }
  } else {
    const present = await presentCopy(session, folder, entry.h.messageId, fp);
    if (present !== undefined) return { ...base, status: 'already-present', uid: present.uid };
  }
  if (opts.dryRun === true) return { ...base, status: 'would-restore' };

  const wanted = [...entry.flags, ...entry.keywords];
  const appended = await session.append(folder, bytes, wanted, new Date(entry.internalDate));
  const copy =
    appended.uid !== undefined
      ? (await session.copies(folder, [appended.uid]))[0]
      : await newestSameCopy(session, folder, entry.h.messageId, fp);
  if (copy === undefined) {
    throw new MailarkError(
      'IMAP_PROTOCOL',
      `the server accepted the message into "${folder}" but does not show it`,
      {
        hint: 'look at the folder with a mail client; run the restore again to re-check (it will not duplicate)',
      },
    );
  }
  const verdict = compareCopy(fp, copy.sha256);
  if (verdict === 'different') {
    throw new MailarkError(
      'CORRUPT',
      `the server copy (UID ${copy.uid} in "${folder}") differs from the backed-up message: ${copy.size} bytes, SHA-256 ${copy.sha256}, expected ${entry.size} bytes ${entry.sha256}`,
      { hint: 'the server rewrote the message; use --eml to get the exact bytes instead' },
    );
  }
  // Without flags in the answer (no APPENDUID: found by search), trust what APPEND reported.
  const kept = copy.flags === undefined ? undefined : new Set(copy.flags.map((f) => f.toLowerCase()));
  const dropped = kept === undefined ? [] : wanted.filter((f) => !kept.has(f.toLowerCase()));
  const refused = [...new Set([...appended.refusedFlags, ...dropped])];
  const out: RestoreOutcome = { ...base, status: 'restored', uid: copy.uid };
  if (refused.length > 0) out.refusedFlags = refused.sort();
  if (verdict === 'normalized') out.normalized = true;
  return out;
}

/** The server's copies that could be this message: same Message-ID, or same size without one. */
function candidates(
  session: RestoreTarget,
  folder: string,
  messageId: string | undefined,
  fp: MessageFingerprint,
): Promise<TargetCopy[]> {
  return messageId !== undefined && messageId !== ''
    ? session.copiesByMessageId(folder, messageId)
    : session.copiesBySize(folder, candidateSizes(fp));
}

async function presentCopy(
  session: RestoreTarget,
  folder: string,
  messageId: string | undefined,
  fp: MessageFingerprint,
) {
  return findPresent(fp, await candidates(session, folder, messageId, fp));
}

/** Without APPENDUID: the highest-UID copy that is this message (the one just appended), with flags. */
async function newestSameCopy(
  session: RestoreTarget,
  folder: string,
  messageId: string | undefined,
  fp: MessageFingerprint,
) {
  const found = await candidates(session, folder, messageId, fp);
  const newest = found
    .filter((m) => compareCopy(fp, m.sha256) !== 'different')
    .sort((a, b) => b.uid - a.uid)[0];
  return newest === undefined ? undefined : ((await session.copies(folder, [newest.uid]))[0] ?? newest);
}

/** Writes items as .eml files into dir instead of touching any mailbox (see eml-files.ts). */
export async function restoreAsEml(
  repo: TreeReader,
  items: readonly LocatedMessage[],
  dir: string,
  opts: Pick<RestoreOptions, 'dryRun' | 'reporter' | 'signal'> = {},
): Promise<RestoreOutcome[]> {
  const reporter = opts.reporter ?? silentReporter;
  const out: RestoreOutcome[] = [];
  for (const item of items) {
    const base = {
      ref: item.ref,
      user: item.user,
      folder: item.folder.path,
      size: item.entry.size,
      sha256: item.entry.sha256,
    };
    if (opts.signal?.aborted === true) {
      out.push({
        ...base,
        status: 'failed',
        error: errorFields(new MailarkError('INTERRUPTED', 'restore interrupted before this message')),
      });
      continue;
    }
    const r = await writeEmlFile(repo, item.entry, dir, { dryRun: opts.dryRun === true });
    out.push({
      ...base,
      status: r.status,
      file: r.file,
      ...(r.error === undefined ? {} : { error: errorFields(r.error) }),
    });
    reporter.progress({ phase: 'restore', done: out.length, total: items.length, current: r.file });
  }
  return out;
}

function failed(item: PlannedItem<LocatedMessage>, folder: string, err: unknown): RestoreOutcome {
  const { entry } = item.source;
  return {
    ref: item.source.ref,
    user: item.user,
    folder,
    status: 'failed',
    size: entry.size,
    sha256: entry.sha256,
    error: errorFields(errorOf(err)),
  };
}

function errorOf(err: unknown): MailarkError {
  if (err instanceof MailarkError) return err;
  return new MailarkError('INTERNAL', err instanceof Error ? err.message : String(err), { cause: err });
}

function errorFields(err: MailarkError): NonNullable<RestoreOutcome['error']> {
  return err.hint === undefined
    ? { code: err.code, message: err.message }
    : { code: err.code, message: err.message, hint: err.hint };
}
