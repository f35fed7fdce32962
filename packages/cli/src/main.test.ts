import { MailarkError } from '@mailark/core';
import { describe, expect, it } from 'vitest';
import { defineCommand, type MailarkCommand } from './command.js';
import { run } from './testing/capture.js';

/** Commands that exercise the framework without a repository. */
const calls: string[] = [];
const testCommands: MailarkCommand[] = [
  defineCommand({
    command: 'echo <word>',
    describe: 'prints its argument',
    builder: (y) =>
      y
        .positional('word', { type: 'string', demandOption: true })
        .option('times', { type: 'number', default: 1 }),
    handler: async (args, ctx) => {
      for (let i = 0; i < args.times; i++) ctx.output.line(args.word);
      ctx.output.result({ word: args.word, times: args.times });
    },
  }),
  defineCommand({
    command: 'fail <code>',
    describe: 'throws a MailarkError with that code',
    builder: (y) => y.positional('code', { type: 'string', demandOption: true }),
    handler: async (args, ctx) => {
      ctx.defer(async () => {
        calls.push('cleanup');
      });
      throw new MailarkError(args.code as 'LOCKED', `failed with ${args.code}`, { hint: 'do the fix' });
    },
    exitCodes: { 3: 'partial' },
  }),
  defineCommand({
    command: 'crash',
    describe: 'throws a plain Error',
    handler: async () => {
      throw new Error('boom');
    },
  }),
  defineCommand({
    command: 'wait',
    describe: 'waits for the signal',
    handler: async (_args, ctx) =>
      new Promise((_resolve, reject) => {
        ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason));
      }),
  }),
  defineCommand({
    command: 'hang',
    describe: 'never finishes, and ignores the signal (a store request hung on a dead network)',
    handler: () => new Promise(() => {}),
  }),
  defineCommand({
    command: 'secret',
    describe: 'reads the password and throws an error that contains it',
    handler: async (_args, ctx) => {
      const pw = await ctx.password();
      throw new MailarkError('STORE_IO', `server said: bad ${pw}`);
    },
  }),
  defineCommand({
    command: 'where',
    describe: 'prints the repository location',
    handler: async (_args, ctx) => {
      ctx.output.line(ctx.repositoryLocation());
    },
  }),
  defineCommand({
    command: 'group',
    describe: 'a group',
    subcommands: [
      defineCommand({
        command: 'sub <id>',
        describe: 'a subcommand',
        builder: (y) => y.positional('id', { type: 'string', demandOption: true }),
        handler: async (args, ctx) => {
          ctx.output.line(`sub ${args.id}`);
        },
      }),
    ],
  }),
];
const cli = (argv: string[], opts: Parameters<typeof run>[1] = {}) =>
  run(argv, { commands: testCommands, ...opts });

describe('runCli', () => {
  it('runs a command and prints its result; --json prints one JSON document', async () => {
    expect(await cli(['echo', 'hi', '--times', '2'])).toEqual({ code: 0, stdout: 'hi\nhi\n', stderr: '' });
    const json = await cli(['echo', 'hi', '--json']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({ word: 'hi', times: 1 });
  });

  it('keeps digit-only positionals as strings when declared so (snapshot id prefixes)', async () => {
    expect((await cli(['echo', '00123456'])).stdout).toBe('00123456\n');
  });

  it('runs nested subcommands and demands one for a group', async () => {
    expect((await cli(['group', 'sub', 'abc'])).stdout).toBe('sub abc\n');
    const r = await cli(['group']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('needs a subcommand');
    expect(r.stderr).toContain('hint: run "mailark group --help"');
  });

  it('exits 2 with yargs message on unknown commands, options and missing arguments', async () => {
    for (const argv of [['nope'], ['echo', 'hi', '--bogus'], ['echo'], [], ['echo', 'hi', '--times', 'x']]) {
      const r = await cli(argv);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.stderr, argv.join(' ')).toMatch(
        /^mailark: .+\nhint: run "mailark( echo)? --help" for usage\n$/,
      );
      expect(r.stdout).toBe('');
    }
    expect((await cli(['nope'])).stderr).toContain('Unknown argument: nope');
  });

  it('refuses an option given without its value (never silently dropped), in every command', async () => {
    const own = await cli(['echo', 'hi', '--times']);
    expect(own.code).toBe(2);
    expect(own.stderr).toContain('Not enough arguments following: times');
    // The real commands and the global options, through the same framework.
    for (const argv of [
      ['find', '--limit'],
      ['backup', '--concurrency'],
      ['snapshots', '--repo'],
      ['ls', 'latest', '--user'],
    ]) {
      const r = await run(argv);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.stderr, argv.join(' ')).toContain('Not enough arguments following');
    }
  });

  it('prints usage errors in the fixed JSON shape with --json', async () => {
    const r = await cli(['nope', '--json']);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout)).toEqual({
      error: { code: 'USAGE', message: 'Unknown argument: nope', hint: 'run "mailark --help" for usage' },
    });
  });

  it('ends every --help with the exit codes, and prints --version', async () => {
    const top = await cli(['--help']);
    expect(top.code).toBe(0);
    expect(top.stdout).toContain('Commands:');
    expect(top.stdout).toMatch(/Exit codes:\n {2}0 +success[\s\S]*130 +interrupted/);
    for (const argv of [
      ['echo', '--help'],
      ['group', '--help'],
      ['group', 'sub', '--help'],
    ]) {
      const r = await cli(argv);
      expect(r.code).toBe(0);
      expect(r.stdout.trimEnd()).toMatch(/Exit codes:\n[\s\S]*130 +interrupted \(SIGINT or SIGTERM\)$/);
    }
    expect((await cli(['fail', '--help'])).stdout).toMatch(/ 3 +partial/);
    const v = await cli(['--version']);
    expect(v).toEqual({ code: 0, stdout: expect.stringMatching(/^\d+\.\d+\.\d+\n$/), stderr: '' });
  });

  it('maps each error code to its exit code in one place, with message and hint', async () => {
    const expected: Record<string, number> = {
      LOCKED: 11,
      WRONG_PASSWORD: 12,
      NO_REPOSITORY: 10,
      PARTIAL: 3,
      USAGE: 2,
      CONFIG: 2,
      CORRUPT: 1,
      STORE_UNREACHABLE: 1,
      INTERRUPTED: 130,
    };
    for (const [code, exit] of Object.entries(expected)) {
      calls.length = 0;
      const r = await cli(['fail', code]);
      expect(r.code, code).toBe(exit);
      expect(r.stderr).toBe(`mailark: failed with ${code}\nhint: do the fix\n`);
      expect(calls).toEqual(['cleanup']);
    }
    const j = await cli(['fail', 'LOCKED', '--json']);
    expect(JSON.parse(j.stdout)).toEqual({
      error: { code: 'LOCKED', message: 'failed with LOCKED', hint: 'do the fix' },
    });
  });

  it('reports a plain Error as an internal error with exit 1', async () => {
    const r = await cli(['crash']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^mailark: boom\nhint: this is a bug in mailark/);
    expect((await cli(['crash', '--verbose'])).stderr).toContain('at ');
  });

  it('exits 130 when interrupted', async () => {
    const controller = new AbortController();
    const pending = cli(['wait'], { signal: controller.signal });
    setTimeout(() => controller.abort(new MailarkError('INTERRUPTED', 'interrupted by SIGINT')), 10);
    const r = await pending;
    expect(r.code).toBe(130);
    expect(r.stderr).toContain('mailark: interrupted by SIGINT');
    const aborted = new AbortController();
    aborted.abort();
    expect((await cli(['echo', 'x'], { signal: aborted.signal })).code).toBe(130);
  });

  it('gives up on a command that does not stop within the grace period after an interrupt', async () => {
    const controller = new AbortController();
    const pending = cli(['hang'], { signal: controller.signal, interruptGraceMs: 50 });
    setTimeout(() => controller.abort(new MailarkError('INTERRUPTED', 'interrupted by SIGTERM')), 10);
    const r = await pending;
    expect(r.code).toBe(130);
    expect(r.stderr).toBe(
      'warning: interrupted: stopping cleanly (interrupt again to stop at once)\nmailark: interrupted by SIGTERM\n',
    );
  });

  it('refuses --password without echoing its value', async () => {
    for (const argv of [
      ['echo', 'x', '--password', 'hunter2'],
      ['echo', 'x', '--password=hunter2'],
    ]) {
      const r = await cli(argv);
      expect(r.code).toBe(2);
      expect(r.stdout + r.stderr).not.toContain('hunter2');
      expect(r.stderr).toContain('MAILARK_PASSWORD_FILE');
    }
  });

  it('refuses --imap-password and --new-password too, naming where that password comes from', async () => {
    for (const [argv, source] of [
      [
        ['echo', 'x', '--imap-password', 'hunter2'],
        '--imap-password-file FILE or set MAILARK_IMAP_PASSWORD_FILE',
      ],
      [['echo', 'x', '--new-password=hunter2'], '--new-password-file FILE or set MAILARK_NEW_PASSWORD_FILE'],
      [['echo', 'x', '--s3-password', 'hunter2'], '--password-file FILE or set MAILARK_PASSWORD_FILE'],
    ] as const) {
      const r = await cli([...argv]);
      expect(r.code).toBe(2);
      expect(r.stdout + r.stderr).not.toContain('hunter2');
      expect(r.stderr).toContain(`never takes a password on the command line (${argv[2].split('=')[0]})`);
      expect(r.stderr).toContain(source);
    }
    // Options that name a password file are not passwords.
    expect((await cli(['echo', 'x', '--password-file', '/dev/null'])).code).toBe(0);
  });

  it('names unknown options as they were typed, not in camelCase', async () => {
    const one = await cli(['echo', 'x', '--imap-pasword-file', 'f']);
    expect(one.code).toBe(2);
    expect(one.stderr).toContain('Unknown argument: --imap-pasword-file\n');
    const two = await cli(['echo', 'x', '--no-such-thing', '--other=1']);
    expect(two.stderr).toContain('Unknown arguments: --no-such-thing, --other\n');
  });

  it('never prints the password, even when an error message contains it', async () => {
    const r = await cli(['secret'], { env: { MAILARK_PASSWORD: 'correct horse battery' } });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('mailark: server said: bad ***\n');
  });

  it('takes the repository from -r first, then MAILARK_REPOSITORY, else a usage error', async () => {
    const env = { MAILARK_REPOSITORY: '/from/env' };
    expect((await cli(['where', '-r', '/from/flag'], { env })).stdout).toBe('/from/flag\n');
    expect((await cli(['where'], { env })).stdout).toBe('/from/env\n');
    const none = await cli(['where']);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('hint: pass -r LOCATION or set MAILARK_REPOSITORY');
  });

  it('refuses to run without a password, naming the ways to give one', async () => {
    const r = await cli(['secret']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^mailark: no repository password given\nhint: .*--password-file.*MAILARK_PASSWORD_FILE/,
    );
  });
});
