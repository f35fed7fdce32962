/**
 * `mailark snapshots`: the snapshots of the repository, oldest first (as restic lists them).
 */
import { defineCommand } from '../command.js';
import { formatBytes, formatCount, formatTime, shortId } from '../text-format.js';

export const snapshots = defineCommand({
  command: 'snapshots',
  describe: 'list snapshots',
  builder: (y) => y.option('tenant', { type: 'string', describe: 'only snapshots of this tenant' }),
  handler: async (args, ctx) => {
    // Snapshots are objects of their own: listing them needs no index (as restic's snapshots).
    const repo = await ctx.openRepository({ index: 'deferred' });
    const all = (await repo.listSnapshots()).filter(
      (s) => args.tenant === undefined || s.snapshot.tenant === args.tenant,
    );
    ctx.output.table(
      [
        { header: 'ID' },
        { header: 'Time (UTC)' },
        { header: 'Tenant' },
        { header: 'Status' },
        { header: 'Mailboxes', align: 'right' },
        { header: 'Messages', align: 'right' },
        { header: 'Size', align: 'right' },
        { header: 'Tags' },
      ],
      all.map(({ id, snapshot: s }) => [
        shortId(id),
        formatTime(s.time),
        s.tenant,
        s.status === 'partial' ? `partial (${s.failures.length} failed)` : s.status,
        formatCount(s.stats.mailboxes),
        formatCount(s.stats.messages),
        formatBytes(s.stats.bytes),
        s.tags.join(','),
      ]),
    );
    ctx.output.line(`${all.length} snapshot${all.length === 1 ? '' : 's'}`);
    ctx.output.result(all.map(({ id, snapshot }) => ({ id, ...snapshot })));
  },
  exitCodes: { 11: null },
});
