/**
 * The agent against the real Dovecot and S3 of the harness, in-process: three tenants on a schedule
 * that fires three times a few seconds apart. Two back up (one to S3, one to a local directory) and
 * apply retention (keep-last 2); the third has a wrong IMAP admin password. Asserted: the good
 * tenants' snapshots equal the server byte for byte, retention left two snapshots, /metrics carries
 * the right values (parsed), /healthz is degraded naming only the bad tenant, and the alert hooks
 * (a command writing its stdin to a file, and a local webhook receiver) got the failure events of the
 * bad tenant and nothing for the good ones.
 */
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Agent, parseAgentConfig, parseMetrics } from '@mailark/agent';
import {
  LocalDirStore,
  type ObjectStore,
  openStore,
  Repository,
  readMessageBytes,
  TEST_KDF,
  walkMessages,
} from '@mailark/core';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { createLogger } from '../packages/agent/src/pino-reporter.js';
import { eventually } from '../packages/core/src/eventually.js';
import {
  appendMessages,
  closeRepository,
  fixtureMessages,
  freshPrefix,
  imapServer,
  newUser,
  serverState,
  sha256,
  type TestUser,
  tempDir,
} from './harness/fixtures.js';

const REPO_PASSWORD = 'agent test repository password';

interface Tenant {
  name: string;
  repository: string;
  users: TestUser[];
  store: () => Promise<ObjectStore>;
}

let dir: string;
const webhookEvents: Array<Record<string, unknown>> = [];
let webhook: ReturnType<typeof createServer>;
let webhookUrl: string;

beforeAll(async () => {
  const s3 = inject('s3');
  vi.stubEnv('AWS_ACCESS_KEY_ID', s3.accessKeyId);
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', s3.secretAccessKey);
  dir = tempDir('agent-');
  webhook = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => {
      body += d;
    });
    req.on('end', () => {
      webhookEvents.push(JSON.parse(body));
      res.end();
    });
  });
  await new Promise<void>((r) => webhook.listen(0, '127.0.0.1', r));
  webhookUrl = `http://127.0.0.1:${(webhook.address() as AddressInfo).port}/alerts`;
});

afterAll(async () => {
  await new Promise((r) => webhook.close(r));
  vi.unstubAllEnvs();
});

/** A cron pattern firing at three instants 6, 12 and 18 s from now (seconds field). */
function threeTimesSoon(): string {
  const s = new Date().getUTCSeconds();
  return `${[6, 12, 18].map((d) => (s + d) % 60).join(',')} * * * * *`;
}

describe('mailark-agent', () => {
  it('backs up two tenants on schedule, applies retention, reports metrics and health, alerts on the third', async () => {
    const s3 = inject('s3');
    const fixtures = fixtureMessages();
    const tenants: Tenant[] = [
      {
        name: 's3.example.test',
        repository: `s3://${s3.bucket}/${freshPrefix().replace(/\/$/, '')}`,
        users: [newUser('agent-s3a'), newUser('agent-s3b')],
        store: async () =>
          openStore(tenants[0]!.repository, {
            s3Endpoint: s3.endpoint,
            s3PathStyle: true,
            s3Region: s3.region,
          }),
      },
      {
        name: 'local.example.test',
        repository: join(dir, 'local-repo'),
        users: [newUser('agent-loc')],
        store: async () => new LocalDirStore(tenants[1]!.repository),
      },
      {
        name: 'broken.example.test',
        repository: join(dir, 'broken-repo'),
        users: [newUser('agent-bad')],
        store: async () => new LocalDirStore(tenants[2]!.repository),
      },
    ];
    await appendMessages(
      tenants[0]!.users[0]!,
      'INBOX',
      fixtures.slice(0, 8).map((raw) => ({ raw, flags: ['\\Seen'] })),
    );
    await appendMessages(
      tenants[0]!.users[1]!,
      'Archive/2024',
      fixtures.slice(8, 12).map((raw) => ({ raw })),
    );
    await appendMessages(
      tenants[1]!.users[0]!,
      'INBOX',
      fixtures.slice(12, 18).map((raw) => ({ raw, flags: ['$Forwarded'] })),
    );
    await appendMessages(
      tenants[2]!.users[0]!,
      'INBOX',
      fixtures.slice(18, 20).map((raw) => ({ raw })),
    );
    for (const t of tenants) {
      await closeRepository(await Repository.init(await t.store(), REPO_PASSWORD, { kdf: TEST_KDF }));
    }

    const imap = imapServer();
    writeFileSync(join(dir, 'repo.pass'), `${REPO_PASSWORD}\n`);
    writeFileSync(join(dir, 'imap.pass'), `${imap.masterPassword}\n`);
    writeFileSync(join(dir, 'wrong.pass'), 'not the master password\n');
    const alertFile = join(dir, 'alerts.jsonl');
    const schedule = threeTimesSoon();
    const config = parseAgentConfig(
      JSON.stringify({
        http: { listen: '127.0.0.1:0' },
        maxParallel: 3,
        alerts: {
          webhook: { url: webhookUrl },
          command: ['sh', '-c', 'cat >> "$0"', alertFile],
          staleAfter: '1h',
        },
        defaults: {
          schedule: { backup: schedule, check: null, prune: null },
          retention: { keepLast: 2 },
        },
        tenants: tenants.map((t, i) => ({
          name: t.name,
          repository: t.repository,
          passwordFile: 'repo.pass',
          ...(i === 0 ? { s3: { endpoint: s3.endpoint, region: s3.region, pathStyle: true } } : {}),
          imap: {
            url: imap.url,
            auth: 'authzid',
            adminUser: imap.masterUser,
            adminPasswordFile: i === 2 ? 'wrong.pass' : 'imap.pass',
          },
          users: t.users.map((u) => u.user),
          concurrency: 2,
        })),
      }),
      join(dir, 'agent.json'),
    );

    const logs: Array<Record<string, unknown>> = [];
    const logger = createLogger('info', {
      write(line: string) {
        appendFileSync(join(dir, 'agent.log'), line);
        logs.push(JSON.parse(line));
      },
    });
    const agent = new Agent({ config, logger, toolVersion: 'test', staleCheckEveryMs: 500 });
    const { port } = await agent.start();
    const finished = (tenant: string, outcome: string) =>
      logs.filter((l) => l.msg === 'job finished' && l.tenant === tenant && l.outcome === outcome).length;
    try {
      const runs = tenants.map((t, i) => () => finished(t.name, i === 2 ? 'failed' : 'ok'));
      await eventually(() => {
        const counts = runs.map((n) => n());
        expect(Math.min(...counts), `backups per tenant: ${counts.join(', ')}`).toBeGreaterThanOrEqual(3);
      }, 90_000);
      await eventually(
        () => expect(webhookEvents.length, 'alerts delivered').toBeGreaterThanOrEqual(3),
        90_000,
      );
      await eventually(() => expect(agent.metrics()).toMatch(/^mailark_agent_running_jobs 0$/m), 90_000);

      // Metrics, parsed.
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      const samples = parseMetrics(text);
      const value = (name: string, labels: Record<string, string>) =>
        samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
          ?.value;
      expect(value('mailark_agent_up', {})).toBe(1);
      expect(value('mailark_agent_running_jobs', {})).toBe(0);
      for (const [i, t] of tenants.entries()) {
        const tenant = { tenant: t.name };
        if (i === 2) {
          expect(value('mailark_tenant_errors_total', { ...tenant, job: 'backup' })).toBe(
            finished(t.name, 'failed'),
          );
          expect(value('mailark_tenant_last_run_success', { ...tenant, job: 'backup' })).toBe(0);
          expect(value('mailark_tenant_last_success_timestamp_seconds', tenant)).toBeUndefined();
          expect(value('mailark_tenant_snapshots', tenant)).toBe(0);
          continue;
        }
        const state = (await Promise.all(t.users.map((u) => serverState(u))))
          .flat()
          .flatMap((f) => f.messages);
        expect(value('mailark_tenant_snapshots', tenant)).toBe(2);
        expect(value('mailark_tenant_last_run_success', { ...tenant, job: 'backup' })).toBe(1);
        expect(value('mailark_tenant_errors_total', { ...tenant, job: 'backup' })).toBe(0);
        // The first run fetched everything, the next two nothing.
        expect(value('mailark_tenant_backup_messages_total', tenant)).toBe(state.length);
        expect(value('mailark_tenant_backup_bytes_total', tenant)).toBe(
          state.reduce((n, m) => n + m.size, 0),
        );
        expect(value('mailark_tenant_snapshot_messages', tenant)).toBe(state.length);
        expect(value('mailark_tenant_last_success_timestamp_seconds', tenant)).toBeGreaterThan(
          agent.startedAt / 1000,
        );
        expect(value('mailark_tenant_last_complete_snapshot_timestamp_seconds', tenant)).toBeGreaterThan(
          agent.startedAt / 1000,
        );
        let bytes = 0;
        for await (const o of (await t.store()).list('')) bytes += o.size;
        expect(value('mailark_tenant_repository_bytes', tenant)).toBe(bytes);
      }

      // Health names the broken tenant only.
      const health = await fetch(`http://127.0.0.1:${port}/healthz`);
      expect(health.status).toBe(503);
      const h = (await health.json()) as { status: string; reasons: string[] };
      expect(h.status).toBe('degraded');
      expect(h.reasons).toEqual([
        expect.stringMatching(/^broken\.example\.test: last backup failed: IMAP_AUTH /),
      ]);

      // Alerts: both sinks got the broken tenant's failures, nothing for the others.
      const fromCommand = readFileSync(alertFile, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      for (const events of [fromCommand, webhookEvents]) {
        expect(events.length).toBeGreaterThanOrEqual(3);
        for (const e of events) {
          expect(e).toMatchObject({
            event: 'failure',
            tenant: 'broken.example.test',
            job: 'backup',
            code: 'IMAP_AUTH',
          });
        }
      }
      // Logs carry tenant, mailbox, duration and counts; never a password.
      const mailboxLog = logs.find((l) => l.msg === 'mailbox done' && l.tenant === 'local.example.test');
      expect(mailboxLog).toMatchObject({ level: 'info', job: 'backup', mailbox: tenants[1]!.users[0]!.user });
      expect(typeof mailboxLog?.durationMs).toBe('number');
      const logText = readFileSync(join(dir, 'agent.log'), 'utf8');
      expect(logText).not.toContain(imap.masterPassword);
      expect(logText).not.toContain(REPO_PASSWORD);
    } finally {
      expect(await agent.stop('test done')).toBe(true);
    }

    // The newest snapshot of each good tenant equals the server, byte for byte; retention kept two.
    for (const t of tenants.slice(0, 2)) {
      const repo = await Repository.open(await t.store(), REPO_PASSWORD);
      const snaps = await repo.listSnapshots();
      expect(snaps.map((s) => s.snapshot.status)).toEqual(['complete', 'complete']);
      const expected = new Map<string, string>();
      for (const u of t.users) {
        for (const f of await serverState(u))
          for (const m of f.messages) expected.set(`${u.user}|${f.path}|${m.uid}`, m.sha256);
      }
      const got = new Map<string, string>();
      for await (const m of walkMessages(repo, snaps.at(-1)!.snapshot)) {
        got.set(`${m.user}|${m.folder.path}|${m.entry.uid}`, sha256(await readMessageBytes(repo, m.entry)));
      }
      expect(got).toEqual(expected);
      expect(await repo.listLocks()).toEqual([]);
      await closeRepository(repo);
    }
  });
});
