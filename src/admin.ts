import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AdminListen } from './config/env.js';
import { ChatOpsError, ErrorCode } from './errors.js';
import type { Logger } from './logger.js';

export interface AdminDeps {
  listen: AdminListen;
  log: Logger;
  /** The detailed report: {status, redis, slack, workers, version} (CONTRACT.md). */
  healthz(): Promise<{ httpStatus: number; body: unknown }>;
  metrics(): Promise<{ contentType: string; body: string }>;
}

export interface RunningAdmin {
  /** The bound port: ADMIN_PORT, or the one the OS chose for ADMIN_PORT=0. */
  port: number;
  close(): Promise<void>;
}

/**
 * The operators' listener: metrics and the detailed health report, which name internals (queue
 * depth, worker count, Slack's auth error) that the public PORT must not show. Plain node:http,
 * not Bolt: a worker-only process serves it too and has no Slack receiver.
 */
export async function startAdminServer(deps: AdminDeps): Promise<RunningAdmin> {
  const server = createServer((req, res) => void route(req, res, deps));
  server.listen(deps.listen.port, deps.listen.host);
  try {
    await Promise.race([once(server, 'listening'), once(server, 'error').then(([err]) => Promise.reject(err))]);
  } catch (err) {
    server.close();
    const e = err as NodeJS.ErrnoException;
    throw new ChatOpsError(
      ErrorCode.ConfigInvalid,
      `the admin listener cannot bind ${deps.listen.host}:${deps.listen.port}: ${e.code ?? e.message} (set ADMIN_PORT to a free port, or 0 for any, and ADMIN_HOST to an address of this machine)`,
      { host: deps.listen.host, port: deps.listen.port },
      { cause: err },
    );
  }
  const port = (server.address() as AddressInfo).port;
  deps.log.info({ adminHost: deps.listen.host, adminPort: port }, 'admin listener (/metrics, /healthz) listening');
  return {
    port,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function route(req: IncomingMessage, res: ServerResponse, deps: AdminDeps): Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'text/plain', 'method not allowed\n');
  try {
    if (path === '/metrics') {
      const { contentType, body } = await deps.metrics();
      return send(res, 200, contentType, body);
    }
    if (path === '/healthz') {
      const { httpStatus, body } = await deps.healthz();
      return send(res, httpStatus, 'application/json', JSON.stringify(body));
    }
    send(res, 404, 'text/plain', 'not found\n');
  } catch (err) {
    deps.log.warn({ err: (err as Error).message, path }, 'admin listener: request failed');
    send(res, path === '/healthz' ? 503 : 500, 'application/json', JSON.stringify({ status: 'error' }));
  }
}

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { 'content-type': contentType });
  res.end(body);
}
