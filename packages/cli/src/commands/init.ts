/**
 * `mailark init`: creates an empty repository at -r with the given password. Refuses a location that
 * already holds one (or part of one); the repository id it prints names the repository in reports.
 */
import { MailarkError, Repository } from '@mailark/core';
import { defineCommand } from '../command.js';

const MIB = 1024 * 1024;
/** The bounds Repository.init accepts (1 KiB .. 1 GiB). */
const MIN_PACK = 1024;
const MAX_PACK = 1024 * MIB;

export const init = defineCommand({
  command: 'init',
  describe: 'create a new repository',
  builder: (y) =>
    y.option('pack-size', {
      type: 'number',
      describe: 'target pack size in MiB (objects are packed to about this size)',
      default: 16,
    }),
  handler: async (args, ctx) => {
    // Checked here, in the unit the user typed (the repository's own check speaks bytes).
    if (!(args.packSize * MIB >= MIN_PACK && args.packSize * MIB <= MAX_PACK)) {
      throw new MailarkError('USAGE', `--pack-size ${args.packSize} is out of range`, {
        hint: 'give MiB from 0.001 (1 KiB) to 1024 (1 GiB); the default 16 suits most stores',
      });
    }
    const password = await ctx.password();
    const store = await ctx.openStore();
    const kdf = ctx.keyDerivation();
    const repo = await Repository.init(store, password, {
      packSize: Math.round(args.packSize * MIB),
      reporter: ctx.output.progress,
      ...(kdf === undefined ? {} : { kdf }),
    });
    ctx.defer(() => repo.close());
    ctx.output.line(`created mailark repository ${repo.config.id.slice(0, 8)} at ${store.location}`);
    ctx.output.info('keep the password safe: without it nothing in the repository can be read');
    ctx.output.result({
      id: repo.config.id,
      location: store.location,
      keyId: repo.keyId,
      packSize: repo.config.packSize,
      conditionalWrites: repo.config.capabilities.conditionalWrites,
    });
  },
  exitCodes: {
    1: 'failure, e.g. a repository already exists at that location, or the store is unreachable',
    10: null,
    11: null,
    12: null,
  },
  examples: [['MAILARK_PASSWORD_FILE=~/.mailark-pw mailark init -r /srv/mailark/acme', 'a local repository']],
});
