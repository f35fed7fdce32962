/**
 * `mailark verify-export PATH`: proves an export complete and intact against the snapshot it came
 * from (core's verifyExport): every checksum, every message once per format with its bytes, flags,
 * keywords and dates, the manifest, and nothing else. Exit 0 when all of it holds, 1 naming the first
 * differences otherwise.
 */
import { EXIT, verifyExport } from '@mailark/core';
import { defineCommand } from '../command.js';
import { formatBytes, formatCount, shortId } from '../text-format.js';

export const verifyExportCommand = defineCommand({
  command: 'verify-export <path>',
  describe:
    'check an export (archive or directory) against its snapshot: checksums, every message, flags, dates',
  builder: (y) =>
    y
      .positional('path', {
        type: 'string',
        demandOption: true,
        describe: 'the export: a directory, .tar, .tar.gz/.tgz or .zip',
      })
      .option('snapshot', {
        type: 'string',
        describe: 'compare with this snapshot (default: the one the export names)',
      })
      .option('max-differences', {
        type: 'number',
        default: 20,
        describe: 'differences to print (all are counted)',
      })
      .option('tmp-dir', { type: 'string', describe: 'where checksum lists are staged (default TMPDIR)' }),
  handler: async (args, ctx) => {
    const repo = await ctx.openRepository({ lock: 'shared' });
    const r = await verifyExport(args.path, repo, {
      ...(args.snapshot === undefined ? {} : { snapshot: args.snapshot }),
      maxDifferences: Math.max(1, args.maxDifferences),
      ...(args.tmpDir === undefined ? {} : { tmpDir: args.tmpDir }),
      reporter: ctx.output.progress,
      signal: ctx.signal,
    });
    const out = ctx.output;
    const found = r.formats.map((f) => `${f} ${formatCount(r.messages.found[f] ?? 0)}`).join(', ');
    out.line(
      `${r.location} (${r.kind}) against snapshot ${shortId(r.snapshotId)} of ${r.tenant}: ` +
        `${formatCount(r.files)} files (${formatBytes(r.bytes)}), ${formatCount(r.checkedFiles)} match SHA256SUMS; ` +
        `${formatCount(r.messages.expected)} messages expected, found ${found}`,
    );
    if (r.ok) {
      out.line('OK: the export is complete and every file and message checks out');
    } else {
      out.line(
        `FAILED: ${formatCount(r.differenceCount)} differences${r.differenceCount > r.differences.length ? `, the first ${r.differences.length}:` : ':'}`,
      );
      for (const d of r.differences) out.line(`  ${d.kind.padEnd(10)} ${d.message}`);
    }
    out.result(r);
    return r.ok ? EXIT.OK : EXIT.FAILURE;
  },
  exitCodes: {
    [EXIT.OK]: 'the export is complete and intact',
    [EXIT.FAILURE]: 'differences were found (the first ones are named), or the export could not be read',
  },
  examples: [
    [
      'mailark verify-export /srv/out/acme.tar.gz -r /srv/mailark/acme',
      'check an export against its snapshot',
    ],
    [
      'mailark verify-export ./acme-export -r s3://b/acme --snapshot latest --json',
      'an unpacked export, machine-readable',
    ],
  ],
});
