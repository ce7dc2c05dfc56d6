import type { Logger } from '../logger.js';
import type { Msg, Part } from '../render/model.js';
import { toBlocks } from '../render/slack.js';
import type { DeliveryFailure, Origin, Outbox, PostedRef } from './types.js';

export interface ReporterOptions {
  outbox: Outbox;
  log: Logger;
  /** chat.update is Tier 3 (about 50 a minute): on average the card is updated at most this often. */
  minUpdateIntervalMs?: number;
  /**
   * How many card updates may go at once after a quiet spell (default 3), refilled at one per
   * `minUpdateIntervalMs`: a step that ends right after another is shown at once, not an interval later.
   */
  updateBurst?: number;
  /**
   * A card update waits until the state has not changed for this long (default 50 ms; never longer than
   * `minUpdateIntervalMs` in all), so a step that ends and the next that starts go as one update, not two.
   */
  updateSettleMs?: number;
  /** How long `start` waits for the card's ts before the job goes on without it (default 2 s). */
  startWaitMs?: number;
  /** First wait after a failed delivery; doubled on each failure in a row, up to the caps below (default 250 ms). */
  retryMinMs?: number;
  /**
   * Cap while Slack has been failing for less than `fastRetryWindowMs` (default 1 s for 2 min): most outages and
   * rate limits are short, and a short one should cost the card no more than about this once Slack answers again.
   */
  retryFastMaxMs?: number;
  fastRetryWindowMs?: number;
  /** Cap after that, so a long outage is probed gently (default 30 s). */
  retryMaxMs?: number;
  /** Anything Slack has not taken this long after it was queued is given up on, with a warning (default 30 min). */
  maxAgeMs?: number;
  /** After each delivery Slack accepted; the registry uses it to tell the other reporters Slack is back. */
  onDelivered?: () => void;
}


type Item = (
  | { kind: 'reply'; msg: Msg; own: boolean; key?: string; resolve: (ref: PostedRef | undefined) => void }
  | { kind: 'update'; ref: PostedRef; msg: Msg; resolve: () => void }
  | { kind: 'file'; filename: string; title: string; content: string; resolve: () => void }
) & {
  /** When it was queued: the clock for giving up on it. */
  at: number;
  /** Slack refused it as part of a merged message: it goes alone next time. */
  solo?: boolean;
};

type ReplyItem = Extract<Item, { kind: 'reply' }>;

type SlotMethod = 'chat.postMessage' | 'chat.update';

/** Room left for merging replies; Slack allows 50 blocks in a message. */
const MERGE_BLOCK_BUDGET = 45;

/** One delivery path (the card, or the thread) with its own backoff, so a throttled thread never holds the card back. */
class Lane {
  failures = 0;
  failingSince = 0;
  retryAt = 0;
  /** The last failure was a 429: its Retry-After holds even when the other lane gets through. */
  rateLimited = false;
  /** The method of the slot Slack's shared budget reserved for this lane's next call, and when that call may go. */
  slotFor: SlotMethod | undefined;
  slotAt = 0;
  /** A progress update found no slot to spare: when to ask again (an urgent update does not wait for it). */
  pollAt = 0;
  running = false;
  #wake: (() => void) | undefined;

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        if (this.#wake === done) this.#wake = undefined;
        resolve();
      };
      // A pending retry must not keep the process alive on its own; the worker stops reporters on close.
      const timer = setTimeout(done, Math.max(0, ms));
      timer.unref();
      this.#wake = done;
    });
  }

  /** Ends a sleep early: the loop looks again at what it waits for. */
  wake(): void {
    this.#wake?.();
  }

  succeeded(): boolean {
    const wasFailing = this.failures > 0;
    this.failures = 0;
    this.failingSince = 0;
    this.retryAt = 0;
    this.rateLimited = false;
    return wasFailing;
  }

  /** Slack answered on another path: retry now, unless Slack asked this one to wait. */
  slackIsBack(): void {
    if (this.failures === 0 || this.rateLimited) return;
    this.retryAt = 0;
    this.wake();
  }
}

/**
 * Talks to Slack for one job without ever making the job wait on Slack. Two lanes:
 *
 * - the card: posted once, then updated in place; updates are coalesced so only the latest state is sent, on
 *   average at most one per `minUpdateIntervalMs` (a few may go at once after a quiet spell: `updateBurst`);
 * - the thread: replies, files and reply updates in the order they were queued, behind the card (they need its
 *   ts). When Slack holds the queue back, the step replies waiting are merged into one message, so a backlog
 *   drains in a few posts instead of one per second.
 *
 * A delivery Slack fails (5xx, network, timeout, 429) stays queued and is retried with backoff, honouring
 * Retry-After; one Slack refuses (invalid_blocks, channel_not_found, …) is dropped with a warning; nothing is
 * tried for longer than `maxAgeMs`. The job awaits only `start` and `flush`, both bounded; deliveries still
 * pending when the job returns go on in the background until delivered, given up on, or `stop`.
 */
export class JobReporter {
  readonly #outbox: Outbox;
  readonly #log: Logger;
  readonly #origin: Origin;
  readonly #interval: number;
  readonly #startWait: number;
  readonly #retryMin: number;
  readonly #retryFastMax: number;
  readonly #fastWindow: number;
  readonly #retryMax: number;
  readonly #maxAge: number;
  readonly #onDelivered: (() => void) | undefined;

  #card: PostedRef | undefined;
  /** Slack refused the card itself: the thread goes to the channel, and there is nothing to update. */
  #cardRefused = false;
  #pendingCard: Msg | undefined;
  /** When the oldest card state not yet shown was set. */
  #pendingSince = 0;
  /** Card updates that may go now: a token bucket of `updateBurst`, refilled at one per `#interval`. */
  #updateTokens: number;
  #tokensAt = 0;
  readonly #burst: number;
  readonly #settle: number;
  /** When the card state last changed. */
  #changedAt = 0;
  /** flush(): the next card update does not wait for the interval. */
  #hurry = false;
  readonly #cardLane = new Lane();
  readonly #threadLane = new Lane();
  readonly #queue: Item[] = [];
  #inFlight = 0;
  readonly #refs = new Map<string, PostedRef>();
  #cardWaiters: (() => void)[] = [];
  #idleWaiters: ((idle: boolean) => void)[] = [];
  #idleSince = Date.now();
  #stopped = false;

  constructor(origin: Origin, opts: ReporterOptions) {
    this.#origin = origin;
    this.#outbox = opts.outbox;
    this.#log = opts.log;
    this.#interval = opts.minUpdateIntervalMs ?? 1200;
    this.#burst = Math.max(1, opts.updateBurst ?? 3);
    this.#updateTokens = this.#burst;
    this.#settle = opts.updateSettleMs ?? 50;
    this.#startWait = opts.startWaitMs ?? 2000;
    this.#retryMin = opts.retryMinMs ?? 250;
    this.#retryFastMax = opts.retryFastMaxMs ?? 1000;
    this.#fastWindow = opts.fastRetryWindowMs ?? 120_000;
    this.#retryMax = opts.retryMaxMs ?? 30_000;
    this.#maxAge = opts.maxAgeMs ?? 30 * 60_000;
    this.#onDelivered = opts.onDelivered;
  }

  get card(): PostedRef | undefined {
    return this.#card;
  }

  /** Where a message queued with `key` landed, once Slack took it. */
  delivered(key: string): PostedRef | undefined {
    return this.#refs.get(key);
  }

  /** Writes what Slack took since the job last saved into its state: the card, and messages keyed by `keyOf` (gates) delivered late. */
  recordInto(state: { card?: PostedRef; gates: Record<string, { id: string; postedTs?: string }> }, keyOf: (gateId: string) => string): void {
    if (!state.card && this.#card) state.card = this.#card;
    for (const gate of Object.values(state.gates)) {
      const ref = gate.postedTs ? undefined : this.#refs.get(keyOf(gate.id));
      if (ref?.ts) gate.postedTs = ref.ts;
    }
  }

  /** Nothing queued, nothing in flight, since `idleSince`. */
  get idle(): boolean {
    return this.#isIdle();
  }

  get idleSince(): number {
    return this.#idleSince;
  }

  /**
   * Posts the card, or adopts the one a previous run of this job posted. Waits for Slack at most `waitMs`, and
   * not past a first failed try: the card then stays queued, and `card` / `recordInto` have it once it is posted.
   */
  async start(card: Msg, existing?: PostedRef, waitMs = this.#startWait): Promise<PostedRef | undefined> {
    if (existing?.ts && !this.#card) this.#card = existing;
    this.setCard(card);
    if (this.#card || this.#cardRefused || this.#stopped) return this.#card;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.#cardWaiters = this.#cardWaiters.filter((w) => w !== done);
        resolve();
      }, waitMs);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      this.#cardWaiters.push(done);
    });
    return this.#card;
  }

  setCard(card: Msg): void {
    if (this.#stopped || this.#cardRefused) return;
    this.#changedAt = Date.now();
    if (!this.#pendingCard) this.#pendingSince = this.#changedAt;
    this.#pendingCard = card;
    this.#runCard();
  }

  /**
   * Queues a thread reply; settles when delivered, or with undefined when given up on (which can take up to
   * `maxAgeMs`: a job step never awaits it unbounded). `own` keeps it a message of its own, for replies that are
   * updated later (gates); `key` remembers where it landed (`delivered`, `recordInto`).
   */
  reply(msg: Msg, opts: { own?: boolean; key?: string } = {}): Promise<PostedRef | undefined> {
    return new Promise((resolve) => this.#enqueue({ kind: 'reply', msg, own: opts.own ?? false, ...(opts.key ? { key: opts.key } : {}), resolve, at: Date.now() }));
  }

  /** Queues a file in the thread, in order with the replies. */
  replyFile(filename: string, title: string, content: string): Promise<void> {
    return new Promise((resolve) => this.#enqueue({ kind: 'file', filename, title, content, resolve, at: Date.now() }));
  }

  /** Replaces an earlier reply (a decided gate), in order with the other replies. */
  updateReply(ref: PostedRef, msg: Msg): Promise<void> {
    return new Promise((resolve) => this.#enqueue({ kind: 'update', ref, msg, resolve, at: Date.now() }));
  }

  /**
   * Waits, at most `timeoutMs`, until the latest card and everything queued are delivered (or given up on).
   * The bound keeps a dead Slack from holding the job; what is still pending goes on in the background.
   */
  async flush(timeoutMs = 60_000): Promise<boolean> {
    this.#hurry = true;
    this.#cardLane.wake();
    if (this.#isIdle()) return true;
    let timer: NodeJS.Timeout | undefined;
    const idle = await new Promise<boolean>((resolve) => {
      const waiter = (v: boolean) => {
        clearTimeout(timer);
        resolve(v);
      };
      timer = setTimeout(() => {
        this.#idleWaiters = this.#idleWaiters.filter((w) => w !== waiter);
        resolve(false);
      }, timeoutMs);
      this.#idleWaiters.push(waiter);
    });
    if (!idle && !this.#stopped) {
      this.#log.warn({ queued: this.#queue.length, card: this.#pendingCard ? (this.#card ? 'update' : 'post') : 'delivered', timeoutMs }, 'slack delivery still pending; it goes on in the background');
    }
    return idle;
  }

  /** Slack answered another job's call: anything waiting out a backoff (not a Retry-After) tries now. */
  slackIsBack(): void {
    this.#cardLane.slackIsBack();
    this.#threadLane.slackIsBack();
  }

  /** Stops every retry and settles every promise (a worker shutting down). What was not delivered is logged. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    const dropped = this.#queue.splice(0);
    if (dropped.length || this.#pendingCard) {
      this.#log.warn({ queued: dropped.length, card: Boolean(this.#pendingCard) }, 'slack messages not delivered: the worker stopped before Slack took them');
    }
    this.#pendingCard = undefined;
    for (const item of dropped) settle(item);
    this.#cardLane.wake();
    this.#threadLane.wake();
    this.#notifyCard();
    for (const w of this.#idleWaiters.splice(0)) w(false);
  }

  // --- the card ------------------------------------------------------------------------------

  #runCard(): void {
    this.#run(this.#cardLane, () => this.#cardLoop(), () => Boolean(this.#pendingCard));
  }

  async #cardLoop(): Promise<void> {
    const lane = this.#cardLane;
    while (!this.#stopped && this.#pendingCard) {
      const now = Date.now();
      const posting = !this.#card;
      const method: SlotMethod = posting ? 'chat.postMessage' : 'chat.update';
      if (lane.slotFor !== method) {
        const tokens = this.#tokensNow(now);
        const pacing = !posting && !this.#hurry;
        const due = Math.max(
          lane.retryAt,
          pacing ? lane.pollAt : 0,
          pacing && tokens < 1 ? now + Math.ceil((1 - tokens) * this.#interval) : 0,
          pacing ? Math.min(this.#changedAt + this.#settle, this.#pendingSince + this.#interval) : 0,
        );
        if (now < due) {
          await lane.sleep(due - now);
          continue;
        }
        // Progress takes a slot only when one is free with room to spare; the outcome (flush) queues for one.
        if (await this.#reserve(lane, method, pacing)) continue;
      }
      if (Date.now() < lane.slotAt) {
        // Other jobs have Slack's budget for now: states that arrive meanwhile replace this one, at no extra call.
        await lane.sleep(lane.slotAt - Date.now());
        continue;
      }
      lane.slotFor = undefined;
      const sentAt = Date.now();
      const msg = this.#pendingCard;
      const since = this.#pendingSince;
      this.#pendingCard = undefined;
      this.#hurry = false;
      if (!posting) {
        this.#updateTokens = Math.max(0, this.#tokensNow(sentAt) - 1);
        this.#tokensAt = sentAt;
      }
      const paced = { paced: Boolean(this.#outbox.reserve) };
      this.#inFlight += 1;
      try {
        if (posting) {
          this.#card = await this.#outbox.post(this.#origin, msg, paced);
          this.#notifyCard();
        } else {
          await this.#outbox.update(this.#card!, msg, paced);
        }
        this.#delivered(lane);
      } catch (err) {
        const f = this.#outbox.classify(err);
        if (this.#stopped) continue;
        if (!f.transient) {
          this.#log.warn({ err: f.reason }, posting ? 'card not delivered: Slack refused it; the thread goes to the channel' : 'card update not delivered: Slack refused it');
          if (posting) {
            this.#cardRefused = true;
            this.#pendingCard = undefined;
            this.#notifyCard();
          }
          continue;
        }
        // A newer state that arrived meanwhile wins; the age counts from the oldest state not yet shown.
        this.#pendingCard ??= msg;
        this.#pendingSince = since;
        if (Date.now() - since >= this.#maxAge) {
          this.#log.warn({ err: f.reason, ageMs: Date.now() - since }, posting ? 'card not delivered: Slack failed for too long; the thread goes to the channel' : 'card update not delivered: Slack failed for too long');
          this.#pendingCard = undefined;
          if (posting) {
            this.#cardRefused = true;
            this.#notifyCard();
          }
          continue;
        }
        this.#failed(lane, f, posting ? 'card' : 'card update');
        // Slack is failing: start() has nothing to wait for; the deploy goes on and the card follows.
        if (posting) for (const w of this.#cardWaiters.splice(0)) w();
      } finally {
        this.#inFlight -= 1;
      }
    }
  }

  /**
   * Takes a slot from Slack's shared budget for the lane's next call (one at a time: the lane never queues calls
   * behind the pacer). True when it had to ask the outbox, and the loop should look again at what it waits for.
   */
  async #reserve(lane: Lane, method: SlotMethod, progress = false): Promise<boolean> {
    if (!this.#outbox.reserve) {
      lane.slotFor = method;
      lane.slotAt = 0;
      return false;
    }
    let slot = { reserved: true, waitMs: 0 };
    try {
      slot = await this.#outbox.reserve(method, this.#origin.channel, progress ? { progress } : {});
    } catch (err) {
      // Pacing is a courtesy to Slack; it must never hold a delivery back for good.
      this.#log.warn({ err: (err as Error).message }, 'slack pacing failed; sending without a slot');
    }
    if (slot.reserved) {
      lane.slotFor = method;
      lane.slotAt = Date.now() + slot.waitMs;
    } else {
      lane.pollAt = Date.now() + Math.max(1, slot.waitMs);
    }
    return true;
  }

  #tokensNow(now: number): number {
    if (!(this.#interval > 0)) return this.#burst;
    return Math.min(this.#burst, this.#updateTokens + (now - this.#tokensAt) / this.#interval);
  }

  #notifyCard(): void {
    for (const w of this.#cardWaiters.splice(0)) w();
    // The thread waits for the card's ts; it may go now.
    this.#threadLane.wake();
  }

  // --- the thread ----------------------------------------------------------------------------

  #enqueue(item: Item): void {
    if (this.#stopped) {
      settle(item);
      return;
    }
    this.#queue.push(item);
    this.#run(this.#threadLane, () => this.#threadLoop(), () => this.#queue.length > 0);
  }

  async #threadLoop(): Promise<void> {
    const lane = this.#threadLane;
    while (!this.#stopped && this.#queue.length > 0) {
      const now = Date.now();
      // Queued in order, so the oldest are at the head.
      while (this.#queue.length && now - this.#queue[0]!.at >= this.#maxAge) {
        const item = this.#queue.shift()!;
        this.#log.warn({ kind: item.kind, ageMs: now - item.at }, 'thread message not delivered: Slack failed for too long');
        settle(item);
      }
      const head = this.#queue[0];
      if (!head) break;
      if (!this.#card && !this.#cardRefused) {
        // Replies belong in the card's thread: wait for it (woken when it is posted or refused).
        await lane.sleep(head.at + this.#maxAge - now);
        continue;
      }
      if (now < lane.retryAt) {
        await lane.sleep(lane.retryAt - now);
        continue;
      }
      // Files pace themselves in the outbox: they are never merged, so there is nothing to gain by waiting here.
      const method: SlotMethod | undefined = head.kind === 'reply' ? 'chat.postMessage' : head.kind === 'update' ? 'chat.update' : undefined;
      if (method && lane.slotFor !== method && (await this.#reserve(lane, method))) continue;
      if (method && Date.now() < lane.slotAt) {
        // Replies queued while the slot comes are merged into the message it carries.
        await lane.sleep(lane.slotAt - Date.now());
        continue;
      }
      lane.slotFor = undefined;
      const batch = this.#takeBatch();
      this.#inFlight += 1;
      try {
        await this.#deliver(batch, Boolean(method && this.#outbox.reserve));
        this.#delivered(lane);
      } catch (err) {
        const f = this.#outbox.classify(err);
        if (this.#stopped) {
          for (const b of batch) settle(b);
          continue;
        }
        if (!f.transient) {
          if (batch.length > 1) {
            // Perhaps only the merged message was wrong (too long): each goes alone.
            for (const b of batch) b.solo = true;
            this.#queue.unshift(...batch);
          } else {
            this.#log.warn({ err: f.reason, kind: batch[0]!.kind }, 'thread message not delivered: Slack refused it');
            settle(batch[0]!);
          }
          continue;
        }
        this.#queue.unshift(...batch);
        this.#failed(lane, f, 'thread');
      } finally {
        this.#inFlight -= 1;
      }
    }
  }

  /** The head item, with the plain replies right behind it merged in while they fit one message. */
  #takeBatch(): Item[] {
    const head = this.#queue.shift()!;
    if (head.kind !== 'reply' || head.own || head.solo) return [head];
    const batch: Item[] = [head];
    let blocks = blockCount(head.msg);
    for (;;) {
      const next = this.#queue[0];
      if (!next || next.kind !== 'reply' || next.own || next.solo) break;
      const n = blockCount(next.msg) + 1;
      if (blocks + n > MERGE_BLOCK_BUDGET) break;
      blocks += n;
      batch.push(this.#queue.shift()!);
    }
    return batch;
  }

  async #deliver(batch: Item[], paced: boolean): Promise<void> {
    const first = batch[0]!;
    const threadTs = this.#card?.ts;
    if (first.kind === 'reply') {
      const replies = batch as ReplyItem[];
      const msg = replies.length === 1 ? first.msg : merge(replies.map((b) => b.msg));
      const ref = await this.#outbox.post(this.#origin, msg, { ...(threadTs ? { threadTs } : {}), ...(paced ? { paced } : {}) });
      for (const b of replies) {
        if (b.key) this.#refs.set(b.key, ref);
        b.resolve(ref);
      }
    } else if (first.kind === 'update') {
      await this.#outbox.update(first.ref, first.msg, paced ? { paced } : {});
      first.resolve();
    } else {
      await this.#outbox.upload(this.#origin, { ...(threadTs ? { threadTs } : {}), filename: first.filename, title: first.title, content: first.content });
      first.resolve();
    }
  }

  // --- both lanes ----------------------------------------------------------------------------

  /** Starts a lane's loop unless it runs; a loop that ends just as new work arrives is started again. */
  #run(lane: Lane, loop: () => Promise<void>, hasWork: () => boolean): void {
    if (lane.running) {
      lane.wake();
      return;
    }
    lane.running = true;
    void loop().then(
      () => {
        lane.running = false;
        if (!this.#stopped && hasWork()) this.#run(lane, loop, hasWork);
        else this.#checkIdle();
      },
      (err: unknown) => {
        // A bug, not Slack: restarting would spin on it, so this reporter stops rather than leave promises hanging.
        lane.running = false;
        this.#log.error({ err: (err as Error).message }, 'slack delivery loop failed');
        this.stop();
      },
    );
  }

  #delivered(lane: Lane): void {
    if (lane.succeeded()) this.#log.info('slack answers again: queued messages are going out');
    // Slack answers again: the other lane need not sit out its backoff.
    (lane === this.#cardLane ? this.#threadLane : this.#cardLane).slackIsBack();
    this.#onDelivered?.();
    this.#checkIdle();
  }

  #failed(lane: Lane, f: DeliveryFailure, what: string): void {
    const now = Date.now();
    lane.failures += 1;
    if (!lane.failingSince) lane.failingSince = now;
    const cap = now - lane.failingSince < this.#fastWindow ? this.#retryFastMax : this.#retryMax;
    const backoff = Math.min(cap, this.#retryMin * 2 ** Math.min(lane.failures - 1, 20));
    const wait = Math.max(backoff, f.retryAfterMs ?? 0);
    lane.retryAt = now + wait;
    lane.rateLimited = f.retryAfterMs !== undefined;
    const fields = { err: f.reason, failures: lane.failures, retryInMs: wait, queued: this.#queue.length };
    if (lane.failures === 1) this.#log.warn(fields, `slack did not take the ${what}: kept queued, retrying`);
    else this.#log.debug(fields, `slack did not take the ${what}: retrying`);
  }

  #isIdle(): boolean {
    return !this.#pendingCard && this.#queue.length === 0 && this.#inFlight === 0;
  }

  #checkIdle(): void {
    if (!this.#isIdle()) return;
    this.#idleSince = Date.now();
    for (const w of this.#idleWaiters.splice(0)) w(true);
  }
}

/** A message that cannot be rendered is not merged; the outbox then refuses it alone. */
function blockCount(msg: Msg): number {
  try {
    return toBlocks(msg).length;
  } catch {
    return Infinity;
  }
}

function settle(item: Item): void {
  if (item.kind === 'reply') item.resolve(undefined);
  else item.resolve();
}

/** One message from several step replies, in their order, divided. */
function merge(msgs: Msg[]): Msg {
  const parts: Part[] = [];
  msgs.forEach((m, i) => {
    if (i > 0) parts.push({ type: 'divider' });
    parts.push(...m.parts);
  });
  return { summary: msgs.map((m) => m.summary).join('; '), parts };
}

export interface ReporterRegistryOptions extends Omit<ReporterOptions, 'log' | 'onDelivered'> {
  /** An idle reporter is forgotten after this (default: `maxAgeMs`, 30 min, longer than a gate waits by default). */
  idleTtlMs?: number;
}

/**
 * One reporter per job in this process, kept across the job parking at a gate and resuming: the resumed run
 * continues the same ordered queue (its gate message may still be on its way) and learns where late deliveries
 * landed. A job resumed by another process starts a new reporter from the card saved in its state.
 */
export class ReporterRegistry {
  readonly #reporters = new Map<string, JobReporter>();
  readonly #opts: ReporterRegistryOptions;
  readonly #idleTtl: number;

  constructor(opts: ReporterRegistryOptions) {
    this.#opts = opts;
    this.#idleTtl = opts.idleTtlMs ?? opts.maxAgeMs ?? 30 * 60_000;
  }

  acquire(jobId: string, origin: Origin, log: Logger): JobReporter {
    this.#sweep();
    let reporter = this.#reporters.get(jobId);
    if (!reporter) {
      const { idleTtlMs: _ttl, ...opts } = this.#opts;
      const created: JobReporter = new JobReporter(origin, { ...opts, log, onDelivered: () => this.#slackIsBack(created) });
      reporter = created;
      this.#reporters.set(jobId, reporter);
    }
    return reporter;
  }

  get size(): number {
    return this.#reporters.size;
  }

  /** Gives pending deliveries `graceMs` to go out, then stops every reporter (no timer outlives the worker). */
  async close(graceMs = 3000): Promise<void> {
    const all = [...this.#reporters.values()];
    await Promise.all(all.filter((r) => !r.idle).map((r) => r.flush(graceMs)));
    for (const r of all) r.stop();
    this.#reporters.clear();
  }

  #sweep(): void {
    const now = Date.now();
    for (const [id, r] of this.#reporters) if (r.idle && now - r.idleSince > this.#idleTtl) this.#reporters.delete(id);
  }

  #slackIsBack(from: JobReporter): void {
    for (const r of this.#reporters.values()) if (r !== from) r.slackIsBack();
  }
}
