/**
 * `mailark init`: creates an empty repository at -r with the given password. Refuses a location that
 * already holds one (or part of one); the repository id it prints names the repository in reports.
 */
import { Repository } from '@mailark/core';
import { defineCommand } from '../command.js';

const MIB = 1024 * 1024;

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
