/**
 * The agent: a long-running process that backs up every configured tenant on its schedules, applies
 * retention, checks and prunes, and tells operators how things stand (logs, /healthz, /metrics,
 * alerts). It wires the parts together and holds no backup or retention logic of its own.
 *
 * Shutdown (SIGTERM/SIGINT, via stop()): the scheduler stops, queued jobs are dropped, running jobs
 * are aborted through their AbortSignal (runBackup writes its checkpoint and claims no snapshot; the
 * next run resumes from it), their locks are released as they unwind, and stop() resolves once they
 * have, or when the grace period (default 25 s, under systemd's and Docker's 30 s) runs out; a lock
 * left by a job that could not unwind in time is stale (this host, dead pid) and is removed by the
 * next run.
 */
import type { AgentConfig, JobKind, TenantConfig } from './agent-config.js';
import { Alerter } from './alerts.js';
import { evaluateHealth, type Health, isStale, staleReason } from './health.js';
import { type AgentHttpServer, startHttpServer } from './http-server.js';
import { type Job, JobQueue } from './job-queue.js';
import { renderMetrics } from './metrics.js';
import { type AgentLogger, PinoReporter } from './pino-reporter.js';
import { Scheduler, scheduleEntries } from './scheduler.js';
import { type JobReport, readRepositoryFacts, runTenantJob } from './tenant-jobs.js';
import { newTenantStatus, recordJob, type TenantStatus } from './tenant-status.js';

export interface AgentOptions {
  config: AgentConfig;
  logger: AgentLogger;
  toolVersion: string;
  now?: () => number;
  /** How often staleness is evaluated for alerts (default 60 s). */
  staleCheckEveryMs?: number;
  /** Base directory of the local index/snapshot cache (core's resolveCacheDir); undefined: no cache. */
  cacheDir?: string | undefined;
}

export class Agent {
  readonly startedAt: number;
  private readonly config: AgentConfig;
  private readonly logger: AgentLogger;
  private readonly now: () => number;
  private readonly statuses = new Map<string, TenantStatus>();
  private readonly tenants = new Map<string, TenantConfig>();
  private readonly queue: JobQueue;
  private readonly scheduler: Scheduler;
  private readonly alerter: Alerter;
  private http: AgentHttpServer | undefined;
  private staleTimer: NodeJS.Timeout | undefined;
  private stopping: Promise<boolean> | undefined;

  constructor(private readonly opts: AgentOptions) {
    this.config = opts.config;
    this.logger = opts.logger;
    this.now = opts.now ?? Date.now;
    this.startedAt = this.now();
    for (const t of this.config.tenants) {
      this.tenants.set(t.name, t);
      this.statuses.set(t.name, newTenantStatus(t.name));
    }
    this.queue = new JobQueue({
      maxParallel: this.config.maxParallel,
      run: (job, signal) => this.runJob(job, signal).then(() => {}),
      onCrash: (job, err) => this.logger.error({ tenant: job.tenant, job: job.kind, err }, 'job crashed'),
    });
    this.scheduler = new Scheduler(scheduleEntries(this.config.tenants), this.config.timeZone, (e) =>
      this.enqueue(e.tenant, e.kind, 'schedule'),
    );
    this.alerter = new Alerter(this.config.alerts, new PinoReporter(this.logger));
  }

  /** Starts HTTP and the schedules, then reads each repository's state. Returns the HTTP address. */
  async start(): Promise<{ host: string; port: number }> {
    this.http = await startHttpServer(this.config.http.host, this.config.http.port, {
      health: () => this.health(),
      metrics: () => this.metrics(),
    });
    this.logger.info(
      {
        version: this.opts.toolVersion,
        config: this.config.source,
        http: `${this.http.address.host}:${this.http.address.port}`,
        tenants: this.config.tenants.length,
        schedules: this.scheduler
          .nextRuns()
          .map((r) => ({ tenant: r.tenant, job: r.kind, cron: r.pattern, next: r.next })),
      },
      'mailark-agent started',
    );
    // Schedules first: a slow or unreachable store must not delay anyone's backup.
    this.scheduler.start();
    await Promise.all(this.config.tenants.map((t) => this.refresh(t)));
    this.staleTimer = setInterval(() => void this.checkStale(), this.opts.staleCheckEveryMs ?? 60_000);
    this.staleTimer.unref();
    return this.http.address;
  }

  /** Asks for a job; false when it was coalesced or the agent is stopping. */
  enqueue(tenant: string, kind: JobKind, trigger: string): boolean {
    const t = this.tenants.get(tenant);
    if (t === undefined) throw new Error(`unknown tenant ${tenant}`);
    const r = this.queue.enqueue({ tenant, kind, repository: t.repository, trigger });
    if (!r.accepted) this.logger.warn({ tenant, job: kind, trigger }, `job not queued: ${r.reason}`);
    return r.accepted;
  }

  /** Runs one job now, outside the queue and schedules (`mailark-agent run-once`). */
  runOnce(tenant: string, kind: JobKind, signal: AbortSignal): Promise<JobReport> {
    const t = this.tenants.get(tenant);
    if (t === undefined) throw new Error(`unknown tenant ${tenant}`);
    return this.runJob({ tenant, kind, repository: t.repository, trigger: 'run-once' }, signal);
  }

  health(): Health {
    return evaluateHealth([...this.statuses.values()], this.healthOptions());
  }

  metrics(): string {
    return renderMetrics({
      startedAt: this.startedAt,
      running: this.queue.running.map((j) => ({ tenant: j.tenant, kind: j.kind })),
      queued: this.queue.queued.length,
      tenants: [...this.statuses.values()],
      ...(this.stopping === undefined ? { nextRuns: this.scheduler.nextRuns() } : {}),
    });
  }

  status(tenant: string): TenantStatus | undefined {
    return this.statuses.get(tenant);
  }

  /** Stops taking work, aborts running jobs and waits for them (up to the grace period). True if all unwound. */
  stop(reason = 'shutdown'): Promise<boolean> {
    this.stopping ??= (async () => {
      this.logger.info(
        { reason, running: this.queue.running.map((j) => `${j.tenant}:${j.kind}`) },
        'mailark-agent stopping',
      );
      this.scheduler.stop();
      if (this.staleTimer !== undefined) clearInterval(this.staleTimer);
      const dropped = this.queue.stop(reason);
      if (dropped.length > 0)
        this.logger.info({ dropped: dropped.map((j) => `${j.tenant}:${j.kind}`) }, 'dropped queued jobs');
      let timer: NodeJS.Timeout | undefined;
      const clean = await Promise.race([
        this.queue.idle().then(() => true),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(false), this.config.shutdownGraceMs);
        }),
      ]);
      clearTimeout(timer);
      await this.http?.close();
      if (clean) this.logger.info('mailark-agent stopped');
      else
        this.logger.error(
          { running: this.queue.running.map((j) => `${j.tenant}:${j.kind}`) },
          'jobs did not stop in time',
        );
      return clean;
    })();
    return this.stopping;
  }

  private async runJob(job: Job, signal: AbortSignal): Promise<JobReport> {
    const t = this.tenants.get(job.tenant) as TenantConfig;
    const log = this.logger.child({ tenant: job.tenant, job: job.kind });
    const startedAt = this.now();
    log.info({ trigger: job.trigger }, 'job started');
    const report = await runTenantJob(t, job.kind, {
      reporter: new PinoReporter(log),
      signal,
      timeZone: this.config.timeZone,
      toolVersion: this.opts.toolVersion,
      cacheDir: this.opts.cacheDir,
    });
    const endedAt = this.now();
    const status = this.statuses.get(job.tenant) as TenantStatus;
    recordJob(
      status,
      {
        kind: job.kind,
        startedAt,
        endedAt,
        outcome: report.outcome,
        ...(report.error === undefined ? {} : { error: report.error }),
      },
      report.figures,
    );
    const level = report.outcome === 'ok' ? 'info' : report.outcome === 'interrupted' ? 'warn' : 'error';
    log[level](
      {
        outcome: report.outcome,
        durationMs: endedAt - startedAt,
        ...(report.figures === undefined ? {} : report.figures),
        ...(report.forget === undefined ? {} : { forget: report.forget }),
        ...(report.prune === undefined ? {} : { prune: report.prune }),
        ...(report.error === undefined ? {} : { error: report.error }),
      },
      'job finished',
    );
    if (report.outcome === 'failed' || report.outcome === 'partial') {
      await this.alerter.send(
        Alerter.event({
          event: report.outcome === 'failed' ? 'failure' : 'partial',
          tenant: job.tenant,
          job: job.kind,
          message:
            report.outcome === 'failed'
              ? `${job.kind} of ${job.tenant} failed: ${report.error?.code ?? ''} ${report.error?.message ?? ''}`.trim()
              : `${job.kind} of ${job.tenant} saved a partial snapshot: ${report.failures?.length ?? 0} mailbox(es) failed`,
          ...(report.error === undefined ? {} : { code: report.error.code }),
          ...(report.failures === undefined || report.failures.length === 0
            ? {}
            : { failures: report.failures }),
          ...(report.snapshotId === undefined ? {} : { snapshotId: report.snapshotId }),
        }),
      );
    }
    if (report.outcome === 'ok') await this.alerter.resolve(job.tenant, job.kind, report.snapshotId);
    if (report.outcome !== 'interrupted') {
      await this.refresh(t);
      await this.checkStale();
    }
    return report;
  }

  /** Reads the repository facts of a tenant into its status (errors are recorded, not thrown). */
  private async refresh(t: TenantConfig): Promise<void> {
    const status = this.statuses.get(t.name) as TenantStatus;
    try {
      const facts = await readRepositoryFacts(
        t,
        new PinoReporter(this.logger.child({ tenant: t.name })),
        this.opts.cacheDir,
      );
      status.snapshots = facts.snapshots;
      status.repositoryBytes = facts.repositoryBytes;
      if (facts.newestComplete !== undefined) status.newestComplete = facts.newestComplete;
      if (facts.snapshotMessages !== undefined) status.snapshotMessages = facts.snapshotMessages;
      delete status.repositoryError;
    } catch (err) {
      const e = err as { code?: string; message?: string };
      status.repositoryError = { code: e.code ?? 'INTERNAL', message: e.message ?? String(err) };
      this.logger.error({ tenant: t.name, error: status.repositoryError }, 'cannot read repository');
    }
  }

  private async checkStale(): Promise<void> {
    const o = this.healthOptions();
    const statuses = [...this.statuses.values()];
    const stale = statuses
      .filter((s) => isStale(s, o))
      .map((s) => ({ tenant: s.tenant, message: staleReason(s, o) }));
    await this.alerter.updateStale(
      stale,
      statuses.map((s) => s.tenant),
    );
  }

  private healthOptions() {
    return { now: this.now(), startedAt: this.startedAt, staleAfterMs: this.config.alerts.staleAfterMs };
  }
}
