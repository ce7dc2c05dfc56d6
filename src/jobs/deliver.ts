import type { Logger } from '../logger.js';
import type { Msg } from '../render/model.js';
import type { Origin, Outbox, PostedRef } from './types.js';

export interface PatientPostOptions {
  log: Logger;
  /** Give up once this much time has passed since the first try (default 2 min). */
  deadlineMs?: number;
  /** First wait after a transient failure, doubled each time (default 500 ms; a 429's Retry-After wins). */
  retryMinMs?: number;
  retryMaxMs?: number;
}

/**
 * Posts a one-off answer (health, status, diagnose…) so a 429 or a Slack blip delays it instead of
 * losing it: twenty answers to one channel at once are held to about one a second by Slack, so the
 * last waits twenty seconds. What Slack refuses (a bad channel, bad blocks) is not retried, and
 * nothing is retried past the deadline.
 */
export async function postPatiently(outbox: Outbox, origin: Origin, msg: Msg, opts: PatientPostOptions): Promise<PostedRef> {
  const started = Date.now();
  const deadline = started + (opts.deadlineMs ?? 120_000);
  let wait = opts.retryMinMs ?? 500;
  const max = opts.retryMaxMs ?? 10_000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await outbox.post(origin, msg);
    } catch (err) {
      const failure = outbox.classify(err);
      const pause = failure.retryAfterMs ?? wait;
      if (!failure.transient || Date.now() + pause > deadline) throw err;
      opts.log.warn({ attempt, waitMs: pause, reason: failure.reason }, 'answer not delivered yet; trying again');
      await new Promise((r) => setTimeout(r, pause));
      wait = Math.min(max, wait * 2);
    }
  }
}
