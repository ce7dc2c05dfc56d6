// The bot in this process, wired to the real host: fake Slack, its own redis, and a config whose
// production environment is the real VM (sshd, deploy folder, Caddy's port, the test registry).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ProvidedContext } from 'vitest';
import { readEnvOptions } from '../../src/config/env.js';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/logger.js';
import { startBot, type Bot } from '../../src/runtime.js';
import { ALICE, OPS_CHANNEL, configYaml } from '../world/config.js';
import { startFakeSlack, type FakeSlack } from '../world/fake-slack.js';
import { startRedis, type RedisServer } from '../world/redis.js';
import { sendSlashCommand, type SlackHttpResult } from '../world/slack-requests.js';
import type { DeployFolder } from './deploy-host.js';

export const SIGNING_SECRET = `signsecret-${randomBytes(8).toString('hex')}`;

type RealHostInfo = ProvidedContext['realHost'];

export interface RealBotWorld {
  slack: FakeSlack;
  bot: Bot;
  redis: RedisServer;
  logs: string[];
  botUrl: string;
  /** The environment the bot was started with: a worker process started by a test gets the same. */
  processEnv: NodeJS.ProcessEnv;
  slash(text: string): Promise<SlackHttpResult>;
  close(): Promise<void>;
}

/** The test world's config, its production environment being the real VM: four-eyes on, as in production. */
export function realConfigYaml(host: RealHostInfo, deploy: DeployFolder, extra: Record<string, string | number | boolean> = {}, opts: { fourEyes?: boolean } = {}): string {
  return configYaml({
    sshd: host.sshd,
    deployPath: deploy.path,
    apiUrl: deploy.apiUrl,
    fourEyes: opts.fourEyes ?? true,
    tagVariable: deploy.tagVariable,
    registry: { host: host.registry.address, username: host.registry.username, tokenEnv: 'REGISTRY_TOKEN' },
    envExtra: extra,
  });
}

export async function startRealBotWorld(
  host: RealHostInfo,
  deploy: DeployFolder,
  extra: Record<string, string | number | boolean> = {},
  /** fourEyes off only where a second person's click is not what is measured (the bench). */
  opts: { registryToken?: string; role?: 'all' | 'app'; fourEyes?: boolean } = {},
): Promise<RealBotWorld> {
  const root = mkdtempSync(join(tmpdir(), 'chatops-real-'));
  const [redis, slack] = await Promise.all([
    startRedis({ appendonly: false }),
    startFakeSlack({ channels: [{ id: OPS_CHANNEL, name: 'ops', member: true }], limits: false }),
  ]);
  const configPath = join(root, 'chatops.yml');
  writeFileSync(configPath, realConfigYaml(host, deploy, extra, opts));
  const processEnv: NodeJS.ProcessEnv = {
    SLACK_BOT_TOKEN: slack.botToken,
    SLACK_SIGNING_SECRET: SIGNING_SECRET,
    SLACK_API_URL: slack.apiUrl,
    PORT: '0',
    ADMIN_PORT: '0',
    REDIS_URL: redis.url,
    CHATOPS_CONFIG: configPath,
    CHATOPS_QUEUE_PREFIX: `r${randomBytes(6).toString('hex')}`,
    LOG_LEVEL: 'debug',
    ENGRAMIA_PROD_API_KEY: deploy.apiKey,
    REGISTRY_TOKEN: opts.registryToken ?? host.registry.password,
  };
  const logs: string[] = [];
  const log = createLogger({ level: 'debug', destination: { write: (s: string) => void logs.push(s) } });
  let bot: Bot;
  try {
    bot = await startBot({
      env: readEnvOptions(processEnv),
      config: loadConfig(configPath),
      role: opts.role ?? 'all',
      log,
      processEnv,
      workerOptions: { minCardIntervalMs: 200, slackPacing: false },
    });
  } catch (err) {
    await Promise.allSettled([slack.close(), redis.stop()]);
    throw err;
  }
  const botUrl = `http://127.0.0.1:${bot.port}`;
  return {
    slack,
    bot,
    redis,
    logs,
    botUrl,
    processEnv,
    slash: (text) =>
      sendSlashCommand(`${botUrl}/slack/events`, SIGNING_SECRET, { text, user_id: ALICE, channel_id: OPS_CHANNEL, response_url: slack.responseUrl() }),
    async close() {
      await bot.close();
      await Promise.allSettled([slack.close(), redis.stop()]);
      rmSync(root, { recursive: true, force: true });
    },
  };
}
