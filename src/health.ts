import type { WebClient } from '@slack/web-api';
import type { Producer } from './jobs/queue.js';
import type { Logger } from './logger.js';
import { BOT_VERSION } from './version.js';

/** Slack's state as `auth.test` last answered: `ok`, or the error it gave (`invalid_auth`, `unreachable`). */
export type SlackAuth = 'ok' | 'unchecked' | string;

export interface HealthAnswer {
  httpStatus: number;
  body: Record<string, unknown>;
}

/** The admin listener's /healthz: what is wrong, for the operator (CONTRACT.md's shape). */
export async function detailedHealth(p: Pick<Producer, 'ping' | 'workerCount'>, checkSlack: () => Promise<SlackAuth>): Promise<HealthAnswer> {
  const [redisOk, slack] = await Promise.all([p.ping(), checkSlack()]);
  const workers = redisOk ? await p.workerCount().catch(() => 0) : 0;
  // Without a worker somewhere, commands would queue and never run: not ready.
  const ok = redisOk && slack === 'ok' && workers > 0;
  return { httpStatus: ok ? 200 : 503, body: { status: ok ? 'ok' : 'error', redis: redisOk ? 'ok' : 'down', slack, workers, version: BOT_VERSION } };
}

/** The public /healthz on PORT: the verdict alone. Versions, worker counts and Slack errors help an attacker, not a load balancer. */
export function publicHealth(a: HealthAnswer): HealthAnswer {
  return { httpStatus: a.httpStatus, body: { status: a.httpStatus === 200 ? 'ok' : 'error' } };
}

/**
 * Slack's `auth.test`, cached: five minutes while it passes, 15 s after a failure, so a health probe
 * every few seconds costs Slack almost nothing. No client (the console): always `ok`.
 */
export function slackAuthChecker(client: WebClient | undefined, log: Logger, now: () => number = Date.now): () => Promise<SlackAuth> {
  let slackAuth: SlackAuth = 'unchecked';
  let checkedAt = 0;
  return async () => {
    if (!client) return 'ok';
    if (now() - checkedAt < (slackAuth === 'ok' ? 300_000 : 15_000)) return slackAuth;
    checkedAt = now();
    try {
      await client.auth.test();
      slackAuth = 'ok';
    } catch (err) {
      const e = err as { data?: { error?: string } };
      slackAuth = e.data?.error ?? 'unreachable';
      log.warn({ slack: slackAuth }, 'slack auth.test failed');
    }
    return slackAuth;
  };
}
