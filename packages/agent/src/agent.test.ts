import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalDirStore, Repository, saveTestSnapshot, TEST_KDF } from '@mailark/core';
import { describe, expect, it } from 'vitest';
import { Agent } from './agent.js';
import { parseAgentConfig } from './agent-config.js';
import { parseMetrics } from './metrics.js';
import { createLogger } from './pino-reporter.js';

async function waitFor(what: string, cond: () => boolean): Promise<void> {
  const until = Date.now() + 10_000;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('Agent (no IMAP: repository facts, staleness, alerts, HTTP)', () => {
  it('reads each repository at start, raises stale once, serves health and metrics, stops cleanly', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mailark-agent-'));
    writeFileSync(join(dir, 'pw'), 'repo password\n');
    // fresh.test: a complete snapshot 1 h old; old.test: 30 h old; none.test: no repository at all.
    const now = Date.now();
    for (const [name, age] of [
      ['fresh', 1],
      ['old', 30],
    ] as const) {
      const repo = await Repository.init(new LocalDirStore(join(dir, name)), 'repo password', {
        kdf: TEST_KDF,
      });
      const time = new Date(now - age * 3_600_000).toISOString();
      await saveTestSnapshot(
        repo,
        { 'a@x.test': { INBOX: [Buffer.from('Subject: x\r\n\r\nbody\r\n')] } },
        time,
        `${name}.test`,
      );
      await repo.close();
    }
    const alerts = join(dir, 'alerts.jsonl');
    const config = parseAgentConfig(
      JSON.stringify({
        http: { listen: '127.0.0.1:0' },
        alerts: { command: ['sh', '-c', 'cat >> "$0"', alerts], staleAfter: '26h' },
        defaults: { schedule: { backup: '0 0 1 1 *', check: null, prune: null } },
        tenants: ['fresh', 'old', 'none'].map((name) => ({
          name: `${name}.test`,
          repository: join(dir, name),
          passwordFile: 'pw',
          imap: { url: 'imap://127.0.0.1:1', adminUser: 'admin', adminPasswordFile: 'pw' },
          users: ['a@x.test'],
        })),
      }),
      join(dir, 'agent.json'),
    );
    const logs: Array<Record<string, unknown>> = [];
    const logger = createLogger('info', { write: (l: string) => void logs.push(JSON.parse(l)) });
    const agent = new Agent({ config, logger, toolVersion: 'test', staleCheckEveryMs: 50 });
    const { port } = await agent.start();
    try {
      await waitFor('the stale alert', () => readFileSyncOr(alerts).includes('"stale"'));
      // Several checks later, still one alert: once per episode.
      await new Promise((r) => setTimeout(r, 300));
      const events = readFileSyncOr(alerts)
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(events).toEqual([
        expect.objectContaining({
          event: 'stale',
          tenant: 'old.test',
          message: expect.stringMatching(
            /^old\.test: newest complete snapshot is 1d6h(\d+s)? old \(limit 1d2h\)$/,
          ),
        }),
      ]);

      const health = await fetch(`http://127.0.0.1:${port}/healthz`);
      expect(health.status).toBe(503);
      const reasons = ((await health.json()) as { reasons: string[] }).reasons;
      expect(reasons).toHaveLength(2);
      expect(reasons[0]).toMatch(/^old\.test: newest complete snapshot is 1d6h/);
      expect(reasons[1]).toMatch(/^none\.test: repository unreadable: NO_REPOSITORY /);

      const samples = parseMetrics(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text());
      const v = (name: string, tenant: string) =>
        samples.find((s) => s.name === name && s.labels.tenant === tenant)?.value;
      expect(v('mailark_tenant_snapshots', 'fresh.test')).toBe(1);
      expect(v('mailark_tenant_snapshot_messages', 'fresh.test')).toBe(1);
      expect(v('mailark_tenant_last_complete_snapshot_timestamp_seconds', 'old.test')).toBeCloseTo(
        (now - 30 * 3_600_000) / 1000,
        0,
      );
      expect(v('mailark_tenant_repository_up', 'none.test')).toBe(0);
      expect(v('mailark_tenant_repository_up', 'fresh.test')).toBe(1);
      expect(v('mailark_tenant_repository_bytes', 'fresh.test')).toBeGreaterThan(0);
      // The next backup: 1 January, 00:00 in the configured zone (the system's), of next year.
      const next = samples.find(
        (s) =>
          s.name === 'mailark_tenant_next_run_timestamp_seconds' &&
          s.labels.tenant === 'old.test' &&
          s.labels.job === 'backup',
      )?.value;
      const year = new Date().getFullYear() + 1;
      expect(next).toBe(new Date(year, 0, 1, 0, 0, 0).getTime() / 1000);
      expect(logs.find((l) => l.msg === 'mailark-agent started')).toMatchObject({
        level: 'info',
        tenants: 3,
      });
    } finally {
      expect(await agent.stop('test')).toBe(true);
    }
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
    expect(logs.at(-1)).toMatchObject({ msg: 'mailark-agent stopped' });
  });
});

describe('Agent alerts across runs', () => {
  it('a failed check alerts; the next good check sends one recovered event', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mailark-agent-'));
    writeFileSync(join(dir, 'pw'), 'repo password\n');
    const repo = await Repository.init(new LocalDirStore(join(dir, 'repo')), 'repo password', {
      kdf: TEST_KDF,
    });
    await saveTestSnapshot(
      repo,
      { 'a@x.test': { INBOX: [Buffer.from(`Subject: x\r\n\r\n${'body '.repeat(200)}\r\n`)] } },
      new Date().toISOString(),
      'x.test',
    );
    await repo.close();
    const alerts = join(dir, 'alerts.jsonl');
    const config = parseAgentConfig(
      JSON.stringify({
        alerts: { command: ['sh', '-c', 'cat >> "$0"', alerts] },
        defaults: { schedule: { backup: '0 0 1 1 *' }, check: { readDataSubset: 100 } },
        tenants: [
          {
            name: 'x.test',
            repository: join(dir, 'repo'),
            passwordFile: 'pw',
            imap: { url: 'imap://127.0.0.1:1', adminUser: 'admin', adminPasswordFile: 'pw' },
            users: ['a@x.test'],
          },
        ],
      }),
      join(dir, 'agent.json'),
    );
    const agent = new Agent({ config, logger: createLogger('error', { write() {} }), toolVersion: 'test' });
    const signal = new AbortController().signal;
    const events = () =>
      readFileSyncOr(alerts)
        .trim()
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>);

    // Damage one pack (a flipped byte), check, put it back, check twice.
    const packDir = join(dir, 'repo', 'data', readdirSync(join(dir, 'repo', 'data'))[0]!);
    const pack = join(packDir, readdirSync(packDir)[0]!);
    const good = readFileSync(pack);
    const bad = Buffer.from(good);
    bad[10] = (bad[10] as number) ^ 1;
    writeFileSync(pack, bad);
    expect((await agent.runOnce('x.test', 'check', signal)).outcome).toBe('failed');
    writeFileSync(pack, good);
    expect((await agent.runOnce('x.test', 'check', signal)).outcome).toBe('ok');
    expect((await agent.runOnce('x.test', 'check', signal)).outcome).toBe('ok');
    expect(events()).toEqual([
      expect.objectContaining({ event: 'failure', tenant: 'x.test', job: 'check', code: 'CORRUPT' }),
      expect.objectContaining({
        event: 'recovered',
        tenant: 'x.test',
        job: 'check',
        message: 'check of x.test succeeded again',
      }),
    ]);
  });
});

function readFileSyncOr(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}
