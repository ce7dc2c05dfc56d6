import type { Logger } from '../logger.js';
import type { Msg, Part } from '../render/model.js';
import { toBlocks } from '../render/slack.js';
import type { Origin, Outbox, PostedRef } from './types.js';

export interface ReporterOptions {
  outbox: Outbox;
  log: Logger;
  /** chat.update is Tier 3 (about 50 a minute): the card is updated at most this often. */
  minUpdateIntervalMs?: number;
}

type Item =
  | { kind: 'reply'; msg: Msg; own: boolean; resolve: (ref: PostedRef | undefined) => void }
  | { kind: 'update'; ref: PostedRef; msg: Msg; resolve: () => void }
  | { kind: 'file'; filename: string; title: string; content: string; resolve: () => void };

/** Room left for merging replies; Slack allows 50 blocks in a message. */
const MERGE_BLOCK_BUDGET = 45;

/**
 * Talks to Slack for one job without ever making the job wait on Slack:
 * thread items go out in order from a queue, card updates are coalesced so
 * only the latest state is sent, and a 429 only delays delivery. When Slack
 * holds the queue back, the step replies waiting behind it are merged into one
 * message, so a backlog drains in a few posts instead of one per second. The
 * job awaits only the card itself (replies need its ts) and `flush` at the end.
 */
export class JobReporter {
  readonly #outbox: Outbox;
  readonly #log: Logger;
  readonly #origin: Origin;
  readonly #interval: number;
  #card: PostedRef | undefined;
  #pendingCard: Msg | undefined;
  #lastUpdate = 0;
  #updateTimer: NodeJS.Timeout | undefined;
  #updating: Promise<void> | undefined;
  #cardFailures = 0;
  readonly #queue: Item[] = [];
  #draining: Promise<void> | undefined;

  constructor(origin: Origin, opts: ReporterOptions) {
    this.#origin = origin;
    this.#outbox = opts.outbox;
    this.#log = opts.log;
    this.#interval = opts.minUpdateIntervalMs ?? 1200;
  }

  get card(): PostedRef | undefined {
    return this.#card;
  }

  /** Posts the card, or adopts the one a previous run of this job posted. */
  async start(card: Msg, existing?: PostedRef): Promise<PostedRef> {
    if (existing?.ts) {
      this.#card = existing;
      this.setCard(card);
      return existing;
    }
    this.#card = await this.#outbox.post(this.#origin, card);
    this.#lastUpdate = Date.now();
    return this.#card;
  }

  setCard(card: Msg): void {
    this.#pendingCard = card;
    this.#scheduleUpdate();
  }

  /**
   * Queues a thread reply; settles when delivered (or given up on). `own` keeps it a
   * message of its own, for replies that are updated later (gates).
   */
  reply(msg: Msg, opts: { own?: boolean } = {}): Promise<PostedRef | undefined> {
    return new Promise((resolve) => this.#enqueue({ kind: 'reply', msg, own: opts.own ?? false, resolve }));
  }

  /** Queues a file in the thread, in order with the replies. */
  replyFile(filename: string, title: string, content: string): Promise<void> {
    return new Promise((resolve) => this.#enqueue({ kind: 'file', filename, title, content, resolve }));
  }

  /** Replaces an earlier reply (a decided gate), in order with the other replies. */
  updateReply(ref: PostedRef, msg: Msg): Promise<void> {
    return new Promise((resolve) => this.#enqueue({ kind: 'update', ref, msg, resolve }));
  }

  /**
   * Delivers the latest card and everything queued, within a bound so a dead Slack cannot hang the job.
   * The card does not wait behind thread replies: they are limited per channel, the card per method.
   */
  async flush(timeoutMs = 60_000): Promise<boolean> {
    const card = (async () => {
      if (this.#updateTimer) clearTimeout(this.#updateTimer);
      this.#updateTimer = undefined;
      await this.#updating;
      if (this.#pendingCard) await this.#sendCard();
    })();
    const work = Promise.all([card, this.#draining]);
    let timer: NodeJS.Timeout | undefined;
    const done = await Promise.race([work.then(() => true, () => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), timeoutMs)))]);
    clearTimeout(timer);
    if (!done) this.#log.warn('slack delivery still pending at the end of the job');
    return done;
  }

  #enqueue(item: Item): void {
    this.#queue.push(item);
    this.#draining ??= this.#drain().finally(() => {
      this.#draining = undefined;
    });
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const item = this.#queue.shift()!;
      if (item.kind === 'reply') {
        const batch = [item];
        if (!item.own) {
          let blocks = toBlocks(item.msg).length;
          for (;;) {
            const next = this.#queue[0];
            if (!next || next.kind !== 'reply' || next.own) break;
            const n = toBlocks(next.msg).length + 1;
            if (blocks + n > MERGE_BLOCK_BUDGET) break;
            blocks += n;
            batch.push(this.#queue.shift() as typeof item);
          }
        }
        const msg = batch.length === 1 ? item.msg : merge(batch.map((b) => b.msg));
        const ref = await this.#post(msg);
        for (const b of batch) b.resolve(ref);
      } else if (item.kind === 'update') {
        await this.#outbox.update(item.ref, item.msg).catch((err: unknown) => this.#log.warn({ err: (err as Error).message }, 'reply update not delivered'));
        item.resolve();
      } else {
        const threadTs = this.#card?.ts;
        await this.#outbox
          .upload(this.#origin, { ...(threadTs ? { threadTs } : {}), filename: item.filename, title: item.title, content: item.content })
          .catch((err: unknown) => this.#log.warn({ err: (err as Error).message }, 'output file not delivered'));
        item.resolve();
      }
    }
  }

  async #post(msg: Msg): Promise<PostedRef | undefined> {
    const threadTs = this.#card?.ts;
    try {
      return await this.#outbox.post(this.#origin, msg, threadTs ? { threadTs } : {});
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'thread reply not delivered');
      return undefined;
    }
  }

  #scheduleUpdate(): void {
    if (!this.#card || this.#updateTimer || this.#updating) return;
    const wait = Math.max(0, this.#lastUpdate + this.#interval - Date.now());
    this.#updateTimer = setTimeout(() => {
      this.#updateTimer = undefined;
      void this.#sendCard();
    }, wait);
  }

  async #sendCard(): Promise<void> {
    const card = this.#pendingCard;
    if (!card || !this.#card) return;
    this.#pendingCard = undefined;
    this.#lastUpdate = Date.now();
    this.#updating = this.#outbox.update(this.#card, card).then(
      () => {
        this.#cardFailures = 0;
      },
      (err: unknown) => {
        this.#cardFailures += 1;
        this.#log.warn({ err: (err as Error).message, failures: this.#cardFailures }, 'card update not delivered');
        // Keep the newest state for the next try unless a newer one arrived meanwhile.
        this.#pendingCard ??= card;
      },
    );
    await this.#updating;
    this.#updating = undefined;
    // Bounded: a card Slack keeps refusing is retried by flush() at the end, not forever in the background.
    if (this.#pendingCard && this.#cardFailures < 5) this.#scheduleUpdate();
  }
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
