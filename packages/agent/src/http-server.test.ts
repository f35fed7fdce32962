import { describe, expect, it } from 'vitest';
import type { Health } from './health.js';
import { startHttpServer } from './http-server.js';

describe('agent HTTP server', () => {
  it('serves /healthz (200 or 503 with reasons) and /metrics on loopback', async () => {
    let health: Health = { status: 'ok', reasons: [] };
    const server = await startHttpServer('127.0.0.1', 0, {
      health: () => health,
      metrics: () => 'mailark_agent_up 1\n',
    });
    const base = `http://127.0.0.1:${server.address.port}`;
    try {
      let res = await fetch(`${base}/healthz`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ status: 'ok', reasons: [] });
      health = { status: 'degraded', reasons: ['a.test: last backup failed: IMAP_AUTH'] };
      res = await fetch(`${base}/healthz`);
      expect(res.status).toBe(503);
      expect(await res.json()).toEqual(health);
      res = await fetch(`${base}/metrics`);
      expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
      expect(await res.text()).toBe('mailark_agent_up 1\n');
      expect((await fetch(`${base}/other`)).status).toBe(404);
      expect((await fetch(`${base}/metrics`, { method: 'POST' })).status).toBe(405);
    } finally {
      await server.close();
    }
  });

  it('a busy port is a CONFIG error naming the address', async () => {
    const first = await startHttpServer('127.0.0.1', 0, {
      health: () => ({ status: 'ok', reasons: [] }),
      metrics: () => '',
    });
    try {
      await expect(
        startHttpServer('127.0.0.1', first.address.port, {
          health: () => ({ status: 'ok', reasons: [] }),
          metrics: () => '',
        }),
      ).rejects.toThrow(`cannot listen on 127.0.0.1:${first.address.port}: EADDRINUSE`);
    } finally {
      await first.close();
    }
  });
});
