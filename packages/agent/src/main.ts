/**
 * The `mailark-agent` command line:
 *
 *   mailark-agent [--config FILE]                       run the daemon (schedules, HTTP, alerts)
 *   mailark-agent run-once --tenant T [--job KIND]      one job now, for cron users (default: backup)
 *   mailark-agent validate [--config FILE] [--json]     check a config file, show the next runs
 *
 * FILE defaults to $MAILARK_AGENT_CONFIG, else /etc/mailark/agent.yaml. Exit codes are mailark's:
 * 0 ok, 1 failure, 2 bad usage or config, 3 partial backup, 10 no repository, 11 locked,
 * 12 wrong password, 130 interrupted. The daemon exits 0 after a clean SIGTERM/SIGINT/SIGHUP, 1 when
 * a job did not stop within the grace period; a second signal exits at once (130). SIGHUP stops
 * cleanly too (Node's default would kill a running backup mid-pack): the agent reads its config at
 * start only, so a new config takes effect with a restart (`systemctl restart mailark-agent`).
 *
 * Output: the daemon and run-once log JSON lines (pino) on stdout; validate prints text, or with
 * --json one JSON document (the parsed config, secrets being files, and the next runs), and any
 * error as {"error":{"code","message","hint"}} on stdout, as mailark --json does.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { type ErrorCode, exitCodeFor, isMailarkError, MailarkError, resolveCacheDir } from '@mailark/core';
import { Agent } from './agent.js';
import { type AgentConfig, type JobKind, loadAgentConfig } from './agent-config.js';
import { createLogger } from './pino-reporter.js';
import { Scheduler, scheduleEntries } from './scheduler.js';
import { formatTimeSpan } from './time-span.js';

export const AGENT_VERSION: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

const USAGE = `usage:
  mailark-agent [--config FILE]                   run the agent (default command)
  mailark-agent run-once --tenant T [--job KIND]  run one job now: backup (default), light, check, prune
  mailark-agent validate [--config FILE] [--json] check a config file and show the next runs
  mailark-agent --version | --help

FILE defaults to $MAILARK_AGENT_CONFIG, else /etc/mailark/agent.yaml. The agent logs JSON
lines on stdout; validate --json prints one JSON document (errors too).
Exit codes: 0 ok, 1 failure, 2 usage or config error, 3 partial backup, 10 no repository,
11 locked, 12 wrong password, 130 interrupted.`;

export interface AgentIo {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
  env: Record<string, string | undefined>;
}

/** Signals that stop the daemon and run-once cleanly (running jobs are interrupted, locks released). */
const STOP_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;

/** Parses argv and runs; resolves to the exit code. The daemon resolves when it has stopped. */
export async function runAgentCli(
  argv: string[],
  io: AgentIo,
  signals: NodeJS.EventEmitter = process,
): Promise<number> {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        tenant: { type: 'string' },
        job: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean' },
        json: { type: 'boolean' },
      },
    });
    if (values.help) {
      io.stdout.write(`${USAGE}\n`);
      return 0;
    }
    if (values.version) {
      io.stdout.write(`mailark-agent ${AGENT_VERSION}\n`);
      return 0;
    }
    const command = positionals[0] ?? 'run';
    if (positionals.length > 1 || !['run', 'run-once', 'validate'].includes(command)) {
      throw new MailarkError('USAGE', `unknown command "${positionals.join(' ')}"`, {
        hint: 'mailark-agent --help',
      });
    }
    if (values.json && command !== 'validate') {
      throw new MailarkError('USAGE', `--json goes with validate (${command} always logs JSON lines)`, {
        hint: 'mailark-agent validate --config FILE --json',
      });
    }
    const config = loadAgentConfig(values.config ?? io.env.MAILARK_AGENT_CONFIG ?? '/etc/mailark/agent.yaml');
    if (command === 'validate') return values.json ? validateJson(config, io) : validate(config, io);
    // The local cache of index and snapshot objects: MAILARK_CACHE_DIR (the systemd unit sets it),
    // else $XDG_CACHE_HOME/mailark or ~/.cache/mailark.
    const cacheDir = resolveCacheDir({ env: io.env });
    if (command === 'run-once') return await runOnce(config, values.tenant, values.job, signals, cacheDir);
    if (values.tenant !== undefined || values.job !== undefined) {
      throw new MailarkError('USAGE', '--tenant and --job go with run-once', {
        hint: 'mailark-agent run-once --tenant T',
      });
    }
    return await daemon(config, signals, cacheDir);
  } catch (err) {
    // --json as mailark: the error is the one document on stdout (also for a parse error of argv).
    return argv.includes('--json') ? reportJsonError(err, io) : reportError(err, io);
  }
}

/** validate --json: what the agent will run, as one document (no secrets: the config names files). */
function validateJson(config: AgentConfig, io: AgentIo): number {
  const next = new Scheduler(scheduleEntries(config.tenants), config.timeZone, () => {}).nextRuns();
  const a = config.alerts;
  const doc = {
    valid: true,
    source: config.source,
    timeZone: config.timeZone,
    http: config.http,
    maxParallel: config.maxParallel,
    shutdownGraceMs: config.shutdownGraceMs,
    alerts: {
      // The webhook URL and headers may hold a token: only whether one is set.
      webhook: a.webhook !== undefined,
      command: a.command ?? null,
      staleAfterMs: a.staleAfterMs,
    },
    tenants: config.tenants.map((t) => ({
      name: t.name,
      repository: t.repository,
      imap: { url: t.imap.url, auth: t.imap.auth },
      users: t.users?.length ?? null,
      usersFile: t.usersFile ?? null,
      retention: t.retention ?? null,
      checkReadDataSubset: t.checkReadDataSubset,
      pruneMaxUnused: t.pruneMaxUnused,
      schedules: next
        .filter((r) => r.tenant === t.name)
        .map((r) => ({ job: r.kind, cron: r.pattern, next: r.next?.toISOString() ?? null })),
    })),
  };
  io.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
  return 0;
}

function reportJsonError(err: unknown, io: AgentIo): number {
  const parse =
    err instanceof Error && String((err as { code?: unknown }).code ?? '').startsWith('ERR_PARSE_ARGS');
  const code = parse ? 'USAGE' : isMailarkError(err) ? err.code : 'INTERNAL';
  const message = err instanceof Error ? err.message : String(err);
  const hint = parse ? 'mailark-agent --help' : isMailarkError(err) ? (err.hint ?? null) : null;
  io.stdout.write(`${JSON.stringify({ error: { code, message, hint } })}\n`);
  return parse ? 2 : exitCodeFor(err);
}

function validate(config: AgentConfig, io: AgentIo): number {
  const out: string[] = [
    `config ${config.source} is valid: ${config.tenants.length} tenant(s), time zone ${config.timeZone}`,
  ];
  const scheduler = new Scheduler(scheduleEntries(config.tenants), config.timeZone, () => {});
  for (const t of config.tenants) {
    out.push(`tenant ${t.name}: repository ${t.repository}, imap ${t.imap.url} (${t.imap.auth})`);
    for (const r of scheduler.nextRuns().filter((e) => e.tenant === t.name)) {
      out.push(`  ${r.kind.padEnd(6)} ${r.pattern.padEnd(16)} next ${r.next?.toISOString() ?? 'never'}`);
    }
    out.push(
      `  retention: ${t.retention === undefined ? 'none (keep everything)' : JSON.stringify(t.retention)}`,
    );
  }
  const a = config.alerts;
  const sinks = [a.webhook === undefined ? '' : 'webhook', a.command === undefined ? '' : 'command'].filter(
    (s) => s !== '',
  );
  out.push(
    `alerts: ${sinks.length === 0 ? 'none configured' : sinks.join(' + ')}, stale after ${formatTimeSpan(a.staleAfterMs)}`,
  );
  out.push(`http: ${config.http.host}:${config.http.port} (/healthz, /metrics)`);
  io.stdout.write(`${out.join('\n')}\n`);
  return 0;
}

async function runOnce(
  config: AgentConfig,
  tenant: string | undefined,
  job: string | undefined,
  signals: NodeJS.EventEmitter,
  cacheDir: string | undefined,
) {
  const names = config.tenants.map((t) => t.name);
  if (tenant === undefined || !names.includes(tenant)) {
    throw new MailarkError(
      'USAGE',
      tenant === undefined ? 'run-once needs --tenant' : `no tenant "${tenant}" in ${config.source}`,
      {
        hint: `tenants: ${names.join(', ')}`,
      },
    );
  }
  const kind = (job ?? 'backup') as JobKind;
  if (!['backup', 'light', 'check', 'prune'].includes(kind)) {
    throw new MailarkError('USAGE', `unknown job "${job}"`, {
      hint: 'use --job backup, light, check or prune',
    });
  }
  const agent = new Agent({
    config,
    logger: createLogger(config.logLevel),
    toolVersion: AGENT_VERSION,
    cacheDir,
  });
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  for (const name of STOP_SIGNALS) signals.on(name, onSignal);
  try {
    const report = await agent.runOnce(tenant, kind, controller.signal);
    if (report.outcome === 'ok') return 0;
    if (report.outcome === 'partial') return 3;
    if (report.outcome === 'interrupted') return 130;
    return exitCodeFor(
      new MailarkError((report.error?.code ?? 'INTERNAL') as ErrorCode, report.error?.message ?? ''),
    );
  } finally {
    for (const name of STOP_SIGNALS) signals.off(name, onSignal);
  }
}

async function daemon(
  config: AgentConfig,
  signals: NodeJS.EventEmitter,
  cacheDir: string | undefined,
): Promise<number> {
  const logger = createLogger(config.logLevel);
  const agent = new Agent({ config, logger, toolVersion: AGENT_VERSION, cacheDir });
  let stopped: Promise<boolean> | undefined;
  let resolveExit: (code: number) => void = () => {};
  const exit = new Promise<number>((r) => {
    resolveExit = r;
  });
  const onSignal = (name: string) => {
    if (stopped !== undefined) {
      logger.warn({ signal: name }, 'second signal: exiting now');
      resolveExit(130);
      return;
    }
    stopped = agent.stop(`received ${name}`);
    stopped.then((clean) => resolveExit(clean ? 0 : 1));
  };
  const handlers = STOP_SIGNALS.map((name) => [name, () => onSignal(name)] as const);
  for (const [name, handler] of handlers) signals.on(name, handler);
  try {
    await agent.start();
    return await exit;
  } finally {
    for (const [name, handler] of handlers) signals.off(name, handler);
    logger.flush();
  }
}

function reportError(err: unknown, io: AgentIo): number {
  if (
    err instanceof Error &&
    'code' in err &&
    String((err as { code: unknown }).code).startsWith('ERR_PARSE_ARGS')
  ) {
    io.stderr.write(`mailark-agent: ${err.message}\n${USAGE}\n`);
    return 2;
  }
  io.stderr.write(`mailark-agent: ${err instanceof Error ? err.message : String(err)}\n`);
  if (isMailarkError(err) && err.hint !== undefined) io.stderr.write(`hint: ${err.hint}\n`);
  return exitCodeFor(err);
}

/** Wires process.* and exits. */
export async function main(): Promise<void> {
  const code = await runAgentCli(process.argv.slice(2), {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
  });
  process.exit(code);
}
