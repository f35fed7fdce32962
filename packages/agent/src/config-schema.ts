/**
 * The zod schema of the agent's configuration file: every field, its type and its own validation
 * (cron expressions compiled by croner, time zones by Intl, durations by core's parsers). Objects are
 * strict: an unknown field is an error, so a typo never silently falls back to a default.
 * agent-config.ts loads a file against it and applies defaults; deploy/agent.example.yaml documents it.
 */
import { assertTimeZone, parseMaxUnused, parseRetentionDuration } from '@mailark/core';
import { Cron } from 'croner';
import { z } from 'zod';
import { parseTimeSpan } from './time-span.js';

const cron = z.string().superRefine((pattern, ctx) => {
  try {
    new Cron(pattern, { paused: true }).stop();
  } catch (err) {
    ctx.addIssue({
      code: 'custom',
      message: `invalid cron expression ${JSON.stringify(pattern)}: ${(err as Error).message}`,
    });
  }
});

const timeSpan = z.string().superRefine((text, ctx) => {
  if (parseTimeSpan(text) === undefined) {
    ctx.addIssue({
      code: 'custom',
      message: `invalid time span ${JSON.stringify(text)}: use e.g. 26h, 90min, 30s, 1d12h`,
    });
  }
});

const count = z.int().min(-1, 'must be a whole number ≥ 0, or -1 for "all"');

const retentionSchema = z.strictObject({
  keepLast: count.optional(),
  keepHourly: count.optional(),
  keepDaily: count.optional(),
  keepWeekly: count.optional(),
  keepMonthly: count.optional(),
  keepYearly: count.optional(),
  keepWithin: z
    .string()
    .refine((t) => attempt(() => parseRetentionDuration(t)), 'invalid duration: use e.g. 2d, 1w3d, 1y6m')
    .optional(),
  keepTags: z.array(z.array(z.string().min(1)).min(1)).optional(),
});

const scheduleSchema = z.strictObject({
  /** The nightly incremental backup, followed by retention (forget) when a policy is set. */
  backup: cron.optional(),
  /** Optional extra incremental passes (same-day capture); null or absent: none. */
  light: cron.nullable().optional(),
  /** check with a random share of pack data read. null: never. */
  check: cron.nullable().optional(),
  /** prune (exclusive lock: the agent never runs it beside another job of the repository). */
  prune: cron.nullable().optional(),
});

const percent = z.union([z.number(), z.string()]).superRefine((v, ctx) => {
  const n = typeof v === 'number' ? v : Number(v.trim().replace(/%$/, ''));
  if (!(Number.isFinite(n) && n >= 0 && n <= 100)) {
    ctx.addIssue({
      code: 'custom',
      message: `must be a percentage between 0 and 100, e.g. "5%", got ${JSON.stringify(v)}`,
    });
  }
});

const jobSettings = {
  schedule: scheduleSchema.optional(),
  retention: retentionSchema.nullable().optional(),
  check: z.strictObject({ readDataSubset: percent.optional() }).optional(),
  prune: z
    .strictObject({
      maxUnused: z
        .string()
        .refine(
          (t) => attempt(() => parseMaxUnused(t)),
          'invalid max-unused: use e.g. "5%", "500M" or "unlimited"',
        )
        .optional(),
    })
    .optional(),
  concurrency: z.int().min(1).max(64).optional(),
  tags: z.array(z.string().min(1)).optional(),
};

const userSchema = z.union([
  z.string().min(1),
  z.strictObject({ user: z.string().min(1), passwordFile: z.string().min(1) }),
]);

export const tenantSchema = z.strictObject({
  /** The tenant name recorded in snapshots, usually the mail domain. */
  name: z.string().min(1),
  /** Repository location: a directory, file:///path or s3://bucket/prefix. */
  repository: z.string().min(1),
  passwordFile: z.string().min(1),
  s3: z
    .strictObject({
      endpoint: z.url().optional(),
      region: z.string().min(1).optional(),
      pathStyle: z.boolean().optional(),
    })
    .optional(),
  imap: z.strictObject({
    url: z
      .string()
      .regex(/^imaps?:\/\/[^/\s]+\/?$/, 'must look like imaps://mail.example.com:993 or imap://host:143'),
    auth: z.enum(['authzid', 'master-separator', 'user']).default('authzid'),
    adminUser: z.string().min(1).optional(),
    adminPasswordFile: z.string().min(1).optional(),
    separator: z.string().min(1).optional(),
    tls: z.enum(['require', 'allow', 'off']).optional(),
    insecure: z.boolean().optional(),
  }),
  users: z.array(userSchema).min(1).optional(),
  /** Lines `user[,password-file]`; `#` starts a comment. */
  usersFile: z.string().min(1).optional(),
  ...jobSettings,
});

export const agentSchema = z.strictObject({
  http: z
    .strictObject({
      /** host:port of /healthz and /metrics; loopback only unless allowNonLoopback. */
      listen: z.string().default('127.0.0.1:9465'),
      allowNonLoopback: z.boolean().default(false),
    })
    .default({ listen: '127.0.0.1:9465', allowNonLoopback: false }),
  logLevel: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
  /** IANA zone for cron schedules and retention calendar buckets; default: the system's. */
  timeZone: z
    .string()
    .refine(
      (tz) => attempt(() => assertTimeZone(tz)),
      'unknown time zone: use an IANA name such as Europe/Paris',
    )
    .optional(),
  /** Tenants backed up at the same time. */
  maxParallel: z.int().min(1).max(64).default(2),
  /** How long SIGTERM waits for running jobs to stop before exiting anyway. */
  shutdownGrace: timeSpan.default('25s'),
  defaults: z.strictObject(jobSettings).optional(),
  alerts: z
    .strictObject({
      webhook: z
        .strictObject({
          url: z.url(),
          headers: z.record(z.string(), z.string()).optional(),
          /** Header values read from files at each send (tokens stay out of the config, rotate freely). */
          headerFiles: z.record(z.string(), z.string().min(1)).optional(),
          timeout: timeSpan.default('10s'),
        })
        .optional(),
      /** argv; the event is written as JSON to its stdin. */
      command: z.array(z.string().min(1)).min(1).optional(),
      /** Alert when a tenant's newest complete snapshot is older than this. */
      staleAfter: timeSpan.default('26h'),
    })
    .optional(),
  tenants: z.array(tenantSchema).min(1, 'at least one tenant is needed'),
});

export type RawConfig = z.infer<typeof agentSchema>;
export type RawTenant = z.infer<typeof tenantSchema>;

function attempt(fn: () => unknown): boolean {
  try {
    fn();
    return true;
  } catch {
    return false;
  }
}
