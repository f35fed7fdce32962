/**
 * `mailark backup`: one incremental backup run of a tenant's mailboxes into a snapshot (core's
 * runBackup). This file parses the mailbox list, wires the IMAP endpoint and the progress line, and
 * reports per mailbox. Exit 0 complete, 3 partial (failing mailboxes named), 1 nothing saved.
 */
import {
  type BackupResult,
  type BackupUser,
  EXIT,
  type ImapEndpoint,
  MailarkError,
  type MailboxResult,
  type ProgressState,
  parseImapEndpoint,
  preloadImap,
  type Reporter,
  readUsersFile,
  runBackup,
} from '@mailark/core';
import { defineCommand } from '../command.js';
import type { CommandContext } from '../context.js';
import { type ImapArgs, imapEndpointFrom, withImapOptions } from '../imap-options.js';
import { VERSION } from '../main.js';
import { readPassword } from '../password.js';
import { formatBytes, formatCount, formatDuration, shortId } from '../text-format.js';

export const backup = defineCommand({
  command: 'backup',
  describe: 'back up every folder of every mailbox of a tenant (incremental, deduplicated)',
  builder: (y) =>
    withImapOptions(
      y
        .option('users', {
          type: 'string',
          describe: 'mailboxes to back up, comma-separated: a@example.com,b@example.com',
        })
        .option('users-file', {
          type: 'string',
          describe: 'file of mailboxes, one "user[,password-file]" per line (# comments)',
        })
        .option('tenant', {
          type: 'string',
          describe: 'tenant name (default: the domain of the first mailbox)',
        })
        .option('concurrency', { type: 'number', default: 4, describe: 'mailboxes backed up at once' })
        .option('tag', { type: 'string', array: true, describe: 'tag the snapshot (repeatable)' })
        .option('dry-run', { type: 'boolean', default: false, describe: 'plan and report, store nothing' })
        .option('checkpoint-mib', {
          type: 'number',
          default: 64,
          describe: 'write a resumable checkpoint every N MiB fetched (and after each mailbox)',
        }),
    ),
  handler: async (args, ctx) => {
    const users = await usersFrom(args, ctx);
    const concurrency = args.concurrency;
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) {
      throw new MailarkError('USAGE', `--concurrency ${concurrency} is out of range`, {
        hint: 'use 1 to 64; each mailbox in flight holds one IMAP connection',
      });
    }
    if (!(args.checkpointMib > 0)) {
      throw new MailarkError('USAGE', `--checkpoint-mib ${args.checkpointMib} must be positive`, {
        hint: 'the default, 64, suits most runs; smaller values checkpoint more often',
      });
    }
    const tenant = args.tenant ?? domainOf(users[0]?.user ?? '');
    const endpoint = await endpointFor(args, users, ctx);
    // Not awaited: the first mailboxes log in while the repository opens (key derivation);
    // runBackup awaits it before planning or writing anything, and throws its error if it fails.
    // The index is deferred: loaded when the run first stores a blob, never on an unchanged tenant.
    // IMAP (loading imapflow, ~100 ms of main-thread CPU, then the logins) starts once the key
    // derivation is on the thread pool: started first, it would hold back the reads before it.
    let derivingKey = () => {};
    const keyDerivation = new Promise<void>((resolve) => {
      derivingKey = resolve;
    });
    const repo = ctx.openRepository({ onKeyDerivation: derivingKey, index: 'deferred' });
    repo.then(derivingKey, derivingKey); // also: a failed open is runBackup's to report
    await keyDerivation;
    preloadImap();
    const result = await runBackup(repo, {
      endpoint,
      users,
      tenant,
      concurrency,
      tags: (args.tag ?? []).map(String),
      dryRun: args.dryRun,
      reporter: withRateAndEta(ctx.output.progress, concurrency),
      signal: ctx.signal,
      toolVersion: VERSION,
      checkpointBytes: Math.round(args.checkpointMib * 1024 * 1024),
    });
    return report(ctx, result);
  },
  exitCodes: {
    [EXIT.OK]: 'every mailbox backed up (snapshot complete)',
    [EXIT.FAILURE]: 'nothing could be saved (every mailbox failed and none was backed up before)',
    [EXIT.PARTIAL]: 'snapshot saved as partial: the failing mailboxes are named, their last good state kept',
    [EXIT.INTERRUPTED]: 'interrupted: a checkpoint was written, the next run resumes from it',
  },
  examples: [
    [
      'MAILARK_IMAP_PASSWORD_FILE=/etc/mailark/master mailark backup -r s3://b/acme --imap imaps://mail.acme.example --imap-user master --users-file /etc/mailark/acme.users',
      'nightly backup of a tenant through a Dovecot master user',
    ],
    [
      'mailark backup -r /srv/mailark/acme --imap imap://127.0.0.1:143 --imap-user admin --users alice@acme.example,bob@acme.example --dry-run',
      'what would be fetched, without storing anything',
    ],
  ],
});

type BackupArgs = ImapArgs & { users?: string | undefined; usersFile?: string | undefined };

/** The mailbox list from --users or --users-file (lines "user[,password-file]", # comments). */
async function usersFrom(args: BackupArgs, ctx: CommandContext): Promise<BackupUser[]> {
  if ((args.users === undefined) === (args.usersFile === undefined)) {
    throw new MailarkError('USAGE', 'give the mailboxes with either --users or --users-file', {
      hint: 'e.g. --users alice@example.com,bob@example.com or --users-file tenant.users',
    });
  }
  if (args.users !== undefined) {
    return args.users
      .split(',')
      .map((u) => u.trim())
      .filter((u) => u !== '')
      .map((user) => ({ user }));
  }
  const file = args.usersFile as string;
  const out: BackupUser[] = [];
  for (const { user, passwordFile } of await readUsersFile(
    file,
    'check the path given by --users-file and its permissions',
  )) {
    if (passwordFile === undefined) {
      out.push({ user });
      continue;
    }
    const password = await readPassword(
      {
        what: `password of ${user}`,
        file: passwordFile,
        fileVar: '',
        valueVar: '',
        fileOption: '--users-file',
      },
      {},
    );
    ctx.registerSecret(password);
    out.push({ user, password });
  }
  return out;
}

/**
 * The IMAP endpoint. When every mailbox brings its own password (--imap-auth user and a password
 * file per line), no tenant-wide password is needed.
 */
async function endpointFor(
  args: BackupArgs,
  users: BackupUser[],
  ctx: CommandContext,
): Promise<ImapEndpoint> {
  const allOwn = users.every((u) => u.password !== undefined);
  const env = ctx.env;
  const hasShared =
    (args.imapPasswordFile ?? '') !== '' ||
    (env.MAILARK_IMAP_PASSWORD_FILE ?? '') !== '' ||
    (env.MAILARK_IMAP_PASSWORD ?? '') !== '';
  const url = args.imap ?? env.MAILARK_IMAP_URL;
  if (allOwn && !hasShared && url !== undefined && url !== '') {
    return parseImapEndpoint(url, {
      auth: 'user',
      ...(args.imapTls === undefined ? {} : { tls: args.imapTls as 'require' | 'allow' | 'off' }),
      ...(args.imapInsecure === undefined ? {} : { insecure: args.imapInsecure }),
    });
  }
  return imapEndpointFrom(args, ctx);
}

function domainOf(user: string): string {
  const at = user.lastIndexOf('@');
  if (at < 0 || at === user.length - 1) {
    throw new MailarkError('USAGE', `cannot tell the tenant from mailbox "${user}"`, {
      hint: 'pass --tenant NAME, e.g. --tenant example.com',
    });
  }
  return user.slice(at + 1).toLowerCase();
}

/**
 * Adds the ETA and the fetch rate to the progress line (before the mailbox name, which a narrow
 * terminal cuts first). ETA: while every remaining mailbox is in flight, from messages fetched vs the
 * messages their STATUS round expects; otherwise from mailboxes done vs total.
 */
export function withRateAndEta(inner: Reporter, concurrency: number, now: () => number = Date.now): Reporter {
  const t0 = now();
  return {
    log: (level, message, fields) => inner.log(level, message, fields),
    progress(state: ProgressState) {
      const secs = Math.max(0.001, (now() - t0) / 1000);
      const parts: string[] = [];
      const { total, done, messages = 0, totalMessages = 0 } = state;
      if (total !== undefined && done < total) {
        if (total - done <= concurrency && messages > 0 && totalMessages > messages) {
          parts.push(`ETA ${formatDuration((secs / messages) * (totalMessages - messages))}`);
        } else if (done > 0) {
          parts.push(`ETA ${formatDuration((secs / done) * (total - done))}`);
        }
      }
      parts.push(`${formatBytes((state.bytes ?? 0) / secs)}/s`);
      if (state.current !== undefined) parts.push(state.current);
      inner.progress({ ...state, current: parts.join(' · ') });
    },
  };
}

/**
 * Each distinct failure once: `error: <message> (<mailboxes>)`, then its hint once. An unreachable
 * server fails every mailbox with the same message: one error line and one hint, not one per mailbox.
 */
function reportFailures(ctx: CommandContext, failed: readonly MailboxResult[]): void {
  const groups = new Map<string, { users: string[]; hint: string | undefined }>();
  for (const m of failed) {
    const message = m.error?.message ?? 'failed';
    const g = groups.get(message) ?? { users: [], hint: m.error?.hint };
    g.users.push(m.user);
    groups.set(message, g);
  }
  const hints = new Set<string>();
  for (const [message, g] of groups) {
    const who = g.users.length === 1 ? g.users[0] : `${g.users.length} mailboxes: ${g.users.join(', ')}`;
    ctx.output.progress.log('error', `${message} (${who})`);
    // --json: the hint is in the result document (mailboxes[].error.hint).
    if (g.hint !== undefined && g.hint !== '' && !hints.has(g.hint) && !ctx.output.json) {
      hints.add(g.hint);
      ctx.output.diagnostic(`hint: ${g.hint}`);
    }
  }
}

function report(ctx: CommandContext, r: BackupResult): number {
  const out = ctx.output;
  out.table(
    [
      { header: 'Mailbox' },
      { header: 'State' },
      { header: 'Messages', align: 'right' },
      { header: 'New', align: 'right' },
      { header: 'Flags', align: 'right' },
      { header: 'Expunged', align: 'right' },
      { header: 'Fetched', align: 'right' },
      { header: 'Stored', align: 'right' },
      { header: 'Error' },
    ],
    r.mailboxes.map((m) => [
      m.user,
      m.state,
      formatCount(m.messages),
      formatCount(m.newMessages),
      formatCount(m.changedFlags),
      formatCount(m.expunged),
      formatBytes(m.fetchedBytes),
      formatBytes(m.storedBytes),
      m.error?.code ?? '',
    ]),
  );
  const failed = r.mailboxes.filter((m) => m.state === 'failed');
  if (r.dryRun) {
    out.line(
      `dry run: nothing stored; ${formatCount(r.mailboxes.reduce((n, m) => n + m.newMessages, 0))} messages would be fetched`,
    );
  } else if (r.snapshotId !== undefined && r.snapshot !== undefined) {
    const s = r.snapshot.stats;
    out.line(
      `snapshot ${shortId(r.snapshotId)} saved (${r.snapshot.status}): ${formatCount(s.mailboxes)} mailboxes, ` +
        `${formatCount(s.messages)} messages, ${formatBytes(s.bytes)}; fetched ${formatBytes(s.fetchedBytes)}, ` +
        `stored ${formatBytes(s.storedBytes)} in ${(s.durationMs / 1000).toFixed(1)} s`,
    );
  } else {
    out.line('no snapshot saved: no mailbox could be backed up');
  }
  reportFailures(ctx, failed);
  out.result({
    snapshot: r.snapshotId ?? null,
    status: r.status,
    dryRun: r.dryRun,
    checkpoints: r.checkpoints,
    stats: r.snapshot?.stats ?? null,
    mailboxes: r.mailboxes.map((m) => ({
      user: m.user,
      state: m.state,
      folders: m.folders,
      messages: m.messages,
      new: m.newMessages,
      changedFlags: m.changedFlags,
      expunged: m.expunged,
      fetchedMessages: m.fetchedMessages,
      bytesFetched: m.fetchedBytes,
      bytesStored: m.storedBytes,
      refetched: m.refetched,
      matched: m.matched,
      durationMs: m.durationMs,
      attempts: m.attempts,
      error: m.error ?? null,
    })),
  });
  if (r.status === 'complete') return EXIT.OK;
  return r.status === 'partial' ? EXIT.PARTIAL : EXIT.FAILURE;
}
