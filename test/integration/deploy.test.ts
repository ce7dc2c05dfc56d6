import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { findButton, sendBlockAction } from '../world/slack-requests.js';
import { readCommandLog, readEnvFile, readState, runningApiTag, setComposePlugin, setDeepCheck, setDeepHealth, setFault, setMigrationFailure, updateState } from '../world/sim/host.mjs';
import { ALICE, NO_MAINTENANCE_DEPLOY, alongsideInOrder, OPS_CHANNEL, SIGNING_SECRET, leftCredentials, startWorld, type World, type WorldOptions } from './harness.js';
import { BOB, CAROL, type Block } from './blocks.js';


let world: World | undefined;
afterEach(async (ctx) => {
  // A failed run leaves its evidence: what the bot logged and what the host ran.
  if (ctx.task.result?.state === 'fail' && world) {
    console.error(`--- bot log (last 40) ---\n${world.logs.slice(-40).join('')}`);
    console.error(`--- host commands ---\n${JSON.stringify(readCommandLog(world.deployPath), null, 1).slice(-4000)}`);
  }
  await world?.close();
  world = undefined;
});

async function deployWorld(opts: WorldOptions = {}): Promise<World> {
  world = await startWorld({ slackLimits: false, ...opts, envExtra: { verifySettleSeconds: 5, ...(opts.envExtra ?? {}) } });
  return world;
}

/** Every value under the bot's Redis prefix (job data, locks, gates, history, audit), as text. */
async function redisDump(w: World): Promise<string> {
  const redis = new Redis(w.processEnv.REDIS_URL!);
  try {
    const keys = await redis.keys(`${w.processEnv.CHATOPS_QUEUE_PREFIX}:*`);
    const out: string[] = [];
    for (const key of keys) {
      const type = await redis.type(key);
      if (type === 'string') out.push((await redis.get(key)) ?? '');
      else if (type === 'hash') out.push(JSON.stringify(await redis.hgetall(key)));
      else if (type === 'list') out.push(JSON.stringify(await redis.lrange(key, 0, -1)));
      else if (type === 'set') out.push(JSON.stringify(await redis.smembers(key)));
      else if (type === 'zset') out.push(JSON.stringify(await redis.zrange(key, '0', '-1')));
      else if (type === 'stream') out.push(JSON.stringify(await redis.xrange(key, '-', '+')));
    }
    expect(out.join('')).toContain('deploy-');
    return out.join('\n');
  } finally {
    redis.disconnect();
  }
}

function text(blocks: Block[] | undefined): string {
  return JSON.stringify(blocks ?? []);
}

/** The parent card as it stands now in the channel. */
function card(w: World) {
  const top = w.slack.messagesIn(OPS_CHANNEL).filter((m) => !m.thread_ts || m.thread_ts === m.ts);
  return top.find((m) => text(m.blocks).includes('Deploy '));
}

async function finalCard(w: World, outcome: RegExp, timeoutMs = 30_000) {
  return w.slack.waitFor(
    () => {
      const c = card(w);
      return c && outcome.test(text(c.blocks)) ? c : undefined;
    },
    { timeoutMs, description: `deploy card matching ${outcome}` },
  );
}

function replies(w: World): string[] {
  const c = card(w);
  return c ? w.slack.threadReplies(OPS_CHANNEL, c.ts).map((m) => text(m.blocks)) : [];
}

/** The host's own record of what docker ran, as "IMAGE_TAG=x argv…" lines (start markers of slow commands left out). */
function ran(w: World): string[] {
  return readCommandLog(w.deployPath)
    .filter((r: any) => r.phase !== 'start')
    .map((r: any) => `${r.env?.IMAGE_TAG ? `IMAGE_TAG=${r.env.IMAGE_TAG} ` : ''}${r.argv.join(' ')}`);
}

async function gateMessage(w: World, actionId: string) {
  return w.slack.waitFor(() => w.slack.messagesIn(OPS_CHANNEL).find((m) => findButton(m.blocks as Block[], actionId)), { timeoutMs: 20_000, description: `a message with ${actionId}` });
}

async function press(w: World, user: string, actionId: string) {
  const msg = await gateMessage(w, actionId);
  const res = await sendBlockAction(`${w.botUrl}/slack/events`, SIGNING_SECRET, { user, channel: OPS_CHANNEL, message: msg, action_id: actionId });
  expect(res.status).toBe(200);
  return msg;
}

function lastEphemeralFor(w: World, user: string): string {
  return text(w.slack.ephemerals.filter((e) => e.user === user).at(-1)?.blocks as Block[]);
}

describe('/engramia deploy: the standard deployment against the simulated host', () => {
  it('runs every step in order with the tag stated on each compose command, and pins it', async () => {
    const w = await deployWorld();
    const ack = await w.slash('deploy v0.6.1 --no-maintenance');
    expect(ack.status).toBe(200);
    expect(ack.body.text).toMatch(/Deploying 0\.6\.1 to production \(job deploy-/);
    expect(text(ack.body.blocks)).toContain('leading \\"v\\"');

    const c = await finalCard(w, /succeeded/);
    expect(text(c.blocks)).toContain('`0.6.0` → `0.6.1`');
    expect(alongsideInOrder(ran(w))).toEqual(NO_MAINTENANCE_DEPLOY);
    // The token reached the host on stdin only.
    const login = readCommandLog(w.deployPath).find((r: any) => r.argv[0] === 'login')!;
    expect([login.stdin?.sha256, login.stdin?.trimmedSha256]).toContain(createHash('sha256').update(w.registryToken).digest('hex'));
    // Nothing the bot stored, logged, sent to Slack or ran on the host holds a secret.
    const everything = JSON.stringify(readCommandLog(w.deployPath)) + JSON.stringify(w.slack.calls) + w.logs.join('') + (await redisDump(w));
    for (const secret of [w.registryToken, w.apiKey, w.processEnv.SLACK_SIGNING_SECRET!, w.processEnv.SLACK_BOT_TOKEN!]) {
      expect(everything).not.toContain(secret);
    }
    expect(readFileSync(inject('sshd').privateKeyPath, 'utf8').split('\n').filter((l) => l.length > 20).some((l) => everything.includes(l))).toBe(false);

    expect(runningApiTag(w.deployPath)).toBe('0.6.1');
    expect(readState(w.deployPath).db.revision).toBe('032');
    const env = readEnvFile(w.deployPath);
    expect(env.match(/^IMAGE_TAG=.*$/gm)).toEqual(['IMAGE_TAG=0.6.1']);
    expect(env).not.toContain('ENGRAMIA_MAINTENANCE');

    const thread = replies(w).join('\n');
    expect(thread).toContain('Pull 0.6.1');
    // Maintenance chosen by flag: the new image's head is read alongside the migration, which reports both ends.
    expect(thread).toContain('database at 031; 0.6.1\'s head is read alongside the migration');
    expect(thread).toContain('database now at 032 (was 031)');
    expect(thread).toContain('🟢 production: healthy');
    expect(w.slack.invalidBlockCalls()).toEqual([]);
    expect(await w.bot.producer!.store.readLock('production')).toBeUndefined();
    const [h] = await w.bot.producer!.store.readHistory('production');
    expect(h).toMatchObject({ kind: 'deploy', version: '0.6.1', fromVersion: '0.6.0', user: ALICE, outcome: 'succeeded' });
  });

  it('with --maintenance, re-creates the API on the running version first and removes the flag at the end', async () => {
    const w = await deployWorld();
    await w.slash('deploy 0.6.1 --maintenance');
    await finalCard(w, /succeeded/);
    const lines = ran(w);
    const onOld = lines.indexOf('IMAGE_TAG=0.6.0 compose -f docker-compose.prod.yml up -d engramia-api');
    const pull = lines.indexOf('IMAGE_TAG=0.6.1 compose -f docker-compose.prod.yml pull engramia-api');
    const upNew = lines.indexOf('IMAGE_TAG=0.6.1 compose -f docker-compose.prod.yml up -d engramia-api caddy');
    const migrate = lines.indexOf('IMAGE_TAG=0.6.1 compose -f docker-compose.prod.yml exec -T engramia-api alembic upgrade head');
    const offNew = lines.lastIndexOf('IMAGE_TAG=0.6.1 compose -f docker-compose.prod.yml up -d engramia-api');
    expect(pull).toBeGreaterThanOrEqual(0);
    expect(onOld).toBeGreaterThan(pull);
    expect(upNew).toBeGreaterThan(onOld);
    expect(migrate).toBeGreaterThan(upNew);
    expect(offNew).toBeGreaterThan(migrate);
    expect(readEnvFile(w.deployPath)).not.toContain('ENGRAMIA_MAINTENANCE');
    expect(readState(w.deployPath).containers['engramia-api']?.env.ENGRAMIA_MAINTENANCE).toBeUndefined();
    expect(text(card(w)?.blocks)).toContain('Maintenance is off');
  });

  it('asks about maintenance when no flag is given; four-eyes refuses the requester; an approver decides once', async () => {
    const w = await deployWorld({ fourEyes: true, access: { deployers: [ALICE, CAROL] } });
    // Carol is a deployer and an admin, so she may both deploy and decide gates, but never on her own job.
    await w.slash('deploy 0.6.1', { user_id: CAROL });
    // A snapshot: the live message loses its buttons once decided.
    const gate = structuredClone(await gateMessage(w, 'maintenance.enable'));
    expect(text(gate.blocks)).toContain('brings database migrations');
    await w.slack.waitFor(() => text(card(w)?.blocks).includes('waiting for a decision'), { timeoutMs: 5000 });
    // Parked: nothing past the inspection ran.
    expect(ran(w).some((l) => l.includes('up -d'))).toBe(false);

    await press(w, CAROL, 'maintenance.enable');
    await w.slack.waitFor(() => lastEphemeralFor(w, CAROL).includes('someone else must decide'), { timeoutMs: 5000 });
    await press(w, ALICE, 'maintenance.enable');
    await w.slack.waitFor(() => lastEphemeralFor(w, ALICE).includes('Only approvers'), { timeoutMs: 5000 });
    expect(ran(w).some((l) => l.includes('up -d'))).toBe(false);

    await press(w, BOB, 'maintenance.enable');
    await finalCard(w, /succeeded/);
    expect(ran(w)).toContain('IMAGE_TAG=0.6.0 compose -f docker-compose.prod.yml up -d engramia-api');
    // The gate message now shows the decision, without buttons.
    const decided = w.slack.findMessage(OPS_CHANNEL, gate.ts)!;
    expect(findButton(decided.blocks as Block[], 'maintenance.enable')).toBeUndefined();
    expect(text(decided.blocks)).toContain(`decided by <@${BOB}>`);

    // A second press on the old message (a double click, or Slack retrying) is told who decided.
    await sendBlockAction(`${w.botUrl}/slack/events`, SIGNING_SECRET, { user: BOB, channel: OPS_CHANNEL, message: gate, action_id: 'maintenance.skip' });
    await w.slack.waitFor(() => lastEphemeralFor(w, BOB).includes('Already decided'), { timeoutMs: 5000 });
    expect(lastEphemeralFor(w, BOB)).toContain(`<@${BOB}>`);
    expect(ran(w).filter((l) => l.includes('alembic upgrade head'))).toHaveLength(1);
  });

  it('skips maintenance when an approver presses skip', async () => {
    const w = await deployWorld();
    await w.slash('deploy 0.6.1');
    await press(w, BOB, 'maintenance.skip');
    await finalCard(w, /succeeded/);
    expect(ran(w).filter((l) => l.includes('up -d'))).toEqual(['IMAGE_TAG=0.6.1 compose -f docker-compose.prod.yml up -d engramia-api caddy']);
    expect(readEnvFile(w.deployPath)).not.toContain('ENGRAMIA_MAINTENANCE');
  });

  it('takes the safe branch when nobody answers the gate before it expires', async () => {
    const w = await deployWorld({ envExtra: { gateTimeoutSeconds: 5 } });
    await w.slash('deploy 0.6.1');
    await gateMessage(w, 'maintenance.enable');
    const c = await finalCard(w, /succeeded/, 40_000);
    expect(text(c.blocks)).toContain('no answer within');
    expect(ran(w).some((l) => l.includes('IMAGE_TAG=0.6.0') && l.includes('up -d'))).toBe(false);
    expect(runningApiTag(w.deployPath)).toBe('0.6.1');
  });

  it('--dry-run posts the exact commands with the token masked, and runs nothing', async () => {
    const w = await deployWorld();
    await w.slash('deploy 0.6.1 --maintenance --dry-run');
    const plan = await w.slack.waitFor(() => w.slack.messagesIn(OPS_CHANNEL).find((m) => text(m.blocks).includes('--password-stdin')), { timeoutMs: 20_000 });
    const t = text(plan.blocks);
    expect(t).toContain("IMAGE_TAG=0.6.1 docker compose -f docker-compose.prod.yml pull engramia-api");
    expect(t).toContain('&lt;&lt;&lt; $GHCR_TOKEN');
    expect(t).not.toContain(w.registryToken);
    await new Promise((r) => setTimeout(r, 300));
    expect(readCommandLog(w.deployPath)).toEqual([]);
    expect(await w.bot.producer!.store.readLock('production')).toBeUndefined();
  });

  it('a pull failure stops there: the host keeps the old version and no rollback is offered', async () => {
    const w = await deployWorld();
    await w.slash('deploy 9.9.9 --maintenance');
    const c = await finalCard(w, /failed/);
    const t = text(c.blocks);
    expect(t).toContain('Stopped at *Pull 9.9.9*');
    expect(t).toContain('runs `0.6.0`');
    expect(t).toContain('nothing changed what runs');
    expect(runningApiTag(w.deployPath)).toBe('0.6.0');
    expect(readEnvFile(w.deployPath)).not.toContain('ENGRAMIA_MAINTENANCE');
    expect(replies(w).join('\n')).toContain('manifest unknown');
    expect(w.slack.messagesIn(OPS_CHANNEL).some((m) => findButton(m.blocks as Block[], 'rollback.approve'))).toBe(false);
    expect(await w.bot.producer!.store.readLock('production')).toBeUndefined();
  });

  it("a tag the registry does not have is refused in the host's words before anything changes, and Next does not offer it again", async () => {
    const w = await deployWorld();
    const envBefore = readEnvFile(w.deployPath);
    await w.slash('deploy 9.9.9 --maintenance');
    const c = await finalCard(w, /failed/);
    const t = text(c.blocks);
    expect(t).toContain('9.9.9 is not in the registry (ghcr.io answered \\"manifest unknown\\"); nothing was changed');
    expect(t).toContain('`9.9.9` is not published in ghcr.io');
    expect(t).not.toContain('/engramia deploy 9.9.9');
    expect(replies(w).join('\n')).toContain('manifest for ghcr.io/engramia/engramia:9.9.9 not found: manifest unknown: manifest unknown');
    // Only the read-only probes, the login and the failed pull ran; .env is byte for byte as it was.
    expect(alongsideInOrder(ran(w).filter((l) => !l.startsWith('compose -f docker-compose.prod.yml ps')))).toEqual([
      'login ghcr.io -u engramia-bot --password-stdin',
      'IMAGE_TAG=0.6.0 compose -f docker-compose.prod.yml exec -T engramia-api alembic current',
      'IMAGE_TAG=9.9.9 compose -f docker-compose.prod.yml pull engramia-api',
    ]);
    expect(readEnvFile(w.deployPath)).toBe(envBefore);
    // The failed pull left no credential behind.
    expect(leftCredentials(w)).toEqual({ home: {}, jobFolders: false });
  });

  it('a registry that refuses the login (the token was rotated there) stops the deploy before anything changes, and the card says why', async () => {
    const w = await deployWorld();
    const envBefore = readEnvFile(w.deployPath);
    updateState(w.deployPath, (s: { registry: { token: string } }) => {
      s.registry.token = 'rotated-on-the-registry';
    });
    await w.slash('deploy 0.6.1 --no-maintenance');
    const t = text((await finalCard(w, /failed/)).blocks);
    expect(t).toContain('docker login engramia-bot@ghcr.io exited with 1 (Error response from daemon: Get \\"https://ghcr.io/v2/\\": denied: denied); check the token in GHCR_TOKEN');
    expect(t).toContain('nothing changed what runs');
    expect(t).not.toContain(w.registryToken);
    expect(ran(w).filter((l) => !l.startsWith('compose -f docker-compose.prod.yml ps'))).toEqual(['login ghcr.io -u engramia-bot --password-stdin']);
    expect(readEnvFile(w.deployPath)).toBe(envBefore);
    expect(leftCredentials(w)).toEqual({ home: {}, jobFolders: false });
  });

  it("the registry credential lives only in the job's own docker config folder, gone after the deploy, with a leftover of a dead job", async () => {
    const w = await deployWorld();
    // A job that died between its login and its cleanup left its folder; compose is a per-user plugin here.
    const dead = join(w.deployPath, '.chatops-docker', 'deploy-dead');
    mkdirSync(dead, { recursive: true, mode: 0o700 });
    writeFileSync(join(dead, 'config.json'), JSON.stringify({ auths: { 'ghcr.io': { auth: Buffer.from(`engramia-bot:${w.registryToken}`).toString('base64') } } }));
    const plugins = join(inject('sshd').home, '.docker', 'cli-plugins');
    mkdirSync(plugins, { recursive: true });
    writeFileSync(join(plugins, 'docker-compose'), '');
    setComposePlugin(w.deployPath, 'user');
    await w.slash('deploy 0.6.1 --no-maintenance');
    const c = await finalCard(w, /succeeded/);
    const jobId = /deploy-[a-z0-9]+/.exec(text(c.blocks))![0];
    const log = readCommandLog(w.deployPath).filter((r: any) => r.phase !== 'start');
    const folder = join(w.deployPath, '.chatops-docker', jobId);
    expect(log.find((r: any) => r.argv[0] === 'login')?.env.DOCKER_CONFIG).toBe(folder);
    expect(log.find((r: any) => r.argv.includes('pull'))?.env.DOCKER_CONFIG).toBe(folder);
    // Nothing after the pull runs with the credential at hand.
    expect(log.filter((r: any) => r.env.DOCKER_CONFIG).map((r: any) => r.argv[0] === 'login' ? 'login' : r.argv.at(-2))).toEqual(['login', 'pull']);
    expect(runningApiTag(w.deployPath)).toBe('0.6.1');
    expect(leftCredentials(w)).toEqual({ home: {}, jobFolders: false });
  });

  it('a migration failure reports that maintenance is still on, and offers a rollback to the recorded version', async () => {
    const w = await deployWorld();
    setMigrationFailure(w.deployPath, { upgradeTo: '032' });
    await w.slash('deploy 0.6.1 --maintenance');
    const c = await finalCard(w, /failed/);
    const t = text(c.blocks);
    expect(t).toContain('Stopped at *Run database migrations*');
    expect(t).toContain('Maintenance is still ON');
    expect(t).toContain('maintenance *ON* in .env');
    expect(readEnvFile(w.deployPath).match(/^ENGRAMIA_MAINTENANCE=.*$/gm)).toEqual(['ENGRAMIA_MAINTENANCE=true']);
    const gate = await gateMessage(w, 'rollback.approve');
    expect(text(gate.blocks)).toContain('Roll production back to 0.6.0?');
    expect(await w.bot.producer!.store.readLock('production')).toBeUndefined();
    // Approving starts the rollback job right away (it takes the lock again).
    await press(w, BOB, 'rollback.approve');
    await w.slack.waitFor(() => text(w.slack.findMessage(OPS_CHANNEL, gate.ts)?.blocks).includes('Rollback to 0.6.0 started'), { timeoutMs: 5000 });
  });

  it('deep health error after the deploy fails it and offers the rollback', async () => {
    const w = await deployWorld();
    setDeepHealth(w.deployPath, 'error');
    await w.slash('deploy 0.6.1 --no-maintenance');
    const c = await finalCard(w, /failed/);
    expect(text(c.blocks)).toContain('deep health is error');
    expect(replies(w).join('\n')).toContain('🔴 production: error');
    await gateMessage(w, 'rollback.approve');
  });

  it('degraded deep health after the deploy succeeds with a warning', async () => {
    const w = await deployWorld();
    setDeepCheck(w.deployPath, 'stripe', { status: 'error', latency_ms: 145.2, error: 'AuthenticationError' });
    await w.slash('deploy 0.6.1 --no-maintenance');
    const c = await finalCard(w, /succeeded with warnings/, 20_000);
    expect(text(c.blocks)).toContain('Deep health is degraded (stripe)');
  });

  it('refuses a second deploy to the same environment while one runs, naming it; refuses non-deployers', async () => {
    const w = await deployWorld();
    await w.slash('deploy 0.6.1');
    await gateMessage(w, 'maintenance.enable');
    const second = await w.slash('deploy 0.5.9 --no-maintenance');
    expect(text(second.body.blocks)).toMatch(/production is locked by deploy 0\.6\.1 \(<@U01ALICE>, \d+ s ago\)/);
    const bob = await w.slash('deploy 0.6.1', { user_id: BOB });
    expect(text(bob.body.blocks)).toContain('You may not run `deploy`');
    expect(ran(w).filter((l) => l.includes('0.5.9'))).toEqual([]);
  });

  it('goes on through Slack 429s: replies arrive late but in order, and the final card is right', async () => {
    // Slack's own limits (about 1 post per second per channel): a fast deploy would outrun them; the bot keeps to
    // them instead, and Slack still answers 429 now and then (another app, a stricter workspace): two posts here.
    world = await startWorld({ envExtra: { verifySettleSeconds: 5 } });
    const w = world;
    await w.slash('deploy 0.6.1 --no-maintenance');
    await w.slack.waitForCall('chat.postMessage', (c) => c.status === 200 && !c.args.thread_ts, { timeoutMs: 20_000 });
    w.slack.injectFault({ method: 'chat.postMessage', status: 429, retryAfterSec: 1, times: 2 });
    await finalCard(w, /succeeded/);
    expect(runningApiTag(w.deployPath)).toBe('0.6.1');
    // Every step's reply is delivered, in the order the steps ran; replies held back by a 429 are merged.
    const titles = ['Check the host', 'Log in to the registry', 'Pull 0.6.1', 'Check for database migrations', 'Start 0.6.1', 'Run database migrations', 'Pin 0.6.1', 'Prune old images', 'Verify 0.6.1'];
    const thread = await w.slack.waitFor(() => {
      const all = replies(w).join('\n');
      return titles.every((t) => all.includes(t)) ? all : undefined;
    }, { timeoutMs: 30_000 });
    const order = titles.map((t) => thread.indexOf(t));
    expect(order).toEqual([...order].sort((a, b) => a - b));
    // Fewer posts than steps: the backlog went out together instead of one per second.
    const posts = w.slack.callsTo('chat.postMessage').filter((c) => c.args.thread_ts && c.status === 200);
    expect(posts.length).toBeLessThan(titles.length);
    // The only 429s were the two Slack sent on its own account: the bot's pace met none of the channel's limit.
    expect(w.slack.calls.filter((c) => c.status === 429).map((c) => Boolean(c.fault))).toEqual([true, true]);
    expect(w.slack.invalidBlockCalls()).toEqual([]);
  }, 60_000);

  it('posts long command output as a file in the thread instead of cutting it', async () => {
    const w = await deployWorld();
    const lines = Array.from({ length: 200 }, (_, i) => `layer ${String(i).padStart(3, '0')}: Pull complete`);
    setFault(w.deployPath, { match: ['compose', 'pull'], stdout: `${lines.join('\n')}\n` });
    await w.slash('deploy 0.6.1 --no-maintenance');
    const c = await finalCard(w, /succeeded/);
    const file = await w.slack.waitFor(() => w.slack.files.find((f) => f.completed && f.title?.includes('Pull 0.6.1')), { timeoutMs: 10_000 });
    const content = file.content?.toString('utf8') ?? '';
    expect(content).toContain('layer 000: Pull complete');
    expect(content).toContain('layer 199: Pull complete');
    expect(content).not.toContain(w.registryToken);
    expect(file.thread_ts).toBe(c.ts);
  });

  it('a job parked at a gate survives a restart of the bot and resumes without repeating a step', async () => {
    const w = await deployWorld();
    await w.slash('deploy 0.6.1');
    await gateMessage(w, 'maintenance.enable');
    await w.slack.waitFor(() => text(card(w)?.blocks).includes('waiting for a decision'), { timeoutMs: 5000 });
    const before = ran(w);
    await w.restart();
    await press(w, BOB, 'maintenance.skip');
    await finalCard(w, /succeeded/);
    const after = ran(w);
    expect(after.slice(0, before.length)).toEqual(before);
    // Nothing that ran before the restart ran again.
    for (const line of ['login ghcr.io -u engramia-bot --password-stdin', 'IMAGE_TAG=0.6.1 compose -f docker-compose.prod.yml pull engramia-api']) {
      expect(after.filter((l) => l === line)).toHaveLength(1);
    }
    expect(runningApiTag(w.deployPath)).toBe('0.6.1');
    // The card posted before the restart is the one that was finished.
    expect(w.slack.callsTo('chat.postMessage').filter((c) => !c.args.thread_ts && String(c.args.text).startsWith('Deploy '))).toHaveLength(1);
  });
});
