/**
 * The `mailark-agent` command line, in-process (runAgentCli): validate as text and as --json, errors
 * as one JSON document with --json, usage errors, exit codes.
 */
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runAgentCli } from './main.js';

let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'mailark-agent-cli-'));
  writeFileSync(join(dir, 'repo.pw'), 'repository secret 1\n');
  writeFileSync(join(dir, 'imap.pw'), 'imap secret 2\n');
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function config(extra: Record<string, unknown> = {}): string {
  const file = join(dir, 'agent.json');
  writeFileSync(
    file,
    JSON.stringify({
      timeZone: 'Europe/Paris',
      alerts: { webhook: { url: 'https://hooks.example.net/x?token=webhook-secret-3' } },
      tenants: [
        {
          name: 'x.test',
          repository: join(dir, 'repo'),
          passwordFile: 'repo.pw',
          imap: { url: 'imaps://mail.x.test:993', adminUser: 'admin', adminPasswordFile: 'imap.pw' },
          users: ['a@x.test', 'b@x.test'],
          retention: { keepDaily: 7 },
          schedule: { light: '0 12 * * *' },
        },
      ],
      ...extra,
    }),
  );
  return file;
}

async function agentCli(argv: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await runAgentCli(argv, {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    env: {},
  });
  return { code, stdout, stderr };
}

describe('mailark-agent validate', () => {
  it('--json prints one document: tenants, schedules with next runs, alerts, no secret', async () => {
    const r = await agentCli(['validate', '--config', config(), '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({
      valid: true,
      timeZone: 'Europe/Paris',
      http: { host: '127.0.0.1', port: 9465 },
      alerts: { webhook: true, command: null, staleAfterMs: 26 * 3_600_000 },
    });
    const [t] = doc.tenants;
    expect(t).toMatchObject({
      name: 'x.test',
      imap: { url: 'imaps://mail.x.test:993', auth: 'authzid' },
      users: 2,
      retention: { daily: 7 },
    });
    expect(t.schedules.map((s: { job: string; cron: string }) => `${s.job} ${s.cron}`)).toEqual([
      'backup 0 2 * * *',
      'light 0 12 * * *',
      'check 0 5 * * *',
      'prune 0 3 * * 0',
    ]);
    // 02:00 in Paris is 00:00 or 01:00 UTC.
    expect(t.schedules[0].next).toMatch(/T0[01]:00:00\.000Z$/);
    for (const secret of ['repository secret 1', 'imap secret 2', 'webhook-secret-3']) {
      expect(r.stdout).not.toContain(secret);
    }
  });

  it('without --json prints text', async () => {
    const r = await agentCli(['validate', '--config', config()]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^config .* is valid: 1 tenant\(s\), time zone Europe\/Paris\n/);
    expect(r.stdout).not.toContain('webhook-secret-3');
  });

  it('--json: a config error is one JSON document on stdout with code, message and hint; exit 2', async () => {
    const r = await agentCli(['validate', '--config', config({ maxParalel: 3 }), '--json']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({
      error: {
        code: 'CONFIG',
        message: expect.stringMatching(/^config \S+agent\.json: unknown field "maxParalel"$/),
        hint: expect.stringContaining('agent.example.yaml'),
      },
    });
  });

  it('--json: an unknown option is a USAGE document; --json with run-once is refused', async () => {
    const bad = await agentCli(['validate', '--json', '--bogus']);
    expect(bad.code).toBe(2);
    expect(JSON.parse(bad.stdout).error).toMatchObject({ code: 'USAGE', hint: 'mailark-agent --help' });
    const once = await agentCli(['run-once', '--config', config(), '--tenant', 'x.test', '--json']);
    expect(once.code).toBe(2);
    expect(JSON.parse(once.stdout).error).toMatchObject({
      code: 'USAGE',
      message: '--json goes with validate (run-once always logs JSON lines)',
    });
  });

  it('--help ends with the exit codes', async () => {
    const r = await agentCli(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout.trimEnd()).toMatch(/Exit codes: 0 ok, 1 failure,[\s\S]*130 interrupted\.$/);
  });
});

describe('mailark-agent daemon signals', () => {
  it.each(['SIGTERM', 'SIGINT', 'SIGHUP'])('%s stops the daemon cleanly: exit 0', async (name) => {
    const signals = new EventEmitter();
    const running = runAgentCli(
      ['--config', config({ http: { listen: '127.0.0.1:0' }, logLevel: 'error' })],
      { stdout: { write: () => true }, stderr: { write: () => true }, env: {} },
      signals,
    );
    // The daemon listens once started: wait for its handler, then signal.
    while (signals.listenerCount(name) === 0) await new Promise((r) => setTimeout(r, 10));
    signals.emit(name);
    expect(await running).toBe(0);
    expect(signals.listenerCount(name)).toBe(0);
  });
});
