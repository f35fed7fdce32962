// The harness itself: the servers global-setup started answer, and the fixtures tell the truth.
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { describe, expect, inject, it } from 'vitest';
import {
  appendMessages,
  fixtureMessages,
  freshPrefix,
  imapClientFor,
  nastyMessages,
  newUser,
  serverState,
  sha256,
} from './fixtures.js';

describe('test harness', () => {
  it('gives each test a brand-new Dovecot user with special-use folders', async () => {
    const u = newUser('harness');
    const state = await serverState(u);
    expect(state.map((f) => f.path)).toEqual(['Archive', 'Drafts', 'INBOX', 'Junk', 'Sent', 'Trash']);
    expect(state.find((f) => f.path === 'Sent')?.specialUse).toBe('\\Sent');
    expect(state.every((f) => f.messages.length === 0)).toBe(true);
  });

  it('seeds messages and reads back the exact bytes, flags, keywords and internal date', async () => {
    const u = newUser('harness');
    const raws = fixtureMessages();
    expect(raws.length).toBe(75);
    const date = new Date('2023-11-02T08:09:10Z');
    const [first, second] = raws;
    const uids = await appendMessages(u, 'Projets/Été 2024', [
      { raw: first!, flags: ['\\Seen', '$Forwarded'], internalDate: date },
      { raw: second! },
    ]);
    expect(uids.map((x) => x.uid)).toEqual([1, 2]);
    const folder = (await serverState(u)).find((f) => f.path === 'Projets/Été 2024');
    expect(folder?.messages[0]).toMatchObject({
      uid: 1,
      flags: ['\\Seen'],
      keywords: ['$Forwarded'],
      internalDate: date.toISOString(),
      size: first!.length,
      sha256: sha256(first!),
    });
    expect(folder?.messages[1]?.sha256).toBe(sha256(second!));
  });

  it('nasty messages survive the server (bare LF comes back as CRLF)', async () => {
    const u = newUser('harness');
    const nasty = nastyMessages({ bigMB: 1 });
    await appendMessages(
      u,
      'INBOX',
      nasty.map((n) => ({ raw: n.raw })),
    );
    const inbox = (await serverState(u)).find((f) => f.path === 'INBOX')!;
    expect(inbox.messages).toHaveLength(nasty.length);
    nasty.forEach((n, i) => {
      const served = inbox.messages[i]!;
      if (n.name === 'bare-lf') {
        const crlf = Buffer.from(n.raw.toString('latin1').replaceAll('\n', '\r\n'), 'latin1');
        expect(served.sha256, n.why).toBe(sha256(crlf));
      } else if (n.name === 'nul-byte') {
        // Dovecot keeps the NUL on disk but serves it as 0x80 in BODY[] (only BINARY[] returns NUL).
        const served80 = Buffer.from(n.raw.map((b) => (b === 0 ? 0x80 : b)));
        expect(served.sha256, n.why).toBe(sha256(served80));
      } else {
        expect(served.sha256, n.why).toBe(sha256(n.raw));
      }
    });
    const c = await imapClientFor(u);
    await c.logout();
  });

  it('the S3 endpoint stores and lists objects under a fresh prefix', async () => {
    const s3 = inject('s3');
    const client = new S3Client({
      endpoint: s3.endpoint,
      region: s3.region,
      forcePathStyle: true,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    });
    const prefix = freshPrefix();
    const body = Buffer.from('harness check');
    await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: `${prefix}a`, Body: body }));
    const got = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: `${prefix}a` }));
    expect(Buffer.from(await got.Body!.transformToByteArray()).equals(body)).toBe(true);
    const listed = await client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix }));
    expect(listed.Contents?.map((o) => o.Key)).toEqual([`${prefix}a`]);
    client.destroy();
  });
});
