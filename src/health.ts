import type { Producer } from './jobs/queue.js';
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
