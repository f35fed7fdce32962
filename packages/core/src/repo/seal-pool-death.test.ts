/**
 * A seal pool whose workers die: what they held fails (no unhandled rejection), and later work runs
 * on the caller's thread with the same results. Its own file: the pool is one per process.
 */
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { storeMessage } from '../backup/message-record.js';
import { sealPoolSize, setSealThreads, stopSealWorkers } from './seal-pool.js';
import { newTestRepository } from './test-repository.js';

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

// Workers whatever the machine (this file is the first and only user of its process's pool).
setSealThreads(2);

describe('seal pool worker death', () => {
  it('fails the pending stores, then stores on the caller thread with the same ids', async () => {
    const { repo } = await newTestRepository();
    const chunker = repo.config.chunker;
    const msgs = Array.from({ length: 60 }, (_, i) =>
      Buffer.from(`Subject: ${i}\r\n\r\n${randomBytes(100_000 + i).toString('base64')}\r\n`),
    );
    // Started while the workers are up, then the workers are stopped under them.
    const first = Promise.allSettled(msgs.map((m) => storeMessage(repo, chunker, m)));
    expect(sealPoolSize()).toBe(2);
    await stopSealWorkers();
    const settled = await first;
    expect(settled.some((s) => s.status === 'rejected')).toBe(true);
    for (const s of settled)
      if (s.status === 'rejected') expect(String(s.reason)).toMatch(/seal pool worker exited/);
    expect(sealPoolSize()).toBe(0);
    expect(repo.cutMessage(chunker)).toBeUndefined();

    // Everything again, now on this thread: what had been stored is found, the rest is added.
    const again = await Promise.all(msgs.map((m) => storeMessage(repo, chunker, m)));
    for (const [i, r] of again.entries()) {
      const msg = msgs[i] as Buffer;
      expect(r.sha256).toBe(sha(msg));
      const before = settled[i];
      if (before?.status === 'fulfilled') {
        expect(r.content).toEqual(before.value.content);
        expect(r.addedBlobs).toBe(0);
      }
      const back = Buffer.concat(await Promise.all(r.content.map((id) => repo.loadBlob(id))));
      expect(sha(back)).toBe(sha(msg));
    }
    await repo.flush();
  });
});
