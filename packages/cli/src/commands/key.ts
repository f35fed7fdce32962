/**
 * `mailark key list|add|remove`: the passwords that open a repository. Each key file wraps the same
 * master key under one password, so adding or removing a password never re-encrypts data. The new
 * password of `key add` comes from --new-password-file, MAILARK_NEW_PASSWORD_FILE or
 * MAILARK_NEW_PASSWORD, never from an argument.
 */
import { MailarkError } from '@mailark/core';
import { defineCommand } from '../command.js';
import { NEW_PASSWORD, readPassword } from '../password.js';
import { formatTime, shortId } from '../text-format.js';

const list = defineCommand({
  command: 'list',
  describe: 'list the keys (passwords) of the repository',
  handler: async (_args, ctx) => {
    // Keys need no index: a damaged one never stands between a user and the passwords.
    const repo = await ctx.openRepository({ index: 'deferred' });
    const keys = await repo.listKeys();
    ctx.output.table(
      [{ header: ' ID' }, { header: 'User' }, { header: 'Host' }, { header: 'Created (UTC)' }],
      keys.map((k) => [`${k.current ? '*' : ' '}${shortId(k.id)}`, k.user, k.host, formatTime(k.created)]),
    );
    ctx.output.result(keys);
  },
  exitCodes: { 11: null },
});

const add = defineCommand({
  command: 'add',
  describe: 'add a password',
  builder: (y) =>
    y.option('new-password-file', {
      type: 'string',
      describe: 'file holding the new password (env MAILARK_NEW_PASSWORD_FILE; or MAILARK_NEW_PASSWORD)',
    }),
  handler: async (args, ctx) => {
    // Read the new password first: a missing one is a usage error that needs no repository.
    const password = await readPassword({ ...NEW_PASSWORD, file: args.newPasswordFile }, ctx.env);
    ctx.registerSecret(password);
    const repo = await ctx.openRepository({ index: 'deferred' });
    const kdf = ctx.keyDerivation();
    const id = await repo.addKey(password, kdf === undefined ? {} : { kdf });
    ctx.output.line(`added key ${shortId(id)}`);
    ctx.output.result({ id });
  },
  exitCodes: { 11: null },
});

const remove = defineCommand({
  command: 'remove <id>',
  describe: 'remove a password (not the one in use, nor the last)',
  builder: (y) =>
    y.positional('id', { type: 'string', demandOption: true, describe: 'key id or unique prefix' }),
  handler: async (args, ctx) => {
    const repo = await ctx.openRepository({ lock: 'exclusive', index: 'deferred' });
    const prefix = args.id.toLowerCase();
    const hint = 'list keys with "mailark key list" and give at least 4 characters of an id';
    if (!/^[0-9a-f]{4,64}$/.test(prefix)) {
      throw new MailarkError('USAGE', `"${args.id}" is not a key id`, { hint });
    }
    const [hit, other] = (await repo.listKeys()).filter((k) => k.id.startsWith(prefix));
    if (hit === undefined)
      throw new MailarkError('NOT_FOUND', `no key ${args.id} in ${repo.location}`, { hint });
    if (other !== undefined)
      throw new MailarkError('USAGE', `key prefix "${args.id}" is ambiguous`, { hint });
    await repo.removeKey(hit.id);
    ctx.output.line(`removed key ${shortId(hit.id)}`);
    ctx.output.result({ removed: hit.id });
  },
});

export const key = defineCommand({
  command: 'key',
  describe: 'manage the passwords of a repository',
  subcommands: [list, add, remove],
});
