import { Redis } from 'ioredis';
import type { Logger } from '../logger.js';

/** `burst` calls at once after a quiet spell, then `perMinute` on average. */
export interface PaceRule {
  perMinute: number;
  burst: number;
  /**
   * Slots a progress call (a card update while its job runs) leaves free for calls that matter more (a card's
   * outcome, a gate): default half the burst. Under load the outcome of a deploy never queues behind other cards'
   * progress; a lone job is never held back by it while `burst - spare` ≥ its own card's burst (3).
   */
  spare?: number;
}

export interface Reservation {
  /** A slot is this caller's. */
  reserved: boolean;
  /** Reserved: how long to wait before making the call. Not reserved: when to ask again. */
  waitMs: number;
}

/** The Web API methods the bot paces: everything the outbox calls. */
export type PacedMethod = 'chat.postMessage' | 'chat.update' | 'chat.getPermalink' | 'files.uploadV2';

export interface SlackPacingOptions {
  /** Per method; unset methods keep the defaults (`DEFAULT_PACE_RULES`). */
  rules?: Partial<Record<PacedMethod, PaceRule>>;
  /**
   * Share the budget with every worker process on the same Redis and prefix (default true). Slack counts a
   * Tier per method per workspace per app, however many processes make the calls.
   */
  shared?: boolean;
  /** How long a pacing decision may take in Redis before this process decides alone (default 500 ms). */
  redisTimeoutMs?: number;
}

/**
 * Slack's limits, with room to spare: chat.update is Tier 3 ("50+ per minute", per method, across the whole
 * workspace), chat.postMessage about one per second per channel with short bursts, chat.getPermalink and the two
 * calls behind a file upload Tier 4 ("100+ per minute"). The bursts are smaller than Slack's (which it does not
 * publish): a call reaches Slack a little later than it was let go, and calls let go together can arrive
 * closer than they left.
 */
export const DEFAULT_PACE_RULES: Readonly<Record<PacedMethod, PaceRule>> = {
  'chat.postMessage': { perMinute: 60, burst: 3 },
  'chat.update': { perMinute: 50, burst: 5, spare: 2 },
  'chat.getPermalink': { perMinute: 100, burst: 10 },
  'files.uploadV2': { perMinute: 100, burst: 5 },
};

/** Slack limits chat.postMessage per channel; the others per method. */
const PER_CHANNEL: ReadonlySet<PacedMethod> = new Set(['chat.postMessage']);

/**
 * GCRA over one key, atomic in Redis and timed by Redis's own clock, so processes whose clocks differ agree.
 * The key holds the theoretical arrival time (TAT, ms) of the next call; a call may go once `TAT - tau` has
 * passed (tau = (burst - 1) × interval), which lets `burst` calls through at once after a quiet spell.
 *
 * ARGV: op, interval ms, burst (smaller for a progress call, which so sees less room), arg.
 *   take    reserve the next slot unless it is more than `arg` ms away (arg < 0: whatever the wait); returns
 *           {1, wait ms} or {0, wait ms} (not reserved)
 *   refund  give one slot back (a call Slack never counted: it answered 5xx or never answered)
 *   hold    nothing goes for `arg` ms, and the burst is spent (Slack answered 429 with that Retry-After)
 */
const GCRA_LUA = `
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[2])
local tau = interval * (tonumber(ARGV[3]) - 1)
local arg = tonumber(ARGV[4])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local ok, wait = 1, 0
if ARGV[1] == 'take' then
  wait = tat - tau - now
  if wait < 0 then wait = 0 end
  if arg >= 0 and wait > arg then
    ok = 0
  else
    tat = tat + interval
  end
elseif ARGV[1] == 'refund' then
  tat = tat - interval
  if tat < now then tat = now end
elseif ARGV[1] == 'hold' then
  if now + arg + tau > tat then tat = now + arg + tau end
end
if tat > now then
  redis.call('SET', KEYS[1], tostring(tat), 'PX', math.ceil(tat - now))
else
  redis.call('DEL', KEYS[1])
end
return {ok, math.ceil(wait)}
`;

type Op = 'take' | 'refund' | 'hold';

interface PaceRedis extends Redis {
  chatopsSlackPace(key: string, op: Op, intervalMs: number, burst: number, arg: number): Promise<[number, number]>;
}

/**
 * One budget of Web API calls for everything this bot sends to Slack: every job, and with Redis every worker
 * process. A caller reserves a slot before each call and waits until it comes; slots are handed out in the order
 * they were asked for, so a busy moment queues calls instead of spending them on 429s.
 *
 * When Redis does not answer (down, slow), this process paces alone with the same rules until it answers again:
 * Slack is better served slightly over budget for a while than not at all.
 */
export class SlackPacer {
  readonly #rules: Record<PacedMethod, PaceRule>;
  readonly #redis: PaceRedis | undefined;
  readonly #prefix: string;
  readonly #log: Logger;
  readonly #timeoutMs: number;
  /** TAT per key, for when Redis is not there. */
  readonly #local = new Map<string, number>();
  #redisFailing = false;
  #redisWasReady = false;

  constructor(opts: SlackPacingOptions & { log: Logger; redisUrl?: string; prefix?: string }) {
    this.#rules = { ...DEFAULT_PACE_RULES, ...opts.rules };
    for (const [method, rule] of Object.entries(this.#rules)) {
      if (!(rule.perMinute > 0) || !(rule.burst >= 1) || (rule.spare !== undefined && !(rule.spare >= 0))) throw new Error(`slack pacing for ${method}: perMinute must be > 0, burst ≥ 1 and spare ≥ 0`);
    }
    this.#prefix = opts.prefix ?? 'chatops';
    this.#log = opts.log;
    this.#timeoutMs = opts.redisTimeoutMs ?? 500;
    if (opts.redisUrl && opts.shared !== false) {
      // Its own connection: a pacing decision must fail fast when Redis is away (the job connections wait for it).
      const redis = new Redis(opts.redisUrl, { enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: this.#timeoutMs, retryStrategy: (times) => Math.min(200 * times, 5000) }) as PaceRedis;
      redis.on('error', () => undefined);
      redis.on('ready', () => (this.#redisWasReady = true));
      redis.defineCommand('chatopsSlackPace', { numberOfKeys: 1, lua: GCRA_LUA });
      this.#redis = redis;
    }
  }

  rule(method: PacedMethod): PaceRule {
    return this.#rules[method];
  }

  /** The budget is shared through Redis right now (false: this process paces alone). */
  get shared(): boolean {
    return this.#redis?.status === 'ready';
  }

  /**
   * Reserves the next call of `method` (to `channel`, for the per-channel ones): slots go in the order asked, and
   * the caller waits `waitMs` before making its call. Nothing is reserved when that wait would exceed `maxWaitMs`;
   * nor for `progress` unless a slot is free right now with the rule's `spare` still left after it.
   */
  async reserve(method: PacedMethod, channel: string, opts: { maxWaitMs?: number; progress?: boolean } = {}): Promise<Reservation> {
    const rule = this.#rules[method];
    const spare = opts.progress ? Math.max(0, Math.min(rule.burst - 1, rule.spare ?? Math.floor(rule.burst / 2))) : 0;
    const [ok, wait] = await this.#run('take', method, channel, opts.progress ? 0 : (opts.maxWaitMs ?? -1), rule.burst - spare);
    return { reserved: ok === 1, waitMs: wait };
  }

  /** Gives back a slot whose call Slack did not count (5xx, no answer): an outage must not use up the budget. */
  async refund(method: PacedMethod, channel: string): Promise<void> {
    await this.#run('refund', method, channel, 0);
  }

  /** Slack answered 429: no call of this kind goes, from any job or process, until its Retry-After has passed. */
  async hold(method: PacedMethod, channel: string, ms: number): Promise<void> {
    await this.#run('hold', method, channel, Math.max(0, Math.ceil(ms)));
  }

  async close(): Promise<void> {
    if (!this.#redis) return;
    await this.#redis.quit().catch(() => this.#redis?.disconnect());
  }

  #key(method: PacedMethod, channel: string): string {
    return [this.#prefix, 'ops', 'slack-pace', method, ...(PER_CHANNEL.has(method) ? [channel] : [])].join(':');
  }

  /** `burst` below the rule's: the same count, judged as if the bucket were smaller (progress calls). */
  async #run(op: Op, method: PacedMethod, channel: string, arg: number, burst = this.#rules[method].burst): Promise<[number, number]> {
    const rule = this.#rules[method];
    const interval = 60_000 / rule.perMinute;
    const key = this.#key(method, channel);
    const redis = this.#redis;
    if (redis && redis.status === 'ready') {
      try {
        const [ok, wait] = await redis.chatopsSlackPace(key, op, interval, burst, arg);
        if (this.#redisFailing) {
          this.#redisFailing = false;
          this.#log.info('slack pacing shared through Redis again');
        }
        return [Number(ok), Number(wait)];
      } catch (err) {
        this.#redisDown((err as Error).message);
      }
    } else if (redis && this.#redisWasReady) {
      // Before the first connection (start-up) this is no outage: this process is alone for a few ms.
      this.#redisDown(`redis ${redis.status}`);
    }
    return this.#runLocal(op, key, interval, burst, arg);
  }

  #redisDown(reason: string): void {
    if (this.#redisFailing) return;
    this.#redisFailing = true;
    this.#log.warn({ err: reason }, 'slack pacing: Redis does not answer; this process paces its Slack calls alone until it does');
  }

  /** The same GCRA as GCRA_LUA, for this process alone. */
  #runLocal(op: Op, key: string, interval: number, burst: number, arg: number): [number, number] {
    const now = Date.now();
    const tau = interval * (burst - 1);
    let tat = Math.max(this.#local.get(key) ?? now, now);
    let ok = 1;
    let wait = 0;
    if (op === 'take') {
      wait = Math.max(0, tat - tau - now);
      if (arg >= 0 && wait > arg) ok = 0;
      else tat += interval;
    } else if (op === 'refund') {
      tat = Math.max(now, tat - interval);
    } else {
      tat = Math.max(tat, now + arg + tau);
    }
    if (tat > now) this.#local.set(key, tat);
    else this.#local.delete(key);
    // Keys of channels gone quiet would otherwise pile up in a long-lived process.
    if (this.#local.size > 1000) for (const [k, v] of this.#local) if (v <= now) this.#local.delete(k);
    return [ok, Math.ceil(wait)];
  }
}
