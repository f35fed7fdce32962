/**
 * The agent reads index and snapshot objects through core's local cache (MAILARK_CACHE_DIR, as the
 * systemd unit sets it), except for check, which must judge the store's own copies.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalDirStore, Repository, saveTestSnapshot, silentReporter, TEST_KDF } from '@mailark/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseAgentConfig, type TenantConfig } from './agent-config.js';
import { runAgentCli } from './main.js';
import { readRepositoryFacts, runTenantJob } from './tenant-jobs.js';

let dir: string;
let configFile: string;
let tenant: TenantConfig;
let repoId: string;
let snapshotId: string;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mailark-agent-cache-'));
  writeFileSync(join(dir, 'pw'), 'repo password\n');
  const repo = await Repository.init(new LocalDirStore(join(dir, 'repo')), 'repo password', {
    kdf: TEST_KDF,
  });
  repoId = repo.config.id;
  snapshotId = (
    await saveTestSnapshot(
      repo,
      { 'a@x.test': { INBOX: [Buffer.from('Subject: x\r\n\r\nbody\r\n')] } },
      new Date().toISOString(),
      'x.test',
    )
  ).id;
  await repo.close();
  configFile = join(dir, 'agent.json');
  const text = JSON.stringify({
    logLevel: 'error',
    defaults: { schedule: { backup: '0 0 1 1 *', check: null, prune: null } },
    tenants: [
      {
        name: 'x.test',
        repository: join(dir, 'repo'),
        passwordFile: 'pw',
        imap: { url: 'imap://127.0.0.1:1', adminUser: 'admin', adminPasswordFile: 'pw' },
        users: ['a@x.test'],
      },
    ],
  });
  writeFileSync(configFile, text);
  tenant = parseAgentConfig(text, configFile).tenants[0] as TenantConfig;
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const listed = (...parts: string[]) => {
  try {
    return readdirSync(join(...parts)).sort();
  } catch {
    return [];
  }
};

describe('the agent and the local cache', () => {
  it('reads repository facts through the cache', async () => {
    const cache = join(dir, 'cache');
    const facts = await readRepositoryFacts(tenant, silentReporter, cache);
    expect(facts.snapshots).toBe(1);
    expect(listed(cache, repoId, 'snapshots')).toEqual([snapshotId]);
    expect(listed(cache, repoId, 'index')).toEqual(listed(dir, 'repo', 'index'));
  });

  it('check reads the store, never the cache', async () => {
    const cache = join(dir, 'cache');
    const env = { reporter: silentReporter, signal: new AbortController().signal, timeZone: 'UTC' };
    const report = await runTenantJob(tenant, 'check', { ...env, toolVersion: 'test', cacheDir: cache });
    expect(report.outcome).toBe('ok');
    expect(listed(cache)).toEqual([]);
  });

  it('run-once takes the cache directory from MAILARK_CACHE_DIR', async () => {
    const cache = join(dir, 'env-cache');
    let out = '';
    const io = { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (out += s) } };
    const code = await runAgentCli(
      ['run-once', '--config', configFile, '--tenant', 'x.test', '--job', 'prune'],
      {
        ...io,
        env: { MAILARK_CACHE_DIR: cache },
      },
    );
    expect(code, out).toBe(0);
    expect(listed(cache, repoId, 'snapshots')).toEqual([snapshotId]);
  });
});
