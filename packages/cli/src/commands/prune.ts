/**
 * `mailark prune`: deletes the data that no snapshot and no backup checkpoint references (core's
 * pruneRepository). It takes an EXCLUSIVE lock, so it refuses (exit 11, naming the holder) while a
 * backup, check or restore runs, and none of them can start while it runs. Killed at any point, it
 * leaves a valid repository; running it again finishes the job.
 */
import { type PruneResult, parseMaxUnused, pruneRepository } from '@mailark/core';
import { defineCommand } from '../command.js';
import { formatBytes, formatCount } from '../text-format.js';

export const prune = defineCommand({
  command: 'prune',
  describe: 'delete data no snapshot references',
  builder: (y) =>
    y
      .option('dry-run', {
        type: 'boolean',
        default: false,
        describe: 'show what would be deleted; delete nothing',
      })
      .option('max-unused', {
        type: 'string',
        requiresArg: true,
        default: '5%',
        describe: 'unused space to tolerate rather than repack: a percentage, a size (500M) or "unlimited"',
      }),
  handler: async (args, ctx) => {
    const maxUnused = parseMaxUnused(args.maxUnused);
    const repo = await ctx.openRepository();
    const result = await pruneRepository(repo, {
      dryRun: args.dryRun,
      maxUnused,
      reporter: ctx.output.progress,
      signal: ctx.signal,
      lockOwner: 'mailark prune',
    });
    printPrune(ctx.output, result);
    ctx.output.result(result);
  },
  examples: [
    ['mailark prune -r /srv/mailark/acme --dry-run', 'show what would be deleted'],
    ['mailark prune -r s3://backups/acme --max-unused 0', 'repack until nothing unused is left'],
  ],
});

const packs = (n: number) => `${formatCount(n)} pack${n === 1 ? '' : 's'}`;

export function printPrune(out: { line(t?: string): void }, r: PruneResult): void {
  const s = r.stats;
  const [deleted, repacked] = r.dryRun ? ['would delete', 'would repack'] : ['deleted', 'repacked'];
  out.line();
  out.line(
    `used: ${formatCount(s.usedBlobs)} blobs, ${formatBytes(s.usedBytes)}; ` +
      `unused: ${formatCount(s.unusedBlobs)} blobs, ${formatBytes(s.unusedBytes)}` +
      (s.duplicateBlobs > 0 ? ` (${formatCount(s.duplicateBlobs)} duplicates)` : ''),
  );
  out.line(
    `${deleted} ${packs(r.deletedPacks.length + r.unindexedPacks.length)} (${formatBytes(s.deleteBytes)})` +
      (r.unindexedPacks.length > 0 ? `, ${formatCount(r.unindexedPacks.length)} of them in no index` : ''),
  );
  out.line(
    `${repacked} ${packs(r.repackedPacks.length)} (${formatBytes(s.repackBytes)}, ` +
      `${formatBytes(s.repackCopyBytes)} of it still used)`,
  );
  out.line(
    `packs: ${formatBytes(r.packBytesBefore)} before, ${formatBytes(r.packBytesAfter)} ${r.dryRun ? 'expected ' : ''}after; ` +
      `unused left ${formatBytes(s.unusedBytesAfter)}`,
  );
}
