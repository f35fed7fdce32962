/**
 * `mailark export`: a whole tenant (or some mailboxes) in open formats — Maildir, mbox (mboxrd), EML —
 * with manifest.jsonl, folders.jsonl and SHA256SUMS, as a directory, .tar, .tar.gz or .zip, on disk,
 * on S3 (multipart upload) or on stdout. From a snapshot (-r REPO [--snapshot]) or straight from a
 * live IMAP server (--imap ...). Core's exportTenant does the work; this file picks the source and
 * the sink and reports.
 */
import {
  EXIT,
  EXPORT_FORMATS,
  type ExportFormat,
  type ExportSource,
  type ExportSummary,
  exportTenant,
  ImapExportSource,
  MailarkError,
  openArchiveSink,
  type ProgressState,
  type Reporter,
  SnapshotExportSource,
} from '@mailark/core';
import { defineCommand } from '../command.js';
import type { CommandContext } from '../context.js';
import { type ImapArgs, imapEndpointFrom, withImapOptions } from '../imap-options.js';
import { VERSION } from '../main.js';
import { formatBytes, formatCount, formatDuration, shortId } from '../text-format.js';

export const exportCommand = defineCommand({
  command: 'export',
  describe: 'export all mail of a tenant as Maildir, mbox and EML, with a manifest and checksums',
  builder: (y) =>
    withImapOptions(
      y
        .option('out', {
          type: 'string',
          demandOption: true,
          describe: 'DIR, FILE.tar, FILE.tar.gz/.tgz, FILE.zip, s3://bucket/key.tar.gz, or --out=- (stdout)',
        })
        .option('snapshot', {
          type: 'string',
          describe: 'snapshot to export: ID, unique prefix or latest (default)',
        })
        .option('users', {
          type: 'string',
          describe: 'only these mailboxes, comma-separated (needed with --imap)',
        })
        .option('format', {
          type: 'string',
          default: 'all',
          describe: 'maildir, mbox, eml, a comma-separated list, or all',
        })
        .option('tenant', {
          type: 'string',
          describe: 'with --imap: the tenant name (default: domain of the first user)',
        })
        .option('mbox-status-headers', {
          type: 'boolean',
          default: false,
          describe: 'add Status/X-Status/X-Keywords lines to mbox messages (default: exact bytes)',
        })
        .option('compression', { type: 'number', default: 6, describe: 'gzip/zip level, 0 (none) to 9' })
        .option('stdout-format', {
          type: 'string',
          choices: ['tar', 'tgz', 'zip'],
          default: 'tar',
          describe: 'archive type written to stdout with --out=-',
        })
        .option('tmp-dir', {
          type: 'string',
          describe: 'where mbox files are staged (default TMPDIR): needs room for the largest folder',
        }),
    ),
  handler: async (args, ctx) => {
    const formats = parseFormats(args.format);
    const users = args.users === undefined ? undefined : splitList(args.users);
    if (args.out === '') {
      throw new MailarkError('USAGE', '--out names no destination', {
        hint: 'give a directory, FILE.tar.gz, FILE.zip or s3://bucket/key.tgz; for stdout write --out=-',
      });
    }
    const toStdout = args.out === '-';
    if (toStdout && args.json) {
      throw new MailarkError('USAGE', '--json cannot be used with --out=-: stdout carries the archive', {
        hint: 'drop --json (the summary goes to stderr), or write the archive to a file or to S3',
      });
    }
    const live = (args.imap ?? '') !== '';
    if (live && (args.repo ?? '') !== '') {
      throw new MailarkError(
        'USAGE',
        'export reads either a repository (-r) or a live server (--imap), not both',
        {
          hint: 'drop -r to export straight from the server, or drop --imap to export a snapshot',
        },
      );
    }
    const source = live ? await liveSource(args, users, ctx) : await snapshotSource(args.snapshot, ctx);
    const chosen = users ?? (await source.users());
    const totals = await source.totals(chosen);
    const sink = await openArchiveSink(args.out, {
      compressionLevel: args.compression,
      stdoutKind: args.stdoutFormat as 'tar' | 'tgz' | 'zip',
      ...(args.tmpDir === undefined ? {} : { tmpDir: args.tmpDir }),
      s3: {
        // An upper bound is enough for the part size: every format holds every message once.
        ...(totals === undefined
          ? {}
          : { expectedBytes: Math.ceil(totals.bytes * formats.length * 1.05) + 64 * 1024 * 1024 }),
        ...s3Settings(args, ctx),
      },
      reporter: ctx.output.progress,
    });
    const summary = await exportTenant(source, sink, {
      formats,
      ...(users === undefined ? {} : { users }),
      mboxStatusHeaders: args.mboxStatusHeaders,
      ...(args.tmpDir === undefined ? {} : { tmpDir: args.tmpDir }),
      reporter: withRate(ctx.output.progress),
      signal: ctx.signal,
      toolVersion: VERSION,
    });
    report(ctx, summary, toStdout);
    return EXIT.OK;
  },
  exitCodes: {
    [EXIT.OK]: 'the export is complete under its final name',
    [EXIT.FAILURE]: 'the export failed; nothing was left under the final name',
    [EXIT.INTERRUPTED]: 'interrupted; nothing was left under the final name',
  },
  examples: [
    ['mailark export -r /srv/mailark/acme --out /srv/out/acme.tar.gz', 'the latest snapshot, every format'],
    [
      'mailark export -r s3://b/acme --format maildir --out s3://exports/acme.tgz',
      'Maildir only, streamed to S3',
    ],
    [
      'MAILARK_IMAP_PASSWORD_FILE=/etc/mailark/master mailark export --imap imaps://mail.acme.example --imap-user master --users a@acme.example,b@acme.example --out acme.zip',
      'straight from a live server, without a backup',
    ],
    ['mailark verify-export /srv/out/acme.tar.gz -r /srv/mailark/acme', 'then prove the export complete'],
  ],
});

type ExportArgs = ImapArgs & { users?: string | undefined; tenant?: string | undefined };

export function parseFormats(value: string): ExportFormat[] {
  const parts = splitList(value).map((p) => p.toLowerCase());
  if (parts.includes('all')) return [...EXPORT_FORMATS];
  const bad = parts.filter((p) => !EXPORT_FORMATS.includes(p as ExportFormat));
  if (bad.length > 0 || parts.length === 0) {
    throw new MailarkError('USAGE', `unknown export format ${bad.join(', ') || '(none)'}`, {
      hint: 'use --format maildir, mbox, eml, a comma-separated list of them, or all',
    });
  }
  return EXPORT_FORMATS.filter((f) => parts.includes(f));
}

function splitList(s: string): string[] {
  return s
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '');
}

async function snapshotSource(ref: string | undefined, ctx: CommandContext): Promise<ExportSource> {
  const repo = await ctx.openRepository({ lock: 'shared' });
  const { id, snapshot } = await repo.resolveSnapshot(ref ?? 'latest');
  if (snapshot.status === 'partial') {
    ctx.output.warn(
      `snapshot ${shortId(id)} is partial: ${snapshot.failures.map((f) => f.user).join(', ')} come from earlier snapshots`,
    );
  }
  return new SnapshotExportSource(repo, id, snapshot, { repository: ctx.repositoryLocation() });
}

async function liveSource(
  args: ExportArgs,
  users: string[] | undefined,
  ctx: CommandContext,
): Promise<ExportSource> {
  if (users === undefined || users.length === 0) {
    throw new MailarkError(
      'USAGE',
      'a live export needs the mailboxes: --users a@example.com,b@example.com',
      {
        hint: 'list every mailbox of the tenant; the server is never asked to enumerate its users',
      },
    );
  }
  const endpoint = await imapEndpointFrom(args, ctx);
  const tenant = args.tenant ?? domainOf(users[0] as string);
  return new ImapExportSource({
    endpoint,
    users: users.map((user) => ({ user })),
    tenant,
    reporter: ctx.output.progress,
    signal: ctx.signal,
  });
}

function domainOf(user: string): string {
  const at = user.lastIndexOf('@');
  if (at < 0 || at === user.length - 1) {
    throw new MailarkError('USAGE', `cannot tell the tenant from mailbox "${user}"`, {
      hint: 'pass --tenant NAME',
    });
  }
  return user.slice(at + 1).toLowerCase();
}

/** S3 client settings for an s3:// --out, from the same global options and environment as the store. */
function s3Settings(
  args: { s3Endpoint?: string | undefined; s3Region?: string | undefined; s3PathStyle?: boolean | undefined },
  ctx: CommandContext,
) {
  const env = ctx.env;
  const endpoint = args.s3Endpoint ?? env.MAILARK_S3_ENDPOINT;
  const region = args.s3Region ?? env.MAILARK_S3_REGION;
  const keyId = env.AWS_ACCESS_KEY_ID;
  const secret = env.AWS_SECRET_ACCESS_KEY;
  return {
    env: { ...env },
    ...(endpoint === undefined || endpoint === '' ? {} : { endpoint }),
    ...(region === undefined || region === '' ? {} : { region }),
    ...(args.s3PathStyle === undefined ? {} : { forcePathStyle: args.s3PathStyle }),
    ...(keyId && secret ? { credentials: { accessKeyId: keyId, secretAccessKey: secret } } : {}),
  };
}

/** Adds the throughput and, when the total is known, an ETA by bytes to the progress line. */
function withRate(inner: Reporter): Reporter {
  const t0 = Date.now();
  return {
    log: (level, message, fields) => inner.log(level, message, fields),
    progress(state: ProgressState) {
      const secs = Math.max(0.001, (Date.now() - t0) / 1000);
      const done = state.bytes ?? 0;
      const parts = [`${formatBytes(done / secs)}/s`];
      if (state.totalBytes !== undefined && done > 0 && done < state.totalBytes) {
        parts.push(`ETA ${formatDuration((secs / done) * (state.totalBytes - done))}`);
      }
      if (state.current !== undefined) parts.push(state.current);
      inner.progress({ ...state, current: parts.join(' · ') });
    },
  };
}

function report(ctx: CommandContext, s: ExportSummary, toStdout: boolean): void {
  const out = ctx.output;
  const from = s.origin.kind === 'snapshot' ? `snapshot ${shortId(s.origin.snapshotId)}` : s.origin.server;
  const lines = [
    `exported ${formatCount(s.counts.messages)} messages (${formatBytes(s.counts.bytes)}) of ${formatCount(s.counts.users)} mailboxes, ` +
      `${formatCount(s.counts.folders)} folders, from ${from} as ${s.formats.join(', ')}`,
    `to ${s.archive.location} (${s.archive.kind}, ${formatCount(s.files)} files, ${formatBytes(s.archive.bytes)}) in ${(s.durationMs / 1000).toFixed(1)} s`,
    ...(s.archive.sha256 === undefined ? [] : [`archive SHA-256 ${s.archive.sha256}`]),
    `SHA256SUMS SHA-256 ${s.sumsSha256}`,
  ];
  // With --out -, stdout is the archive: the summary goes to stderr.
  for (const l of lines) toStdout ? out.info(l) : out.line(l);
  out.result(s);
}
