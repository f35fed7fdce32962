import { describe, expect, it } from 'vitest';
import { isMailarkError, type MailarkError } from '../errors.js';
import { RecordingReporter } from '../progress.js';
import { MemoryStore } from '../store/memory-store.js';
import {
  acquireLock,
  conflicts,
  isStale,
  type LockEnv,
  type LockRecord,
  processIdentity,
  processLockEnv,
  STALE_AFTER_MS,
  sameProcess,
} from './lock.js';
import { Repository } from './repository.js';
import { TEST_KDF } from './test-repository.js';

const NOW = Date.parse('2024-06-01T02:00:00Z');

function env(over: Partial<LockEnv> = {}): LockEnv {
  return { host: 'mx1', pid: 100, now: () => NOW, isAlive: (pid) => pid === 100 || pid === 200, ...over };
}

function rec(over: Partial<LockRecord> = {}): LockRecord {
  return {
    mode: 'shared',
    owner: 'backup',
    host: 'mx1',
    pid: 200,
    time: new Date(NOW).toISOString(),
    ...over,
  };
}

async function lockedError(p: Promise<unknown>): Promise<MailarkError> {
  try {
    await p;
  } catch (err) {
    if (isMailarkError(err, 'LOCKED')) return err;
    throw err;
  }
  throw new Error('expected LOCKED');
}

describe('lock rules (pure)', () => {
  it('shared locks coexist; exclusive conflicts with everything', () => {
    expect(conflicts('shared', rec({ mode: 'shared' }))).toBe(false);
    expect(conflicts('shared', rec({ mode: 'exclusive' }))).toBe(true);
    expect(conflicts('exclusive', rec({ mode: 'shared' }))).toBe(true);
    expect(conflicts('exclusive', rec({ mode: 'exclusive' }))).toBe(true);
  });

  it('stale: older than 30 minutes, or this host with a dead pid', () => {
    expect(isStale(rec(), env())).toBe(false);
    expect(isStale(rec({ time: new Date(NOW - STALE_AFTER_MS + 1000).toISOString() }), env())).toBe(false);
    expect(isStale(rec({ time: new Date(NOW - STALE_AFTER_MS - 1000).toISOString() }), env())).toBe(true);
    expect(isStale(rec({ pid: 300 }), env())).toBe(true); // same host, pid 300 is dead
    expect(isStale(rec({ pid: 300, host: 'mx2' }), env())).toBe(false); // other host: cannot tell
    expect(isStale(rec({ time: 'garbage' }), env())).toBe(true);
  });

  it('stale: a live pid that is another process than the one that took the lock', () => {
    // pid 200 is alive, but as another process since the lock was taken (reboot, pid reuse).
    const identities: Record<number, string> = { 100: 'boot-b/500', 200: 'boot-b/900' };
    const live = env({
      started: 'boot-b/500',
      isAlive: (pid, started) => pid in identities && (started === undefined || identities[pid] === started),
    });
    expect(isStale(rec({ started: 'boot-b/900' }), live)).toBe(false);
    expect(isStale(rec({ started: 'boot-a/900' }), live)).toBe(true);
    expect(isStale(rec(), live)).toBe(false); // no identity recorded: the pid alone decides
    // Our own pid: a restarted container's pid 1 sees its previous life's lock as stale, not its own.
    expect(isStale(rec({ pid: 100, started: 'boot-b/500' }), live)).toBe(false);
    expect(isStale(rec({ pid: 100, started: 'boot-b/42' }), live)).toBe(true);
    expect(isStale(rec({ pid: 100 }), live)).toBe(false);
  });

  it.runIf(process.platform === 'linux')('processIdentity tells this process from another one', () => {
    const mine = processIdentity(process.pid);
    expect(mine).toMatch(/^([0-9a-f-]{36}|-)\/\d+$/);
    expect(processIdentity(process.pid)).toBe(mine);
    expect(processIdentity(1)).not.toBe(mine);
    expect(processLockEnv.isAlive(process.pid, mine)).toBe(true);
    expect(processLockEnv.isAlive(process.pid, `${mine}0`)).toBe(false);
    expect(processLockEnv.isAlive(process.pid, `-/${mine?.split('/')[1]}`)).toBe(true);
    expect(processLockEnv.isAlive(process.pid)).toBe(true);
  });

  it('sameProcess: start times decide; boot ids too when both sides could read them', () => {
    expect(sameProcess('b1/500', 'b1/500')).toBe(true);
    expect(sameProcess('b1/500', 'b1/501')).toBe(false);
    expect(sameProcess('b1/500', 'b2/500')).toBe(false);
    expect(sameProcess('-/500', 'b2/500')).toBe(true);
    expect(sameProcess('b1/500', '-/500')).toBe(true);
    expect(sameProcess('-/500', '-/7')).toBe(false);
  });
});

describe('Repository locks', () => {
  async function twoInstances(envA = env(), envB = env({ pid: 200 })) {
    const store = new MemoryStore();
    await Repository.init(store, 'pw', { kdf: TEST_KDF });
    const a = await Repository.open(store, 'pw', { lockEnv: envA });
    const b = await Repository.open(store, 'pw', { lockEnv: envB });
    return { store, a, b };
  }

  it('shared + shared is fine; exclusive against anything is LOCKED naming the holder', async () => {
    const { a, b } = await twoInstances();
    const s1 = await a.lock('shared', 'mailark backup');
    const s2 = await b.lock('shared', 'mailark check');
    const err = await lockedError(b.lock('exclusive', 'mailark prune'));
    expect(err.message).toMatch(
      /locked \(shared\) by mailark (backup|check) on mx1 \(pid (100|200)\) since 2024-06-01T02:00:00/,
    );
    expect(err.hint).toContain('mailark unlock');
    expect(err.details?.holder).toMatchObject({ host: 'mx1', mode: 'shared' });
    await s1.release();
    await s2.release();
    const x = await b.lock('exclusive', 'mailark prune');
    const err2 = await lockedError(a.lock('shared', 'mailark backup'));
    expect(err2.message).toContain('locked (exclusively) by mailark prune on mx1 (pid 200)');
    await lockedError(a.lock('exclusive'));
    await x.release();
    expect(await a.listLocks()).toEqual([]);
    await (await a.lock('exclusive')).release();
  });

  it('stale locks do not block, are listed as stale and removed by removeStaleLocks', async () => {
    const { a, b } = await twoInstances();
    // b's process (pid 200) dies: from a's point of view its lock is stale.
    const deadEnv = env({ isAlive: (pid) => pid === 100 });
    await b.lock('exclusive', 'crashed prune');
    const aDead = await Repository.open(a.store, 'pw', {
      lockEnv: deadEnv,
      reporter: new RecordingReporter(),
    });
    const locks = await aDead.listLocks();
    expect(locks).toHaveLength(1);
    expect(locks[0]).toMatchObject({ owner: 'crashed prune', pid: 200, stale: true });
    const mine = await aDead.lock('exclusive', 'next prune');
    await mine.release();
    // An old lock from another host is stale too.
    const later = await Repository.open(a.store, 'pw', {
      lockEnv: env({ host: 'mx9', now: () => NOW + STALE_AFTER_MS + 60_000 }),
    });
    expect((await later.listLocks()).every((l) => l.stale)).toBe(true);
    expect(await aDead.removeStaleLocks()).toEqual([locks[0]?.id]);
    expect(await a.listLocks()).toEqual([]);
  });

  it('a live lock from another host is not stale and is only removed by removeAllLocks', async () => {
    const { a, b } = await twoInstances(env(), env({ host: 'mx2', pid: 999 }));
    await b.lock('shared', 'agent');
    expect(await a.removeStaleLocks()).toEqual([]);
    await lockedError(a.lock('exclusive'));
    expect((await a.removeAllLocks()).length).toBe(1);
    await (await a.lock('exclusive')).release();
  });

  it('refresh writes a new lock object and deletes the old one', async () => {
    let now = NOW;
    const lockEnv = env({ now: () => now });
    const { a } = await twoInstances(lockEnv);
    const held = await acquireLock(a, 'shared', 'long backup', { env: lockEnv });
    const first = held.id;
    now += 10 * 60 * 1000;
    await held.refresh();
    expect(held.id).not.toBe(first);
    const locks = await a.listLocks();
    expect(locks.map((l) => [l.id, l.time])).toEqual([[held.id, new Date(now).toISOString()]]);
    await held.release();
    expect(held.released).toBe(true);
    expect(await a.listLocks()).toEqual([]);
  });

  it('racing exclusive lockers never both win', async () => {
    for (let round = 0; round < 10; round++) {
      const { a, b } = await twoInstances();
      const results = await Promise.allSettled([
        a.lock('exclusive', 'a'),
        b.lock('exclusive', 'b'),
        a.lock('shared', 'c'),
      ]);
      const won = results.filter((r) => r.status === 'fulfilled');
      expect(won.length).toBeLessThanOrEqual(1);
      for (const r of results)
        if (r.status === 'rejected') expect(isMailarkError(r.reason, 'LOCKED')).toBe(true);
      expect((await a.listLocks()).length).toBe(won.length);
    }
  });

  it('close() releases the locks this instance holds, and only those', async () => {
    const { a, b } = await twoInstances();
    await a.lock('shared', 'a');
    const other = await b.lock('shared', 'b');
    await a.close();
    expect((await b.listLocks()).map((l) => l.id)).toEqual([other.id]);
  });
});

describe('an expired lock', () => {
  it('stops index and snapshot writes once others could see it as stale', async () => {
    let now = NOW;
    const store = new MemoryStore();
    await Repository.init(store, 'pw', { kdf: TEST_KDF });
    const repo = await Repository.open(store, 'pw', { lockEnv: env({ now: () => now }) });
    await repo.lock('shared', 'backup');
    const tree = await repo.saveTree({ v: 1, mailboxes: [] });
    now += STALE_AFTER_MS + 1000; // suspended: no refresh ran
    const err = await lockedError(repo.flush());
    expect(err.message).toContain('may have been taken over');
    expect(await repo.listSnapshots()).toEqual([]);
    expect(tree).toMatch(/^[0-9a-f]{64}$/);
  });
});
