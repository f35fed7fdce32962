/**
 * `mailark forget`: removes the snapshots a retention policy does not keep (restic's --keep-* options
 * and semantics; core's forgetSnapshots and applyRetentionPolicy). Only snapshot records go; `--prune`
 * (or a later `mailark prune`) deletes the data nothing references any more.
 * Calendar buckets (hours, days, ISO weeks, months, years) follow --time-zone, default the system's.
 */
import {
  assertTimeZone,
  type ForgetResult,
  forgetSnapshots,
  MailarkError,
  parseMaxUnused,
  pruneRepository,
  type RetentionPolicy,
} from '@mailark/core';
import { defineCommand } from '../command.js';
import { formatTime, shortId } from '../text-format.js';
import { printPrune } from './prune.js';

export const forget = defineCommand({
  command: 'forget',
  describe: 'remove snapshots according to a retention policy',
  builder: (y) =>
    y
      .option('keep-last', {
        type: 'number',
        requiresArg: true,
        describe: 'keep the N newest snapshots (-1: all)',
      })
      .option('keep-hourly', {
        type: 'number',
        requiresArg: true,
        describe: 'keep the newest snapshot of each of the last N hours',
      })
      .option('keep-daily', {
        type: 'number',
        requiresArg: true,
        describe: 'keep the newest snapshot of each of the last N days',
      })
      .option('keep-weekly', {
        type: 'number',
        requiresArg: true,
        describe: 'keep the newest snapshot of each of the last N ISO weeks',
      })
      .option('keep-monthly', {
        type: 'number',
        requiresArg: true,
        describe: 'keep the newest snapshot of each of the last N months',
      })
      .option('keep-yearly', {
        type: 'number',
        requiresArg: true,
        describe: 'keep the newest snapshot of each of the last N years',
      })
      .option('keep-within', {
        type: 'string',
        requiresArg: true,
        describe: 'keep every snapshot within this duration of the newest, e.g. 2d, 1w3d, 1y6m, 36h',
      })
      .option('keep-tag', {
        type: 'string',
        requiresArg: true,
        array: true,
        describe: 'keep snapshots with these tags (comma-separated: all of them; repeat: any of the lists)',
      })
      .option('tenant', { type: 'string', requiresArg: true, describe: "only this tenant's snapshots" })
      .option('time-zone', {
        type: 'string',
        requiresArg: true,
        describe: 'IANA zone of the calendar buckets (default: the system zone)',
      })
      .option('dry-run', {
        type: 'boolean',
        default: false,
        describe: 'show what would be removed; remove nothing',
      })
      .option('prune', {
        type: 'boolean',
        default: false,
        describe: 'then delete the data nothing references (prune)',
      })
      .option('max-unused', {
        type: 'string',
        requiresArg: true,
        default: '5%',
        describe: 'with --prune: unused space to tolerate',
      }),
  handler: async (args, ctx) => {
    const counts = {
      last: args.keepLast,
      hourly: args.keepHourly,
      daily: args.keepDaily,
      weekly: args.keepWeekly,
      monthly: args.keepMonthly,
      yearly: args.keepYearly,
    };
    const policy: RetentionPolicy = {};
    for (const [k, v] of Object.entries(counts)) if (v !== undefined) policy[k as keyof typeof counts] = v;
    if (args.keepWithin !== undefined) policy.within = args.keepWithin;
    if (args.keepTag !== undefined)
      policy.tags = args.keepTag.map((l) => l.split(',').filter((t) => t !== ''));
    const timeZone = args.timeZone ?? Intl.DateTimeFormat().resolvedOptions().timeZone;
    try {
      assertTimeZone(timeZone);
    } catch {
      throw new MailarkError('USAGE', `unknown time zone ${JSON.stringify(timeZone)}`, {
        hint: 'use an IANA name such as Europe/Paris or UTC',
      });
    }
    const maxUnused = parseMaxUnused(args.maxUnused);
    // Forgetting deletes snapshot objects and needs no index (restic's forget neither); --prune
    // loads it when it starts.
    const repo = await ctx.openRepository({ index: 'deferred' });
    const result = await forgetSnapshots(repo, {
      policy,
      timeZone,
      dryRun: args.dryRun,
      reporter: ctx.output.progress,
      signal: ctx.signal,
      ...(args.tenant === undefined ? {} : { tenant: args.tenant }),
    });
    printForget(ctx.output, result);
    // As restic: --prune runs only when snapshots were (or, dry run, would be) removed.
    if (!args.prune || result.removed.length === 0) {
      if (args.prune) ctx.output.info('no snapshot removed: nothing to prune');
      ctx.output.result(forgetJson(result));
      return;
    }
    const pruned = await pruneRepository(repo, {
      dryRun: args.dryRun,
      maxUnused,
      reporter: ctx.output.progress,
      signal: ctx.signal,
      lockOwner: 'mailark forget --prune',
    });
    printPrune(ctx.output, pruned);
    ctx.output.result({ ...forgetJson(result), prune: pruned });
  },
  examples: [
    [
      'mailark forget -r /srv/mailark/acme --keep-daily 7 --keep-weekly 5 --keep-monthly 12 --prune',
      'a common policy',
    ],
    ['mailark forget -r s3://backups/acme --keep-within 2d --keep-daily 30 --dry-run', 'show what would go'],
  ],
});

function forgetJson(r: ForgetResult) {
  return {
    dryRun: r.dryRun,
    policy: r.policy,
    removed: r.removed,
    kept: r.kept,
    groups: r.groups.map((g) => ({
      tenant: g.tenant,
      decisions: g.decisions.map((d) => ({
        id: d.id,
        time: d.snapshot.time,
        status: d.snapshot.status,
        keep: d.keep,
        reasons: d.reasons,
      })),
    })),
  };
}

function printForget(
  out: { line(t?: string): void; table(c: Array<{ header: string }>, r: string[][]): void },
  r: ForgetResult,
) {
  out.line(r.policy);
  for (const g of r.groups) {
    const keep = g.decisions.filter((d) => d.keep);
    const remove = g.decisions.filter((d) => !d.keep);
    out.line();
    out.line(`tenant ${g.tenant}: keep ${keep.length} snapshot${keep.length === 1 ? '' : 's'}`);
    if (keep.length > 0) {
      out.table(
        [{ header: 'ID' }, { header: 'Time (UTC)' }, { header: 'Status' }, { header: 'Reasons' }],
        keep.map((d) => [
          shortId(d.id),
          formatTime(d.snapshot.time),
          d.snapshot.status,
          d.reasons.join(', '),
        ]),
      );
    }
    if (remove.length > 0) {
      out.line(
        `tenant ${g.tenant}: ${r.dryRun ? 'would remove' : 'removed'} ${remove.length} snapshot${remove.length === 1 ? '' : 's'}`,
      );
      out.table(
        [{ header: 'ID' }, { header: 'Time (UTC)' }, { header: 'Status' }],
        remove.map((d) => [shortId(d.id), formatTime(d.snapshot.time), d.snapshot.status]),
      );
    }
  }
}
