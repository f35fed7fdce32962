/**
 * The repository on a real S3 endpoint (the harness's s3rver, or MAILARK_TEST_S3_*): the same format
 * promises as on memory and disk, over HTTP — capability probe recorded, ranged single-GET blob reads,
 * byte-exact messages after reopen, damage found by check --read-data and named.
 */
import { describe, expect, inject, it } from 'vitest';
import { checkRepository } from '../packages/core/src/check/check.js';
import { readMessageBytes, walkMessages } from '../packages/core/src/mail/snapshot-tree.js';
import { rebuildIndex } from '../packages/core/src/repo/repair-index.js';
import { Repository } from '../packages/core/src/repo/repository.js';
import { saveTestSnapshot, TEST_KDF } from '../packages/core/src/repo/test-repository.js';
import { S3Store } from '../packages/core/src/store/s3-store.js';
import { fixtureMessages, freshPrefix, sha256 } from './harness/fixtures.js';

function s3Store(prefix: string): S3Store {
  const s3 = inject('s3');
  return new S3Store({
    bucket: s3.bucket,
    prefix,
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    env: {},
  });
}

describe('Repository on S3', () => {
  it('init, snapshot, reopen, single ranged GET per blob, byte-exact messages, clean check', async () => {
    const prefix = freshPrefix();
    const repo = await Repository.init(s3Store(prefix), 'pw', { kdf: TEST_KDF, packSize: 64 * 1024 });
    if (inject('s3').kind === 's3rver') expect(repo.config.capabilities.conditionalWrites).toBe(false);
    const msgs = fixtureMessages().slice(0, 25);
    await saveTestSnapshot(repo, {
      'alice@example.test': { INBOX: msgs.slice(0, 15), Archive: msgs.slice(15) },
    });

    const store = s3Store(prefix);
    const reopened = await Repository.open(store, 'pw');
    const { snapshot } = await reopened.resolveSnapshot('latest');
    const shas: string[] = [];
    for await (const m of walkMessages(reopened, snapshot))
      shas.push(sha256(await readMessageBytes(reopened, m.entry)));
    expect(shas.sort()).toEqual(msgs.map((m) => sha256(m)).sort());

    const data = [...reopened.indexEntries()].find((e) => e.type === 'data');
    if (data === undefined) throw new Error('no data blob');
    const before = store.counters.gets;
    await reopened.loadBlob(data.id);
    expect(store.counters.gets - before).toBe(1);

    const report = await checkRepository(reopened, { readData: true });
    expect(report.errors).toEqual([]);
    expect(report.counts.packsRead).toBe(report.counts.packs);
  });

  it('a damaged pack is named by check --read-data; a lost index is rebuilt', async () => {
    const prefix = freshPrefix();
    const repo = await Repository.init(s3Store(prefix), 'pw', { kdf: TEST_KDF, packSize: 64 * 1024 });
    const msgs = fixtureMessages().slice(0, 10);
    await saveTestSnapshot(repo, { 'bob@example.test': { INBOX: msgs } });
    const store = s3Store(prefix);

    // Lose every index object, rebuild, read everything back.
    for await (const o of store.list('index/')) await store.delete(o.key);
    const bare = await Repository.open(store, 'pw', { index: 'skip' });
    const rebuilt = await rebuildIndex(bare);
    expect(rebuilt.damagedPacks).toEqual([]);
    const again = await Repository.open(s3Store(prefix), 'pw');
    const { snapshot } = await again.resolveSnapshot('latest');
    let n = 0;
    for await (const m of walkMessages(again, snapshot)) {
      await readMessageBytes(again, m.entry);
      n++;
    }
    expect(n).toBe(10);

    // Damage a pack (objects are never overwritten: delete, then put the flipped bytes).
    const e = [...again.indexEntries()].find((x) => x.type === 'data');
    if (e === undefined) throw new Error('no data blob');
    const key = `data/${e.pack.slice(0, 2)}/${e.pack}`;
    const bytes = Uint8Array.from(await store.get(key));
    bytes[e.offset + 20] = (bytes[e.offset + 20] as number) ^ 1;
    await store.delete(key);
    await store.put(key, bytes);
    const report = await checkRepository(await Repository.open(s3Store(prefix), 'pw'), { readData: true });
    expect(report.ok).toBe(false);
    expect(report.errors).toContainEqual(expect.objectContaining({ object: key, blob: e.id }));
  });
});
