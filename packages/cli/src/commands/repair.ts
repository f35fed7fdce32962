/**
 * `mailark repair index`: rebuilds the index from the pack headers alone (core's rebuildIndex), for
 * an index that is damaged or lost. The repository is opened without loading the old index and
 * locked exclusively. Packs whose header cannot be read are named; their blobs stay unindexed.
 */
import { EXIT, rebuildIndex } from '@mailark/core';
import { defineCommand } from '../command.js';
import { formatCount } from '../text-format.js';

const index = defineCommand({
  command: 'index',
  describe: 'rebuild the index from the packs',
  handler: async (_args, ctx) => {
    const repo = await ctx.openRepository({ lock: 'exclusive', index: 'skip' });
    const r = await rebuildIndex(repo, { reporter: ctx.output.progress });
    ctx.output.line(
      `indexed ${formatCount(r.blobs)} blobs in ${formatCount(r.packs)} packs: wrote ` +
        `${r.writtenIndexObjects.length} index object(s), removed ${r.removedIndexObjects.length} old one(s)`,
    );
    for (const d of r.damagedPacks) ctx.output.line(`unreadable pack ${d.object}: ${d.message}`);
    if (r.damagedPacks.length > 0) {
      ctx.output.warn(
        `${r.damagedPacks.length} pack(s) could not be read; run "mailark check" to see which snapshots need them`,
      );
    }
    ctx.output.result(r);
    return r.damagedPacks.length > 0 ? EXIT.PARTIAL : EXIT.OK;
  },
  exitCodes: { 3: 'the index was rebuilt, but some packs could not be read (they are named)' },
});

export const repair = defineCommand({
  command: 'repair',
  describe: 'repair a damaged repository',
  subcommands: [index],
});
