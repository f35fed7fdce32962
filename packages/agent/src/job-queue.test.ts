import { describe, expect, it } from 'vitest';
import { type Job, JobQueue } from './job-queue.js';

/** A runner whose jobs finish when the test says so. */
function controllable() {
  const started: string[] = [];
  const finish = new Map<string, () => void>();
  const aborted: string[] = [];
  const run = (job: Job, signal: AbortSignal) =>
    new Promise<void>((resolve) => {
      const name = `${job.tenant}:${job.kind}`;
      started.push(name);
      finish.set(name, resolve);
      signal.addEventListener('abort', () => {
        aborted.push(name);
        resolve();
      });
    });
  const done = async (name: string) => {
    finish.get(name)!();
    await new Promise((r) => setImmediate(r));
  };
  return { started, aborted, run, done };
}

const job = (tenant: string, kind: Job['kind'] = 'backup', repository = `/repo/${tenant}`): Job => ({
  tenant,
  kind,
  repository,
  trigger: 'test',
});

describe('JobQueue', () => {
  it('runs tenants in parallel up to the limit, in order', async () => {
    const c = controllable();
    const q = new JobQueue({ maxParallel: 2, run: c.run });
    for (const t of ['a', 'b', 'c']) expect(q.enqueue(job(t)).accepted).toBe(true);
    expect(c.started).toEqual(['a:backup', 'b:backup']);
    expect(q.queued.map((j) => j.tenant)).toEqual(['c']);
    await c.done('b:backup');
    expect(c.started).toEqual(['a:backup', 'b:backup', 'c:backup']);
  });

  it('runs one job per tenant at a time, without holding back other tenants', async () => {
    const c = controllable();
    const q = new JobQueue({ maxParallel: 3, run: c.run });
    q.enqueue(job('a'));
    q.enqueue(job('a', 'check'));
    q.enqueue(job('b'));
    expect(c.started).toEqual(['a:backup', 'b:backup']);
    await c.done('a:backup');
    expect(c.started).toEqual(['a:backup', 'b:backup', 'a:check']);
  });

  it('never runs two jobs on one repository, even for different tenants', async () => {
    const c = controllable();
    const q = new JobQueue({ maxParallel: 4, run: c.run });
    q.enqueue(job('a', 'backup', '/shared'));
    q.enqueue(job('b', 'prune', '/shared'));
    q.enqueue(job('c', 'backup', '/other'));
    expect(c.started).toEqual(['a:backup', 'c:backup']);
    await c.done('a:backup');
    expect(c.started).toEqual(['a:backup', 'c:backup', 'b:prune']);
  });

  it('coalesces a job that is already queued or running', async () => {
    const c = controllable();
    const q = new JobQueue({ maxParallel: 1, run: c.run });
    q.enqueue(job('a'));
    expect(q.enqueue(job('a'))).toEqual({ accepted: false, reason: 'already running' });
    q.enqueue(job('b'));
    expect(q.enqueue(job('b'))).toEqual({ accepted: false, reason: 'already queued' });
    await c.done('a:backup');
    await c.done('b:backup');
    expect(c.started).toEqual(['a:backup', 'b:backup']);
    expect(q.enqueue(job('a')).accepted).toBe(true);
  });

  it('stop() drops queued jobs, aborts running ones, refuses new ones; idle() waits for them', async () => {
    const c = controllable();
    const q = new JobQueue({ maxParallel: 1, run: c.run });
    q.enqueue(job('a'));
    q.enqueue(job('b'));
    let idle = false;
    const dropped = q.stop();
    expect(dropped.map((j) => j.tenant)).toEqual(['b']);
    expect(c.aborted).toEqual(['a:backup']);
    await q.idle().then(() => {
      idle = true;
    });
    expect(idle).toBe(true);
    expect(q.enqueue(job('c'))).toEqual({ accepted: false, reason: 'stopped' });
    expect(c.started).toEqual(['a:backup']);
  });

  it('a crashing runner is reported and frees its slot', async () => {
    const crashes: string[] = [];
    const q = new JobQueue({
      maxParallel: 1,
      run: async (j) => {
        if (j.tenant === 'a') throw new Error('boom');
      },
      onCrash: (j, err) => crashes.push(`${j.tenant}: ${(err as Error).message}`),
    });
    q.enqueue(job('a'));
    q.enqueue(job('b'));
    await q.idle();
    await new Promise((r) => setImmediate(r));
    expect(crashes).toEqual(['a: boom']);
    expect(q.running).toEqual([]);
    expect(q.queued).toEqual([]);
  });
});
