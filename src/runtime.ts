import type { WebClient } from '@slack/web-api';
import type { EnvOptions } from './config/env.js';
import { resolveEnvSecrets, type Config, type EnvSecrets, type Role } from './config/load.js';
import { handleAction, handleTypedConfirm } from './commands/actions.js';
import { Access } from './commands/access.js';
import { handleCommand } from './commands/handle.js';
import { createProducer, type Producer } from './jobs/queue.js';
import type { Outbox } from './jobs/types.js';
import { startWorker, type RunningWorker } from './jobs/worker.js';
import type { Logger } from './logger.js';
import { createMetrics, type Metrics } from './metrics.js';
import { startSlackApp, type RunningSlackApp } from './slack/app.js';
import { createWebClient, SlackOutbox } from './slack/outbox.js';
import { SlackPacer, type SlackPacingOptions } from './slack/pacer.js';
import { BOT_VERSION } from './version.js';

export interface BotOptions {
  env: EnvOptions;
  config: Config;
  role: Role;
  log: Logger;
  processEnv: NodeJS.ProcessEnv;
  /** Tests pass an outbox of their own only for the console; Slack modes build theirs. */
  outbox?: Outbox;
  workerOptions?: {
    lockTtlMs?: number;
    minCardIntervalMs?: number;
    concurrency?: number;
    jobLockMs?: number;
    stalledIntervalMs?: number;
    shutdownGraceMs?: number;
    reaperIntervalMs?: number;
    maxStalledCount?: number;
    /** The Slack call budget every job and worker process shares (see slack/pacer.ts); false: no pacing. */
    slackPacing?: SlackPacingOptions | false;
  };
}

export interface Bot {
  port: number | undefined;
  producer: Producer | undefined;
  metrics: Metrics;
  close(): Promise<void>;
}

type SlackAuth = 'ok' | 'unchecked' | string;

/** Assembles the roles a process runs. Everything is passed in; nothing reads globals. */
export async function startBot(opts: BotOptions): Promise<Bot> {
  const { env, config, role, log } = opts;
  if (env.slack.kind === 'console' && !opts.outbox) throw new Error('console mode needs an outbox');

  let producer: Producer | undefined;
  if (role !== 'worker') producer = createProducer({ redisUrl: env.redisUrl, prefix: env.queuePrefix, log });
  // A worker-only process still reports queue depth for whoever scrapes it.
  const counts = producer ? () => producer.counts() : undefined;
  const metrics = createMetrics({ ...(counts ? { queueCounts: counts } : {}) });

  let client: WebClient | undefined;
  if (env.slack.kind !== 'console') client = createWebClient({ token: env.slack.botToken.reveal(), slackApiUrl: env.slackApiUrl, log });

  let worker: RunningWorker | undefined;
  let pacer: SlackPacer | undefined;
  if (role !== 'app') {
    const { slackPacing, ...workerOptions } = opts.workerOptions ?? {};
    const secrets: Record<string, EnvSecrets> = resolveEnvSecrets(config, opts.processEnv);
    const known = Object.values(secrets).flatMap((s) => [s.apiKey.reveal(), s.registryToken.reveal()]);
    if (env.slack.kind === 'http') known.push(env.slack.signingSecret.reveal(), env.slack.botToken.reveal());
    if (env.slack.kind === 'socket') known.push(env.slack.appToken.reveal(), env.slack.botToken.reveal());
    const updateClient = env.slack.kind === 'console' ? undefined : createWebClient({ token: env.slack.botToken.reveal(), slackApiUrl: env.slackApiUrl, log });
    if (env.slack.kind !== 'console' && !opts.outbox && slackPacing !== false) pacer = new SlackPacer({ ...slackPacing, log, redisUrl: env.redisUrl, prefix: env.queuePrefix });
    const outbox = opts.outbox ?? new SlackOutbox(client!, log, known, metrics, updateClient, pacer);
    worker = startWorker({ config, secrets, redisUrl: env.redisUrl, prefix: env.queuePrefix, log, outbox, metrics, knownSecrets: known, ...env.worker, ...workerOptions });
  }

  let slackAuth: SlackAuth = 'unchecked';
  let slackCheckedAt = 0;
  const checkSlack = async (): Promise<SlackAuth> => {
    if (!client) return 'ok';
    if (Date.now() - slackCheckedAt < (slackAuth === 'ok' ? 300_000 : 15_000)) return slackAuth;
    slackCheckedAt = Date.now();
    try {
      await client.auth.test();
      slackAuth = 'ok';
    } catch (err) {
      const e = err as { data?: { error?: string }; code?: string };
      slackAuth = e.data?.error ?? 'unreachable';
      log.warn({ slack: slackAuth }, 'slack auth.test failed');
    }
    return slackAuth;
  };

  let app: RunningSlackApp | undefined;
  if (producer && env.slack.kind !== 'console') {
    const p = producer;
    void checkSlack();
    const groupClient = client;
    const access = new Access(
      groupClient
        ? async (usergroup) => ((await groupClient.usergroups.users.list({ usergroup })).users as string[] | undefined) ?? []
        : undefined,
      log,
    );
    try {
      app = await startSlackApp({
        mode: env.slack,
        slackApiUrl: env.slackApiUrl,
        port: env.port,
        log,
        onCommand: (text, origin) => handleCommand({ text, origin }, { config, access, producer: p, log, metrics }),
        onAction: (req) => handleAction(req, { config, access, producer: p, log, metrics }),
        onTypedConfirm: (sub) => handleTypedConfirm(sub, { config, access, producer: p, log, metrics }),
        healthz: async () => {
          const [redisOk, slack] = await Promise.all([p.ping(), checkSlack()]);
          const workers = redisOk ? await p.workerCount().catch(() => 0) : 0;
          // Without a worker somewhere, commands would queue and never run: not ready.
          const ok = redisOk && slack === 'ok' && workers > 0;
          return {
            httpStatus: ok ? 200 : 503,
            body: { status: ok ? 'ok' : 'error', redis: redisOk ? 'ok' : 'down', slack, workers, version: BOT_VERSION },
          };
        },
        metrics: async () => ({ contentType: metrics.registry.contentType, body: await metrics.registry.metrics() }),
      });
    } catch (err) {
      // Leave nothing running behind a failed start: callers in the same process would leak it.
      await worker?.close().catch(() => undefined);
      await pacer?.close();
      await producer.close().catch(() => undefined);
      throw err;
    }
  }

  return {
    port: app?.port,
    producer,
    metrics,
    async close() {
      // Stop taking work first, then let the worker finish the step in hand.
      await app?.stop().catch((err: unknown) => log.warn({ err: (err as Error).message }, 'slack app stop'));
      await worker?.close();
      // After the worker: its last deliveries still take their slots.
      await pacer?.close();
      await producer?.close();
    },
  };
}
