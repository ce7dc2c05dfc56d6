// Issue 8: several deploys at once, each from its own channel to its own environment, against a fake Slack that
// counts chat.update per method across the whole workspace (Tier 3) and chat.postMessage per channel, as Slack
// does. The limits here are tighter than Slack's so the test is quick; the bot's budget is set to match, as an
// operator would for a workspace with stricter limits. No call may be answered 429, and every card must end right.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { readEnvOptions } from '../../src/config/env.js';
import { loadConfig } from '../../src/config/load.js';
import type { RunbookData } from '../../src/runbooks/kernel/types.js';
import { createLogger } from '../../src/logger.js';
import { startBot, type Bot } from '../../src/runtime.js';
import { startFakeSlack, type FakeMessage, type FakeSlack } from '../world/fake-slack.js';
import { sendSlashCommand } from '../world/slack-requests.js';
import { startEngramiaApi } from '../world/sim/api.mjs';
import { createHost, runningApiTag } from '../world/sim/host.mjs';
import { blockText, type Block } from './blocks.js';
import { ALICE, OPS_CHANNEL, SIGNING_SECRET, startWorld } from './harness.js';
import { until as waitUntil } from './faults.js';

const DEPLOYS = 4;
const channelOf = (i: number) => `C0DEPLOY${i + 1}`;
const envOf = (i: number) => `env${i + 1}`;
const STEP_TITLES = ['Check the host', 'Log in to the registry', 'Pull 0.6.1', 'Check for database migrations', 'Start 0.6.1', 'Run database migrations', 'Pin 0.6.1', 'Prune old images', 'Verify 0.6.1'];

type Api = Awaited<ReturnType<typeof startEngramiaApi>>;
const cleanup: (() => Promise<unknown> | void)[] = [];
let logs: string[] = [];
let slackRef: FakeSlack | undefined;

afterEach(async (ctx) => {
  if (ctx.task.result?.state === 'fail') {
    console.error(`--- bot log (last 40) ---\n${logs.slice(-40).join('')}`);
    console.error(`--- slack calls ---\n${slackRef?.calls.map((c) => `${c.at} ${c.method} ${c.args.channel ?? ''} ${c.status}`).join('\n')}`);
  }
  for (const f of cleanup.splice(0).reverse()) await f();
});

function card(slack: FakeSlack, channel: string): FakeMessage | undefined {
  return slack.messagesIn(channel).find((m) => (!m.thread_ts || m.thread_ts === m.ts) && blockText(m.blocks as Block[]).includes('Deploy 0.6.1'));
}

/** faults.ts's poll, with the description first, as these tests read best. */
const until = <T>(what: string, pred: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs: number): Promise<T> => waitUntil(pred, what, timeoutMs);

describe('Slack budget: concurrent deploys in different channels', () => {
  it(`${DEPLOYS} deploys at once under a tight Tier 3 (chat.update 20/min, burst 3, for the whole workspace): no 429, every card final`, async () => {
    const sshd = inject('sshd');
    const root = mkdtempSync(join(tmpdir(), 'chatops-budget-'));
    cleanup.push(() => rmSync(root, { recursive: true, force: true }));
    const apiKey = `engk_${randomBytes(18).toString('hex')}`;
    const registryToken = `ghp_${randomBytes(18).toString('base64url')}`;
    const slack = await startFakeSlack({
      channels: Array.from({ length: DEPLOYS }, (_, i) => ({ id: channelOf(i), name: `team-${i + 1}`, member: true })),
      // Slack's own per-channel post limit (the default), and a Tier 3 far below Slack's 50+ a minute.
      limits: { tiers: { 3: { perMinute: 20, burst: 3 } } },
    });
    slackRef = slack;
    cleanup.push(() => slack.close());
    const hosts: { deployPath: string; api: Api }[] = [];
    for (let i = 0; i < DEPLOYS; i++) {
      const deployPath = join(root, envOf(i));
      createHost(deployPath, { runningTag: '0.6.0', apiKey, registryToken });
      const api = await startEngramiaApi({ deployPath });
      cleanup.push(() => api.close());
      hosts.push({ deployPath, api });
    }
    const configPath = join(root, 'chatops.yml');
    // No slack.allowedChannels: every channel the bot is in may run commands.
    writeFileSync(
      configPath,
      `access:
  deployers: [${ALICE}]
  approvers: [U02BOB]
  admins: [U03CAROL]
environments:
${hosts
  .map(
    (h, i) => `  ${envOf(i)}:
    default: ${i === 0}
    fourEyes: false
    ssh:
      host: ${sshd.host}
      port: ${sshd.port}
      username: ${sshd.username}
      privateKeyPath: ${sshd.privateKeyPath}
      hostKeySha256: "${sshd.hostKeySha256}"
    deployPath: ${h.deployPath}
    apiBaseUrl: ${h.api.url}
    apiKeyEnv: ENGRAMIA_PROD_API_KEY
    verifySettleSeconds: 5
    registry:
      host: ghcr.io
      username: engramia-bot
      tokenEnv: GHCR_TOKEN
`,
  )
  .join('')}`,
    );
    const processEnv: NodeJS.ProcessEnv = {
      SLACK_BOT_TOKEN: slack.botToken,
      SLACK_SIGNING_SECRET: SIGNING_SECRET,
      SLACK_API_URL: slack.apiUrl,
      PORT: '0',
      ADMIN_PORT: '0',
      REDIS_URL: inject('redisUrl'),
      CHATOPS_CONFIG: configPath,
      CHATOPS_QUEUE_PREFIX: `t${randomBytes(6).toString('hex')}`,
      ENGRAMIA_PROD_API_KEY: apiKey,
      GHCR_TOKEN: registryToken,
    };
    logs = [];
    const log = createLogger({ level: 'debug', destination: { write: (s: string) => void logs.push(s) } });
    const bot: Bot = await startBot({
      env: readEnvOptions(processEnv),
      config: loadConfig(configPath),
      role: 'all',
      log,
      processEnv,
      workerOptions: {
        minCardIntervalMs: 200,
        concurrency: DEPLOYS,
        // The operator's setting for this workspace: its Tier 3 rate, with a burst one smaller than Slack's.
        slackPacing: { rules: { 'chat.update': { perMinute: 20, burst: 2 } } },
      },
    });
    cleanup.push(() => bot.close());
    const botUrl = `http://127.0.0.1:${bot.port}`;
    await until('the worker', async () => (await bot.producer!.workerCount().catch(() => 0)) > 0, 20_000);

    const t0 = Date.now();
    const acks = await Promise.all(
      Array.from({ length: DEPLOYS }, (_, i) =>
        sendSlashCommand(`${botUrl}/slack/events`, SIGNING_SECRET, {
          text: `deploy 0.6.1 ${envOf(i)} --no-maintenance`,
          user_id: ALICE,
          channel_id: channelOf(i),
          response_url: slack.responseUrl({ channel: channelOf(i), user: ALICE }),
        }),
      ),
    );
    const jobIds = acks.map((a) => /\(job (deploy-[^)\s]+)\)/.exec(String(a.body?.text ?? a.text))?.[1]);
    expect(jobIds.every(Boolean), JSON.stringify(acks.map((a) => a.text))).toBe(true);

    const final = (i: number) => {
      const c = card(slack, channelOf(i));
      return c && /succeeded/.test(blockText(c.blocks as Block[])) ? c : undefined;
    };
    await until('every card final', () => Array.from({ length: DEPLOYS }, (_, i) => final(i)).every(Boolean), 30_000);
    const cardsFinalMs = Date.now() - t0;
    const jobs = await until('every job done', async () => {
      const all = await Promise.all(jobIds.map((id) => bot.producer!.getJob(id!)));
      return all.every((j) => j?.finishedOn) ? all : undefined;
    }, 30_000);

    for (let i = 0; i < DEPLOYS; i++) {
      expect((jobs[i]!.data as RunbookData).state?.outcome).toBe('succeeded');
      expect(runningApiTag(hosts[i]!.deployPath)).toBe('0.6.1');
      const text = blockText(final(i)!.blocks as Block[]);
      for (const t of STEP_TITLES) expect(text).toContain(`✅ ${t}`);
      expect(text).not.toMatch(/[⬜⏳❌]/u);
      // One card per channel, its thread complete and in order.
      const c = card(slack, channelOf(i))!;
      expect(slack.messagesIn(channelOf(i)).filter((m) => !m.thread_ts || m.thread_ts === m.ts)).toHaveLength(1);
      const thread = slack.threadReplies(channelOf(i), c.ts).map((m) => blockText(m.blocks as Block[])).join('\n');
      const order = STEP_TITLES.map((t) => thread.indexOf(t));
      expect(order.every((p) => p >= 0), thread).toBe(true);
      expect(order).toEqual([...order].sort((a, b) => a - b));
    }

    const updates = slack.callsTo('chat.update');
    console.info(
      `${DEPLOYS} deploys: cards final after ${cardsFinalMs} ms; chat.update ${updates.length}, chat.postMessage ${slack.callsTo('chat.postMessage').length}, ` +
        `chat.getPermalink ${slack.callsTo('chat.getPermalink').length}, 429s ${slack.rateLimited()}`,
    );
    expect(slack.rateLimited()).toBe(0);
    expect(slack.calls.filter((c) => c.status !== 200 && !c.method.startsWith('@'))).toEqual([]);
    // The workspace-wide budget held: never more than the burst plus one per 3 s.
    for (let k = 0; k < updates.length; k++) {
      const inWindow = updates.filter((u) => u.at >= updates[k]!.at && u.at < updates[k]!.at + 3000).length;
      expect(inWindow).toBeLessThanOrEqual(3);
    }
    expect(slack.invalidBlockCalls()).toEqual([]);
  }, 45_000);
});

describe('Slack budget: answers posted straight from a job', () => {
  it('ten health answers at once to one channel wait for their turn: all posted, no 429', async () => {
    // Slack's own limits and the pacer's defaults; read answers do not reserve ahead, the outbox waits for them.
    const w = await startWorld();
    cleanup.push(() => w.close());
    logs = w.logs;
    slackRef = w.slack;
    const acks = await Promise.all(Array.from({ length: 10 }, (_, i) => w.slash('health', { trigger_id: `paced-${i}` })));
    for (const ack of acks) expect(ack.status).toBe(200);
    const answered = () => w.slack.calls.filter((c) => c.method === 'chat.postMessage' && c.args.channel === OPS_CHANNEL && c.response?.ok === true && /production: /.test(String(c.args.text ?? '')));
    await w.slack.waitFor(() => answered().length >= 10, { timeoutMs: 30_000, description: 'ten health answers' });
    expect(answered()).toHaveLength(10);
    expect(w.slack.rateLimited()).toBe(0);
    // About one a second after a burst of 3, as the channel allows.
    const at = answered().map((c) => c.at);
    expect(at[9]! - at[0]!).toBeGreaterThan(5000);
  }, 45_000);
});
