// Simulated Engramia HTTP API (behind Caddy) for the test host. Every request reads
// `.sim/state.json`, so docker commands and test setters take effect immediately.
// Behaviour follows /work/shared/engramia-api.md and Engramia's middleware order:
// rate limit (outermost) → maintenance → routes with bearer auth.

import { createServer } from 'node:http';
import { randomUUID } from 'node:crypto';
import {
  API_SERVICE,
  DB_SERVICE,
  apiContainerTag,
  apiInMaintenance,
  computeDeepHealth,
  isRunning,
  readState,
} from './host.mjs';

/**
 * @typedef {{
 *   method: string, path: string, status: number,
 *   auth: 'none' | 'valid' | 'invalid' | 'n/a', ts: string,
 * }} ApiRequestRecord
 */

const HEALTH_PATHS = new Set(['/v1/health', '/v1/health/deep']);

/** @param {string} tag */
function buildInfo(tag) {
  // Deterministic per tag so tests can compare, but different between releases.
  let h = 0;
  for (const ch of `engramia@${tag}`) h = (Math.imul(h, 31) + ch.charCodeAt(0)) >>> 0;
  return h;
}

/**
 * Start the API. `close()` also drops keep-alive connections so tests end promptly.
 * @param {{ deployPath: string, host?: string, port?: number }} opts
 * @returns {Promise<{ url: string, port: number, requests: ApiRequestRecord[], close: () => Promise<void> }>}
 */
export async function startEngramiaApi({ deployPath, host = '127.0.0.1', port = 0 }) {
  /** @type {ApiRequestRecord[]} */
  const requests = [];
  // In-memory, per API process (the real limiter is too): keyed by container id so a
  // re-created container starts with fresh counters.
  /** @type {Map<string, number>} */
  const counts = new Map();

  const server = createServer((req, res) => {
    handle(req, res).catch((e) => {
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`simulated api: internal error: ${e instanceof Error ? e.stack : String(e)}`);
      } else res.destroy();
    });
  });

  /** @param {import('node:http').IncomingMessage} req @param {import('node:http').ServerResponse} res */
  async function handle(req, res) {
    const url = new URL(req.url ?? '/', 'http://sim');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    /** @type {ApiRequestRecord['auth']} */
    let auth = 'n/a';
    /** @param {number} status @param {unknown} body @param {Record<string, string>} [headers] */
    const send = (status, body, headers = {}) => {
      requests.push({ method, path, status, auth, ts: new Date().toISOString() });
      const text = body === null ? '' : JSON.stringify(body);
      res.writeHead(status, {
        server: 'Caddy',
        ...(body === null
          ? { 'content-length': '0' }
          : {
              'content-type': 'application/json',
              'content-length': String(Buffer.byteLength(text)),
              'x-content-type-options': 'nosniff',
              'x-frame-options': 'DENY',
              'x-permitted-cross-domain-policies': 'none',
              'referrer-policy': 'no-referrer',
              'x-request-id': randomUUID(),
            }),
        ...headers,
      });
      res.end(text);
    };

    let state = readState(deployPath);
    if (state.api.hang) return; // never answer: the client's timeout has to fire
    if (state.api.delayMs > 0) {
      await new Promise((r) => setTimeout(r, state.api.delayMs));
      state = readState(deployPath);
    }

    // Caddy with no upstream: 502 and an empty body.
    if (state.api.down || !isRunning(state, API_SERVICE)) return send(502, null);
    const container = /** @type {import('./host.mjs').Container} */ (state.containers[API_SERVICE]);
    // A re-created container takes a moment to listen (about a second on the real-host tier); Caddy answers 502 meanwhile.
    const startupMs = state.api.startupMs ?? 0;
    if (startupMs > 0 && container.startedAt && Date.now() - Date.parse(container.startedAt) < startupMs) return send(502, null);
    // A crash loop caught "running" between two restarts never got to listen.
    if (state.registry.tags[apiContainerTag(state) ?? '']?.crashOnStart?.loop) return send(502, null);

    const limit = state.api.rateLimitPerMinute;
    if (limit !== null && limit !== undefined) {
      const window = Math.floor(Date.now() / 60000);
      const ip = req.socket.remoteAddress ?? 'unknown';
      const key = `${container.id}|${ip}|${path}|${window}`;
      const n = (counts.get(key) ?? 0) + 1;
      counts.set(key, n);
      if (n > limit) {
        return send(
          429,
          { error_code: 'RATE_LIMITED', detail: `Rate limit exceeded. Max ${limit} requests per minute.`, error_context: { retry_after: 60 } },
          { 'retry-after': '60' },
        );
      }
    }

    if (apiInMaintenance(state) && !HEALTH_PATHS.has(path)) {
      return send(
        503,
        {
          error_code: 'SERVICE_UNAVAILABLE',
          detail: 'Service is under scheduled maintenance. Please try again later.',
          error_context: { retry_after: 3600 },
        },
        { 'retry-after': '3600' },
      );
    }

    const routes = new Set(['/v1/version', '/v1/health', '/v1/health/deep']);
    if (!routes.has(path)) return send(404, { detail: 'Not Found' });
    if (method !== 'GET' && method !== 'HEAD') return send(405, { detail: 'Method Not Allowed' }, { allow: 'GET' });

    const tag = apiContainerTag(state) ?? '';
    if (path === '/v1/version') {
      const meta = state.registry.tags[tag];
      return send(200, {
        app_version: tag,
        api_version: 'v1',
        git_commit: meta?.gitCommit ?? buildInfo(tag).toString(16).padStart(40, '0'),
        build_time: meta?.buildTime ?? '2026-01-01T00:00:00Z',
      });
    }

    // Keys come from the running container's env, i.e. `.env` as of the last (re)create.
    const keys = (container.env.ENGRAMIA_API_KEYS ?? '').split(',').map((k) => k.trim()).filter(Boolean);
    const header = req.headers.authorization ?? '';
    if (!keys.length) {
      return send(503, {
        error_code: 'STORAGE_ERROR',
        detail: 'No API keys configured. Set ENGRAMIA_API_KEYS, use ENGRAMIA_AUTH_MODE=db, or set ENGRAMIA_ALLOW_NO_AUTH=true to explicitly allow unauthenticated access.',
      });
    }
    if (!header.startsWith('Bearer ')) {
      auth = 'none';
      return send(401, { error_code: 'UNAUTHORIZED', detail: 'Missing or malformed Authorization header. Expected: Bearer <key>' });
    }
    if (!keys.includes(header.slice('Bearer '.length))) {
      auth = 'invalid';
      return send(401, { error_code: 'UNAUTHORIZED', detail: 'Invalid API key.' });
    }
    auth = 'valid';

    if (path === '/v1/health') {
      const storage = state.checks.storage;
      if (!isRunning(state, DB_SERVICE) || storage?.status === 'error') {
        return send(503, { error_code: 'STORAGE_ERROR', detail: 'Storage backend error.' });
      }
      return send(200, { status: 'ok', storage: 'postgres', pattern_count: state.db.patternCount });
    }
    const { httpStatus, body } = computeDeepHealth(state);
    return send(httpStatus, body);
  }

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(undefined));
  });
  const addr = server.address();
  const actualPort = typeof addr === 'object' && addr ? addr.port : port;
  return {
    url: `http://${host}:${actualPort}`,
    port: actualPort,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
