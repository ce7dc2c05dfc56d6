import type { WebClient } from '@slack/web-api';
import type { EnvOptions, SlackMode } from './config/env.js';
import { resolveEnvSecrets, type Config, type EnvSecrets, type Role } from './config/load.js';
import { handleAction, handleTypedConfirm } from './commands/actions.js';
import { Access } from './commands/access.js';
import { handleCommand } from './commands/handle.js';
import { ChatOpsError, ErrorCode } from './errors.js';
import { createProducer, type Producer } from './jobs/queue.js';
import type { Outbox } from './jobs/types.js';
import { startWorker, type RunningWorker } from './jobs/worker.js';
import { startAdminServer, type RunningAdmin } from './admin.js';
import { detailedHealth, publicHealth, slackAuthChecker } from './health.js';
import type { Logger } from './logger.js';
import { createMetrics, type Metrics } from './metrics.js';
import { startSlackApp, type RunningSlackApp } from './slack/app.js';
import { createWebClient, SlackOutbox } from './slack/outbox.js';
import { SlackPacer, type SlackPacingOptions } from './slack/pacer.js';

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
  /** Where /metrics and the detailed /healthz are served; undefined when the admin listener is off (console). */
  adminPort: number | undefined;
  producer: Producer;
  metrics: Metrics;
  close(): Promise<void>;
}

/** Assembles the roles a process runs. Everything is passed in; nothing reads globals. */
export async function startBot(opts: BotOptions): Promise<Bot> {
  const { env, config, role, log } = opts;
  if (env.slack.kind === 'console' && !opts.outbox) throw new Error('console mode needs an outbox');
  if (env.slack.kind === 'post' && role !== 'worker') {
    throw new ChatOpsError(ErrorCode.ConfigInvalid, `--role ${role} receives from Slack: set SLACK_SIGNING_SECRET (HTTP) or SLACK_APP_TOKEN (Socket Mode)`, { role });
  }

  // First, before anything opens: a missing secret or an exposed key file stops the start with nothing to clean up.
  // The app role never reads them (it needs no host secrets; see docker-compose.yml).
  const secrets: Record<string, EnvSecrets> | undefined = role !== 'app' ? resolveEnvSecrets(config, opts.processEnv) : undefined;
  // Every role has one: the app enqueues with it, and every role's admin listener reads Redis,
  // worker count and queue depth through it.
  const producer: Producer = createProducer({ redisUrl: env.redisUrl, prefix: env.queuePrefix, log });
  const metrics = createMetrics({ queueCounts: () => producer.counts() });

  let client: WebClient | undefined;
  if (env.slack.kind !== 'console') client = createWebClient({ token: env.slack.botToken.reveal(), slackApiUrl: env.slackApiUrl, log });

  const checkSlack = slackAuthChecker(client, log);
  const health = () => detailedHealth(producer, checkSlack);
  let admin: RunningAdmin | undefined;
  try {
    // Bound before the worker starts: a taken port must stop the start before any job is taken.
    if (env.admin) admin = await startAdminServer({ listen: env.admin, log, healthz: health, metrics: async () => ({ contentType: metrics.registry.contentType, body: await metrics.registry.metrics() }) });
  } catch (err) {
    await producer.close().catch(() => undefined);
    throw err;
  }

  let worker: RunningWorker | undefined;
  let pacer: SlackPacer | undefined;
  if (secrets) {
    const { slackPacing, ...workerOptions } = opts.workerOptions ?? {};
    const known = Object.values(secrets).flatMap((s) => [s.apiKey.reveal(), s.registryToken.reveal()]);
    known.push(...slackSecrets(env.slack));
    const updateClient = env.slack.kind === 'console' ? undefined : createWebClient({ token: env.slack.botToken.reveal(), slackApiUrl: env.slackApiUrl, log });
    if (env.slack.kind !== 'console' && !opts.outbox && slackPacing !== false) pacer = new SlackPacer({ ...slackPacing, log, redisUrl: env.redisUrl, prefix: env.queuePrefix });
    const outbox = opts.outbox ?? new SlackOutbox(client!, log, known, metrics, updateClient, pacer);
    worker = startWorker({ config, secrets, redisUrl: env.redisUrl, prefix: env.queuePrefix, log, outbox, metrics, knownSecrets: known, ...env.worker, ...workerOptions });
  }

  let app: RunningSlackApp | undefined;
  try {
    if (role !== 'worker' && (env.slack.kind === 'http' || env.slack.kind === 'socket')) app = await startApp(env.slack, producer);
  } catch (err) {
    // Leave nothing running behind a failed start: callers in the same process would leak it.
    await admin?.close().catch(() => undefined);
    await worker?.close().catch(() => undefined);
    await pacer?.close();
    await producer.close().catch(() => undefined);
    throw err;
  }

  async function startApp(mode: Extract<SlackMode, { kind: 'http' | 'socket' }>, p: Producer): Promise<RunningSlackApp> {
    void checkSlack();
    const groupClient = client;
    const access = new Access(
      groupClient
        ? async (usergroup) => ((await groupClient.usergroups.users.list({ usergroup })).users as string[] | undefined) ?? []
        : undefined,
      log,
    );
    return startSlackApp({
      mode,
      slackApiUrl: env.slackApiUrl,
      port: env.port,
      log,
      onCommand: (text, origin) => handleCommand({ text, origin }, { config, access, producer: p, log, metrics }),
      onAction: (req) => handleAction(req, { config, access, producer: p, log, metrics }),
      onTypedConfirm: (sub) => handleTypedConfirm(sub, { config, access, producer: p, log, metrics }),
      healthz: async () => publicHealth(await health()),
    });
  }

  return {
    port: app?.port,
    adminPort: admin?.port,
    producer,
    metrics,
    async close() {
      // Stop taking work first, then let the worker finish the step in hand.
      await app?.stop().catch((err: unknown) => log.warn({ err: (err as Error).message }, 'slack app stop'));
      await worker?.close();
      // After the worker: its last deliveries still take their slots.
      await pacer?.close();
      await admin?.close();
      await producer.close();
    },
  };
}

/** Every Slack credential this process holds, so nothing it posts or logs can carry one. */
function slackSecrets(mode: SlackMode): string[] {
  switch (mode.kind) {
    case 'http':
      return [mode.signingSecret.reveal(), mode.botToken.reveal()];
    case 'socket':
      return [mode.appToken.reveal(), mode.botToken.reveal()];
    case 'post':
      return [mode.botToken.reveal()];
    case 'console':
      return [];
  }
}
