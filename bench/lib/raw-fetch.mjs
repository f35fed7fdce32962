// The physical reference: fetch every body of every folder of every user over IMAP and throw it away.
// A backup cannot be faster than this; its figures are reported as ratios to it.
import { ImapFlow } from 'imapflow';

async function fetchUser({ host, port, masterUser, masterPassword }, user) {
  const client = new ImapFlow({
    host,
    port,
    secure: false,
    logger: false,
    auth: { user: `${user}*${masterUser}`, pass: masterPassword },
  });
  await client.connect();
  let messages = 0;
  let bytes = 0;
  try {
    for (const folder of await client.list()) {
      if (folder.flags.has('\\Noselect')) continue;
      const lock = await client.getMailboxLock(folder.path, { readOnly: true });
      try {
        if (client.mailbox.exists === 0) continue;
        for await (const m of client.fetch('1:*', { uid: true, source: true }, { uid: true })) {
          messages++;
          bytes += m.source.length;
        }
      } finally {
        lock.release();
      }
    }
  } finally {
    await client.logout();
  }
  return { messages, bytes };
}

/** Fetches all users with `connections` users in flight at once; returns { ms, messages, bytes }. */
export async function rawFetch(server, users, connections) {
  const t0 = performance.now();
  const queue = [...users];
  let messages = 0;
  let bytes = 0;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      for (let u = queue.shift(); u !== undefined; u = queue.shift()) {
        const r = await fetchUser(server, u);
        messages += r.messages;
        bytes += r.bytes;
      }
    }),
  );
  return { ms: performance.now() - t0, messages, bytes };
}
