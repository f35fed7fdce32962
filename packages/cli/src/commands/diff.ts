/**
 * `mailark diff SNAP1 SNAP2`: what changed between two snapshots (core's diffSnapshots). One line per
 * change, marked as restic marks them: `+` added, `-` expunged, `>` moved, `M` flags/keywords changed.
 * An expunged message's line ends with its reference into the older snapshot, ready for restore.
 */
import { diffSnapshots, type MessageMatch } from '@mailark/core';
import { defineCommand } from '../command.js';
import { clip, formatBytes, formatCount, formatTime, shortId } from '../text-format.js';

export const diff = defineCommand({
  command: 'diff <snapshot1> <snapshot2>',
  describe: 'show the messages and folders that changed between two snapshots',
  builder: (y) =>
    y
      .positional('snapshot1', { type: 'string', demandOption: true, describe: 'the older snapshot' })
      .positional('snapshot2', { type: 'string', demandOption: true, describe: 'the newer snapshot' })
      .option('user', { type: 'string', describe: 'only this mailbox (login name)' }),
  handler: async (args, ctx) => {
    const repo = await ctx.openRepository({ lock: 'shared' });
    const a = await repo.resolveSnapshot(args.snapshot1);
    const b = await repo.resolveSnapshot(args.snapshot2);
    const d = await diffSnapshots(repo, a, b, args.user === undefined ? {} : { user: args.user });
    const out = ctx.output;
    out.line(
      `comparing snapshot ${shortId(a.id)} (${formatTime(a.snapshot.time)}) to ${shortId(b.id)} (${formatTime(b.snapshot.time)})`,
    );
    out.line();
    for (const u of d.mailboxesAdded) out.line(`+ mailbox ${u}`);
    for (const u of d.mailboxesRemoved) out.line(`- mailbox ${u}`);
    for (const f of d.foldersAdded)
      out.line(`+ folder  ${f.user} ${f.folder} (${plural(f.messages, 'message')})`);
    for (const f of d.foldersRemoved)
      out.line(`- folder  ${f.user} ${f.folder} (${plural(f.messages, 'message')})`);
    for (const m of d.added) out.line(`+ ${describe(m)}`);
    for (const m of d.expunged) out.line(`- ${describe(m)}  ${m.ref}`);
    for (const { from, to } of d.moved) out.line(`> ${describe(from)} -> ${to.folder} uid ${to.uid}`);
    for (const c of d.flagChanges) {
      const marks = [
        ...c.flags.added.map((f) => `+${f}`),
        ...c.flags.removed.map((f) => `-${f}`),
        ...c.keywords.added.map((k) => `+${k}`),
        ...c.keywords.removed.map((k) => `-${k}`),
      ];
      out.line(`M ${describe(c.message)}  ${marks.join(' ')}`);
    }
    const s = d.summary;
    out.line();
    out.line(
      `${formatCount(s.added)} added (${formatBytes(s.addedBytes)}), ${formatCount(s.expunged)} expunged ` +
        `(${formatBytes(s.expungedBytes)}), ${formatCount(s.moved)} moved, ${formatCount(s.flagChanges)} with ` +
        `changed flags; folders +${s.foldersAdded} -${s.foldersRemoved}; mailboxes +${s.mailboxesAdded} -${s.mailboxesRemoved}`,
    );
    out.result(d);
  },
});

/** "alice@example.com INBOX uid 42 2024-05-01 08:00:00 Bob <bob@x> "Invoice 1234"" */
function describe(m: MessageMatch): string {
  const who = m.from === undefined ? '' : ` ${clip(m.from, 32)}`;
  const what = m.subject === undefined ? '' : ` "${clip(m.subject, 48)}"`;
  return `${m.user} ${m.folder} uid ${m.uid} ${formatTime(m.internalDate)}${who}${what}`;
}

function plural(n: number, word: string): string {
  return `${formatCount(n)} ${word}${n === 1 ? '' : 's'}`;
}
