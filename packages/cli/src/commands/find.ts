/**
 * `mailark find`: which backed-up messages match, with a reference `mailark restore` takes. Reads
 * only snapshot trees (never a message body); core's findMessages does the work.
 */
import { findMessages, type MessageMatch, parseMessageQuery, type StoreCounters } from '@mailark/core';
import { defineCommand } from '../command.js';
import { clip, formatBytes, formatTime, shortId } from '../text-format.js';

/** The query options find and restore share (restore uses them to pick a whole scope). */
export const QUERY_OPTIONS = {
  user: { type: 'string', describe: 'only this mailbox (login name, exact)' },
  folder: {
    type: 'string',
    describe: 'only this folder (Unicode path, e.g. "Clients/Été"); a trailing * matches subfolders',
  },
  since: {
    type: 'string',
    describe: 'internal date on or after: 2026-11-21, 2026-11-21T10:30, today, yesterday, 3d, 12h',
  },
  until: { type: 'string', describe: 'internal date up to the end of: same forms as --since' },
} as const;

export const find = defineCommand({
  command: 'find',
  describe: 'find backed-up messages by user, folder, sender, subject, date or Message-ID',
  builder: (y) =>
    y
      .option('snapshot', { type: 'string', describe: 'snapshot to search (id, prefix or "latest")' })
      .option('all-snapshots', {
        type: 'boolean',
        default: false,
        describe: 'search every snapshot; each message once with the snapshots holding it',
      })
      .option('user', QUERY_OPTIONS.user)
      .option('folder', QUERY_OPTIONS.folder)
      .option('since', QUERY_OPTIONS.since)
      .option('until', QUERY_OPTIONS.until)
      .option('from', { type: 'string', describe: 'sender contains (decoded, case-insensitive)' })
      .option('to', { type: 'string', describe: 'a To or Cc recipient contains' })
      .option('subject', { type: 'string', describe: 'subject contains (decoded, case-insensitive)' })
      .option('message-id', { type: 'string', describe: 'exact Message-ID (angle brackets optional)' })
      .option('larger', { type: 'string', describe: 'size above, e.g. 500k or 10M' })
      .option('has-attachment', {
        type: 'string',
        describe: 'an attachment name contains this (empty: any attachment)',
      })
      .option('deleted-since', {
        type: 'string',
        describe:
          'messages a snapshot since then held that --snapshot (default latest) no longer holds: a snapshot id or a date',
      })
      .option('limit', { type: 'number', describe: 'at most this many matches' }),
  handler: async (args, ctx) => {
    const query = parseMessageQuery({
      user: args.user,
      folder: args.folder,
      from: args.from,
      to: args.to,
      subject: args.subject,
      messageId: args.messageId,
      since: args.since,
      until: args.until,
      larger: args.larger,
      hasAttachment: args.hasAttachment,
    });
    const repo = await ctx.openRepository({ lock: 'shared' });
    const result = await findMessages(repo, query, {
      ...(args.snapshot === undefined ? {} : { snapshot: args.snapshot }),
      ...(args.deletedSince === undefined ? {} : { deletedSince: args.deletedSince }),
      ...(args.limit === undefined ? {} : { limit: args.limit }),
      allSnapshots: args.allSnapshots,
    });
    const out = ctx.output;
    // Store request counts with the result: what a query cost (the benchmark reads them).
    out.result({ ...withoutLocated(result), store: storeCounters(repo.store) });
    if (result.comparedTo !== undefined) {
      const first = result.scanned[0];
      out.info(
        `messages held since snapshot ${shortId(first?.id ?? '')} (${formatTime(first?.time)}) and gone from ${shortId(result.comparedTo.id)} (${formatTime(result.comparedTo.time)})`,
      );
    }
    const grouped = args.allSnapshots || result.comparedTo !== undefined;
    out.table(
      [
        { header: 'Reference' },
        { header: grouped ? 'Last seen' : 'Snapshot' },
        { header: 'User' },
        { header: 'Folder' },
        { header: 'Date' },
        { header: 'From' },
        { header: 'Subject' },
        { header: 'Size', align: 'right' },
        { header: 'Flags' },
        ...(grouped ? [{ header: 'Snapshots', align: 'right' as const }] : []),
      ],
      result.matches.map((m) => row(m, grouped)),
    );
    const n = result.matches.length;
    out.info(
      `${n} message${n === 1 ? '' : 's'}${result.truncated ? ` (first ${n}; raise --limit for more)` : ''} in ${result.scanned.length} snapshot${result.scanned.length === 1 ? '' : 's'}; times are UTC`,
    );
  },
  examples: [
    [
      'mailark find -r s3://b/acme --user alice@acme.example --from bob --since yesterday',
      'what Bob sent Alice since yesterday',
    ],
    [
      'mailark find -r /srv/mailark/acme --user alice@acme.example --deleted-since yesterday',
      'what disappeared from her mailbox',
    ],
    [
      'mailark find -r /srv/mailark/acme --message-id "<abc@example.com>" --all-snapshots --json',
      'every snapshot holding it',
    ],
  ],
});

function row(m: MessageMatch, grouped: boolean): string[] {
  return [
    m.ref,
    formatTime(m.snapshotTime),
    cell(m.user, 80),
    cell(m.folder, 80),
    formatTime(m.internalDate),
    cell(m.from ?? '', 40),
    cell(m.subject ?? '', 60),
    formatBytes(m.size),
    [...m.flags, ...m.keywords].join(' '),
    ...(grouped ? [String(m.snapshots?.length ?? 1)] : []),
  ];
}

/** One table cell: control characters never reach the terminal, long text is cut. */
function cell(text: string, max: number): string {
  return clip(text.replace(/[\u0000-\u001f\u007f]/g, ' '), max);
}

/** The store's request counters, when it keeps them (every built-in store does). */
export function storeCounters(store: object): StoreCounters | null {
  const c = (store as { counters?: StoreCounters }).counters;
  return c === undefined ? null : { ...c };
}

function withoutLocated<T extends { located: unknown }>(r: T): Omit<T, 'located'> {
  const { located: _located, ...rest } = r;
  return rest;
}
