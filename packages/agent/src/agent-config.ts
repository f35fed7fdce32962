/**
 * The agent's configuration file (/etc/mailark/agent.yaml): YAML or JSON, validated with zod.
 *
 * Rule: a bad file never half-starts an agent. Every problem is reported at once, one line each,
 * naming the field path (`tenants[1].schedule.backup: invalid cron expression "61 * * * *": ...`):
 * unknown fields are refused (a typo must not silently fall back to a default), cron expressions and
 * time zones are compiled, and every referenced file (passwords, users) must be readable. Secrets are
 * read when a job needs them, never at load time, so a rotated password file is picked up without a
 * restart and nothing secret sits in the parsed config.
 */
import { accessSync, constants, readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { MailarkError, type RetentionPolicy } from '@mailark/core';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { agentSchema, type RawConfig, type RawTenant } from './config-schema.js';
import { parseTimeSpan } from './time-span.js';

export type JobKind = 'backup' | 'light' | 'check' | 'prune';

export interface TenantUser {
  user: string;
  /** For imap.auth 'user': the file holding this user's own password. */
  passwordFile?: string;
}

/** A tenant with defaults applied and paths made absolute. */
export interface TenantConfig {
  name: string;
  repository: string;
  passwordFile: string;
  s3: { endpoint?: string; region?: string; pathStyle?: boolean };
  imap: {
    url: string;
    auth: 'authzid' | 'master-separator' | 'user';
    adminUser?: string;
    adminPasswordFile?: string;
    separator?: string;
    tls?: 'require' | 'allow' | 'off';
    insecure?: boolean;
  };
  /** Inline users; when usersFile is set, it is read at each backup instead. */
  users?: TenantUser[];
  usersFile?: string;
  concurrency: number;
  tags: string[];
  schedule: Record<JobKind, string | null>;
  /** undefined: no retention (forget never runs). */
  retention: RetentionPolicy | undefined;
  /** Percent of pack data read by each scheduled check. */
  checkReadDataSubset: number;
  pruneMaxUnused: string;
}

export interface AgentConfig {
  /** The file it came from, for messages. */
  source: string;
  http: { host: string; port: number };
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  timeZone: string;
  maxParallel: number;
  shutdownGraceMs: number;
  alerts: {
    webhook?: {
      url: string;
      headers: Record<string, string>;
      /** Header name -> absolute path of the file holding its value (read at each send). */
      headerFiles?: Record<string, string>;
      timeoutMs: number;
    };
    command?: string[];
    staleAfterMs: number;
  };
  tenants: TenantConfig[];
}

export const DEFAULT_SCHEDULE: Record<JobKind, string | null> = {
  backup: '0 2 * * *',
  light: null,
  check: '0 5 * * *',
  prune: '0 3 * * 0',
};

/** Reads, parses and validates a config file; CONFIG error listing every problem, one per line. */
export function loadAgentConfig(path: string): AgentConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new MailarkError(
      'CONFIG',
      `cannot read config file ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
      {
        hint: 'pass --config /etc/mailark/agent.yaml (see deploy/agent.example.yaml)',
      },
    );
  }
  return parseAgentConfig(text, path);
}

/** As loadAgentConfig, from text; relative file paths resolve against the config file's directory. */
export function parseAgentConfig(text: string, source: string): AgentConfig {
  let data: unknown;
  try {
    // YAML 1.2 is a superset of JSON: one parser reads both.
    data = parseYaml(text, { prettyErrors: true, uniqueKeys: true });
  } catch (err) {
    throw configError(source, [`not valid YAML or JSON: ${(err as Error).message.split('\n')[0]}`]);
  }
  const parsed = agentSchema.safeParse(data ?? {});
  if (!parsed.success)
    throw configError(
      source,
      parsed.error.issues.map((i) => describeIssue(i, data)),
    );
  const base = source.includes('/') ? resolve(source, '..') : process.cwd();
  const config = resolveConfig(parsed.data, source, base);
  const problems = [...crossCheck(parsed.data), ...checkFiles(config)];
  if (problems.length > 0) throw configError(source, problems);
  return config;
}

function configError(source: string, problems: string[]): MailarkError {
  const [first] = problems;
  const message =
    problems.length === 1
      ? `config ${source}: ${first}`
      : `config ${source} has ${problems.length} problems:\n${problems.map((p) => `  - ${p}`).join('\n')}`;
  return new MailarkError('CONFIG', message, {
    hint: 'fix the field named above; deploy/agent.example.yaml documents every field',
    details: { problems },
  });
}

function describeIssue(issue: z.core.$ZodIssue, data: unknown): string {
  const at = pathText(issue.path);
  const where = at === '' ? '' : `${at}: `;
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys.map((k) => JSON.stringify(k)).join(', ');
    return `${where}unknown field${issue.keys.length > 1 ? 's' : ''} ${keys}`;
  }
  if (issue.code === 'invalid_type' && valueAt(data, issue.path) === undefined)
    return `${where}missing (required)`;
  if (issue.code === 'invalid_type') return `${where}expected ${issue.expected}`;
  if (issue.code === 'invalid_union') return `${where}expected a user name, or { user, passwordFile }`;
  return `${where}${issue.message}`;
}

/** `tenants[1].imap.url` */
export function pathText(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? String(p) : `.${String(p)}`;
  return out;
}

function valueAt(data: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let v = data;
  for (const p of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[p];
  }
  return v;
}

function resolveConfig(raw: RawConfig, source: string, base: string): AgentConfig {
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  const [host, port] = splitHostPort(raw.http.listen);
  const webhook = raw.alerts?.webhook;
  return {
    source,
    http: { host, port },
    logLevel: raw.logLevel,
    timeZone: raw.timeZone ?? Intl.DateTimeFormat().resolvedOptions().timeZone,
    maxParallel: raw.maxParallel,
    shutdownGraceMs: parseTimeSpan(raw.shutdownGrace)!,
    alerts: {
      ...(webhook === undefined
        ? {}
        : {
            webhook: {
              url: webhook.url,
              headers: webhook.headers ?? {},
              ...(webhook.headerFiles === undefined
                ? {}
                : {
                    headerFiles: Object.fromEntries(
                      Object.entries(webhook.headerFiles).map(([name, file]) => [name, abs(file)]),
                    ),
                  }),
              timeoutMs: parseTimeSpan(webhook.timeout)!,
            },
          }),
      ...(raw.alerts?.command === undefined ? {} : { command: raw.alerts.command }),
      staleAfterMs: parseTimeSpan(raw.alerts?.staleAfter ?? '26h')!,
    },
    tenants: raw.tenants.map((t) => resolveTenant(t, raw.defaults ?? {}, abs)),
  };
}

function resolveTenant(
  t: RawTenant,
  d: NonNullable<RawConfig['defaults']>,
  abs: (p: string) => string,
): TenantConfig {
  const schedule = { ...DEFAULT_SCHEDULE };
  for (const src of [d.schedule, t.schedule]) {
    for (const [k, v] of Object.entries(src ?? {})) if (v !== undefined) schedule[k as JobKind] = v;
  }
  const r = t.retention === undefined ? d.retention : t.retention;
  const subset = t.check?.readDataSubset ?? d.check?.readDataSubset ?? 5;
  const imap = Object.fromEntries(
    Object.entries(t.imap).filter(([, v]) => v !== undefined),
  ) as TenantConfig['imap'];
  if (imap.adminPasswordFile !== undefined) imap.adminPasswordFile = abs(imap.adminPasswordFile);
  return {
    name: t.name,
    repository: /^[a-z][a-z0-9+.-]*:/i.test(t.repository) ? t.repository : abs(t.repository),
    passwordFile: abs(t.passwordFile),
    s3: Object.fromEntries(Object.entries(t.s3 ?? {}).filter(([, v]) => v !== undefined)),
    imap,
    ...(t.users === undefined
      ? {}
      : {
          users: t.users.map((u) =>
            typeof u === 'string' ? { user: u } : { user: u.user, passwordFile: abs(u.passwordFile) },
          ),
        }),
    ...(t.usersFile === undefined ? {} : { usersFile: abs(t.usersFile) }),
    concurrency: t.concurrency ?? d.concurrency ?? 4,
    tags: t.tags ?? d.tags ?? [],
    schedule,
    retention:
      r === undefined || r === null
        ? undefined
        : dropUndefined({
            last: r.keepLast,
            hourly: r.keepHourly,
            daily: r.keepDaily,
            weekly: r.keepWeekly,
            monthly: r.keepMonthly,
            yearly: r.keepYearly,
            within: r.keepWithin,
            tags: r.keepTags,
          }),
    checkReadDataSubset: typeof subset === 'number' ? subset : Number(subset.trim().replace(/%$/, '')),
    pruneMaxUnused: t.prune?.maxUnused ?? d.prune?.maxUnused ?? '5%',
  };
}

/** Rules across fields, each reported with the path of the field to change. */
function crossCheck(raw: RawConfig): string[] {
  const problems: string[] = [];
  const [host] = splitHostPort(raw.http.listen);
  if (Number.isNaN(splitHostPort(raw.http.listen)[1])) {
    problems.push(
      `http.listen: expected host:port, e.g. 127.0.0.1:9465, got ${JSON.stringify(raw.http.listen)}`,
    );
  } else if (!raw.http.allowNonLoopback && !isLoopback(host)) {
    problems.push(
      `http.listen: ${host} is not a loopback address (set http.allowNonLoopback: true to expose it)`,
    );
  }
  const hook = raw.alerts?.webhook;
  const inline = new Set(Object.keys(hook?.headers ?? {}).map((h) => h.toLowerCase()));
  for (const name of Object.keys(hook?.headerFiles ?? {})) {
    if (inline.has(name.toLowerCase()))
      problems.push(`alerts.webhook.headerFiles.${name}: also set in alerts.webhook.headers (keep one)`);
  }
  const names = new Map<string, number>();
  raw.tenants.forEach((t, i) => {
    const at = `tenants[${i}]`;
    const prev = names.get(t.name);
    if (prev !== undefined) problems.push(`${at}.name: "${t.name}" is already used by tenants[${prev}]`);
    names.set(t.name, i);
    if ((t.users === undefined) === (t.usersFile === undefined)) {
      problems.push(`${at}: give exactly one of users (a list) or usersFile`);
    }
    if (t.imap.auth !== 'user') {
      if (t.imap.adminUser === undefined)
        problems.push(`${at}.imap.adminUser: missing (required for auth ${t.imap.auth})`);
      if (t.imap.adminPasswordFile === undefined) {
        problems.push(`${at}.imap.adminPasswordFile: missing (required for auth ${t.imap.auth})`);
      }
    } else if (t.users?.some((u) => typeof u === 'string')) {
      problems.push(`${at}.users: auth "user" needs { user, passwordFile } for every user`);
    }
  });
  return problems;
}

/** Every file the agent will read must exist and be readable now, not at 02:00. */
function checkFiles(config: AgentConfig): string[] {
  const problems: string[] = [];
  const readable = (field: string, file: string | undefined) => {
    if (file === undefined) return;
    try {
      accessSync(file, constants.R_OK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code;
      problems.push(`${field}: cannot read ${file} (${why})`);
    }
  };
  for (const [name, file] of Object.entries(config.alerts.webhook?.headerFiles ?? {}))
    readable(`alerts.webhook.headerFiles.${name}`, file);
  config.tenants.forEach((t, i) => {
    const check = (field: string, file: string | undefined) => readable(`tenants[${i}].${field}`, file);
    check('passwordFile', t.passwordFile);
    check('imap.adminPasswordFile', t.imap.adminPasswordFile);
    check('usersFile', t.usersFile);
    t.users?.forEach((u, j) => {
      check(`users[${j}].passwordFile`, u.passwordFile);
    });
  });
  return problems;
}

function splitHostPort(listen: string): [string, number] {
  const m = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(listen.trim());
  if (m === null) return ['', Number.NaN];
  const port = Number(m[2]);
  return [m[1]!, port <= 65535 ? port : Number.NaN];
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

function dropUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
