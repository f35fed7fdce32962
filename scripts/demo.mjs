#!/usr/bin/env node
// mailark demo: the main job end to end on embedded defaults, with nothing to configure.
//
//   npm run demo                 (builds, then runs this script)
//   node scripts/demo.mjs [--dir DIR]
//
// It starts a throwaway private Dovecot (scripts/lib/dovecot.mjs; never the system service), seeds a
// sample tenant (three mailboxes, folders including non-ASCII names and special-use ones, the real
// messages of ../shared/fixtures/messages when present, else generated mail), creates a local-directory
// repository under ./mailark-demo, and drives the REAL command line (packages/cli/bin/mailark.js, as a
// child process, password through MAILARK_PASSWORD_FILE) through the steps below, printing each
// command and what it answered. The IMAP server is stopped at the end; the repository stays for you
// to explore with the commands printed last.
//
// Extending it: each step is a named entry of STEPS, an async function of the shared `demo` state.
// Add yours (backup, find, restore, export, ...) in the order a person would run them.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ImapFlow } from 'imapflow';
import { startDovecot } from './lib/dovecot.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'packages/cli/bin/mailark.js');
const FIXTURES = process.env.MAILARK_FIXTURES_DIR ?? resolve(ROOT, '../shared/fixtures/messages');
const DOMAIN = 'demo.example';

/** The shared state the steps fill in and read. */
const demo = {
  /** Where the demo keeps its repository and password file. */
  dir: '',
  repo: '',
  passwordFile: '',
  /** The running Dovecot (scripts/lib/dovecot.mjs instance). */
  imap: undefined,
  /** Login names of the seeded mailboxes, and what was put in each: user → folder → count. */
  users: [],
  seeded: {},
  /** Lines for the closing summary. */
  summary: [],
  /** The IMAP master password, in a file as a real deployment keeps it. */
  imapPasswordFile: '',
  /** Runs the real CLI; see runMailark. */
  mailark: runMailark,
};

/** The demo, step by step. */
const STEPS = [
  {
    name: 'start a private IMAP server',
    async run(d) {
      d.imap = await startDovecot({ users: ['alice', 'bob', 'carol'].map((u) => `${u}@${DOMAIN}`) });
      d.users = ['alice', 'bob', 'carol'].map((u) => `${u}@${DOMAIN}`);
      say(`Dovecot ${d.imap.host}:${d.imap.port} (pid ${d.imap.pid}), master user "${d.imap.masterUser}"`);
      d.summary.push(`IMAP: a private Dovecot on ${d.imap.host}:${d.imap.port} (stopped at the end)`);
    },
  },
  {
    name: 'seed a sample tenant',
    async run(d) {
      const mail = sampleMail();
      const plan = tenantPlan(d.users, mail);
      for (const [user, folders] of Object.entries(plan)) {
        d.seeded[user] = {};
        for (const [folder, messages] of Object.entries(folders)) {
          await appendAll(d.imap, user, folder, messages);
          d.seeded[user][folder] = messages.length;
          say(`${user}  ${folder}: ${messages.length} messages`);
        }
      }
      const total = Object.values(d.seeded).reduce(
        (n, f) => n + Object.values(f).reduce((a, b) => a + b, 0),
        0,
      );
      d.summary.push(`tenant ${DOMAIN}: ${d.users.length} mailboxes, ${total} messages (${mail.source})`);
    },
  },
  {
    name: 'create a repository with "mailark init"',
    async run(d) {
      rmSync(d.repo, { recursive: true, force: true });
      mkdirSync(d.dir, { recursive: true });
      writeFileSync(d.passwordFile, `${randomBytes(18).toString('base64url')}\n`, { mode: 0o600 });
      await d.mailark(['init', '-r', d.repo]);
      d.summary.push(
        `repository: ${relative(process.cwd(), d.repo) || d.repo} (password in ${d.passwordFile})`,
      );
    },
  },
  {
    name: 'verify the empty repository with "mailark check"',
    async run(d) {
      await d.mailark(['check', '-r', d.repo]);
    },
  },
  {
    name: 'back up the whole tenant with "mailark backup"',
    async run(d) {
      writeFileSync(d.imapPasswordFile, `${d.imap.masterPassword}\n`, { mode: 0o600 });
      await d.mailark(backupArgs(d));
      d.summary.push('backup: every folder of every mailbox, through the Dovecot master user');
    },
  },
  {
    name: 'browse it: "mailark snapshots" and "mailark ls"',
    async run(d) {
      const alice = d.users[0];
      await d.mailark(['snapshots', '-r', d.repo]);
      await d.mailark(['ls', 'latest', '-r', d.repo]);
      await d.mailark(['ls', 'latest', '-r', d.repo, '--user', alice]);
      await d.mailark(['ls', 'latest', '-r', d.repo, '--user', alice, '--folder', 'Projets/Été 2024']);
    },
  },
  {
    name: 'alice reads, flags, files and deletes mail; back up again; "mailark diff"',
    async run(d) {
      const alice = d.users[0];
      const changes = await changeMailbox(d.imap, alice);
      for (const c of changes) say(c);
      await d.mailark(backupArgs(d));
      const list = await d.mailark(['snapshots', '-r', d.repo, '--json'], { quiet: true });
      const [before, after] = JSON.parse(list.stdout)
        .slice(-2)
        .map((s) => s.id.slice(0, 8));
      await d.mailark(['diff', '-r', d.repo, before, after]);
      d.summary.push(
        'diff: what changed between the two backups, with a restore reference for each deleted message',
      );
    },
  },
  {
    name: 'support call: "what did alice lose since the first backup?" find it, restore it, see it back',
    async run(d) {
      const alice = d.users[0];
      const list = await d.mailark(['snapshots', '-r', d.repo, '--json'], { quiet: true });
      const [before] = JSON.parse(list.stdout)
        .slice(-2)
        .map((s) => s.id.slice(0, 8));
      const find = ['find', '-r', d.repo, '--user', alice, '--deleted-since', before];
      await d.mailark(find);
      const gone = JSON.parse((await d.mailark([...find, '--json'], { quiet: true })).stdout).matches;
      if (gone.length === 0) throw new Error('find --deleted-since found nothing to restore');
      const imap = [
        '--imap',
        `imap://${d.imap.host}:${d.imap.port}`,
        '--imap-tls',
        'off',
        '--imap-user',
        d.imap.masterUser,
        '--imap-password-file',
        d.imapPasswordFile,
      ];
      const refs = gone.map((m) => m.ref);
      await d.mailark(['restore', '-r', d.repo, ...refs, ...imap]);
      // Run it again: restore is idempotent, nothing is duplicated.
      await d.mailark(['restore', '-r', d.repo, ...refs, ...imap]);
      // And the server itself, read independently: the exact bytes are back in their folder.
      for (const m of gone) {
        const copies = await serverCopies(d.imap, alice, m.folder, m.sha256);
        if (copies !== 1) throw new Error(`${m.ref}: ${copies} copies on the server, expected 1`);
        say(
          `${alice} ${m.folder}: "${m.subject ?? ''}" is back, byte-identical (SHA-256 ${m.sha256.slice(0, 12)}…)`,
        );
      }
      d.summary.push(`find --deleted-since + restore: ${gone.length} deleted message(s) back in place, once`);
    },
  },
  {
    name: 'verify every byte with "mailark check --read-data"',
    async run(d) {
      await d.mailark(['check', '-r', d.repo, '--read-data']);
      d.summary.push('check --read-data: every pack downloaded and authenticated, no errors');
    },
  },
  {
    name: 'export the whole tenant with "mailark export", and prove it with "mailark verify-export"',
    async run(d) {
      const out = join(d.dir, `${DOMAIN}-export.tar.gz`);
      rmSync(out, { force: true });
      await d.mailark(['export', '-r', d.repo, '--out', out]);
      await d.mailark(['verify-export', out, '-r', d.repo]);
      d.summary.push(
        `export: ${relative(process.cwd(), out)} (Maildir, mbox, EML, manifest, SHA256SUMS, README), verified against the latest snapshot`,
      );
    },
  },
];

/** The backup command line for the demo tenant (admin login with SASL PLAIN authzid, plain IMAP). */
function backupArgs(d) {
  return [
    'backup',
    '-r',
    d.repo,
    '--imap',
    `imap://${d.imap.host}:${d.imap.port}`,
    '--imap-tls',
    'off',
    '--imap-user',
    d.imap.masterUser,
    '--imap-password-file',
    d.imapPasswordFile,
    '--users',
    d.users.join(','),
  ];
}

/** What a user does in a day: read, flag, file into another folder, delete. Returns what it did. */
async function changeMailbox(imap, user) {
  const client = imapClient(imap, user);
  await client.connect();
  try {
    await client.mailboxOpen('INBOX');
    // UIDs, as the snapshot and "mailark diff" name messages.
    await client.messageFlagsAdd('1:3', ['\\Seen'], { uid: true });
    await client.messageFlagsAdd('4', ['\\Flagged', '$Important'], { uid: true });
    await client.messageMove('5', 'Archive', { uid: true });
    await client.messageDelete('6', { uid: true });
    return [
      `${user}: INBOX UIDs 1-3 marked read, UID 4 flagged with the keyword $Important`,
      `${user}: INBOX UID 5 filed into Archive, UID 6 deleted (expunged)`,
    ];
  } finally {
    await client.logout();
  }
}

async function main() {
  const { values } = parseArgs({ options: { dir: { type: 'string', default: 'mailark-demo' } } });
  demo.dir = resolve(values.dir);
  demo.repo = join(demo.dir, 'repo');
  demo.passwordFile = join(demo.dir, 'password');
  demo.imapPasswordFile = join(demo.dir, 'imap-password');
  if (!existsSync(join(ROOT, 'packages/cli/dist/main.js'))) {
    throw new Error('the CLI is not built: run "npm run build" first (npm run demo does it)');
  }
  const started = Date.now();
  try {
    for (const [i, step] of STEPS.entries()) {
      console.log(`\n== ${i + 1}. ${step.name}`);
      await step.run(demo);
    }
  } finally {
    await demo.imap?.stop();
  }
  console.log(`\n== done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  for (const line of demo.summary) console.log(`- ${line}`);
  const pw = relative(process.cwd(), demo.passwordFile) || demo.passwordFile;
  const repo = relative(process.cwd(), demo.repo) || demo.repo;
  console.log('\nExplore it:');
  console.log(`  export MAILARK_PASSWORD_FILE=${pw} MAILARK_REPOSITORY=${repo}`);
  console.log(`  node ${relative(process.cwd(), BIN)} snapshots`);
  console.log(`  node ${relative(process.cwd(), BIN)} --help`);
}

/**
 * Runs `mailark ARGS` through the real bin with the demo's password file, prints the command and
 * its output (unless `quiet`), and returns { code, stdout, stderr }. Throws unless the exit code is in
 * `expect`.
 */
async function runMailark(args, { expect = [0], env = {}, quiet = false } = {}) {
  if (!quiet) console.log(`$ mailark ${args.map(shellWord).join(' ')}`);
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, MAILARK_PASSWORD_FILE: demo.passwordFile, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b) => (stdout += b));
  child.stderr.on('data', (b) => (stderr += b));
  const code = await new Promise((ok, fail) => {
    child.on('error', fail);
    child.on('close', ok);
  });
  if (!quiet)
    for (const line of `${stdout}${stderr}`.trimEnd().split('\n')) if (line !== '') console.log(`  ${line}`);
  if (!expect.includes(code))
    throw new Error(`mailark ${args[0]} exited ${code} (expected ${expect.join(' or ')})`);
  return { code, stdout, stderr };
}

/** The messages to seed: the byte-exact fixtures when present, else generated ones. */
function sampleMail() {
  if (existsSync(FIXTURES)) {
    const names = readdirSync(FIXTURES)
      .filter((n) => n.endsWith('.eml'))
      .sort();
    if (names.length > 0) {
      return {
        source: `the ${names.length} real messages of ${FIXTURES}`,
        raw: names.map((n) => readFileSync(join(FIXTURES, n))),
      };
    }
  }
  const raw = [];
  for (let i = 1; i <= 24; i++) {
    raw.push(
      Buffer.from(
        [
          `From: Sender ${i} <sender${i}@example.org>`,
          `To: alice@${DOMAIN}`,
          `Subject: Demo message ${i}${i % 3 === 0 ? ' — réunion d’été' : ''}`,
          `Date: ${new Date(Date.UTC(2024, 4, i, 9, 30)).toUTCString()}`,
          `Message-ID: <demo-${i}@example.org>`,
          'MIME-Version: 1.0',
          'Content-Type: text/plain; charset=utf-8',
          'Content-Transfer-Encoding: 8bit',
          '',
          `Hello, this is demo message ${i}.`,
          'Çà et là: some non-ASCII text in the body.',
          '',
        ].join('\r\n'),
      ),
    );
  }
  return { source: 'generated messages (no fixtures found)', raw };
}

/** Who gets what: the same mail in several mailboxes shows deduplication at work. */
function tenantPlan(users, mail) {
  const [alice, bob, carol] = users;
  const m = mail.raw;
  const slice = (from, to) => m.slice(Math.floor(m.length * from), Math.floor(m.length * to));
  const flagged = (list, i0 = 0) =>
    list.map((raw, i) => ({
      raw,
      flags: [
        ...((i + i0) % 2 === 0 ? ['\\Seen'] : []),
        ...((i + i0) % 7 === 0 ? ['\\Flagged'] : []),
        ...((i + i0) % 5 === 0 ? ['$Label1'] : []),
      ],
      internalDate: new Date(Date.UTC(2024, 4, 1 + ((i + i0) % 28), 8, i % 60)),
    }));
  return {
    [alice]: {
      INBOX: flagged(slice(0, 0.4)),
      'Projets/Été 2024': flagged(slice(0.4, 0.6), 3),
      Archive: flagged(slice(0.6, 0.8), 5),
      Sent: flagged(slice(0.8, 1)).map((x) => ({ ...x, flags: ['\\Seen'] })),
    },
    [bob]: {
      INBOX: flagged(slice(0, 0.2), 1),
      'Clients/Ölkonzern & Co': flagged(slice(0.3, 0.45), 2),
    },
    [carol]: {
      INBOX: flagged(slice(0.1, 0.3)).map((x) => ({ ...x, flags: [...x.flags, '$Forwarded'] })),
    },
  };
}

/** An imapflow client logged in as `user` through the master user (SASL PLAIN authzid). */
function imapClient(imap, user) {
  return new ImapFlow({
    host: imap.host,
    port: imap.port,
    secure: false,
    doSTARTTLS: false,
    logger: false,
    auth: { user: imap.masterUser, pass: imap.masterPassword, authzid: user, loginMethod: 'AUTH=PLAIN' },
  });
}

/** How many messages of `folder` have exactly these bytes (SHA-256), read through IMAP. */
async function serverCopies(imap, user, folder, sha256) {
  const client = imapClient(imap, user);
  await client.connect();
  try {
    await client.mailboxOpen(folder, { readOnly: true });
    let n = 0;
    for await (const m of client.fetch('1:*', { uid: true, source: true })) {
      if (createHash('sha256').update(m.source).digest('hex') === sha256) n++;
    }
    return n;
  } finally {
    await client.logout();
  }
}

/** APPENDs messages to a user's folder (created if needed) through the master login. */
async function appendAll(imap, user, folder, messages) {
  const client = imapClient(imap, user);
  await client.connect();
  try {
    if (folder !== 'INBOX' && !(await client.list()).some((f) => f.path === folder)) {
      await client.mailboxCreate(folder);
    }
    for (const m of messages) await client.append(folder, m.raw, m.flags, m.internalDate);
  } finally {
    await client.logout();
  }
}

function say(text) {
  console.log(`  ${text}`);
}

function shellWord(s) {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", "'\\''")}'`;
}

main().catch((err) => {
  console.error(`\ndemo failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
