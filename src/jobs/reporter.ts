import type { Logger } from '../logger.js';
import type { Msg } from '../render/model.js';
import type { Origin, Outbox, PostedRef } from './types.js';

export interface ReporterOptions {
  outbox: Outbox;
  log: Logger;
  /** chat.update is Tier 3 (about 50 a minute): the card is updated at most this often. */
  minUpdateIntervalMs?: number;
}

/**
 * Talks to Slack for one job without ever making the job wait on Slack:
 * thread replies go out in order from a queue, card updates are coalesced so
 * only the latest state is sent, and a 429 only delays delivery. The job
 * awaits only the card itself (replies need its ts) and `flush` at the end.
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
  #chain: Promise<unknown> = Promise.resolve();
  #cardFailures = 0;

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

  /** Queues a thread reply; the promise settles when it is delivered (or given up on). */
  reply(msg: Msg): Promise<PostedRef | undefined> {
    const threadTs = this.#card?.ts;
    const p = this.#chain.then(async () => {
      try {
        return await this.#outbox.post(this.#origin, msg, threadTs ? { threadTs } : {});
      } catch (err) {
        this.#log.warn({ err: (err as Error).message }, 'thread reply not delivered');
        return undefined;
      }
    });
    this.#chain = p;
    return p;
  }

  /** Queues a file in the thread, in order with the replies. */
  replyFile(filename: string, title: string, content: string): Promise<void> {
    const threadTs = this.#card?.ts;
    const p = this.#chain.then(async () => {
      try {
        await this.#outbox.upload(this.#origin, { ...(threadTs ? { threadTs } : {}), filename, title, content });
      } catch (err) {
        this.#log.warn({ err: (err as Error).message }, 'output file not delivered');
      }
    });
    this.#chain = p;
    return p;
  }

  /** Replaces an earlier reply (a decided gate), in order with the other replies. */
  updateReply(ref: PostedRef, msg: Msg): Promise<void> {
    const p = this.#chain.then(async () => {
      try {
        await this.#outbox.update(ref, msg);
      } catch (err) {
        this.#log.warn({ err: (err as Error).message }, 'reply update not delivered');
      }
    });
    this.#chain = p;
    return p;
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
    const work = Promise.all([card, this.#chain]);
    let timer: NodeJS.Timeout | undefined;
    const done = await Promise.race([work.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), timeoutMs)))]);
    clearTimeout(timer);
    if (!done) this.#log.warn('slack delivery still pending at the end of the job');
    return done;
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
