/**
 * The foundation commands (init, check, unlock, key, stats) through the real CLI entry, on BOTH a
 * local directory and the harness's S3 endpoint: exit codes, messages, and that no output ever
 * contains a password. The CLI runs in-process (runCli) except for one run of the built bin.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { runCli } from '../packages/cli/src/main.js';
import { Repository } from '../packages/core/src/repo/repository.js';
import { saveTestSnapshot } from '../packages/core/src/repo/test-repository.js';
import type { ObjectStore } from '../packages/core/src/store/object-store.js';
import { openStore } from '../packages/core/src/store/open-store.js';
import { freshPrefix, tempDir } from './harness/fixtures.js';

const PASSWORD = 'correct horse battery staple 42';
const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Every output of the file, checked for the passwords at the end. */
const seen: Run[] = [];
const secrets = [PASSWORD];

async function cli(argv: string[], env: Record<string, string | undefined>): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    env,
  });
  const r = { code, stdout, stderr };
  seen.push(r);
  return r;
}

function s3Env(): Record<string, string> {
  const s3 = inject('s3');
  return {
    MAILARK_S3_ENDPOINT: s3.endpoint,
    MAILARK_S3_PATH_STYLE: 'true',
    MAILARK_S3_REGION: s3.region,
    AWS_ACCESS_KEY_ID: s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
  };
}

let pwFile: string;

beforeAll(() => {
  // The AWS SDK reads credentials from the real environment (lazily, at the first request).
  const s3 = inject('s3');
  vi.stubEnv('AWS_ACCESS_KEY_ID', s3.accessKeyId);
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', s3.secretAccessKey);
  pwFile = join(tempDir('pw-'), 'password');
  writeFileSync(pwFile, `${PASSWORD}\n`, { mode: 0o600 });
});

afterAll(() => {
  vi.unstubAllEnvs();
  for (const r of seen) for (const secret of secrets) expect(r.stdout + r.stderr).not.toContain(secret);
  expect(seen.length).toBeGreaterThan(20);
});

interface Backend {
  name: string;
  /** A fresh, empty repository location. */
  location(): string;
  env(): Record<string, string>;
}

const backends: Backend[] = [
  { name: 'local directory', location: () => join(tempDir('repo-'), 'r'), env: () => ({}) },
  {
    name: 'S3',
    location: () => `s3://${inject('s3').bucket}/${freshPrefix().replace(/\/$/, '')}`,
    env: s3Env,
  },
];

describe.each(backends)('on a $name', (backend) => {
  let location: string;
  let env: Record<string, string>;
  const stores: ObjectStore[] = [];
  const mailark = (...argv: string[]) => cli(['-r', location, ...argv], env);
  const openDirect = async (where = location) => {
    const store = await openStore(where, {
      s3PathStyle: true,
      ...(env.MAILARK_S3_ENDPOINT === undefined ? {} : { s3Endpoint: env.MAILARK_S3_ENDPOINT }),
      env: { ...process.env, ...env },
    });
    stores.push(store);
    return { store, repo: await Repository.open(store, PASSWORD) };
  };

  beforeAll(async () => {
    location = backend.location();
    env = { ...backend.env(), MAILARK_PASSWORD_FILE: pwFile, MAILARK_TEST_KDF: 'fast' };
    const r = await mailark('init');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^created mailark repository [0-9a-f]{8} at /);
    expect(r.stdout).toContain(backend.name === 'S3' ? location : location);
  });

  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()));
  });

  it('refuses a second init, and exits 10 where there is no repository', async () => {
    const again = await mailark('init');
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('a repository already exists');
    const empty = await cli(['-r', backend.location(), 'check'], env);
    expect(empty.code).toBe(10);
    expect(empty.stderr).toMatch(/^mailark: there is no mailark repository at .+\nhint: .*mailark init/);
  });

  it('exits 12 on a wrong password, and 2 without one', async () => {
    const wrong = await cli(['-r', location, 'check'], {
      ...env,
      MAILARK_PASSWORD_FILE: '',
      MAILARK_PASSWORD: 'nope nope',
    });
    expect(wrong.code).toBe(12);
    expect(wrong.stderr).toContain('no key');
    const none = await cli(['-r', location, 'check'], { ...env, MAILARK_PASSWORD_FILE: '' });
    expect(none.code).toBe(2);
  });

  it('checks a sound repository with data (exit 0) and names a pack with a flipped byte (exit 1)', async () => {
    // A repository of its own: the damage must not leak into the other tests.
    const where = backend.location();
    const damaged = (...argv: string[]) => cli(['-r', where, ...argv], env);
    expect((await damaged('init')).code).toBe(0);
    const { repo, store } = await openDirect(where);
    const body = (s: string) => Buffer.from(`Subject: ${s}\r\n\r\n${s} ${'x'.repeat(2000)}\r\n`);
    await saveTestSnapshot(repo, { 'alice@example.test': { INBOX: [body('one'), body('two')] } });
    await repo.close();

    const ok = await damaged('check', '--read-data');
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    expect(ok.stdout).toContain('no errors were found');

    const packs: string[] = [];
    for await (const o of store.list('data/')) packs.push(o.key);
    const victim = packs[0]!;
    const bytes = Buffer.from(await store.get(victim));
    bytes[Math.floor(bytes.length / 3)]! ^= 0x01;
    await store.delete(victim);
    await store.put(victim, bytes);

    const bad = await damaged('check', '--read-data');
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/\d+ errors? found:/);
    expect(bad.stdout).toContain(victim);
    const json = await damaged('check', '--read-data', '--json');
    expect(json.code).toBe(1);
    const report = JSON.parse(json.stdout);
    expect(report.ok).toBe(false);
    expect(report.errors.some((e: { object?: string }) => e.object === victim)).toBe(true);
  });

  it('exits 11 while another process holds the lock, naming it; unlock --remove-all frees it', async () => {
    const { repo } = await openDirect();
    const lock = await repo.lock('exclusive', 'mailark prune');
    const locked = await mailark('check');
    expect(locked.code).toBe(11);
    expect(locked.stderr).toMatch(/locked \(exclusively\) by mailark prune on \S+ \(pid \d+\) since /);
    const stale = await mailark('unlock');
    expect(stale.stdout).toBe('removed 0 stale locks\n');
    const all = await mailark('unlock', '--remove-all', '--json');
    expect(all.code).toBe(0);
    expect(JSON.parse(all.stdout).removed).toEqual([lock.id]);
    expect((await mailark('check')).code).not.toBe(11);
    await repo.close();
  });

  it('adds and removes passwords', async () => {
    const second = 'a second pass phrase';
    secrets.push(second);
    const add = await cli(['-r', location, 'key', 'add', '--json'], { ...env, MAILARK_NEW_PASSWORD: second });
    expect(add.code).toBe(0);
    const id = JSON.parse(add.stdout).id as string;
    const withSecond = { ...env, MAILARK_PASSWORD_FILE: '', MAILARK_PASSWORD: second };
    expect((await cli(['-r', location, 'key', 'list'], withSecond)).stdout).toContain(`*${id.slice(0, 8)}`);
    const removed = await mailark('key', 'remove', id.slice(0, 8));
    expect(removed.code).toBe(0);
    expect((await cli(['-r', location, 'key', 'list'], withSecond)).code).toBe(12);
  });

  it('prints statistics', async () => {
    const r = await mailark('stats', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(typeof JSON.parse(r.stdout)).toBe('object');
    expect((await mailark('stats')).code).toBe(0);
  });
});

describe('store failures', () => {
  const env = () => ({ MAILARK_PASSWORD_FILE: pwFile, MAILARK_TEST_KDF: 'fast' });

  it('rejects an unknown location scheme with exit 2 and a hint', async () => {
    const r = await cli(['-r', 'ftp://example.test/acme', 'init'], env());
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^mailark: unknown repository location scheme 'ftp:'.*\nhint: .*s3:\/\/bucket\/prefix/,
    );
  });

  it('reports an S3 endpoint nobody listens on as STORE_UNREACHABLE (exit 1)', async () => {
    const r = await cli(
      ['-r', `s3://${inject('s3').bucket}/x`, '--s3-endpoint', 'http://127.0.0.1:1', 'check', '--json'],
      { ...s3Env(), ...env() },
    );
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).error).toMatchObject({ code: 'STORE_UNREACHABLE' });
  });

  it('names a missing bucket', async () => {
    const bucket = `mailark-missing-${Date.now().toString(36)}`;
    const r = await cli(['-r', `s3://${bucket}/acme`, 'check'], { ...s3Env(), ...env() });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(bucket);
  });
});

describe('the installed bin', () => {
  it('runs init and check as a child process with the password from MAILARK_PASSWORD_FILE', () => {
    const repo = join(tempDir('bin-'), 'r');
    const bin = join(ROOT, 'packages/cli/bin/mailark.js');
    const run = (...args: string[]) =>
      spawnSync(process.execPath, [bin, ...args], {
        encoding: 'utf8',
        env: { PATH: process.env.PATH, MAILARK_PASSWORD_FILE: pwFile, MAILARK_TEST_KDF: 'fast' },
      });
    const version = run('--version');
    expect(version.status).toBe(0);
    expect(version.stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
    const init = run('init', '-r', repo);
    expect(init.status, init.stderr).toBe(0);
    const check = run('check', '-r', repo);
    expect(check.status, check.stderr).toBe(0);
    expect(check.stdout).toContain('no errors were found');
    const unknown = run('frobnicate');
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain('Unknown argument: frobnicate');
    for (const r of [version, init, check, unknown]) expect(r.stdout + r.stderr).not.toContain(PASSWORD);
  });

  it('compiles from its code cache on the second start, and leaves the cache as it is', () => {
    // A V8 flag set after the bundle was compiled (the heap growth) once made V8 refuse the cache at
    // every start, and every run compile from source and write it again.
    const cacheDir = tempDir('bin-cache-');
    const run = () =>
      spawnSync(join(ROOT, 'packages/cli/bin/mailark.js'), ['--version'], {
        encoding: 'utf8',
        env: { PATH: process.env.PATH, MAILARK_CACHE_DIR: cacheDir },
      });
    const caches = () => {
      const dir = join(cacheDir, 'compile-cache');
      return readdirSync(dir).map((f) => `${f} ${statSync(join(dir, f)).ino}`);
    };
    expect(run().status).toBe(0);
    expect(run().status).toBe(0); // the first start's cache now holds what --version compiled lazily
    const before = caches();
    expect(before.some((f) => f.startsWith('mailark.cjs.'))).toBe(true);
    expect(run().status).toBe(0);
    expect(caches()).toEqual(before); // no file replaced (a rewrite renames a new inode into place)
  });

  it("starts from its own #! line, with glibc's mmap threshold in the environment node starts with", () => {
    const dir = tempDir('bin-env-');
    const probe = join(dir, 'probe.cjs');
    const seen = join(dir, 'seen.txt');
    writeFileSync(
      probe,
      `require('node:fs').writeFileSync(${JSON.stringify(seen)}, process.env.GLIBC_TUNABLES ?? '');`,
    );
    for (const bin of ['packages/cli/bin/mailark.js', 'packages/agent/bin/mailark-agent.js']) {
      const r = spawnSync(join(ROOT, bin), ['--version'], {
        encoding: 'utf8',
        env: { PATH: process.env.PATH, NODE_OPTIONS: `--require=${probe}` },
      });
      expect(r.status, `${bin}: ${r.stderr}`).toBe(0);
      expect(readFileSync(seen, 'utf8')).toBe('glibc.malloc.mmap_threshold=131072');
      rmSync(seen);
    }
  });
});
