#!/usr/bin/env node
// mailark benchmark: ONE run measures the physical reference (raw IMAP FETCH of every body, 1 and 4
// connections) and mailark against it on the same seeded corpus, then prints a table of ratios and
// writes bench/results/<time>.json. Figures are ratios measured in one run: this machine is shared.
//
//   npm run bench                 # quick: ~200 MB, 10 users
//   npm run bench -- --size 2GB   # the full run: ~2 GB, 20 users
//   options: --users N, --seed N, --keep (leave the temp dir), --skip-export
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ImapFlow } from 'imapflow';
import { startDovecot } from '../scripts/lib/dovecot.mjs';
import { generateCorpus, rng } from './lib/corpus.mjs';
import { perByteFloor } from './lib/floor.mjs';
import { machineBusyMs, measureBin, measureCommand, treeSize, warmFiles } from './lib/measure.mjs';
import { rawFetch } from './lib/raw-fetch.mjs';

const { values: opt } = parseArgs({
  options: {
    size: { type: 'string', default: '200MB' },
    users: { type: 'string' },
    seed: { type: 'string', default: '42' },
    keep: { type: 'boolean', default: false },
    'skip-export': { type: 'boolean', default: false },
  },
});
const targetBytes = parseSize(opt.size);
const nUsers = Number(opt.users ?? (targetBytes >= 1e9 ? 20 : 10));
const CLI = new URL('../packages/cli/bin/mailark.js', import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), 'mailark-bench-'));
// Dovecot's auth and mail processes (other uids) must traverse it to reach their files.
chmodSync(work, 0o755);
const results = {
  date: new Date().toISOString(),
  host: hostname(),
  node: process.version,
  size: opt.size,
  users: nUsers,
  seed: Number(opt.seed),
};
const rows = [];
const log = (s) => process.stderr.write(`${s}\n`);

function parseSize(s) {
  const m = /^(\d+(?:\.\d+)?)\s*([kmg]?)b?$/i.exec(s.trim());
  if (!m) throw new Error(`--size ${s}: expected e.g. 200MB or 2GB`);
  return Number(m[1]) * { '': 1, k: 1e3, m: 1e6, g: 1e9 }[m[2].toLowerCase()];
}
/** The target for the initial backup: within this many times the 4-connection raw fetch. */
const TARGET_RATIO = 3;
/** No-change runs measured (an odd number: the median is one of them). */
const NO_CHANGE_RUNS = 5;
const mib = (b) => (b / 1048576).toFixed(1);
const secs = (ms) => (ms / 1000).toFixed(2);

let dovecot;
try {
  log(`bench: work dir ${work}`);
  dovecot = await startDovecot({ dir: join(work, 'dovecot'), users: 0 });
  const userPassword = 'bench-user-pass';
  const t0 = performance.now();
  const users = Array.from({ length: nUsers }, (_, i) => `user${i + 1}@bench.test`);
  for (const u of users) dovecot.addUser(u, userPassword);
  const corpus = generateCorpus({
    targetBytes,
    users: nUsers,
    seed: Number(opt.seed),
    maildirOf: (u) => dovecot.maildirOf(u),
    // As root, Dovecot's mail processes run as nobody:nogroup and must own what we write.
    owner:
      process.getuid?.() === 0
        ? {
            uid: Number(execFileSync('id', ['-u', 'nobody'])),
            gid: Number(execFileSync('getent', ['group', 'nogroup']).toString().split(':')[2]),
          }
        : undefined,
  });
  log(
    `bench: corpus ${corpus.messages} messages, ${mib(corpus.bytes)} MiB (${corpus.broadcastCopies} broadcast copies, largest ${mib(corpus.largest)} MiB) in ${secs(performance.now() - t0)} s`,
  );
  Object.assign(results, { corpus });
  const server = {
    host: dovecot.host,
    port: dovecot.port,
    masterUser: dovecot.masterUser,
    masterPassword: dovecot.masterPassword,
  };

  // Warm-up: Dovecot indexes each Maildir on first access; neither side should pay that.
  await rawFetch(server, users, 4);
  const mailRoot = join(work, 'dovecot', 'mail');
  warmFiles(mailRoot);
  const raw1 = await rawFetch(server, users, 1);
  warmFiles(mailRoot);
  const busy0 = machineBusyMs();
  const raw4 = await rawFetch(server, users, 4);
  // What the machine spent on it: Dovecot, the kernel and the reading client together.
  const raw4BusyMs = machineBusyMs() - busy0;
  if (raw4.messages !== corpus.messages)
    throw new Error(`raw fetch saw ${raw4.messages} messages, corpus has ${corpus.messages}`);
  rows.push(['raw IMAP fetch, 1 connection', secs(raw1.ms), '', '', '', '']);
  rows.push(['raw IMAP fetch, 4 connections', secs(raw4.ms), '1.00x', '', '', '']);
  results.rawFetch = { oneConnectionMs: raw1.ms, fourConnectionsMs: raw4.ms, bytes: raw4.bytes, raw4BusyMs };

  // The floor under the initial backup's CPU: its per-byte work alone, plus what the raw fetch cost the
  // machine. Against the CPU a 3x target leaves on this machine's cores, it says whether 3x is reachable.
  // (Only its CPU is timed, not its reads: the files need no warming.)
  const floor = perByteFloor(mailRoot);
  const cores = availableParallelism();
  const budgetMs = TARGET_RATIO * raw4.ms * cores;
  const floorMs = floor.totalMs + raw4BusyMs;
  rows.push([
    'per-byte work alone, 1 thread',
    '',
    '',
    '',
    `CPU ${secs(floor.totalMs)} s: SHA-256 ${secs(floor.ms.sha256)}, cut ${secs(floor.ms.cut)}, ids ${secs(floor.ms.ids)}, seal ${secs(floor.ms.seal)} (${mib(floor.newBytes)} MiB new)`,
    '',
  ]);
  rows.push([
    `CPU floor vs ${TARGET_RATIO}x budget`,
    '',
    '',
    '',
    `${secs(floorMs)} s (that + raw fetch's ${secs(raw4BusyMs)} s of machine CPU) = ${((100 * floorMs) / budgetMs).toFixed(0)}% of ${cores} cores x ${secs(TARGET_RATIO * raw4.ms)} s`,
    '',
  ]);
  results.floor = { ...floor, raw4BusyMs, floorMs, cores, targetRatio: TARGET_RATIO, budgetMs };

  const repo = join(work, 'repo');
  const pwFile = join(work, 'repo.pass');
  const imapPwFile = join(work, 'imap.pass');
  writeFileSync(pwFile, 'bench-repository-password\n', { mode: 0o600 });
  writeFileSync(imapPwFile, `${dovecot.masterPassword}\n`, { mode: 0o600 });
  // The local cache of index and snapshot objects lives in the work dir, removed with it.
  const env = {
    MAILARK_PASSWORD_FILE: pwFile,
    MAILARK_REPOSITORY: repo,
    MAILARK_CACHE_DIR: join(work, 'cache'),
  };
  const init = await measureBin(CLI, ['init', '--json'], env);
  if (init.code !== 0) throw new Error(`init failed: ${init.stderr}`);
  const backupArgs = [
    'backup',
    '--json',
    '--imap',
    `imap://${dovecot.host}:${dovecot.port}`,
    '--imap-tls',
    'off',
    '--imap-auth',
    'master-separator',
    '--imap-user',
    dovecot.masterUser,
    '--imap-password-file',
    imapPwFile,
    '--users',
    users.join(','),
    '--tenant',
    'bench.test',
  ];
  const runBackup = async (label) => {
    warmFiles(mailRoot, repo, env.MAILARK_CACHE_DIR);
    const before = treeSize(repo);
    const busy0 = machineBusyMs();
    const r = await measureBin(CLI, backupArgs, env);
    const machineMs = machineBusyMs() - busy0;
    if (r.code !== 0) throw new Error(`${label} backup exited ${r.code}: ${r.stderr.slice(-2000)}`);
    const after = treeSize(repo);
    const puts = r.json?.store?.puts ?? after.files - before.files;
    const row = {
      ms: r.ms,
      cpuMs: r.cpuMs,
      // The whole machine's CPU meanwhile: mailark, Dovecot and the kernel.
      machineMs,
      maxRssMiB: r.maxRssMiB,
      storedBytes: after.bytes - before.bytes,
      repoBytes: after.bytes,
      puts,
      summary: r.json,
    };
    results[label] = row;
    return row;
  };

  const initial = await runBackup('initialBackup');
  rows.push([
    'initial backup',
    secs(initial.ms),
    `${(initial.ms / raw4.ms).toFixed(2)}x`,
    mib(initial.maxRssMiB * 1048576),
    `${mib(initial.repoBytes)} (${((100 * initial.repoBytes) / corpus.bytes).toFixed(1)}%), CPU ${secs(initial.cpuMs)} s (machine ${secs(initial.machineMs)} s)`,
    `${((1000 * initial.puts) / corpus.messages).toFixed(1)}`,
  ]);

  // Incremental: +1% new, -0.5% expunged, 2% flag changes, through IMAP like real users.
  const changes = await mutate(server, users, corpus.messages, Number(opt.seed));
  const incr = await runBackup('incrementalBackup');
  rows.push([
    `incremental (+${changes.added} -${changes.expunged} ~${changes.flagged})`,
    secs(incr.ms),
    `${(incr.ms / raw4.ms).toFixed(2)}x`,
    mib(incr.maxRssMiB * 1048576),
    mib(incr.storedBytes),
    `${incr.puts} PUTs`,
  ]);
  // A no-change run lasts under a second, so one sample is mostly the host's noise (this machine is
  // shared): it is run NO_CHANGE_RUNS times and the median reported, every sample kept in the JSON.
  // Each is a real run (it saves a snapshot) against the server state the incremental captured.
  const samples = [];
  for (let i = 0; i < NO_CHANGE_RUNS; i++) samples.push(await runBackup('noChangeBackup'));
  const none = [...samples].sort((a, b) => a.ms - b.ms)[Math.floor(samples.length / 2)];
  results.noChangeBackup = { ...none, samples: samples.map(({ summary: _, ...s }) => s) };
  rows.push([
    `no-change backup (median of ${samples.length})`,
    secs(none.ms),
    `${(none.ms / raw4.ms).toFixed(3)}x`,
    mib(none.maxRssMiB * 1048576),
    `${mib(none.storedBytes)}, ${samples.map((s) => secs(s.ms)).join(' / ')} s, CPU ${secs(none.cpuMs)} s`,
    `${none.puts} PUTs`,
  ]);

  // Find one message by Message-ID, and restore it (process start included).
  const target = changes.sampleMessageId;
  warmFiles(repo, env.MAILARK_CACHE_DIR);
  const find = await measureBin(CLI, ['find', '--json', '--message-id', target], env);
  if (find.code !== 0) throw new Error(`find exited ${find.code}: ${find.stderr}`);
  const matches = Array.isArray(find.json) ? find.json : (find.json?.matches ?? []);
  if (matches.length === 0) throw new Error(`find did not find ${target}`);
  rows.push(['find --message-id', secs(find.ms), '', mib(find.maxRssMiB * 1048576), '', '']);
  results.find = { ms: find.ms, maxRssMiB: find.maxRssMiB, matches: matches.length };
  const emlDir = join(work, 'eml');
  const restore = await measureBin(CLI, ['restore', '--json', matches[0].ref, '--eml', emlDir], env);
  if (restore.code !== 0) throw new Error(`restore exited ${restore.code}: ${restore.stderr}`);
  rows.push([
    'restore one message (--eml)',
    secs(restore.ms),
    '',
    mib(restore.maxRssMiB * 1048576),
    `${restore.json?.store?.bytesRead ?? '?'} B read`,
    // Issue 4's budget: message size + 1 MiB + the mailbox's part of the snapshot tree; the first two
    // alone are a stricter bound, printed as a share of it.
    `size ${matches[0].size}, ${((100 * (restore.json?.store?.bytesRead ?? Number.NaN)) / (matches[0].size + 1048576)).toFixed(1)}% of size+1MiB`,
  ]);
  results.restore = {
    ms: restore.ms,
    maxRssMiB: restore.maxRssMiB,
    bytesRead: restore.json?.store?.bytesRead,
    messageSize: matches[0].size,
  };
  // The same restore reading index and snapshot objects from the store, as a first run on a new machine.
  const cold = await measureBin(
    CLI,
    ['restore', '--json', '--no-cache', matches[0].ref, '--eml', join(work, 'eml-no-cache')],
    env,
  );
  if (cold.code !== 0) throw new Error(`restore --no-cache exited ${cold.code}: ${cold.stderr}`);
  rows.push([
    'restore one message (--no-cache)',
    secs(cold.ms),
    '',
    mib(cold.maxRssMiB * 1048576),
    `${cold.json?.store?.bytesRead ?? '?'} B read`,
    '',
  ]);
  results.restoreNoCache = { ms: cold.ms, maxRssMiB: cold.maxRssMiB, bytesRead: cold.json?.store?.bytesRead };

  if (!opt['skip-export']) {
    const out = join(work, 'export.tar.gz');
    warmFiles(repo, env.MAILARK_CACHE_DIR);
    const exp = await measureBin(CLI, ['export', '--json', '--format', 'maildir', '--out', out], env);
    if (exp.code !== 0) throw new Error(`export exited ${exp.code}: ${exp.stderr}`);
    // The archive must be one gzip GNU gzip accepts (the export deflates blocks in parallel).
    const gzipTest = await measureCommand('gzip', ['-t', out]);
    if (gzipTest.code !== 0) throw new Error(`gzip -t rejects the export: ${gzipTest.stderr}`);
    const reference = join(work, 'reference.tar.gz');
    warmFiles(mailRoot);
    const tarRef = await measureCommand('tar', ['czf', reference, '-C', mailRoot, '.']);
    const sizeRatio = statSync(out).size / statSync(reference).size;
    rows.push([
      'export .tar.gz (maildir)',
      secs(exp.ms),
      `${(exp.ms / tarRef.ms).toFixed(2)}x tar czf`,
      mib(exp.maxRssMiB * 1048576),
      `${(corpus.bytes / 1e6 / (exp.ms / 1000)).toFixed(1)} MB/s, CPU ${secs(exp.cpuMs)} s, size ${sizeRatio.toFixed(3)}x`,
      '',
    ]);
    results.export = {
      ms: exp.ms,
      cpuMs: exp.cpuMs,
      maxRssMiB: exp.maxRssMiB,
      tarCzfMs: tarRef.ms,
      bytes: statSync(out).size,
      tarCzfBytes: statSync(reference).size,
    };
  }

  const header = ['step', 'wall s', 'vs reference', 'max RSS MiB', 'stored MiB / read', 'PUTs /1k msgs'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const fmt = (r) => r.map((c, i) => String(c).padEnd(widths[i])).join('  ');
  console.log(
    `\nmailark bench — ${corpus.messages} messages, ${mib(corpus.bytes)} MiB, ${nUsers} users, node ${process.version}\n`,
  );
  console.log(fmt(header));
  for (const r of rows) console.log(fmt(r));
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  const file = new URL(`./results/${results.date.replace(/[:.]/g, '-')}.json`, import.meta.url);
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  console.log(`\nresults: ${file.pathname}`);
} finally {
  await dovecot?.stop();
  if (!opt.keep) rmSync(work, { recursive: true, force: true });
}

async function mutate(server, users, total, seed) {
  const r = rng(seed + 1);
  const want = {
    added: Math.ceil(total * 0.01),
    expunged: Math.ceil(total * 0.005),
    flagged: Math.ceil(total * 0.02),
  };
  const done = { added: 0, expunged: 0, flagged: 0, sampleMessageId: undefined };
  for (const [i, user] of users.entries()) {
    const share = (n) => Math.floor(n / users.length) + (i < n % users.length ? 1 : 0);
    const c = new ImapFlow({
      host: server.host,
      port: server.port,
      secure: false,
      logger: false,
      auth: { user: `${user}*${server.masterUser}`, pass: server.masterPassword },
    });
    await c.connect();
    try {
      const lock = await c.getMailboxLock('INBOX');
      try {
        const uids = (await c.search({ all: true }, { uid: true })) || [];
        for (let k = 0; k < share(want.flagged) && uids.length > 0; k++) {
          await c.messageFlagsAdd(String(r.pick(uids)), ['\\Flagged', '$BenchTouched'], { uid: true });
          done.flagged++;
        }
        const victims = new Set();
        for (let k = 0; k < share(want.expunged) && uids.length > 0; k++) victims.add(r.pick(uids));
        if (victims.size > 0) {
          await c.messageDelete([...victims].join(','), { uid: true });
          done.expunged += victims.size;
        }
        for (let k = 0; k < share(want.added); k++) {
          const id = `bench-new-${seed}-${i}-${k}@bench.mailark`;
          const raw = `From: new@example.org\r\nTo: ${user}\r\nSubject: new mail ${k}\r\nMessage-ID: <${id}>\r\nDate: ${new Date().toUTCString()}\r\n\r\n${'fresh words '.repeat(r.int(50, 2000))}\r\n`;
          await c.append('INBOX', raw, ['\\Seen']);
          done.added++;
          done.sampleMessageId ??= id;
        }
      } finally {
        lock.release();
      }
    } finally {
      await c.logout();
    }
  }
  return done;
}
