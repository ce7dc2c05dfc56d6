// Unit tests for src/engramia/client.ts against a real local HTTP server (node:http), answering
// the way Engramia does (engramia-api.md): version, shallow and deep health, maintenance 503,
// rate limiting, and the failures in between (wrong key, dead upstream, bad bodies, timeouts).
import http from 'node:http';
import net from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Secret } from '../../src/config/secret.js';
import { EngramiaApi, probeSilence, type Probe } from '../../src/engramia/client.js';
import { ErrorCode } from '../../src/errors.js';

const API_KEY = 'engramia_sk_unit-test-key-0123456789abcdef';
const KEY_ENV = 'ENGRAMIA_PROD_API_KEY';

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
}

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

const DEEP_OK = {
  status: 'ok',
  version: '0.6.1',
  uptime_seconds: 12.4,
  checks: {
    storage: { status: 'ok', latency_ms: 3.1, error: null },
    llm: { status: 'ok', latency_ms: 820.5, error: null },
    embedding: { status: 'ok', latency_ms: 210.3, error: null },
    redis: { status: 'not_configured', latency_ms: null, error: null },
    migration: { status: 'ok', latency_ms: 2.0, error: null, current_revision: '032', expected_revision: '032' },
  },
};
const MAINTENANCE_BODY = {
  error_code: 'SERVICE_UNAVAILABLE',
  detail: 'Service is under scheduled maintenance. Please try again later.',
  error_context: { retry_after: 3600 },
};

function json(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** An Engramia-like server whose answers each test sets through `routes`. */
class FakeEngramia {
  readonly seen: Seen[] = [];
  routes = new Map<string, Handler>();
  readonly #server: http.Server;
  readonly #sockets = new Set<net.Socket>();
  port = 0;

  constructor() {
    this.#server = http.createServer((req, res) => {
      this.seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
      const handler = this.routes.get(req.url ?? '');
      if (handler) handler(req, res);
      else json(res, 404, { detail: 'Not Found' });
    });
    this.#server.on('connection', (s) => {
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
    });
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.port = (this.#server.address() as net.AddressInfo).port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  reset(): void {
    this.seen.length = 0;
    this.routes.clear();
  }

  async stop(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

const server = new FakeEngramia();
const other = new FakeEngramia();

beforeAll(async () => {
  await Promise.all([server.start(), other.start()]);
});

afterEach(() => {
  server.reset();
  other.reset();
});

afterAll(async () => {
  await Promise.all([server.stop(), other.stop()]);
});

function api(opts: { baseUrl?: string; timeoutMs?: number; deepTimeoutMs?: number; fetch?: typeof fetch } = {}): EngramiaApi {
  return new EngramiaApi({ baseUrl: opts.baseUrl ?? server.url, apiKey: new Secret(API_KEY, KEY_ENV), ...opts });
}

function expectFailed<T>(probe: Probe<T>, code: ErrorCode) {
  expect(probe.kind).toBe('failed');
  if (probe.kind !== 'failed') throw new Error('unreachable');
  expect(probe.error.code).toBe(code);
  expect(probe.ms).toBeGreaterThanOrEqual(0);
  // No probe outcome ever carries the key, whatever the failure.
  expect(`${probe.error.message} ${JSON.stringify(probe.error.details)}`).not.toContain(API_KEY);
  return probe.error;
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

describe('successful answers', () => {
  it('version: 200 is ok with the parsed body, extra fields kept', async () => {
    const body = { app_version: '0.6.1', api_version: 'v1', git_commit: '0123456789abcdef', build_time: '2025-05-01T10:00:00Z', extra: 1 };
    server.routes.set('/v1/version', (_q, r) => json(r, 200, body));
    const p = await api().version();
    expect(p.kind).toBe('ok');
    if (p.kind !== 'ok') throw new Error('unreachable');
    expect(p.httpStatus).toBe(200);
    expect(p.value).toEqual(body);
    expect(p.ms).toBeGreaterThanOrEqual(0);
  });

  it('shallow health: 200 ok', async () => {
    server.routes.set('/v1/health', (_q, r) => json(r, 200, { status: 'ok', storage: 'postgres', pattern_count: 1234 }));
    const p = await api().health();
    expect(p).toMatchObject({ kind: 'ok', httpStatus: 200, value: { status: 'ok', storage: 'postgres', pattern_count: 1234 } });
  });

  it('deep health: 200 ok, every check kept, not_configured included', async () => {
    server.routes.set('/v1/health/deep', (_q, r) => json(r, 200, DEEP_OK));
    const p = await api().deepHealth();
    expect(p).toMatchObject({ kind: 'ok', httpStatus: 200 });
    if (p.kind !== 'ok') throw new Error('unreachable');
    expect(p.value.status).toBe('ok');
    expect(Object.keys(p.value.checks)).toEqual(['storage', 'llm', 'embedding', 'redis', 'migration']);
    expect(p.value.checks.redis).toEqual({ status: 'not_configured', latency_ms: null, error: null });
    expect(p.value.checks.migration).toMatchObject({ current_revision: '032', expected_revision: '032' });
  });

  it('deep health: 200 degraded (stripe error)', async () => {
    const body = { ...DEEP_OK, status: 'degraded', checks: { ...DEEP_OK.checks, stripe: { status: 'error', latency_ms: 145.2, error: 'AuthenticationError' } } };
    server.routes.set('/v1/health/deep', (_q, r) => json(r, 200, body));
    const p = await api().deepHealth();
    expect(p).toMatchObject({ kind: 'ok', httpStatus: 200, value: { status: 'degraded', checks: { stripe: { status: 'error', error: 'AuthenticationError' } } } });
  });

  it('deep health: 503 with the JSON body is an answer (status error), not a failure', async () => {
    const body = { ...DEEP_OK, status: 'error', checks: { storage: { status: 'error', latency_ms: null, error: 'OperationalError' } } };
    server.routes.set('/v1/health/deep', (_q, r) => json(r, 503, body));
    const p = await api().deepHealth();
    expect(p).toMatchObject({ kind: 'ok', httpStatus: 503, value: { status: 'error', checks: { storage: { error: 'OperationalError' } } } });
  });

  it('deep health: a body without checks gets an empty set', async () => {
    server.routes.set('/v1/health/deep', (_q, r) => json(r, 200, { status: 'ok' }));
    const p = await api().deepHealth();
    expect(p).toMatchObject({ kind: 'ok', value: { status: 'ok', checks: {} } });
  });

  it('a trailing slash on the base URL is not doubled', async () => {
    server.routes.set('/v1/version', (_q, r) => json(r, 200, { app_version: '0.6.1' }));
    const client = api({ baseUrl: `${server.url}//` });
    expect(client.baseUrl).toBe(server.url);
    expect((await client.version()).kind).toBe('ok');
    expect(server.seen.map((s) => s.url)).toEqual(['/v1/version']);
  });
});

describe('maintenance', () => {
  it('/v1/version 503 with SERVICE_UNAVAILABLE is maintenance, with Retry-After', async () => {
    server.routes.set('/v1/version', (_q, r) => json(r, 503, MAINTENANCE_BODY, { 'retry-after': '3600' }));
    const p = await api().version();
    expect(p).toMatchObject({ kind: 'maintenance', httpStatus: 503, retryAfter: '3600' });
  });

  it('maintenance without Retry-After', async () => {
    server.routes.set('/v1/version', (_q, r) => json(r, 503, MAINTENANCE_BODY));
    const p = await api().version();
    expect(p).toMatchObject({ kind: 'maintenance', retryAfter: undefined });
  });

  it('/v1/version 503 without the maintenance body is a bad response, not maintenance', async () => {
    server.routes.set('/v1/version', (_q, r) => {
      r.writeHead(503, { 'content-type': 'text/plain' });
      r.end('upstream unavailable');
    });
    const err = expectFailed(await api().version(), ErrorCode.ApiBadResponse);
    expect(err.details).toMatchObject({ httpStatus: 503, bodyExcerpt: 'upstream unavailable', url: `${server.url}/v1/version` });
  });
});

describe('untilVersion (the restart gap: Caddy answers 502 until the new container listens)', () => {
  it('asks again until the answer is the one wanted, and returns it', async () => {
    let calls = 0;
    server.routes.set('/v1/version', (_q, r) => {
      calls += 1;
      if (calls < 3) {
        r.writeHead(502);
        r.end();
      } else json(r, 503, MAINTENANCE_BODY);
    });
    const v = await api().untilVersion((x) => x.kind === 'maintenance', Date.now() + 5000, 10);
    expect(v.kind).toBe('maintenance');
    expect(calls).toBe(3);
  });

  it('past the deadline, returns the last answer instead of waiting on', async () => {
    let calls = 0;
    server.routes.set('/v1/version', (_q, r) => {
      calls += 1;
      json(r, 503, MAINTENANCE_BODY);
    });
    const v = await api().untilVersion((x) => x.kind === 'ok', Date.now() + 50, 10);
    expect(v.kind).toBe('maintenance');
    expect(calls).toBeGreaterThan(1);
  });
});

describe('failures', () => {
  it('401: API_UNAUTHORIZED names the env var, never the key', async () => {
    server.routes.set('/v1/health', (_q, r) => json(r, 401, { detail: 'Invalid or missing API key.' }));
    const err = expectFailed(await api().health(), ErrorCode.ApiUnauthorized);
    expect(err.details).toEqual({ url: `${server.url}/v1/health`, httpStatus: 401, keyEnv: KEY_ENV });
    expect(err.message).toContain('401');
  });

  it('401 on deep health too', async () => {
    server.routes.set('/v1/health/deep', (_q, r) => json(r, 401, { detail: 'Invalid or missing API key.' }));
    const err = expectFailed(await api().deepHealth(), ErrorCode.ApiUnauthorized);
    expect(err.details.keyEnv).toBe(KEY_ENV);
  });

  it('403 is unauthorized as well', async () => {
    server.routes.set('/v1/health', (_q, r) => json(r, 403, { detail: 'Forbidden' }));
    const err = expectFailed(await api().health(), ErrorCode.ApiUnauthorized);
    expect(err.details.httpStatus).toBe(403);
  });

  it('429: rate limited, with Retry-After', async () => {
    server.routes.set('/v1/version', (_q, r) => json(r, 429, { error_code: 'RATE_LIMITED', detail: 'Rate limit exceeded. Max 60 requests per minute.' }, { 'retry-after': '60' }));
    const err = expectFailed(await api().version(), ErrorCode.ApiRateLimited);
    expect(err.details).toMatchObject({ retryAfter: '60', url: `${server.url}/v1/version` });
  });

  it('502 with an empty body (Caddy, API container down)', async () => {
    server.routes.set('/v1/health/deep', (_q, r) => {
      r.writeHead(502);
      r.end();
    });
    const err = expectFailed(await api().deepHealth(), ErrorCode.ApiBadResponse);
    expect(err.details).toMatchObject({ httpStatus: 502, bodyExcerpt: '' });
    expect(err.message).toContain('502');
  });

  it('probeSilence: Caddy\'s 502 is the API container not answering; a refused connection (Caddy itself) and a 401 or 429 are not', async () => {
    server.routes.set('/v1/version', (_q, r) => {
      r.writeHead(502);
      r.end();
    });
    expect(probeSilence(await api().version())).toBe('HTTP 502');
    expect(probeSilence(await api({ baseUrl: `http://127.0.0.1:${await freePort()}` }).version())).toBeUndefined();
    server.routes.set('/v1/version', (_q, r) => json(r, 429, { error_code: 'RATE_LIMITED', detail: 'Rate limit exceeded.' }, { 'retry-after': '60' }));
    expect(probeSilence(await api().version())).toBeUndefined();
    server.routes.set('/v1/health', (_q, r) => json(r, 401, { error_code: 'UNAUTHORIZED', detail: 'Invalid API key.' }));
    expect(probeSilence(await api().health())).toBeUndefined();
  });

  it('500: the body excerpt is short and has the key and token shapes scrubbed', async () => {
    const body = `Traceback: auth failed for key ${API_KEY}; stripe sk_live_51HxYzAbCdEfGhIj; ${'x'.repeat(5000)}`;
    server.routes.set('/v1/health', (_q, r) => {
      r.writeHead(500, { 'content-type': 'text/plain' });
      r.end(body);
    });
    const err = expectFailed(await api().health(), ErrorCode.ApiBadResponse);
    const excerpt = err.details.bodyExcerpt as string;
    expect(excerpt.length).toBeLessThanOrEqual(300);
    expect(excerpt).toContain('[redacted]');
    expect(excerpt).not.toContain('sk_live_51HxYzAbCdEfGhIj');
  });

  it('200 with invalid JSON is a bad response with an excerpt', async () => {
    server.routes.set('/v1/version', (_q, r) => {
      r.writeHead(200, { 'content-type': 'text/html' });
      r.end('<html>Welcome to nginx!</html>');
    });
    const err = expectFailed(await api().version(), ErrorCode.ApiBadResponse);
    expect(err.details).toMatchObject({ httpStatus: 200, bodyExcerpt: '<html>Welcome to nginx!</html>' });
    expect(err.message).toContain('does not understand');
  });

  it('200 with JSON of the wrong shape is a bad response', async () => {
    server.routes.set('/v1/health/deep', (_q, r) => json(r, 200, { status: 'fine', checks: [] }));
    expectFailed(await api().deepHealth(), ErrorCode.ApiBadResponse);
    server.routes.set('/v1/version', (_q, r) => json(r, 200, { version: '0.6.1' }));
    expectFailed(await api().version(), ErrorCode.ApiBadResponse);
  });

  it('503 on shallow health is a bad response (only deep health carries a body on 503)', async () => {
    server.routes.set('/v1/health', (_q, r) => json(r, 503, { status: 'error' }));
    const err = expectFailed(await api().health(), ErrorCode.ApiBadResponse);
    expect(err.details.httpStatus).toBe(503);
  });

  it('a redirect is not followed, so the key never goes to another host', async () => {
    other.routes.set('/v1/health', (_q, r) => json(r, 200, { status: 'ok' }));
    server.routes.set('/v1/health', (_q, r) => {
      r.writeHead(302, { location: `${other.url}/v1/health` });
      r.end();
    });
    const err = expectFailed(await api().health(), ErrorCode.ApiBadResponse);
    expect(err.details.httpStatus).toBe(302);
    expect(other.seen).toEqual([]);
  });

  it('connection refused (closed port): API_UNREACHABLE', async () => {
    const base = `http://127.0.0.1:${await freePort()}`;
    const err = expectFailed(await api({ baseUrl: base }).version(), ErrorCode.ApiUnreachable);
    expect(err.details).toMatchObject({ reason: 'connection refused', url: `${base}/v1/version`, errno: 'ECONNREFUSED' });
    expect(err.message).toContain('connection refused');
  });

  it('connection refused through "localhost" too', async () => {
    const base = `http://localhost:${await freePort()}`;
    const err = expectFailed(await api({ baseUrl: base }).health(), ErrorCode.ApiUnreachable);
    expect(err.details.reason).toBe('connection refused');
  });

  it('a host name under .invalid: API_UNREACHABLE, DNS lookup failed', async () => {
    const base = 'http://api.engramia.invalid';
    const err = expectFailed(await api({ baseUrl: base, timeoutMs: 10_000 }).version(), ErrorCode.ApiUnreachable);
    expect(err.details).toMatchObject({ reason: 'DNS lookup failed', url: `${base}/v1/version` });
  });

  it.each([
    ['ENOTFOUND', 'DNS lookup failed'],
    ['EAI_AGAIN', 'DNS lookup failed'],
    ['ECONNREFUSED', 'connection refused'],
    ['ECONNRESET', 'connection reset'],
    ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'TLS certificate problem'],
    ['CERT_HAS_EXPIRED', 'TLS certificate problem'],
    ['ERR_TLS_CERT_ALTNAME_INVALID', 'TLS certificate problem'],
    ['EHOSTUNREACH', 'EHOSTUNREACH'],
  ])('a fetch failing the way undici does with %s reads "%s"', async (code, reason) => {
    const failing = (async () => {
      throw new TypeError('fetch failed', { cause: Object.assign(new Error(`connect ${code}`), { code }) });
    }) as typeof fetch;
    const err = expectFailed(await api({ baseUrl: 'https://api.engramia.dev', fetch: failing }).version(), ErrorCode.ApiUnreachable);
    expect(err.details).toMatchObject({ reason, errno: code, url: 'https://api.engramia.dev/v1/version' });
  });

  it('a fetch error without a code keeps its message', async () => {
    const failing = (async () => {
      throw new TypeError('fetch failed', { cause: new Error('other side closed') });
    }) as typeof fetch;
    const err = expectFailed(await api({ fetch: failing }).version(), ErrorCode.ApiUnreachable);
    expect(err.details.reason).toBe('other side closed');
  });

  it('a slow server: API_TIMEOUT', async () => {
    server.routes.set('/v1/version', (_q, r) => {
      setTimeout(() => json(r, 200, { app_version: '0.6.1' }), 2000).unref();
    });
    const started = Date.now();
    const err = expectFailed(await api({ timeoutMs: 150 }).version(), ErrorCode.ApiTimeout);
    expect(Date.now() - started).toBeLessThan(1500);
    expect(err.details).toMatchObject({ url: `${server.url}/v1/version`, timeoutMs: 150 });
  });

  it('a server that sends headers then stalls the body: API_TIMEOUT', async () => {
    server.routes.set('/v1/health', (_q, r) => {
      r.writeHead(200, { 'content-type': 'application/json' });
      r.write('{"status":');
    });
    const started = Date.now();
    expectFailed(await api({ timeoutMs: 200 }).health(), ErrorCode.ApiTimeout);
    expect(Date.now() - started).toBeLessThan(1500);
  });

  it('deep health gets its own, longer timeout', async () => {
    server.routes.set('/v1/health/deep', (_q, r) => {
      setTimeout(() => json(r, 200, DEEP_OK), 300).unref();
    });
    server.routes.set('/v1/version', (_q, r) => {
      setTimeout(() => json(r, 200, { app_version: '0.6.1' }), 300).unref();
    });
    const client = api({ timeoutMs: 100, deepTimeoutMs: 3000 });
    const [deep, version] = await Promise.all([client.deepHealth(), client.version()]);
    expect(deep.kind).toBe('ok');
    expectFailed(version, ErrorCode.ApiTimeout);
  });
});

describe('the bearer key', () => {
  it('is sent to /v1/health and /v1/health/deep only', async () => {
    server.routes.set('/v1/version', (_q, r) => json(r, 200, { app_version: '0.6.1' }));
    server.routes.set('/v1/health', (_q, r) => json(r, 200, { status: 'ok' }));
    server.routes.set('/v1/health/deep', (_q, r) => json(r, 200, DEEP_OK));
    const client = api();
    await client.version();
    await client.health();
    await client.deepHealth();
    const byPath = new Map(server.seen.map((s) => [s.url, s.headers]));
    expect([...byPath.keys()]).toEqual(['/v1/version', '/v1/health', '/v1/health/deep']);
    expect(byPath.get('/v1/version')!.authorization).toBeUndefined();
    expect(byPath.get('/v1/health')!.authorization).toBe(`Bearer ${API_KEY}`);
    expect(byPath.get('/v1/health/deep')!.authorization).toBe(`Bearer ${API_KEY}`);
    for (const s of server.seen) {
      expect(s.method).toBe('GET');
      expect(s.headers.accept).toBe('application/json');
      expect(s.headers['user-agent']).toBe('engramia-chatops');
    }
    // The version request carries the key nowhere else either (no query string, no other header).
    expect(JSON.stringify(server.seen[0])).not.toContain(API_KEY);
  });

  it('the client object does not reveal the key when logged or serialised', () => {
    const client = api();
    expect(JSON.stringify(client)).not.toContain(API_KEY);
    expect(String(Object.values(client))).not.toContain(API_KEY);
  });
});
