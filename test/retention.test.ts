/**
 * forget + prune on a real tenant: backups from the harness Dovecot into the harness S3 over four
 * "days" of changing mail, then forget (keep-last 1) and prune. Asserted: storage shrank, the
 * remaining snapshot restores byte-exact (readMessageBytes on every entry, compared with the server),
 * check reading all data is clean, and prune refuses with LOCKED while a backup holds its shared lock.
 */
import { randomBytes } from 'node:crypto';
import {
  checkRepository,
  forgetSnapshots,
  isMailarkError,
  type ObjectStore,
  openStore,
  parseImapEndpoint,
  pruneRepository,
  Repository,
  readMessageBytes,
  runBackup,
  TEST_KDF,
  walkMessages,
} from '@mailark/core';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { freshPrefix, imapClientFor, imapServer, newUser, serverState, sha256 } from './harness/fixtures.js';

beforeAll(() => {
  const s3 = inject('s3');
  vi.stubEnv('AWS_ACCESS_KEY_ID', s3.accessKeyId);
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', s3.secretAccessKey);
});
afterAll(() => {
  vi.unstubAllEnvs();
});

function mail(n: number): Buffer {
  const body = randomBytes(40_000)
    .toString('base64')
    .replace(/(.{76})/g, '$1\r\n');
  return Buffer.from(
    `Message-ID: <ret-${n}-${randomBytes(3).toString('hex')}@example.test>\r\nSubject: day mail ${n}\r\n\r\n${body}\r\n`,
  );
}

async function storeBytes(store: ObjectStore, prefix: string): Promise<number> {
  let n = 0;
  for await (const o of store.list(prefix)) n += o.size;
  return n;
}

describe('retention on a real tenant (Dovecot → S3)', () => {
  it('forget + prune: storage shrinks, the kept snapshot restores byte-exact, check is clean; LOCKED beside a backup', async () => {
    const s3 = inject('s3');
    const imap = imapServer();
    const location = `s3://${s3.bucket}/${freshPrefix().replace(/\/$/, '')}`;
    const open = () =>
      openStore(location, { s3Endpoint: s3.endpoint, s3PathStyle: true, s3Region: s3.region });
    const repo = await Repository.init(await open(), 'pw', { kdf: TEST_KDF, packSize: 256 * 1024 });
    const users = [newUser('ret-a'), newUser('ret-b')];
    const endpoint = parseImapEndpoint(imap.url, {
      adminUser: imap.masterUser,
      password: imap.masterPassword,
    });
    const backup = async () => {
      const r = await runBackup(repo, {
        endpoint,
        users: users.map((u) => ({ user: u.user })),
        tenant: 'ret.example.test',
        toolVersion: 'test',
      });
      expect(r.status).toBe('complete');
    };

    // Day by day: new mail arrives, yesterday's is expunged.
    let n = 0;
    for (let day = 0; day < 4; day++) {
      for (const u of users) {
        const c = await imapClientFor(u);
        try {
          await c.mailboxOpen('INBOX');
          if (day > 0) await c.messageDelete('1:*');
          for (let i = 0; i < 5; i++) await c.append('INBOX', mail(n++), ['\\Seen']);
        } finally {
          await c.logout();
        }
      }
      await backup();
    }
    const before = await storeBytes(repo.store, 'data/');

    const forgotten = await forgetSnapshots(repo, { policy: { last: 1 }, tenant: 'ret.example.test' });
    expect(forgotten.removed).toHaveLength(3);

    // A backup holding its shared lock: prune refuses and changes nothing.
    const other = await Repository.open(await open(), 'pw');
    const held = await other.lock('shared', 'mailark backup');
    let err: unknown;
    try {
      await pruneRepository(repo);
    } catch (e) {
      err = e;
    }
    expect(isMailarkError(err, 'LOCKED')).toBe(true);
    expect((err as Error).message).toMatch(/locked \(shared\) by mailark backup on .* \(pid \d+\)/);
    expect(await storeBytes(repo.store, 'data/')).toBe(before);
    await held.release();

    const pruned = await pruneRepository(repo, { maxUnused: { kind: 'percent', value: 0 } });
    const after = await storeBytes(repo.store, 'data/');
    expect(pruned.packBytesAfter).toBe(after);
    // One day of four remains: well under half the data.
    expect(after).toBeLessThan(before * 0.5);

    const fresh = await Repository.open(await open(), 'pw');
    const [kept] = await fresh.listSnapshots();
    const expected = new Map<string, string>();
    for (const u of users)
      for (const f of await serverState(u))
        for (const m of f.messages) expected.set(`${u.user}|${f.path}|${m.uid}`, m.sha256);
    const got = new Map<string, string>();
    for await (const m of walkMessages(fresh, kept!.snapshot)) {
      got.set(`${m.user}|${m.folder.path}|${m.entry.uid}`, sha256(await readMessageBytes(fresh, m.entry)));
    }
    expect(got).toEqual(expected);
    expect(got.size).toBe(10);
    const report = await checkRepository(fresh, { readData: true });
    expect(report.errors).toEqual([]);
    expect(report.counts.unusedBlobs).toBe(0);
    await Promise.all([repo.close(), other.close(), fresh.close()]);
  });
});
