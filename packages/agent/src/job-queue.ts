/**
 * The agent's job queue: what runs when.
 *
 * Rules it keeps:
 * - one job per tenant at a time, and never two jobs on one repository (two tenants configured on the
 *   same repository wait for each other; prune's exclusive lock would refuse anyway, this avoids the
 *   failed attempt);
 * - at most `maxParallel` jobs at once, across tenants; jobs start in the order they were asked for,
 *   a job whose tenant or repository is busy waits without holding back the others;
 * - a job asked for while the same job (tenant + kind) is queued or running is coalesced, not
 *   doubled: a backup that overruns its schedule is not stacked up behind itself;
 * - stop(): no new work; queued jobs are dropped and running jobs are aborted through their signals.
 *   idle() resolves once nothing runs.
 * Decisions are synchronous and in memory; the runner does the I/O.
 */
import type { JobKind } from './agent-config.js';

export interface Job {
  tenant: string;
  /** Repository location, the unit of mutual exclusion. */
  repository: string;
  kind: JobKind;
  /** What asked for it: 'schedule', 'startup', 'run-once' ... (for logs). */
  trigger: string;
}

export type JobRunner = (job: Job, signal: AbortSignal) => Promise<void>;

export interface EnqueueResult {
  accepted: boolean;
  /** Why not: 'stopped', 'already queued', 'already running'. */
  reason?: string;
}

interface Running {
  job: Job;
  controller: AbortController;
  done: Promise<void>;
}

export class JobQueue {
  private readonly waiting: Job[] = [];
  private readonly active = new Set<Running>();
  private stopped = false;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly opts: {
      maxParallel: number;
      run: JobRunner;
      /** Called when a runner rejects (runners should report their own failures and resolve). */
      onCrash?: (job: Job, err: unknown) => void;
    },
  ) {}

  get running(): Job[] {
    return [...this.active].map((r) => r.job);
  }

  get queued(): Job[] {
    return [...this.waiting];
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  enqueue(job: Job): EnqueueResult {
    if (this.stopped) return { accepted: false, reason: 'stopped' };
    const same = (j: Job) => j.tenant === job.tenant && j.kind === job.kind;
    if (this.waiting.some(same)) return { accepted: false, reason: 'already queued' };
    if (this.running.some(same)) return { accepted: false, reason: 'already running' };
    this.waiting.push(job);
    this.pump();
    return { accepted: true };
  }

  /** Stops taking work, drops what waits, aborts what runs. */
  stop(reason = 'agent stopping'): Job[] {
    this.stopped = true;
    const dropped = this.waiting.splice(0);
    for (const r of this.active) r.controller.abort(new Error(reason));
    this.settle();
    return dropped;
  }

  /** Resolves when no job runs (immediately if none does). */
  idle(): Promise<void> {
    if (this.active.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private pump(): void {
    for (let i = 0; i < this.waiting.length && this.active.size < this.opts.maxParallel; ) {
      const job = this.waiting[i]!;
      const busy = this.running.some((r) => r.tenant === job.tenant || r.repository === job.repository);
      if (busy) {
        i++;
        continue;
      }
      this.waiting.splice(i, 1);
      this.start(job);
    }
  }

  private start(job: Job): void {
    const controller = new AbortController();
    const entry: Running = { job, controller, done: Promise.resolve() };
    this.active.add(entry);
    entry.done = (async () => {
      try {
        await this.opts.run(job, controller.signal);
      } catch (err) {
        this.opts.onCrash?.(job, err);
      } finally {
        this.active.delete(entry);
        if (!this.stopped) this.pump();
        this.settle();
      }
    })();
  }

  private settle(): void {
    if (this.active.size > 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}
