import { WebClient, type WebAPICallResult } from '@slack/web-api';
import { ChatOpsError, ErrorCode } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { Msg } from '../render/model.js';
import { toSlackMessage } from '../render/slack.js';
import { scrub } from '../security/scrub.js';
import type { DeliveryFailure, Origin, Outbox, PostedRef } from '../jobs/types.js';
import { classifySlackFailure } from './failure.js';
import type { PacedMethod, Reservation, SlackPacer } from './pacer.js';

export function createWebClient(opts: { token: string; slackApiUrl: string; log: Logger }): WebClient {
  return new WebClient(opts.token, {
    slackApiUrl: opts.slackApiUrl,
    // A call never waits long: one quick retry for a blip, and a 429 comes back at once with its Retry-After
    // (the client would otherwise sleep it out, pausing every other call). Whoever sends decides how long to keep
    // trying: the job reporter queues and backs off, for as long as its max age allows.
    retryConfig: { retries: 1, factor: 2, minTimeout: 250, maxTimeout: 1000 },
    rejectRateLimitedCalls: true,
    timeout: 10_000,
    logger: {
      debug: () => undefined,
      info: () => undefined,
      warn: (...m: unknown[]) => opts.log.warn({ slack: m.map(String).join(' ') }, 'slack web api'),
      error: (...m: unknown[]) => opts.log.error({ slack: m.map(String).join(' ') }, 'slack web api'),
      setLevel: () => undefined,
      getLevel: () => 'warn' as never,
      setName: () => undefined,
    },
  });
}

/** Walks a payload and scrubs every string: the last line of defence before Slack. */
function scrubDeep<T>(value: T, secrets: readonly string[]): T {
  if (typeof value === 'string') return scrub(value, secrets) as T;
  if (Array.isArray(value)) return value.map((v) => scrubDeep(v, secrets)) as T;
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, scrubDeep(v, secrets)])) as T;
  }
  return value;
}

const RATE_LIMITED = 'slack_webapi_rate_limited_error';

/**
 * `slackError` is Slack's error code (`invalid_blocks`, `channel_not_found`, …) or the client's (`ratelimited`,
 * `slack_webapi_http_error`, `slack_webapi_request_error`); `status` is the HTTP status of a non-200 answer and
 * `retryAfterSec` Slack's Retry-After: what the job reporter reads to decide whether, and when, to try again.
 */
function slackError(method: string, err: unknown): ChatOpsError {
  const e = err as { data?: { error?: string }; code?: string; message?: string; statusCode?: number; retryAfter?: number; paced?: boolean };
  const limited = e.code === RATE_LIMITED;
  return new ChatOpsError(
    ErrorCode.SlackApiError,
    `${method} failed: ${limited ? `ratelimited (retry after ${e.retryAfter ?? '?'} s)` : (e.data?.error ?? e.message ?? String(err))}`,
    {
      method,
      // `paced`: the bot's own budget had no slot soon enough; Slack was not asked (errors metric tells them apart).
      slackError: limited ? (e.paced ? 'paced' : 'ratelimited') : (e.data?.error ?? e.code),
      ...(typeof e.statusCode === 'number' ? { status: e.statusCode } : {}),
      ...(limited && typeof e.retryAfter === 'number' ? { retryAfterSec: e.retryAfter } : {}),
    },
    { cause: err },
  );
}

/** Slack's per-second limits answer Retry-After 1 s or so: a single message waits that out here; longer is the caller's. */
const RATE_LIMIT_WAIT_MS = 3000;

/**
 * A caller that did not reserve its slot waits for it here, but not for longer than this: past it, the call fails
 * at once as rate-limited, and its sender's own retry decides (a queue of answers to one busy channel, say).
 */
const UNRESERVED_MAX_WAIT_MS = 20_000;

const HTTP_ERROR = 'slack_webapi_http_error';
const REQUEST_ERROR = 'slack_webapi_request_error';

const sleep = (ms: number) => (ms > 0 ? new Promise<void>((r) => setTimeout(r, ms)) : Promise.resolve());

/** Shaped like the client's own rate-limited error, so callers treat a call the pacer would not fit like a 429. */
function pacedOut(method: PacedMethod, waitMs: number): Error {
  return Object.assign(new Error(`${method}: the Slack budget is spoken for, next slot in ${Math.ceil(waitMs / 1000)} s`), { code: RATE_LIMITED, retryAfter: Math.ceil(waitMs / 1000), paced: true });
}

export class SlackOutbox implements Outbox {
  classify(err: unknown): DeliveryFailure {
    return classifySlackFailure(err);
  }

  /**
   * `updateClient` may be a second WebClient, so card updates never share a client (and its request
   * queue) with rate-limited thread posts. With a `pacer`, every call first takes a slot from the budget all
   * jobs and worker processes share, so many jobs at once queue their calls instead of meeting 429s.
   */
  constructor(
    private readonly client: WebClient,
    private readonly log: Logger,
    private readonly knownSecrets: readonly string[],
    private readonly metrics?: Metrics,
    private readonly updateClient: WebClient = client,
    private readonly pacer?: SlackPacer,
  ) {}

  async reserve(method: 'chat.postMessage' | 'chat.update', channel: string, opts: { progress?: boolean } = {}): Promise<Reservation> {
    return this.pacer ? this.pacer.reserve(method, channel, opts) : { reserved: true, waitMs: 0 };
  }

  async post(origin: Origin, msg: Msg, opts: { threadTs?: string; paced?: boolean } = {}): Promise<PostedRef> {
    const payload = scrubDeep(toSlackMessage(msg), this.knownSecrets);
    try {
      const res: WebAPICallResult & { ts?: string; channel?: string } = await this.#send('chat.postMessage', origin.channel, opts.paced, () =>
        this.client.chat.postMessage({
          channel: origin.channel,
          ...payload,
          ...(opts.threadTs ? { thread_ts: opts.threadTs } : {}),
          unfurl_links: false,
          unfurl_media: false,
        }),
      );
      return { channel: res.channel ?? origin.channel, ts: res.ts ?? '' };
    } catch (err) {
      const error = slackError('chat.postMessage', err);
      this.metrics?.slackErrors.inc({ method: 'chat.postMessage', error: String(error.details.slackError ?? 'unknown') });
      // The bot is not in the channel (or it is a DM): answer the person who asked through response_url instead.
      if (['not_in_channel', 'channel_not_found'].includes(String(error.details.slackError)) && origin.responseUrl) {
        await this.#respond(origin.responseUrl, {
          ...payload,
          text: `${payload.text}\n(Invite the bot to this channel so everyone sees results.)`,
        });
        return { channel: origin.channel, ts: '' };
      }
      throw error;
    }
  }

  async update(ref: PostedRef, msg: Msg, opts: { paced?: boolean } = {}): Promise<void> {
    const payload = scrubDeep(toSlackMessage(msg), this.knownSecrets);
    try {
      await this.#send('chat.update', ref.channel, opts.paced, () => this.updateClient.chat.update({ channel: ref.channel, ts: ref.ts, ...payload }));
    } catch (err) {
      const error = slackError('chat.update', err);
      this.metrics?.slackErrors.inc({ method: 'chat.update', error: String(error.details.slackError ?? 'unknown') });
      throw error;
    }
  }

  async upload(origin: Origin, file: { threadTs?: string; filename: string; title: string; content: string }): Promise<void> {
    try {
      const base = { filename: file.filename, title: file.title, content: scrub(file.content, this.knownSecrets) };
      await this.#send('files.uploadV2', origin.channel, false, () =>
        this.client.filesUploadV2(file.threadTs ? { ...base, channel_id: origin.channel, thread_ts: file.threadTs } : { ...base, channel_id: origin.channel }),
      );
    } catch (err) {
      const error = slackError('files.uploadV2', err);
      this.metrics?.slackErrors.inc({ method: 'files.uploadV2', error: String(error.details.slackError ?? 'unknown') });
      throw error;
    }
  }

  /**
   * One Web API call: a slot from the pacer first (unless the caller reserved it), then the call. A 429 makes
   * every job and process hold back for its Retry-After, and one that fits in RATE_LIMIT_WAIT_MS is waited out
   * here; a call Slack never counted (5xx, no answer) gives its slot back, so an outage does not use up the budget.
   */
  async #send<T>(method: PacedMethod, channel: string, reserved: boolean | undefined, call: () => Promise<T>): Promise<T> {
    const pacer = this.pacer;
    if (pacer && !reserved) {
      const slot = await pacer.reserve(method, channel, { maxWaitMs: UNRESERVED_MAX_WAIT_MS });
      if (!slot.reserved) throw pacedOut(method, slot.waitMs);
      await sleep(slot.waitMs);
    }
    const deadline = Date.now() + RATE_LIMIT_WAIT_MS;
    for (;;) {
      try {
        return await call();
      } catch (err) {
        const e = err as { code?: string; retryAfter?: number; statusCode?: number };
        if (e.code !== RATE_LIMITED) {
          if (pacer && (e.code === REQUEST_ERROR || (e.code === HTTP_ERROR && (e.statusCode ?? 0) >= 500))) await pacer.refund(method, channel);
          throw err;
        }
        // Counted here, not where errors are counted: a 429 waited out here never reaches the caller as an error.
        this.metrics?.slackRateLimited.inc({ method });
        const retryAfterMs = typeof e.retryAfter === 'number' ? e.retryAfter * 1000 : undefined;
        if (retryAfterMs === undefined) throw err;
        if (pacer) await pacer.hold(method, channel, retryAfterMs);
        const left = deadline - Date.now();
        if (retryAfterMs > left) throw err;
        const slot = pacer ? await pacer.reserve(method, channel, { maxWaitMs: left }) : { reserved: true, waitMs: retryAfterMs };
        if (!slot.reserved) throw err;
        await sleep(slot.waitMs);
      }
    }
  }

  async permalink(ref: PostedRef): Promise<string | undefined> {
    try {
      const res = (await this.#send('chat.getPermalink', ref.channel, false, () => this.client.chat.getPermalink({ channel: ref.channel, message_ts: ref.ts }))) as { permalink?: string };
      return res.permalink;
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'no permalink for a message');
      return undefined;
    }
  }

  async #respond(url: string, body: Record<string, unknown>): Promise<void> {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ response_type: 'ephemeral', replace_original: false, ...body }),
      signal: AbortSignal.timeout(10_000),
    });
    if (!res.ok) {
      this.log.warn({ status: res.status }, 'response_url post failed');
      throw new ChatOpsError(ErrorCode.SlackApiError, `response_url answered HTTP ${res.status}`, { method: 'response_url', slackError: `http_${res.status}`, status: res.status });
    }
  }
}
