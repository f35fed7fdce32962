/**
 * `mailark restore`: puts messages back, by reference (as `mailark find` prints them) or by scope
 * (a mailbox or folder as of a snapshot), into the original or another mailbox and folder, or as
 * .eml files. Every reference is resolved before anything is written, so a typo changes nothing.
 * Core's restoreMessages does the work; this file parses, picks the items and reports per item.
 */
import {
  EXIT,
  findMessages,
  imapRestoreConnector,
  type LocatedMessage,
  MailarkError,
  parseMessageQuery,
  preloadImap,
  type RestoreOutcome,
  resolveMessageRef,
  restoreAsEml,
  restoreMessages,
  type StoreCounters,
} from '@mailark/core';
import { defineCommand } from '../command.js';
import type { CommandContext } from '../context.js';
import { imapEndpointFrom, withImapOptions } from '../imap-options.js';
import { clip } from '../text-format.js';
import { QUERY_OPTIONS, storeCounters } from './find.js';

export const restore = defineCommand({
  command: 'restore [refs..]',
  describe: 'put messages back into a mailbox (or write them as .eml files), exactly and without duplicates',
  builder: (y) =>
    withImapOptions(
      y
        .positional('refs', {
          type: 'string',
          array: true,
          describe: 'message references from "mailark find"',
        })
        .option('to-user', {
          type: 'string',
          describe: 'restore into this mailbox instead of the original one',
        })
        .option('to-folder', {
          type: 'string',
          describe: 'restore into this folder ("/" between levels), e.g. "Restored 2026-11-21"',
        })
        .option('user', QUERY_OPTIONS.user)
        .option('folder', QUERY_OPTIONS.folder)
        .option('since', QUERY_OPTIONS.since)
        .option('until', QUERY_OPTIONS.until)
        .option('snapshot', {
          type: 'string',
          describe: 'with --user: restore as of this snapshot (default latest)',
        })
        .option('dry-run', {
          type: 'boolean',
          default: false,
          describe: 'say what would be restored, change nothing',
        })
        .option('eml', {
          type: 'string',
          describe: 'write .eml files into this directory instead of touching a mailbox',
        }),
    ),
  handler: async (args, ctx) => {
    const refs = (args.refs ?? []).map(String);
    const scoped = [args.user, args.folder, args.since, args.until, args.snapshot].some(
      (v) => v !== undefined,
    );
    if (refs.length > 0 && scoped) {
      throw new MailarkError('USAGE', 'give either message references or a scope (--user ...), not both', {
        hint: 'e.g. mailark restore REF... or mailark restore --user alice@example.com --folder INBOX',
      });
    }
    if (refs.length === 0 && args.user === undefined) {
      throw new MailarkError(
        'USAGE',
        'nothing to restore: give message references or --user (with --folder, --snapshot ...)',
        {
          hint: 'find references with "mailark find", e.g. mailark find --user alice@example.com --deleted-since yesterday',
        },
      );
    }
    if (args.eml !== undefined && (args.toUser !== undefined || args.toFolder !== undefined)) {
      throw new MailarkError('USAGE', '--eml writes files: --to-user and --to-folder do not apply', {
        hint: 'drop --to-user/--to-folder, or drop --eml to restore into a mailbox',
      });
    }
    if (args.eml === undefined) preloadImap(); // loads while the repository opens (scrypt)
    const repo = await ctx.openRepository({ lock: 'shared' });
    const items = refs.length > 0 ? await resolveAll(repo, refs) : await scopeItems(repo, args);
    const opts = { dryRun: args.dryRun, reporter: ctx.output.progress, signal: ctx.signal };
    let outcomes: RestoreOutcome[];
    if (args.eml !== undefined) {
      outcomes = await restoreAsEml(repo, items, args.eml, opts);
    } else {
      const endpoint = await imapEndpointFrom(args, ctx);
      const connect = imapRestoreConnector(endpoint, { reporter: ctx.output.progress, signal: ctx.signal });
      outcomes = await restoreMessages(repo, connect, items, {
        ...opts,
        ...(args.toUser === undefined ? {} : { toUser: args.toUser }),
        ...(args.toFolder === undefined ? {} : { toFolder: args.toFolder }),
      });
    }
    return report(ctx, outcomes, storeCounters(repo.store));
  },
  exitCodes: {
    [EXIT.OK]: 'every message restored or already there',
    [EXIT.FAILURE]: 'no message could be restored (or a reference or scope is wrong)',
    [EXIT.PARTIAL]: 'some messages failed: the per-item report says which and why; run again to retry them',
  },
  examples: [
    [
      'mailark restore -r s3://b/acme 3fa2b1c9/alice@acme.example/INBOX/1700000000/42 --imap imaps://mail.acme.example --imap-user admin',
      'put one message back',
    ],
    [
      'mailark restore -r /srv/mailark/acme --user alice@acme.example --folder "Clients/Été" --snapshot 3fa2b1c9 --imap ...',
      'a whole folder as of a snapshot',
    ],
    ['mailark restore -r /srv/mailark/acme REF --eml ./out', 'write the message as an .eml file'],
  ],
});

async function resolveAll(
  repo: Parameters<typeof resolveMessageRef>[0],
  refs: string[],
): Promise<LocatedMessage[]> {
  const out: LocatedMessage[] = [];
  for (const ref of refs) out.push(await resolveMessageRef(repo, ref));
  return out;
}

async function scopeItems(
  repo: Parameters<typeof findMessages>[0],
  args: {
    user?: string | undefined;
    folder?: string | undefined;
    since?: string | undefined;
    until?: string | undefined;
    snapshot?: string | undefined;
  },
): Promise<LocatedMessage[]> {
  const query = parseMessageQuery({
    user: args.user,
    folder: args.folder,
    since: args.since,
    until: args.until,
  });
  const found = await findMessages(
    repo,
    query,
    args.snapshot === undefined ? {} : { snapshot: args.snapshot },
  );
  if (found.located.length === 0) {
    const at = found.scanned[0];
    throw new MailarkError('NOT_FOUND', `snapshot ${at?.id.slice(0, 8)} holds no message for that scope`, {
      hint: 'check --user/--folder with "mailark ls SNAPSHOT --user U", or pick another --snapshot',
    });
  }
  return found.located;
}

/** Prints the per-item report and picks the exit code: 0 all good, 3 some failed, 1 none, 130 interrupted. */
function report(ctx: CommandContext, outcomes: RestoreOutcome[], store: StoreCounters | null): number {
  const out = ctx.output;
  const count = (s: RestoreOutcome['status']) => outcomes.filter((o) => o.status === s).length;
  const summary = {
    restored: count('restored'),
    alreadyPresent: count('already-present'),
    wouldRestore: count('would-restore'),
    failed: count('failed'),
  };
  // Store request counts (bytes read for one message: the benchmark checks them).
  out.result({ items: outcomes, summary, store });
  out.table(
    [
      { header: 'Status' },
      { header: 'Reference' },
      { header: 'User' },
      { header: 'Folder' },
      { header: 'UID', align: 'right' },
      { header: 'Note' },
    ],
    outcomes.map((o) => [
      o.status,
      o.ref,
      safe(o.user),
      safe(o.folder),
      o.uid === undefined ? '' : String(o.uid),
      note(o),
    ]),
  );
  out.info(
    `${summary.restored} restored, ${summary.alreadyPresent} already there, ${summary.failed} failed` +
      (summary.wouldRestore > 0 ? `, ${summary.wouldRestore} would be restored (dry run)` : ''),
  );
  for (const o of outcomes)
    if (o.error?.hint !== undefined && o.status === 'failed') out.warn(`${o.ref}: ${o.error.hint}`);
  if (summary.failed === 0) return EXIT.OK;
  if (outcomes.some((o) => o.error?.code === 'INTERRUPTED')) return EXIT.INTERRUPTED;
  return summary.failed === outcomes.length ? EXIT.FAILURE : EXIT.PARTIAL;
}

function note(o: RestoreOutcome): string {
  const parts: string[] = [];
  if (o.error !== undefined) parts.push(`${o.error.code}: ${o.error.message}`);
  if (o.refusedFlags !== undefined) parts.push(`server refused ${o.refusedFlags.join(' ')}`);
  if (o.normalized === true) parts.push('stored with CRLF line ends (verified in that form)');
  if (o.file !== undefined) parts.push(o.file);
  return safe(parts.join('; '), 200);
}

/** One table cell: no control characters reach the terminal. */
function safe(text: string, max = 80): string {
  return clip(text.replace(/[\u0000-\u001f\u007f]/g, ' '), max);
}
