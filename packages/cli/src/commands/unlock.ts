/**
 * `mailark unlock`: removes stale locks (left by a process that crashed or a host that vanished);
 * with --remove-all, every lock, also live ones: only when sure no mailark is running on the repository.
 */
import { defineCommand } from '../command.js';
import { formatTime, shortId } from '../text-format.js';

export const unlock = defineCommand({
  command: 'unlock',
  describe: 'remove stale locks',
  builder: (y) =>
    y.option('remove-all', {
      type: 'boolean',
      default: false,
      describe: 'remove every lock, also those of running processes',
    }),
  handler: async (args, ctx) => {
    const repo = await ctx.openRepository({ index: 'deferred' });
    const removed = args.removeAll ? await repo.removeAllLocks() : await repo.removeStaleLocks();
    const remaining = args.removeAll ? [] : await repo.listLocks();
    const what = args.removeAll ? 'lock' : 'stale lock';
    ctx.output.line(`removed ${removed.length} ${what}${removed.length === 1 ? '' : 's'}`);
    for (const id of removed) ctx.output.line(`  ${shortId(id)}`);
    for (const l of remaining) {
      ctx.output.info(
        `still locked by ${l.owner} on ${l.host} (pid ${l.pid}, ${l.mode}) since ${formatTime(l.time)}: ` +
          'use --remove-all only if it is gone',
      );
    }
    ctx.output.result({ removed, remaining });
  },
  exitCodes: { 11: null },
});
