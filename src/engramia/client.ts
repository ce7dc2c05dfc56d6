import { z } from 'zod';
import type { Secret } from '../config/secret.js';
import { ChatOpsError, ErrorCode } from '../errors.js';
import { scrub } from '../security/scrub.js';

export const checkSchema = z.looseObject({
  status: z.string(),
  latency_ms: z.number().nullable().optional(),
  error: z.string().nullable().optional(),
});

export const deepHealthSchema = z.looseObject({
  status: z.enum(['ok', 'degraded', 'error']),
  version: z.string().nullable().optional(),
  uptime_seconds: z.number().nullable().optional(),
  checks: z.record(z.string(), checkSchema).default({}),
});

export const versionSchema = z.looseObject({
  app_version: z.string(),
  api_version: z.string().optional(),
  git_commit: z.string().nullable().optional(),
  build_time: z.string().nullable().optional(),
});

export const shallowHealthSchema = z.looseObject({
  status: z.string(),
  storage: z.string().nullable().optional(),
  pattern_count: z.number().nullable().optional(),
});

export type DeepHealth = z.infer<typeof deepHealthSchema>;
export type VersionInfo = z.infer<typeof versionSchema>;
export type ShallowHealth = z.infer<typeof shallowHealthSchema>;

/** What one probe found: a value, maintenance (a normal state, not a failure), or a coded failure. */
export type Probe<T> =
  | { kind: 'ok'; value: T; httpStatus: number; ms: number }
  | { kind: 'maintenance'; httpStatus: 503; retryAfter: string | undefined; ms: number }
  | { kind: 'failed'; error: ChatOpsError; ms: number };

/**
 * Why the API container gave no answer (Caddy's 502–504: no upstream; a timeout: hung), or
 * undefined when it answered (a 401 or 429 is an answer) or when the fault is before it (a refused
 * connection is Caddy or the network, not the container). On the real host a crash-looping
 * container is `running` in `ps` for the second between each restart and crash, and a restarted
 * one is before it listens: then only this tells that the API is not up.
 */
export function apiSilence(err: ChatOpsError): string | undefined {
  const http = err.details.httpStatus;
  if (err.code === ErrorCode.ApiBadResponse && typeof http === 'number' && http >= 502 && http <= 504) return `HTTP ${http}`;
  if (err.code === ErrorCode.ApiTimeout) return 'no answer in time';
  return undefined;
}

/** {@link apiSilence} of a probe; undefined when it got an answer. */
export function probeSilence(p: Probe<unknown>): string | undefined {
  return p.kind === 'failed' ? apiSilence(p.error) : undefined;
}

export interface EngramiaApiOptions {
  baseUrl: string;
  apiKey: Secret;
  timeoutMs?: number;
  /** The deep probe calls the LLM and Stripe; it gets more time than the others. */
  deepTimeoutMs?: number;
  fetch?: typeof fetch;
}

interface RawResponse {
  status: number;
  headers: Headers;
  text: string;
  json: unknown;
  ms: number;
}

export class EngramiaApi {
  readonly baseUrl: string;
  readonly #opts: EngramiaApiOptions;

  constructor(opts: EngramiaApiOptions) {
    this.#opts = opts;
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
  }

  version(): Promise<Probe<VersionInfo>> {
    return this.#probe('/v1/version', false, this.#opts.timeoutMs ?? 5000, versionSchema, false);
  }

  /**
   * Asks /v1/version every `pollMs` until `accept` takes the answer or `deadline` (epoch ms) has passed:
   * a re-created container needs about a second before it listens (Caddy answers 502 meanwhile). The last answer either way.
   */
  async untilVersion(accept: (v: Probe<VersionInfo>) => boolean, deadline: number, pollMs: number): Promise<Probe<VersionInfo>> {
    for (;;) {
      const v = await this.version();
      if (accept(v) || Date.now() >= deadline) return v;
      await new Promise((r) => setTimeout(r, pollMs));
    }
  }

  health(): Promise<Probe<ShallowHealth>> {
    return this.#probe('/v1/health', true, this.#opts.timeoutMs ?? 5000, shallowHealthSchema, false);
  }

  /** 503 here still carries the body with the per-check detail, so it is parsed, not treated as a failure. */
  deepHealth(): Promise<Probe<DeepHealth>> {
    return this.#probe('/v1/health/deep', true, this.#opts.deepTimeoutMs ?? 20_000, deepHealthSchema, true);
  }

  async #probe<T>(path: string, auth: boolean, timeoutMs: number, schema: z.ZodType<T>, bodyOn503: boolean): Promise<Probe<T>> {
    const started = Date.now();
    let res: RawResponse;
    try {
      res = await this.#get(path, auth, timeoutMs);
    } catch (err) {
      return { kind: 'failed', error: err as ChatOpsError, ms: Date.now() - started };
    }
    const url = `${this.baseUrl}${path}`;
    const ms = res.ms;
    const body = res.json as Record<string, unknown> | undefined;
    if (res.status === 503 && body?.error_code === 'SERVICE_UNAVAILABLE') {
      return { kind: 'maintenance', httpStatus: 503, retryAfter: res.headers.get('retry-after') ?? undefined, ms };
    }
    if (res.status === 200 || (res.status === 503 && bodyOn503)) {
      const parsed = schema.safeParse(res.json);
      if (parsed.success) return { kind: 'ok', value: parsed.data, httpStatus: res.status, ms };
      return {
        kind: 'failed',
        ms,
        error: new ChatOpsError(ErrorCode.ApiBadResponse, `${url} answered HTTP ${res.status} with a body the bot does not understand`, {
          url,
          httpStatus: res.status,
          bodyExcerpt: this.#excerpt(res.text),
        }),
      };
    }
    if (res.status === 401 || res.status === 403) {
      return {
        kind: 'failed',
        ms,
        error: new ChatOpsError(ErrorCode.ApiUnauthorized, `${url} rejected the API key (HTTP ${res.status})`, {
          url,
          httpStatus: res.status,
          keyEnv: this.#opts.apiKey.source,
        }),
      };
    }
    if (res.status === 429) {
      return {
        kind: 'failed',
        ms,
        error: new ChatOpsError(ErrorCode.ApiRateLimited, `${url} is rate limiting the bot (HTTP 429)`, { url, retryAfter: res.headers.get('retry-after') ?? undefined }),
      };
    }
    return {
      kind: 'failed',
      ms,
      error: new ChatOpsError(ErrorCode.ApiBadResponse, `${url} answered HTTP ${res.status}`, { url, httpStatus: res.status, bodyExcerpt: this.#excerpt(res.text) }),
    };
  }

  #excerpt(text: string): string {
    return scrub(text.slice(0, 300), [this.#opts.apiKey.reveal()]);
  }

  async #get(path: string, auth: boolean, timeoutMs: number): Promise<RawResponse> {
    const url = `${this.baseUrl}${path}`;
    const started = Date.now();
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': 'engramia-chatops' };
    if (auth) headers.authorization = `Bearer ${this.#opts.apiKey.reveal()}`;
    try {
      const res = await (this.#opts.fetch ?? fetch)(url, { headers, signal: AbortSignal.timeout(timeoutMs), redirect: 'manual' });
      const text = await res.text();
      let json: unknown;
      try {
        json = text === '' ? undefined : JSON.parse(text);
      } catch {
        json = undefined;
      }
      return { status: res.status, headers: res.headers, text, json, ms: Date.now() - started };
    } catch (err) {
      throw networkError(url, err, timeoutMs);
    }
  }
}

function networkError(url: string, err: unknown, timeoutMs: number): ChatOpsError {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') {
    return new ChatOpsError(ErrorCode.ApiTimeout, `${url} did not answer within ${timeoutMs < 1000 ? `${timeoutMs} ms` : `${Math.round(timeoutMs / 1000)} s`}`, { url, timeoutMs });
  }
  const code = e.cause?.code ?? (e as NodeJS.ErrnoException).code;
  const reason =
    code === 'ENOTFOUND' || code === 'EAI_AGAIN'
      ? 'DNS lookup failed'
      : code === 'ECONNREFUSED'
        ? 'connection refused'
        : code === 'ECONNRESET'
          ? 'connection reset'
          : code !== undefined && /CERT|TLS|SSL|UNABLE_TO_VERIFY|SELF_SIGNED/.test(code)
            ? 'TLS certificate problem'
            : (code ?? e.cause?.message ?? e.message);
  return new ChatOpsError(ErrorCode.ApiUnreachable, `${url}: ${reason}`, { url, reason, errno: code });
}
