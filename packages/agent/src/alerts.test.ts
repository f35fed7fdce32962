import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RecordingReporter } from '@mailark/core';
import { describe, expect, it } from 'vitest';
import { type AlertEvent, Alerter } from './alerts.js';

const event = (): AlertEvent =>
  Alerter.event({
    event: 'failure',
    tenant: 'acme.test',
    job: 'backup',
    message: 'login refused',
    code: 'IMAP_AUTH',
  });

describe('Alerter', () => {
  it('POSTs the event as JSON to the webhook and writes it to the command stdin', async () => {
    const received: Array<{ headers: Record<string, unknown>; body: string }> = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => {
        body += d;
      });
      req.on('end', () => {
        received.push({ headers: req.headers, body });
        res.end('ok');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const dir = await mkdtemp(join(tmpdir(), 'mailark-alert-'));
    const out = join(dir, 'event.json');
    const tokenFile = join(dir, 'api-key');
    writeFileSync(tokenFile, 'key-from-file\n', { mode: 0o600 });
    const reporter = new RecordingReporter();
    const alerter = new Alerter(
      {
        webhook: {
          url: `http://127.0.0.1:${port}/hook?token=s3cr3t`,
          headers: { authorization: 'Bearer x' },
          headerFiles: { 'x-api-key': tokenFile },
          timeoutMs: 5000,
        },
        command: ['sh', '-c', 'cat > "$0"; echo "$MAILARK_EVENT $MAILARK_TENANT" >> "$0.env"', out],
        staleAfterMs: 1000,
      },
      reporter,
    );
    const e = event();
    await alerter.send(e);
    server.close();
    expect(received).toHaveLength(1);
    expect(JSON.parse(received[0]!.body)).toEqual(e);
    expect(received[0]!.headers['content-type']).toBe('application/json');
    expect(received[0]!.headers.authorization).toBe('Bearer x');
    expect(received[0]!.headers['x-api-key']).toBe('key-from-file');
    expect(JSON.parse(readFileSync(out, 'utf8'))).toEqual(e);
    expect(readFileSync(`${out}.env`, 'utf8')).toBe('failure acme.test\n');
    expect(reporter.logs.filter((l) => l.level === 'error')).toEqual([]);
  });

  it('logs a failing sink without throwing, and never logs the webhook query', async () => {
    const reporter = new RecordingReporter();
    const alerter = new Alerter(
      {
        webhook: { url: 'http://127.0.0.1:1/hook?token=s3cr3t', headers: {}, timeoutMs: 2000 },
        command: ['false'],
        staleAfterMs: 1,
      },
      reporter,
    );
    await alerter.send(event());
    const errors = reporter.logs.filter((l) => l.level === 'error');
    expect(errors.map((l) => l.message)).toEqual(
      expect.arrayContaining([
        expect.stringContaining('alert webhook failed'),
        'alert command false failed (exit code 1)',
      ]),
    );
    expect(JSON.stringify(reporter.logs)).not.toContain('s3cr3t');
  });

  it('a header file gone at send time is one logged error naming the file, and nothing is sent', async () => {
    const reporter = new RecordingReporter();
    const gone = join(tmpdir(), `mailark-no-such-token-${process.pid}`);
    const alerter = new Alerter(
      {
        webhook: {
          url: 'http://127.0.0.1:1/hook',
          headers: {},
          headerFiles: { authorization: gone },
          timeoutMs: 2000,
        },
        staleAfterMs: 1,
      },
      reporter,
    );
    await alerter.send(event());
    expect(reporter.logs.filter((l) => l.level === 'error').map((l) => l.message)).toEqual([
      `alert webhook failed: cannot read header file ${gone} (ENOENT)`,
    ]);
  });

  it('raises stale once per episode, and recovered when it ends', async () => {
    const alerter = new Alerter({ staleAfterMs: 1 }, new RecordingReporter());
    const all = ['a', 'b'];
    expect((await alerter.updateStale([{ tenant: 'a', message: 'old' }], all)).map((e) => e.tenant)).toEqual([
      'a',
    ]);
    expect(await alerter.updateStale([{ tenant: 'a', message: 'old' }], all)).toEqual([]);
    expect(await alerter.updateStale([], all)).toEqual([
      expect.objectContaining({
        event: 'recovered',
        tenant: 'a',
        message: 'a: the newest complete snapshot is recent again',
      }),
    ]);
    expect(await alerter.updateStale([], all)).toEqual([]);
    expect(
      (await alerter.updateStale([{ tenant: 'a', message: 'old again' }], all)).map((e) => e.event),
    ).toEqual(['stale']);
  });

  it('closes each failure or partial episode with one recovered event when the job succeeds again', async () => {
    const reporter = new RecordingReporter();
    const alerter = new Alerter({ staleAfterMs: 1 }, reporter);
    const fail = (
      tenant: string,
      job: 'backup' | 'light' | 'check',
      kind: 'failure' | 'partial' = 'failure',
    ) => alerter.send(Alerter.event({ event: kind, tenant, job, message: `${job} failed` }));
    // Nothing was alerted: a success says nothing.
    expect(await alerter.resolve('a', 'backup')).toBeUndefined();
    // Two failed nights, then a partial one, then a success: one recovered, naming the snapshot.
    await fail('a', 'backup');
    await fail('a', 'backup');
    await fail('a', 'light', 'partial');
    await fail('b', 'backup');
    await fail('a', 'check');
    // A light pass is a backup: its success closes the backup episode; check's stays open.
    expect(await alerter.resolve('a', 'light', 'abcd1234')).toMatchObject({
      event: 'recovered',
      tenant: 'a',
      job: 'light',
      message: 'light of a succeeded again',
      snapshotId: 'abcd1234',
    });
    expect(await alerter.resolve('a', 'backup')).toBeUndefined();
    expect(await alerter.resolve('a', 'check')).toMatchObject({ event: 'recovered', job: 'check' });
    expect(await alerter.resolve('b', 'prune')).toBeUndefined();
    expect(await alerter.resolve('b', 'backup')).toMatchObject({ event: 'recovered', tenant: 'b' });
    const sent = reporter.logs.filter((l) => l.message.startsWith('alert recovered')).map((l) => l.message);
    expect(sent).toEqual([
      'alert recovered: light of a succeeded again',
      'alert recovered: check of a succeeded again',
      'alert recovered: backup of b succeeded again',
    ]);
  });
});
