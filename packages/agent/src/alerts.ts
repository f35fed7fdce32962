/**
 * Alerts: tell a human when a tenant is not protected. Events: `failure` (a job failed), `partial`
 * (a backup saved a snapshot but some mailboxes failed), `stale` (the newest complete snapshot is
 * older than alerts.staleAfter, default 26 h; raised once per episode, again only after a fresh
 * complete snapshot ended the previous one) and `recovered` (the problem an earlier alert reported is
 * gone: the same job succeeded, light and backup counting as one, or the tenant is no longer stale).
 * Every failure/partial episode and every stale episode is closed by exactly one `recovered` event, so
 * a ticket or pager integration can resolve what it opened. Episodes live in memory: a failure
 * alerted before an agent restart gets no `recovered` after it.
 *
 * Delivery, to each configured sink: a webhook (HTTP POST of the event as JSON) and/or a command
 * (argv, no shell; the event as one JSON document on its stdin, MAILARK_EVENT and MAILARK_TENANT in
 * its environment). A sink that fails is logged and never stops the agent; events carry no secret.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import type { MailboxFailure, Reporter } from '@mailark/core';
import type { AgentConfig, JobKind } from './agent-config.js';

export type AlertKind = 'failure' | 'partial' | 'stale' | 'recovered';

export interface AlertEvent {
  event: AlertKind;
  tenant: string;
  job?: JobKind;
  /** ISO 8601 time the event was raised. */
  time: string;
  host: string;
  message: string;
  code?: string;
  /** Mailboxes that failed (partial backups). */
  failures?: MailboxFailure[];
  snapshotId?: string;
}

/** How long an alert command may run before it is killed. */
const COMMAND_TIMEOUT_MS = 30_000;

/** The problem a job's failure is about: a light pass and the nightly backup are one (both back up). */
function problemOf(tenant: string, job: JobKind): string {
  return `${tenant}\u0000${job === 'light' ? 'backup' : job}`;
}

export class Alerter {
  private readonly staleTenants = new Set<string>();
  /** Failure or partial alerts not yet followed by a success of the same job (problemOf keys). */
  private readonly openProblems = new Set<string>();

  constructor(
    private readonly config: AgentConfig['alerts'],
    private readonly reporter: Reporter,
  ) {}

  get configured(): boolean {
    return this.config.webhook !== undefined || this.config.command !== undefined;
  }

  /** Builds an event with time and host filled in. */
  static event(e: Omit<AlertEvent, 'time' | 'host'>, now = new Date()): AlertEvent {
    return { ...e, time: now.toISOString(), host: hostname() };
  }

  /** Delivers to every sink; resolves when all are done (or gave up). Never rejects. */
  async send(event: AlertEvent): Promise<void> {
    if ((event.event === 'failure' || event.event === 'partial') && event.job !== undefined) {
      this.openProblems.add(problemOf(event.tenant, event.job));
    }
    this.reporter.log('warn', `alert ${event.event}: ${event.message}`, {
      alert: event.event,
      tenant: event.tenant,
      ...(event.job === undefined ? {} : { job: event.job }),
    });
    const sinks: Array<Promise<void>> = [];
    if (this.config.webhook !== undefined) sinks.push(this.postWebhook(event, this.config.webhook));
    if (this.config.command !== undefined) sinks.push(this.runCommand(event, this.config.command));
    await Promise.all(sinks);
  }

  /**
   * After a job succeeded: sends `recovered` when a failure or partial alert of that job (light and
   * backup alike) is still open, and closes it. Returns the event sent, if any.
   */
  async resolve(tenant: string, job: JobKind, snapshotId?: string): Promise<AlertEvent | undefined> {
    if (!this.openProblems.delete(problemOf(tenant, job))) return undefined;
    const event = Alerter.event({
      event: 'recovered',
      tenant,
      job,
      message: `${job} of ${tenant} succeeded again`,
      ...(snapshotId === undefined ? {} : { snapshotId }),
    });
    await this.send(event);
    return event;
  }

  /**
   * Raises `stale` for tenants that just became stale, and `recovered` for stale tenants that are
   * fresh again (so the next episode alerts anew). Returns the events sent.
   */
  async updateStale(stale: ReadonlyArray<{ tenant: string; message: string }>, all: readonly string[]) {
    const now = new Set(stale.map((s) => s.tenant));
    const events: AlertEvent[] = [];
    for (const t of all) {
      if (!now.has(t) && this.staleTenants.delete(t)) {
        events.push(
          Alerter.event({
            event: 'recovered',
            tenant: t,
            message: `${t}: the newest complete snapshot is recent again`,
          }),
        );
      }
    }
    for (const s of stale) {
      if (this.staleTenants.has(s.tenant)) continue;
      this.staleTenants.add(s.tenant);
      events.push(Alerter.event({ event: 'stale', tenant: s.tenant, message: s.message }));
    }
    await Promise.all(events.map((e) => this.send(e)));
    return events;
  }

  private async postWebhook(
    event: AlertEvent,
    hook: NonNullable<AgentConfig['alerts']['webhook']>,
  ): Promise<void> {
    try {
      const fromFiles: Record<string, string> = {};
      for (const [name, file] of Object.entries(hook.headerFiles ?? {})) {
        try {
          fromFiles[name] = (await readFile(file, 'utf8')).trim();
        } catch (err) {
          throw new Error(`cannot read header file ${file} (${(err as NodeJS.ErrnoException).code ?? err})`);
        }
      }
      const res = await fetch(hook.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'mailark-agent',
          ...hook.headers,
          ...fromFiles,
        },
        body: JSON.stringify(event),
        signal: AbortSignal.timeout(hook.timeoutMs),
      });
      await res.arrayBuffer();
      if (!res.ok)
        this.reporter.log('error', `alert webhook answered HTTP ${res.status}`, { url: redactUrl(hook.url) });
    } catch (err) {
      this.reporter.log('error', `alert webhook failed: ${(err as Error).message}`, {
        url: redactUrl(hook.url),
      });
    }
  }

  private runCommand(event: AlertEvent, argv: readonly string[]): Promise<void> {
    return new Promise((resolve) => {
      const [file, ...args] = argv as [string, ...string[]];
      const child = spawn(file, args, {
        stdio: ['pipe', 'ignore', 'pipe'],
        env: { ...process.env, MAILARK_EVENT: event.event, MAILARK_TENANT: event.tenant },
      });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => {
        stderr = (stderr + d).slice(-2000);
      });
      const timer = setTimeout(() => child.kill('SIGKILL'), COMMAND_TIMEOUT_MS);
      child.on('error', (err) => {
        clearTimeout(timer);
        this.reporter.log('error', `alert command ${file} could not run: ${err.message}`);
        resolve();
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        if (code !== 0) {
          const how = signal === null ? `exit code ${code}` : `signal ${signal}`;
          this.reporter.log('error', `alert command ${file} failed (${how})`, { stderr: stderr.trim() });
        }
        resolve();
      });
      // A command that does not read its stdin must not crash the agent with EPIPE.
      child.stdin.on('error', () => {});
      child.stdin.end(`${JSON.stringify(event)}\n`);
    });
  }
}

/** A webhook URL may carry a token in its query or userinfo: logs get the origin and path only. */
function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(invalid url)';
  }
}
