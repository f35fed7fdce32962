/**
 * runTenantJob without IMAP: the jobs that only need the repository (check, prune) and how they end
 * when the agent stops (their signal aborted).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  forgetSnapshots,
  LocalDirStore,
  type ProgressState,
  Repository,
  saveTestSnapshot,
  TEST_KDF,
} from '@mailark/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseAgentConfig, type TenantConfig } from './agent-config.js';
import { type JobEnv, runTenantJob } from './tenant-jobs.js';

let dir: string;
let tenant: TenantConfig;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mailark-agent-jobs-'));
  writeFileSync(join(dir, 'pw'), 'repo password\n');
  const repo = await Repository.init(new LocalDirStore(join(dir, 'repo')), 'repo password', {
    kdf: TEST_KDF,
    packSize: 4096,
  });
  for (let day = 1; day <= 3; day++) {
    const inbox = Array.from({ length: 4 }, (_, i) =>
      Buffer.from(`Subject: ${day}-${i}\r\n\r\n${`${day}.${i} `.repeat(800)}\r\n`),
    );
    await saveTestSnapshot(repo, { 'a@x.test': { INBOX: inbox } }, `2024-05-0${day}T02:00:00Z`, 'x.test');
  }
  await repo.close();
  const text = JSON.stringify({
    tenants: [
      {
        name: 'x.test',
        repository: join(dir, 'repo'),
        passwordFile: 'pw',
        imap: { url: 'imap://127.0.0.1:1', adminUser: 'admin', adminPasswordFile: 'pw' },
        users: ['a@x.test'],
        check: { readDataSubset: 100 },
      },
    ],
  });
  tenant = parseAgentConfig(text, join(dir, 'agent.json')).tenants[0] as TenantConfig;
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** A job environment whose signal is aborted when `abortWhen` first returns true for a progress state. */
function envAborting(abortWhen: (s: ProgressState) => boolean): { env: JobEnv; phases: string[] } {
  const controller = new AbortController();
  const phases: string[] = [];
  const env: JobEnv = {
    reporter: {
      log() {},
      progress(s) {
        phases.push(`${s.phase} ${s.done}`);
        if (!controller.signal.aborted && abortWhen(s)) controller.abort();
      },
    },
    signal: controller.signal,
    timeZone: 'UTC',
    toolVersion: 'test',
  };
  return { env, phases };
}

async function locks(): Promise<unknown[]> {
  const repo = await Repository.open(new LocalDirStore(join(dir, 'repo')), 'repo password');
  try {
    return await repo.listLocks();
  } finally {
    await repo.close();
  }
}

describe('runTenantJob', () => {
  it('check reading all data passes on a sound repository', async () => {
    const { env, phases } = envAborting(() => false);
    expect(await runTenantJob(tenant, 'check', env)).toEqual({ kind: 'check', outcome: 'ok' });
    expect(phases.filter((p) => p.startsWith('check data')).length).toBeGreaterThan(2);
  });

  it('prune reports what it did (core logs its plan at debug level only)', async () => {
    const repo = await Repository.open(new LocalDirStore(join(dir, 'repo')), 'repo password');
    await forgetSnapshots(repo, { policy: { last: 1 } });
    await repo.close();
    const logged: string[] = [];
    const { env } = envAborting(() => false);
    env.reporter = { log: (level, message) => void logged.push(`${level} ${message}`), progress() {} };
    const report = await runTenantJob(tenant, 'prune', env);
    expect(report).toMatchObject({ kind: 'prune', outcome: 'ok' });
    const p = report.prune!;
    expect(p.deletedPacks + p.repackedPacks).toBeGreaterThan(0);
    expect(p.packBytesAfter).toBeLessThan(p.packBytesBefore);
    let bytes = 0;
    for await (const o of new LocalDirStore(join(dir, 'repo')).list('data/')) bytes += o.size;
    expect(p.packBytesAfter).toBe(bytes);
    expect(logged.filter((l) => l.startsWith('info '))).toEqual([]);
  });

  it('check stops between packs when the agent stops: interrupted, lock released', async () => {
    const { env, phases } = envAborting((s) => s.phase === 'check data' && s.done === 1);
    const report = await runTenantJob(tenant, 'check', env);
    expect(report).toMatchObject({ kind: 'check', outcome: 'interrupted', error: { code: 'INTERRUPTED' } });
    // The pack being read when the signal came is finished; no other is started.
    expect(phases.filter((p) => p.startsWith('check data'))).toEqual(['check data 0', 'check data 1']);
    expect(await locks()).toEqual([]);
  });
});
