import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MailarkError } from '@mailark/core';
import { describe, expect, it } from 'vitest';
import { REPOSITORY_PASSWORD, readPassword, stripTrailingNewline } from './password.js';

describe('readPassword', () => {
  it('takes the command-line file first, then MAILARK_PASSWORD_FILE, then MAILARK_PASSWORD', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mailark-pw-'));
    await writeFile(join(dir, 'flag'), 'from flag\n');
    await writeFile(join(dir, 'env'), 'from env file\r\n');
    const env = { MAILARK_PASSWORD_FILE: join(dir, 'env'), MAILARK_PASSWORD: 'from env' };
    expect(await readPassword({ ...REPOSITORY_PASSWORD, file: join(dir, 'flag') }, env)).toBe('from flag');
    expect(await readPassword(REPOSITORY_PASSWORD, env)).toBe('from env file');
    expect(await readPassword(REPOSITORY_PASSWORD, { MAILARK_PASSWORD: 'from env' })).toBe('from env');
  });

  it('names the file, never its content, when it cannot be used', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mailark-pw-'));
    await writeFile(join(dir, 'empty'), '\n');
    const empty = await readPassword(REPOSITORY_PASSWORD, {
      MAILARK_PASSWORD_FILE: join(dir, 'empty'),
    }).catch((e) => e);
    expect(empty).toBeInstanceOf(MailarkError);
    expect(empty).toMatchObject({
      code: 'CONFIG',
      message: `the repository password file ${join(dir, 'empty')} is empty`,
    });
    const missing = await readPassword(REPOSITORY_PASSWORD, {
      MAILARK_PASSWORD_FILE: join(dir, 'nope'),
    }).catch((e) => e);
    expect(missing).toMatchObject({ code: 'CONFIG' });
    expect(missing.message).toContain(join(dir, 'nope'));
    const none = await readPassword(REPOSITORY_PASSWORD, { MAILARK_PASSWORD: '' }).catch((e) => e);
    expect(none).toMatchObject({ code: 'USAGE', message: 'no repository password given' });
  });

  it('strips exactly one trailing newline, keeping spaces', () => {
    expect(stripTrailingNewline(' pass word \n')).toBe(' pass word ');
    expect(stripTrailingNewline('pw\r\n')).toBe('pw');
    expect(stripTrailingNewline('pw\n\n')).toBe('pw\n');
    expect(stripTrailingNewline('pw')).toBe('pw');
  });
});
