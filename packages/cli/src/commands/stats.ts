/**
 * `mailark stats`: what the repository holds (objects per kind, blobs, compression) and what it
 * saves: the messages of every snapshot (or of --snapshot) against the bytes their data occupies.
 */
import { repositoryStats } from '@mailark/core';
import { defineCommand } from '../command.js';
import { formatBytes, formatCount, formatTable } from '../text-format.js';

export const stats = defineCommand({
  command: 'stats',
  describe: 'show repository size, compression and deduplication',
  builder: (y) =>
    y.option('snapshot', {
      type: 'string',
      describe: 'count the messages of this snapshot only ("latest", an id or a prefix)',
    }),
  handler: async (args, ctx) => {
    const repo = await ctx.openRepository({ lock: 'shared' });
    const s = await repositoryStats(repo, {
      reporter: ctx.output.progress,
      ...(args.snapshot === undefined ? {} : { snapshot: args.snapshot }),
    });
    const out = ctx.output;
    out.line(`repository ${repo.config.id.slice(0, 8)} at ${repo.location}`);
    out.line();
    const kinds = Object.entries(s.objects).filter(([, o]) => o.count > 0);
    for (const l of formatTable(
      [{ header: 'Objects' }, { header: 'Count', align: 'right' }, { header: 'Size', align: 'right' }],
      [
        ...kinds.map(([kind, o]) => [kind, formatCount(o.count), formatBytes(o.bytes)]),
        ['total', formatCount(kinds.reduce((n, [, o]) => n + o.count, 0)), formatBytes(s.totalBytes)],
      ],
    )) {
      out.line(l);
    }
    out.line();
    out.line(
      `blobs: ${formatCount(s.blobs.data.count)} data, ${formatCount(s.blobs.tree.count)} tree` +
        (s.blobs.duplicates > 0 ? `, ${formatCount(s.blobs.duplicates)} duplicate copies` : ''),
    );
    out.line(
      `compression: ${formatBytes(s.rawBytes)} raw in ${formatBytes(s.storedBytes)} stored (${ratio(s.compressionRatio)})`,
    );
    const l = s.logical;
    const scope =
      args.snapshot === undefined ? `${formatCount(l.snapshots)} snapshots` : `snapshot ${args.snapshot}`;
    out.line(
      `${scope}: ${formatCount(l.messages)} messages, ${formatBytes(l.messageBytes)}, stored in ` +
        `${formatBytes(l.storedDataBytes)} of data (${ratio(l.dedupRatio)} with deduplication and compression)`,
    );
    out.result(s);
  },
});

function ratio(r: number): string {
  return `${r.toFixed(2)}x`;
}
