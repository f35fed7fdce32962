import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseUsersFile, readUsersFile } from './users-file.js';

describe('users file', () => {
  it('reads users, comments, blank lines and password files relative to the users file', () => {
    const text =
      '# tenant acme\r\nalice@acme.example\n\n  bob@acme.example , bob.pw # own login\ncarol@acme.example,/etc/c.pw\n';
    expect(parseUsersFile(text, '/etc/mailark/acme.users')).toEqual([
      { user: 'alice@acme.example' },
      { user: 'bob@acme.example', passwordFile: '/etc/mailark/bob.pw' },
      { user: 'carol@acme.example', passwordFile: '/etc/c.pw' },
    ]);
  });

  it('names the file and line of a malformed entry, and refuses an empty list', () => {
    expect(() => parseUsersFile('alice@x\nbob@x,a,b\n', 'u.txt')).toThrow(
      /u\.txt line 2: expected "user\[,password-file\]"/,
    );
    expect(() => parseUsersFile('alice@x,\n', 'u.txt')).toThrow(/u\.txt line 1/);
    expect(() => parseUsersFile(',pw\n', 'u.txt')).toThrow(/u\.txt line 1/);
    expect(() => parseUsersFile('# nobody\n\n', 'u.txt')).toThrow(/lists no mailbox/);
  });

  it('reports an unreadable file with the caller hint', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'users-'));
    await expect(readUsersFile(join(dir, 'missing'), 'check --users-file')).rejects.toMatchObject({
      code: 'CONFIG',
      hint: 'check --users-file',
    });
    writeFileSync(join(dir, 'ok'), 'dave@x\n');
    expect(await readUsersFile(join(dir, 'ok'), 'h')).toEqual([{ user: 'dave@x' }]);
  });
});
