import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { readEnvOptions } from '../../src/config/env.js';
import { loadConfig, type Role } from '../../src/config/load.js';
import { createLogger } from '../../src/logger.js';
import { ALICE, OPS_CHANNEL, configYaml } from '../world/config.js';
export { ALICE, OPS_CHANNEL, configYaml };
import { startBot, type Bot } from '../../src/runtime.js';
import type { SlackPacingOptions } from '../../src/slack/pacer.js';
import { startFakeSlack, type FakeSlack } from '../world/fake-slack.js';
import { sendSlashCommand, type SendOptions, type SlackHttpResult } from '../world/slack-requests.js';
import { createHost, storedCredentials } from '../world/sim/host.mjs';
import { startEngramiaApi } from '../world/sim/api.mjs';

export const OTHER_CHANNEL = 'C0ELSEWHERE';

/** What the host records for `deploy 0.6.1 --no-maintenance` from 0.6.0 (migration 031 → 032), in order. */
export const NO_MAINTENANCE_DEPLOY = [
  'compose -f docker-compose.prod.yml ps -a --format json',
  'login ghcr.io -u engramia-bot --password-stdin',
  // Read-only, run alongside the pull (see alongsideInOrder).
  'IMAGE_TAG=0.6.0 compose -f docker-compose.prod.yml exec -T engramia-api alembic current',
  'IMAGE_TAG=0.6.1 compose -f docker-compose.prod.yml pull engramia-api',
  'IMAGE_TAG=0.6.1 compose -f docker-compose.prod.yml up -d engramia-api caddy',
  // With maintenance chosen by flag, the new image's head is read alongside the migration.
  'IMAGE_TAG=0.6.1 compose -f docker-compose.prod.yml exec -T engramia-api alembic heads',
  'IMAGE_TAG=0.6.1 compose -f docker-compose.prod.yml exec -T engramia-api alembic upgrade head',
  'image prune -f',
  'compose -f docker-compose.prod.yml ps -a --format json',
];

/**
 * The deploy's `alembic current` runs alongside its pull, and with maintenance chosen by flag the new image's
 * `alembic heads` alongside the migration, so the host may record each pair in either order: puts the probe first,
 * so a list compares with NO_MAINTENANCE_DEPLOY.
 */
/**
 * `deploy 0.6.1` whose maintenance question was answered "skip": the new image's head decides the
 * question, so it is read before, in a one-off container of the pulled image.
 */
export const GATE_SKIPPED_DEPLOY = NO_MAINTENANCE_DEPLOY.filter((l) => !l.endsWith(' exec -T engramia-api alembic heads')).flatMap((l) =>
  l.endsWith(' pull engramia-api') ? [l, 'IMAGE_TAG=0.6.1 compose -f docker-compose.prod.yml run --rm --no-deps -T engramia-api alembic heads'] : [l],
);

export function alongsideInOrder<T>(lines: T[], line: (x: T) => string = (x) => String(x)): T[] {
  const out = [...lines];
  const pairs: Array<[RegExp, RegExp]> = [
    [/ pull engramia-api$/, / exec -T engramia-api alembic current$/],
    [/ exec -T engramia-api alembic upgrade head$/, / exec -T engramia-api alembic heads$/],
  ];
  for (let i = 0; i + 1 < out.length; i++) {
    if (pairs.some(([first, probe]) => first.test(line(out[i]!)) && probe.test(line(out[i + 1]!)))) {
      [out[i], out[i + 1]] = [out[i + 1]!, out[i]!];
    }
  }
  return out;
}
export const SIGNING_SECRET = `signsecret-${randomBytes(8).toString('hex')}`;

export interface WorldOptions {
  /** Override the pinned fingerprint, e.g. to test a changed host key. */
  hostKeySha256?: string;
  /** Point the API at a closed port. */
  apiUnreachable?: boolean;
  redisUrl?: string;
  role?: Role;
  /** The key the bot is given; defaults to the one the host accepts. */
  apiKey?: string;
  /**
   * Socket Mode: SLACK_APP_TOKEN set (to `appToken`, default the token the fake accepts), no
   * SLACK_SIGNING_SECRET, and PORT a fixed free port (in Socket Mode the app reports the configured
   * port, so 0 would not tell the test where /healthz is). `slash()` then goes over the WebSocket.
   */
  socketMode?: boolean;
  /** The app-level token the bot is given in Socket Mode. */
  appToken?: string;
  /** environments.production.fourEyes; off by default in the test world (see test/world/config.ts). */
  fourEyes?: boolean;
  /** Extra keys for environments.production, e.g. { gateTimeoutSeconds: 5 }. */
  envExtra?: Record<string, string | number | boolean>;
  /** Fake Slack rate limits; off makes tests that post a lot fast. */
  slackLimits?: false;
  /**
   * The bot's Slack pacer (src/slack/pacer.ts): on with its shipped defaults, as in production, unless the fake's
   * limits are off, where there is nothing to pace for and tests that post a lot stay fast.
   */
  slackPacing?: SlackPacingOptions | false;
  access?: { deployers?: string[]; approvers?: string[]; admins?: string[] };
  /** Slack user groups the fake knows: id → member ids. */
  userGroups?: Record<string, string[]>;
  /** A private sshd instead of the shared one, for tests that break SSH sessions. */
  sshd?: { host: string; port: number; username: string; privateKeyPath: string; hostKeySha256: string };
}

export interface World {
  root: string;
  deployPath: string;
  apiKey: string;
  registryToken: string;
  apiUrl: string;
  slack: FakeSlack;
  bot: Bot;
  botUrl: string;
  /** The admin listener: /metrics and the detailed /healthz (not on botUrl). */
  adminUrl: string;
  configPath: string;
  processEnv: NodeJS.ProcessEnv;
  /** Every JSON line the bot logged. */
  logs: string[];
  slash(text: string, fields?: Record<string, string>, opts?: SendOptions): Promise<SlackHttpResult>;
  /** Stops the bot and starts a new one on the same Redis and queue. */
  restart(): Promise<void>;
  close(): Promise<void>;
}


/** A closed loopback port: connecting to it is refused at once. */
export async function closedPort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface PreparedWorld {
  root: string;
  deployPath: string;
  apiKey: string;
  registryToken: string;
  apiUrl: string;
  slack: FakeSlack;
  configPath: string;
  processEnv: NodeJS.ProcessEnv;
  close(): Promise<void>;
}

/** The world without the bot: fake Slack, simulated host (API + docker behind the shared sshd), config and env. */
export async function prepareWorld(opts: WorldOptions = {}): Promise<PreparedWorld> {
  const sshd = opts.sshd ?? inject('sshd');
  const root = mkdtempSync(join(tmpdir(), 'chatops-it-'));
  const host = createHost(join(root, 'opt-engramia'));
  const api = await startEngramiaApi({ deployPath: host.deployPath });
  const apiUrl = opts.apiUnreachable ? `http://127.0.0.1:${await closedPort()}` : api.url;
  const slack = await startFakeSlack({
    channels: [{ id: OPS_CHANNEL, name: 'ops', member: true }, { id: OTHER_CHANNEL, name: 'random', member: true }],
    ...(opts.slackLimits === false ? { limits: false as const } : {}),
    ...(opts.userGroups ? { userGroups: opts.userGroups } : {}),
  });
  const configPath = join(root, 'chatops.yml');
  writeFileSync(configPath, configYaml({ ...(opts.envExtra ? { envExtra: opts.envExtra } : {}), ...(opts.fourEyes !== undefined ? { fourEyes: opts.fourEyes } : {}), ...(opts.access ? { access: opts.access } : {}), deployPath: host.deployPath, apiUrl, sshd: { ...sshd, hostKeySha256: opts.hostKeySha256 ?? sshd.hostKeySha256 } }));
  const processEnv: NodeJS.ProcessEnv = {
    SLACK_BOT_TOKEN: slack.botToken,
    SLACK_SIGNING_SECRET: SIGNING_SECRET,
    SLACK_API_URL: slack.apiUrl,
    PORT: '0',
    // Many bots run at once: each takes any free admin port and reports it as bot.adminPort.
    ADMIN_PORT: '0',
    REDIS_URL: opts.redisUrl ?? inject('redisUrl'),
    CHATOPS_CONFIG: configPath,
    CHATOPS_QUEUE_PREFIX: `t${randomBytes(6).toString('hex')}`,
    LOG_LEVEL: 'debug',
    ENGRAMIA_PROD_API_KEY: opts.apiKey ?? host.apiKey,
    GHCR_TOKEN: host.registryToken,
  };
  if (opts.socketMode) {
    processEnv.SLACK_APP_TOKEN = opts.appToken ?? slack.appToken;
    delete processEnv.SLACK_SIGNING_SECRET;
    processEnv.PORT = String(await closedPort());
  }
  return {
    root,
    deployPath: host.deployPath,
    apiKey: host.apiKey,
    registryToken: host.registryToken,
    apiUrl,
    slack,
    configPath,
    processEnv,
    async close() {
      await Promise.allSettled([slack.close(), api.close()]);
      rmSync(root, { recursive: true, force: true });
    },
  };
}

export function slashSender(botUrl: string, slack: FakeSlack) {
  return (text: string, fields: Record<string, string> = {}, sendOpts: SendOptions = {}) =>
    sendSlashCommand(`${botUrl}/slack/events`, SIGNING_SECRET, { text, user_id: ALICE, channel_id: OPS_CHANNEL, response_url: slack.responseUrl(), ...fields }, sendOpts);
}

/**
 * `slash()` for Socket Mode: the command goes to the bot as a `slash_commands` envelope and the ack's
 * payload comes back shaped like the HTTP answer (status 200, body = what the app acked with).
 * `SendOptions` (signatures, retries) have no Socket Mode meaning and are ignored.
 */
export function socketSlashSender(slack: FakeSlack) {
  return async (text: string, fields: Record<string, string> = {}, _sendOpts: SendOptions = {}): Promise<SlackHttpResult> => {
    const ack = await slack.sendSlashCommandOverSocket({ text, user_id: ALICE, channel_id: OPS_CHANNEL, channel_name: 'ops', ...fields });
    const body = ack.payload ?? '';
    return { status: 200, body, text: typeof body === 'string' ? body : JSON.stringify(body), headers: {}, elapsedMs: ack.elapsedMs };
  };
}

/**
 * Starts the whole chain in this process, with a queue prefix of its own so
 * test files running in parallel never take each other's jobs.
 */
export async function startWorld(opts: WorldOptions = {}): Promise<World> {
  const w = await prepareWorld(opts);
  const logs: string[] = [];
  const log = createLogger({ level: 'debug', destination: { write: (s: string) => void logs.push(s) } });
  const boot = () =>
    startBot({
      env: readEnvOptions(w.processEnv),
      config: loadConfig(w.configPath),
      role: opts.role ?? 'all',
      log,
      processEnv: w.processEnv,
      workerOptions: { minCardIntervalMs: 200, slackPacing: opts.slackPacing ?? (opts.slackLimits === false ? false : {}) },
    });
  let bot: Bot;
  try {
    bot = await boot();
  } catch (err) {
    await w.close();
    throw err;
  }
  const world: World = {
    ...w,
    bot,
    botUrl: `http://127.0.0.1:${bot.port}`,
    adminUrl: `http://127.0.0.1:${bot.adminPort}`,
    logs,
    slash: opts.socketMode ? socketSlashSender(w.slack) : slashSender(`http://127.0.0.1:${bot.port}`, w.slack),
    async restart() {
      // Same Redis, same queue prefix: a new process picking up where the old one stopped.
      await world.bot.close();
      world.bot = await boot();
      world.botUrl = `http://127.0.0.1:${world.bot.port}`;
      world.adminUrl = `http://127.0.0.1:${world.bot.adminPort}`;
      if (!opts.socketMode) world.slash = slashSender(world.botUrl, w.slack);
    },
    async close() {
      await world.bot.close();
      await w.close();
    },
  };
  return world;
}

/**
 * Registry credentials the bot may have left on the host: those in the SSH session user's own docker
 * config (~/.docker/config.json), and whether any per-job docker config folder is still there.
 */
export function leftCredentials(w: Pick<World, 'deployPath'>): { home: Record<string, string>; jobFolders: boolean } {
  const root = join(w.deployPath, '.chatops-docker');
  // An emptied root is no credential: a job without the lock removes only its own folder under it.
  return { home: storedCredentials(join(inject('sshd').home, '.docker')), jobFolders: existsSync(root) && readdirSync(root).length > 0 };
}
