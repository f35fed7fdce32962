/**
 * The agent's HTTP endpoint, on a loopback address by default: `GET /healthz` (200 ok / 503 degraded,
 * JSON with reasons) and `GET /metrics` (Prometheus text). Read-only: nothing here changes state,
 * so it needs no authentication beyond not being reachable from elsewhere.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MailarkError } from '@mailark/core';
import type { Health } from './health.js';
import { METRICS_CONTENT_TYPE } from './metrics.js';

export interface HttpHandlers {
  health(): Health;
  metrics(): string;
}

export interface AgentHttpServer {
  /** The bound address, e.g. 127.0.0.1:9465 (port resolved when 0 was asked). */
  readonly address: { host: string; port: number };
  close(): Promise<void>;
}

export async function startHttpServer(
  host: string,
  port: number,
  handlers: HttpHandlers,
): Promise<AgentHttpServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    try {
      if (path === '/healthz') {
        const h = handlers.health();
        res
          .writeHead(h.status === 'ok' ? 200 : 503, {
            'content-type': 'application/json',
            'cache-control': 'no-store',
          })
          .end(req.method === 'HEAD' ? undefined : `${JSON.stringify(h)}\n`);
      } else if (path === '/metrics') {
        const body = handlers.metrics();
        res.writeHead(200, { 'content-type': METRICS_CONTENT_TYPE, 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : body);
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /healthz or /metrics\n');
      }
    } catch (err) {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(`internal error: ${(err as Error).message}\n`);
    }
  });
  // Scrapes are short; do not let an idle keep-alive connection delay shutdown.
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new MailarkError('CONFIG', `cannot listen on ${host}:${port}: ${err.code ?? err.message}`, {
          hint:
            err.code === 'EADDRINUSE'
              ? 'another process uses that port: change http.listen'
              : 'check http.listen',
        }),
      ),
    );
    server.listen(port, host, () => resolve());
  });
  const bound = server.address() as AddressInfo;
  return {
    address: { host: bound.address, port: bound.port },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
