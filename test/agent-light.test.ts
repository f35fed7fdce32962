/**
 * The agent's light pass against the real Dovecot: the same incremental run as the nightly backup
 * (core's runBackup), tagged "light", never followed by retention. Asserted: an unchanged tenant
 * costs no message fetch; mail that arrived since is captured byte for byte; light snapshots are
 * tagged; retention runs only after the nightly backup job, and then counts the light snapshots
 * like any other (restic semantics).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, parseAgentConfig } from '@mailark/agent';
import { LocalDirStore, Repository, readMessageBytes, TEST_KDF, walkMessages } from '@mailark/core';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../packages/agent/src/pino-reporter.js';
import {
  appendMessages,
  closeRepository,
  fixtureMessages,
  imapServer,
  newUser,
  serverState,
  sha256,
  tempDir,
} from './harness/fixtures.js';

const PASSWORD = 'light pass repository password';

describe('mailark-agent light pass', () => {
  it('is the incremental run: nothing fetched when nothing changed, new mail captured, tagged, no retention', async () => {
    const dir = tempDir('agent-light-');
    const imap = imapServer();
    const user = newUser('light');
    const mail = fixtureMessages();
    await appendMessages(
      user,
      'INBOX',
      mail.slice(0, 4).map((raw) => ({ raw })),
    );
    const repoDir = join(dir, 'repo');
    await closeRepository(await Repository.init(new LocalDirStore(repoDir), PASSWORD, { kdf: TEST_KDF }));
    writeFileSync(join(dir, 'repo.pass'), `${PASSWORD}\n`);
    writeFileSync(join(dir, 'imap.pass'), `${imap.masterPassword}\n`);
    const config = parseAgentConfig(
      JSON.stringify({
        tenants: [
          {
            name: 'light.example.test',
            repository: repoDir,
            passwordFile: 'repo.pass',
            imap: { url: imap.url, adminUser: imap.masterUser, adminPasswordFile: 'imap.pass' },
            users: [user.user],
            tags: ['agent'],
            retention: { keepLast: 2 },
          },
        ],
      }),
      join(dir, 'agent.json'),
    );
    const agent = new Agent({ config, logger: createLogger('error', { write() {} }), toolVersion: 'test' });
    const signal = new AbortController().signal;
    const run = (kind: 'backup' | 'light') => agent.runOnce('light.example.test', kind, signal);

    const night = await run('backup');
    expect(night).toMatchObject({ outcome: 'ok', figures: { messages: 4 } });
    // Nothing changed: the light pass fetches no message.
    const quiet = await run('light');
    expect(quiet).toMatchObject({ outcome: 'ok', figures: { messages: 0, bytes: 0 } });
    expect(quiet.forget).toBeUndefined();
    // Two mails arrive during the day: the next light pass fetches exactly those.
    await appendMessages(
      user,
      'INBOX',
      mail.slice(4, 6).map((raw) => ({ raw })),
    );
    const day = await run('light');
    expect(day).toMatchObject({
      outcome: 'ok',
      figures: { messages: 2, bytes: mail[4]!.byteLength + mail[5]!.byteLength },
    });
    expect(day.forget).toBeUndefined();

    const repo = await Repository.open(new LocalDirStore(repoDir), PASSWORD);
    const snaps = await repo.listSnapshots();
    // Three snapshots although keepLast is 2: light passes never run retention.
    expect(snaps.map((s) => s.snapshot.tags)).toEqual([['agent'], ['agent', 'light'], ['agent', 'light']]);
    const expected = new Map<string, string>();
    for (const f of await serverState(user))
      for (const m of f.messages) expected.set(`${f.path}|${m.uid}`, m.sha256);
    const got = new Map<string, string>();
    for await (const m of walkMessages(repo, snaps.at(-1)!.snapshot)) {
      got.set(`${m.folder.path}|${m.entry.uid}`, sha256(await readMessageBytes(repo, m.entry)));
    }
    expect(got).toEqual(expected);
    expect(got.size).toBe(6);
    await closeRepository(repo);

    // The next nightly backup applies retention over all snapshots, light ones included.
    const next = await run('backup');
    expect(next).toMatchObject({ outcome: 'ok', figures: { messages: 0 }, forget: { removed: 2, kept: 2 } });
    const after = await Repository.open(new LocalDirStore(repoDir), PASSWORD);
    expect((await after.listSnapshots()).map((s) => s.snapshot.tags)).toEqual([
      ['agent', 'light'],
      ['agent'],
    ]);
    await closeRepository(after);
  });
});
