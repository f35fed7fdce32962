/**
 * `mailark check`: verifies the repository's structure and, with --read-data or --read-data-subset,
 * its data (core's checkRepository). Problems are reported as they are found (stderr) and listed
 * again at the end on stdout, each naming the damaged object, so a cron mail shows them all.
 * Exit 1 when anything is damaged, 0 when the repository is sound.
 */
import { checkRepository, MailarkError } from '@mailark/core';
import { defineCommand } from '../command.js';
import { formatCount } from '../text-format.js';

export const check = defineCommand({
  command: 'check',
  describe: 'verify the repository (structure, and data on request)',
  builder: (y) =>
    y
      // No default: yargs counts a defaulted option as given, so `conflicts` would refuse every
      // --read-data-subset.
      .option('read-data', { type: 'boolean', describe: 'download and verify every pack' })
      .option('read-data-subset', {
        type: 'number',
        describe: 'download and verify this percentage of the packs, chosen at random (e.g. 10)',
      })
      .conflicts('read-data', 'read-data-subset'),
  handler: async (args, ctx) => {
    const subset = args.readDataSubset;
    if (subset !== undefined && !(subset > 0 && subset <= 100)) {
      throw new MailarkError('USAGE', `--read-data-subset must be a percentage in (0, 100], not ${subset}`, {
        hint: 'e.g. --read-data-subset 10 verifies a tenth of the data',
      });
    }
    // Lenient: a damaged index object is a finding to report, not a reason to stop. No cache: check
    // judges the store's own index and snapshot objects, not local copies of them.
    const repo = await ctx.openRepository({ lock: 'shared', index: 'lenient', cache: false });
    const report = await checkRepository(repo, {
      reporter: ctx.output.progress,
      ...(args.readData === true ? { readData: true } : {}),
      ...(subset === undefined ? {} : { readDataSubset: subset }),
    });
    const c = report.counts;
    const out = ctx.output;
    out.line(
      `checked ${formatCount(c.snapshots)} snapshots, ${formatCount(c.trees)} trees, ${formatCount(c.packs)} packs, ` +
        `${formatCount(c.blobs)} blobs in ${formatCount(c.indexObjects)} index objects` +
        (c.packsRead > 0
          ? `; read ${formatCount(c.packsRead)} packs (${formatCount(c.blobsRead)} blobs)`
          : ''),
    );
    for (const w of report.warnings) out.line(`warning: ${issueText(w)}`);
    if (report.ok) {
      out.line('no errors were found');
    } else {
      out.line(`${report.errors.length} error${report.errors.length === 1 ? '' : 's'} found:`);
      for (const e of report.errors) out.line(`  ${issueText(e)}`);
      out.line(
        'hint: the objects named above are damaged or missing; "mailark repair index" rebuilds a bad index',
      );
    }
    out.result(report);
    return report.ok ? 0 : 1;
  },
  exitCodes: { 1: 'the repository is damaged (every damaged object is named), or the check could not run' },
});

/** The message, prefixed with the object when the message does not already name it. */
function issueText(issue: { object?: string; message: string }): string {
  return issue.object === undefined || issue.message.includes(issue.object)
    ? issue.message
    : `${issue.object}: ${issue.message}`;
}
