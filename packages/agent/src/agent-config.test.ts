import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMailarkError } from '@mailark/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadAgentConfig, parseAgentConfig } from './agent-config.js';

let dir: string;
let source: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'mailark-agent-config-'));
  writeFileSync(join(dir, 'repo.pass'), 'repo-secret\n');
  writeFileSync(join(dir, 'imap.pass'), 'imap-secret\n');
  source = join(dir, 'agent.yaml');
});

const minimal = () => `
tenants:
  - name: acme.test
    repository: s3://backups/acme
    passwordFile: repo.pass
    imap:
      url: imaps://mail.acme.test:993
      adminUser: admin
      adminPasswordFile: imap.pass
    users: [alice@acme.test, bob@acme.test]
`;

/** The CONFIG error text for a config, asserting there is exactly one problem. */
function oneProblem(text: string): string {
  let err: unknown;
  try {
    parseAgentConfig(text, source);
  } catch (e) {
    err = e;
  }
  expect(isMailarkError(err, 'CONFIG')).toBe(true);
  const e = err as { message: string; details: { problems: string[] } };
  expect(e.details.problems).toHaveLength(1);
  expect(e.message).not.toContain('\n');
  return e.message;
}

describe('agent config', () => {
  it('applies defaults and resolves paths against the config file', () => {
    const c = parseAgentConfig(minimal(), source);
    expect(c.http).toEqual({ host: '127.0.0.1', port: 9465 });
    expect(c.maxParallel).toBe(2);
    expect(c.shutdownGraceMs).toBe(25_000);
    expect(c.alerts.staleAfterMs).toBe(26 * 3_600_000);
    const t = c.tenants[0]!;
    expect(t.passwordFile).toBe(join(dir, 'repo.pass'));
    expect(t.imap).toEqual({
      url: 'imaps://mail.acme.test:993',
      auth: 'authzid',
      adminUser: 'admin',
      adminPasswordFile: join(dir, 'imap.pass'),
    });
    expect(t.users).toEqual([{ user: 'alice@acme.test' }, { user: 'bob@acme.test' }]);
    expect(t.schedule).toEqual({ backup: '0 2 * * *', light: null, check: '0 5 * * *', prune: '0 3 * * 0' });
    expect(t.retention).toBeUndefined();
    expect(t.checkReadDataSubset).toBe(5);
    expect(t.pruneMaxUnused).toBe('5%');
    // Nothing secret is read at load time.
    expect(JSON.stringify(c)).not.toContain('secret');
  });

  it('merges defaults under tenant settings and reads JSON too', () => {
    const json = JSON.stringify({
      timeZone: 'Europe/Paris',
      defaults: {
        schedule: { light: '0 8-20 * * *', prune: null },
        retention: { keepDaily: 7, keepWithin: '2d' },
        check: { readDataSubset: '2.5%' },
        tags: ['agent'],
      },
      alerts: {
        command: ['/usr/local/bin/notify', '--json'],
        staleAfter: '1d2h',
        webhook: { url: 'http://127.0.0.1:9/hook' },
      },
      tenants: [
        {
          name: 'a.test',
          repository: '/srv/mailark/a',
          passwordFile: 'repo.pass',
          imap: {
            url: 'imap://127.0.0.1:1143',
            auth: 'master-separator',
            adminUser: 'admin',
            adminPasswordFile: 'imap.pass',
          },
          usersFile: 'repo.pass',
          schedule: { backup: '*/5 * * * * *' },
          retention: { keepLast: 3 },
        },
      ],
    });
    const c = parseAgentConfig(json, source);
    const t = c.tenants[0]!;
    expect(c.timeZone).toBe('Europe/Paris');
    expect(t.schedule).toEqual({
      backup: '*/5 * * * * *',
      light: '0 8-20 * * *',
      check: '0 5 * * *',
      prune: null,
    });
    expect(t.retention).toEqual({ last: 3 });
    expect(t.checkReadDataSubset).toBe(2.5);
    expect(t.tags).toEqual(['agent']);
    expect(c.alerts).toEqual({
      command: ['/usr/local/bin/notify', '--json'],
      staleAfterMs: 26 * 3_600_000,
      webhook: { url: 'http://127.0.0.1:9/hook', headers: {}, timeoutMs: 10_000 },
    });
  });

  it('webhook headerFiles resolve against the config file and must be readable, once per header', () => {
    const hook = (files: string, inline = '') =>
      `alerts:\n  webhook:\n    url: https://hooks.example.net/x\n${inline}    headerFiles: ${files}\n${minimal()}`;
    const c = parseAgentConfig(hook('{ Authorization: repo.pass }'), source);
    expect(c.alerts.webhook?.headerFiles).toEqual({ Authorization: join(dir, 'repo.pass') });
    expect(JSON.stringify(c)).not.toContain('secret');
    expect(oneProblem(hook('{ Authorization: nope.token }'))).toBe(
      `config ${source}: alerts.webhook.headerFiles.Authorization: cannot read ${join(dir, 'nope.token')} (no such file)`,
    );
    expect(oneProblem(hook('{ Authorization: repo.pass }', '    headers: { authorization: x }\n'))).toBe(
      `config ${source}: alerts.webhook.headerFiles.Authorization: also set in alerts.webhook.headers (keep one)`,
    );
  });

  it('an unknown field is one message naming its path', () => {
    const msg = oneProblem(minimal().replace('    users:', '    concurency: 4\n    users:'));
    expect(msg).toBe(`config ${source}: tenants[0]: unknown field "concurency"`);
  });

  it('a bad cron expression is one message naming its path', () => {
    const msg = oneProblem(`${minimal()}    schedule:\n      backup: "61 2 * * *"\n`);
    expect(msg).toMatch(
      /^config .*: tenants\[0\]\.schedule\.backup: invalid cron expression "61 2 \* \* \*": .*minute/,
    );
  });

  it('a missing password file is one message naming the field and the file', () => {
    const msg = oneProblem(minimal().replace('passwordFile: repo.pass', 'passwordFile: nope.pass'));
    expect(msg).toBe(
      `config ${source}: tenants[0].passwordFile: cannot read ${join(dir, 'nope.pass')} (no such file)`,
    );
  });

  it('names missing required fields, bad values and cross-field rules', () => {
    expect(oneProblem(minimal().replace(/ {4}repository: .*\n/, ''))).toContain(
      'tenants[0].repository: missing (required)',
    );
    expect(oneProblem(minimal().replace('imaps://mail.acme.test:993', 'mail.acme.test'))).toContain(
      'tenants[0].imap.url: must look like',
    );
    expect(oneProblem(`http:\n  listen: 0.0.0.0:9465\n${minimal()}`)).toContain(
      'http.listen: 0.0.0.0 is not a loopback address',
    );
    expect(oneProblem(`timeZone: Mars/Olympus\n${minimal()}`)).toContain('timeZone: unknown time zone');
    expect(oneProblem(`${minimal()}    retention:\n      keepDaily: 1.5\n`)).toContain(
      'tenants[0].retention.keepDaily',
    );
    expect(oneProblem(`${minimal()}    retention:\n      keepWithin: 2 days\n`)).toContain(
      'invalid duration',
    );
    expect(oneProblem(`${minimal()}    usersFile: repo.pass\n`)).toContain(
      'tenants[0]: give exactly one of users',
    );
    expect(oneProblem(minimal().replace(/ {6}adminUser: admin\n/, ''))).toContain(
      'tenants[0].imap.adminUser: missing',
    );
    expect(oneProblem(`alerts:\n  staleAfter: 26m\n${minimal()}`)).toContain(
      'alerts.staleAfter: invalid time span "26m"',
    );
    expect(oneProblem(`${minimal()}${minimal().replace('tenants:\n', '')}`)).toContain(
      'tenants[1].name: "acme.test" is already used by tenants[0]',
    );
    expect(oneProblem('tenants: [')).toContain('not valid YAML or JSON');
  });

  it('lists several problems at once, one per line', () => {
    let err: unknown;
    try {
      parseAgentConfig(
        `${minimal().replace('acme.test\n', 'acme.test\n    bogus: 1\n')}    schedule:\n      prune: "x"\n`,
        source,
      );
    } catch (e) {
      err = e;
    }
    const lines = (err as Error).message.split('\n');
    expect(lines[0]).toBe(`config ${source} has 2 problems:`);
    expect(lines.slice(1)).toEqual(
      expect.arrayContaining([
        '  - tenants[0]: unknown field "bogus"',
        expect.stringContaining('  - tenants[0].schedule.prune: invalid cron expression "x"'),
      ]),
    );
    expect(lines).toHaveLength(3);
  });

  it('a missing config file is a CONFIG error with a hint', () => {
    let err: unknown;
    try {
      loadAgentConfig(join(dir, 'absent.yaml'));
    } catch (e) {
      err = e;
    }
    expect(isMailarkError(err, 'CONFIG')).toBe(true);
    expect((err as Error).message).toContain('ENOENT');
  });

  it('deploy/agent.example.yaml is valid: its only problems are the secret files absent here', () => {
    const example = new URL('../../../deploy/agent.example.yaml', import.meta.url).pathname;
    let err: unknown;
    try {
      loadAgentConfig(example);
    } catch (e) {
      err = e;
    }
    const problems = (err as { details: { problems: string[] } }).details.problems;
    expect(problems.length).toBeGreaterThan(0);
    for (const p of problems)
      expect(p).toMatch(
        /^(tenants\[\d\]|alerts\.webhook\.headerFiles)\.[a-zA-Z.]+: cannot read \/etc\/mailark\//,
      );
    expect(problems).toContain(
      'alerts.webhook.headerFiles.Authorization: cannot read /etc/mailark/secrets/webhook-authorization (no such file)',
    );
  });
});
