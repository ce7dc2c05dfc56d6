// Guarantee 3: Redis restarts (AOF on, as the shipped docker-compose.yml runs it) lose no job.
// Queued, running, parked and waiting-for-approval jobs survive; the worker and the app reconnect by
// themselves; a gate pressed while Redis is down is told to try again, and the same press works after.
import { Queue } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import { QUEUE_NAME } from '../../src/jobs/queue.js';
import { redisAnswersPing, startRedis, type RedisServer } from '../world/redis.js';
import { findButton, sendBlockAction } from '../world/slack-requests.js';
import { readCommandLog, runningApiTag, setFault } from '../world/sim/host.mjs';
import type { FakeMessage } from '../world/fake-slack.js';
import { OPS_CHANNEL, SIGNING_SECRET, startWorld, type World, type WorldOptions, alongsideInOrder } from './harness.js';
import { BOB, blockText, text, type Block } from './blocks.js';

let world: World | undefined;
let redis: RedisServer | undefined;

afterEach(async (ctx) => {
  if (ctx.task.result?.state === 'fail' && world) {
    console.error(`--- bot log (last 60) ---\n${world.logs.slice(-60).join('')}`);
    console.error(`--- host commands ---\n${ran(world).join('\n')}`);
  }
  // The bot closes cleanly only against a Redis that answers.
  if (redis && !(await redisAnswersPing(redis.port).catch(() => false))) await redis.restart().catch(() => undefined);
  await world?.close();
  world = undefined;
  await redis?.stop();
  redis = undefined;
});

async function restartableWorld(opts: WorldOptions = {}): Promise<World> {
  redis = await startRedis({ appendonly: true });
  world = await startWorld({ slackLimits: false, redisUrl: redis.url, ...opts, envExtra: { gateTimeoutSeconds: 60, verifySettleSeconds: 5, ...(opts.envExtra ?? {}) } });
  return world;
}

/** Polls an async condition; fails with `what` if it does not hold within `timeoutMs`. */
async function until<T>(fn: () => Promise<T | undefined | false>, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The host's own record of each docker command that finished, as "IMAGE_TAG argv…" (start markers of slow ones left out). */
function ran(w: World): string[] {
  return alongsideInOrder(readCommandLog(w.deployPath)
    .filter((r: any) => r.phase !== 'start')
    .map((r: any) => `${r.env?.IMAGE_TAG ? `IMAGE_TAG=${r.env.IMAGE_TAG} ` : ''}${r.argv.join(' ')}`));
}

const C = 'compose -f docker-compose.prod.yml';
/**
 * A deploy of 0.6.1 over 0.6.0 (which brings migration 032), each host command once, in order: with
 * maintenance chosen at the gate, or skipped by `--no-maintenance` (the new head is then read alongside the migration).
 */
function deployCommands(maintenance: boolean): string[] {
  return [
    `${C} ps -a --format json`,
    'login ghcr.io -u engramia-bot --password-stdin',
    // Read-only, alongside the pull (alongsideInOrder puts it first).
    `IMAGE_TAG=0.6.0 ${C} exec -T engramia-api alembic current`,
    `IMAGE_TAG=0.6.1 ${C} pull engramia-api`,
    ...(maintenance ? [`IMAGE_TAG=0.6.1 ${C} run --rm --no-deps -T engramia-api alembic heads`, `IMAGE_TAG=0.6.0 ${C} up -d engramia-api`] : []),
    `IMAGE_TAG=0.6.1 ${C} up -d engramia-api caddy`,
    ...(maintenance ? [] : [`IMAGE_TAG=0.6.1 ${C} exec -T engramia-api alembic heads`]),
    `IMAGE_TAG=0.6.1 ${C} exec -T engramia-api alembic upgrade head`,
    ...(maintenance ? [`IMAGE_TAG=0.6.1 ${C} up -d engramia-api`] : []),
    'image prune -f',
    `${C} ps -a --format json`,
  ];
}

function jobIdOf(ack: { body: unknown }): string {
  const m = /\(job (deploy-[^)\s]+)\)/.exec(JSON.stringify(ack.body));
  if (!m) throw new Error(`no job id in the ack: ${JSON.stringify(ack.body)}`);
  return m[1]!;
}

function card(w: World): FakeMessage | undefined {
  return w.slack.messagesIn(OPS_CHANNEL).find((m) => (!m.thread_ts || m.thread_ts === m.ts) && text(m.blocks).includes('Deploy '));
}

function finalCard(w: World, outcome: RegExp, timeoutMs = 30_000) {
  return w.slack.waitFor(() => {
    const c = card(w);
    return c && outcome.test(text(c.blocks)) ? c : undefined;
  }, { timeoutMs, description: `deploy card matching ${outcome}` });
}

async function gateMessage(w: World, actionId: string): Promise<FakeMessage> {
  const m = await w.slack.waitFor(() => w.slack.messagesIn(OPS_CHANNEL).find((x) => findButton(x.blocks as Block[], actionId)), { timeoutMs: 20_000, description: `a message with ${actionId}` });
  // A snapshot: the live message loses its buttons once decided.
  return structuredClone(m);
}

function press(w: World, user: string, message: FakeMessage, actionId: string) {
  return sendBlockAction(`${w.botUrl}/slack/events`, SIGNING_SECRET, { user, channel: OPS_CHANNEL, message, action_id: actionId });
}

const ephemeralsFor = (w: World, user: string) => w.slack.ephemerals.filter((e) => e.user === user).map((e) => blockText(e.blocks as Block[]));

async function jobState(w: World, jobId: string): Promise<string | undefined> {
  return (await w.bot.producer!.getJob(jobId))?.getState();
}

/** Parked at its gate in BullMQ (delayed), then long enough for AOF everysec to have it on disk. */
async function parkedAndPersisted(w: World, jobId: string): Promise<void> {
  await until(async () => (await jobState(w, jobId)) === 'delayed', `job ${jobId} parked (delayed)`);
  await sleep(1500);
}

/** The app's fail-fast connection is back (the worker's reconnects on its own). */
async function appReconnected(w: World): Promise<void> {
  await until(() => w.bot.producer!.ping(), 'the app to reconnect to Redis', 15_000);
}

async function expectCleanFinish(w: World, maintenance: boolean): Promise<void> {
  const c = await finalCard(w, /succeeded/);
  expect(text(c.blocks)).not.toMatch(/failed|cancelled/);
  // Every host command ran exactly once: nothing repeated after the restart, nothing skipped.
  expect(ran(w)).toEqual(deployCommands(maintenance));
  expect(runningApiTag(w.deployPath)).toBe('0.6.1');
  expect(await w.bot.producer!.store.readLock('production')).toBeUndefined();
  const [h] = await w.bot.producer!.store.readHistory('production');
  expect(h).toMatchObject({ kind: 'deploy', version: '0.6.1', outcome: 'succeeded' });
}

describe('a job parked at a gate survives a Redis restart', () => {
  for (const how of ['graceful stop', 'crash (SIGKILL)'] as const) {
    it(`${how}: the press after the restart continues the deploy, every host command once`, async () => {
      const w = await restartableWorld();
      const jobId = jobIdOf(await w.slash('deploy 0.6.1'));
      const gate = await gateMessage(w, 'maintenance.enable');
      await parkedAndPersisted(w, jobId);
      const before = ran(w);

      if (how === 'graceful stop') await redis!.stop();
      else await redis!.kill();
      await sleep(500);
      await redis!.restart();
      await appReconnected(w);

      // Still parked after the restart: nothing ran, the environment is still locked by it.
      expect(await jobState(w, jobId)).toBe('delayed');
      expect((await w.bot.producer!.store.readLock('production'))?.jobId).toBe(jobId);
      expect(ran(w)).toEqual(before);

      const res = await press(w, BOB, gate, 'maintenance.enable');
      expect(res.status).toBe(200);
      await expectCleanFinish(w, true);
      expect(ephemeralsFor(w, BOB).join('\n')).not.toMatch(/not recorded|try again/i);
    });
  }
});

describe('a gate pressed while Redis is down', () => {
  it('is acked at once, told plainly to try again, and the same press works once Redis is back', async () => {
    const w = await restartableWorld();
    const jobId = jobIdOf(await w.slash('deploy 0.6.1'));
    const gate = await gateMessage(w, 'maintenance.enable');
    await parkedAndPersisted(w, jobId);

    await redis!.stop();
    const res = await press(w, BOB, gate, 'maintenance.enable');
    expect(res.status).toBe(200);
    expect(res.elapsedMs).toBeLessThan(2000);
    const told = await w.slack.waitFor(() => ephemeralsFor(w, BOB).at(-1), { timeoutMs: 5000, description: 'an answer to the press' });
    expect(told).toMatch(/Redis is unreachable/);
    expect(told).toMatch(/your press was not recorded/i);
    expect(told).toMatch(/try again/i);
    expect(told).not.toMatch(/Unexpected error|stack|Error:/);
    // The app's store says "unavailable" too, never a raw connection error.
    await expect(w.bot.producer!.store.readGate(jobId, 'maintenance')).rejects.toMatchObject({ code: 'QUEUE_UNAVAILABLE' });
    // Nothing was decided, nothing ran.
    expect(ran(w).some((l) => l.includes('up -d'))).toBe(false);
    const hz = await fetch(`${w.adminUrl}/healthz`);
    expect(hz.status).toBe(503);
    expect(await hz.json()).toMatchObject({ redis: 'down' });

    await redis!.restart();
    await appReconnected(w);
    expect(await w.bot.producer!.store.readGate(jobId, 'maintenance')).toBeUndefined();
    expect(await jobState(w, jobId)).toBe('delayed');
    const hzUp = await fetch(`${w.adminUrl}/healthz`);
    expect(await hzUp.json()).toMatchObject({ redis: 'ok' });

    // The very same button, pressed again.
    const again = await press(w, BOB, gate, 'maintenance.enable');
    expect(again.status).toBe(200);
    await expectCleanFinish(w, true);
    expect(ephemeralsFor(w, BOB)).toHaveLength(1);
    const decided = w.slack.findMessage(OPS_CHANNEL, gate.ts)!;
    expect(text(decided.blocks)).toContain(`decided by <@${BOB}>`);
  });
});

describe('a job running a step survives a Redis restart', () => {
  for (const how of ['graceful stop', 'crash (SIGKILL)'] as const) {
    it(`${how} during a slow pull: the pull finishes once, the deploy continues, nothing repeats`, async () => {
      const w = await restartableWorld();
      setFault(w.deployPath, { match: 'pull', delayMs: 4000 });
      jobIdOf(await w.slash('deploy 0.6.1 --no-maintenance'));
      await until(async () => readCommandLog(w.deployPath).some((r: any) => r.phase === 'start' && r.argv.includes('pull')), 'the pull to start');
      // Let AOF everysec write what the job saved when the step began.
      await sleep(1200);
      if (how === 'graceful stop') await redis!.stop();
      else await redis!.kill();
      await sleep(500);
      await redis!.restart();
      await expectCleanFinish(w, false);
      expect(readCommandLog(w.deployPath).filter((r: any) => r.argv.includes('pull'))).toHaveLength(2); // its start marker and its end
    });
  }
});

describe('a job queued while no worker runs survives a Redis restart', () => {
  it('runs once a worker comes', async () => {
    const w = await restartableWorld({ role: 'app' });
    const jobId = jobIdOf(await w.slash('deploy 0.6.1 --no-maintenance'));
    expect(await jobState(w, jobId)).toBe('waiting');
    await sleep(1200);
    await redis!.kill();
    await sleep(300);
    await redis!.restart();
    await appReconnected(w);
    expect(await jobState(w, jobId)).toBe('waiting');
    expect((await w.bot.producer!.store.readLock('production'))?.jobId).toBe(jobId);
    expect(ran(w)).toEqual([]);

    // A worker process comes up on the same Redis and queue.
    const { startBot } = await import('../../src/runtime.js');
    const { readEnvOptions } = await import('../../src/config/env.js');
    const { loadConfig } = await import('../../src/config/load.js');
    const { createLogger } = await import('../../src/logger.js');
    const worker = await startBot({
      env: readEnvOptions(w.processEnv),
      config: loadConfig(w.configPath),
      role: 'worker',
      log: createLogger({ level: 'debug', destination: { write: (s: string) => void w.logs.push(s) } }),
      processEnv: w.processEnv,
      workerOptions: { minCardIntervalMs: 200 },
    });
    try {
      await expectCleanFinish(w, false);
    } finally {
      await worker.close();
    }
  });
});

describe('stopping the bot while Redis is down', () => {
  it('waits for Redis instead of hanging for good, and closes once it is back', async () => {
    const w = await restartableWorld();
    const jobId = jobIdOf(await w.slash('deploy 0.6.1'));
    await gateMessage(w, 'maintenance.enable');
    await parkedAndPersisted(w, jobId);
    await redis!.stop();
    // Long enough for ioredis to sit between two reconnect attempts, where a plain BullMQ close never ends.
    await sleep(2500);
    world = undefined;
    let closed = false;
    const closing = w.close().then(() => (closed = true));
    await sleep(1000);
    await redis!.restart();
    await until(async () => closed, 'the bot to close after Redis came back', 15_000);
    await closing;
    // The parked job is still there for the next worker.
    const q = new Queue(QUEUE_NAME, { connection: { url: redis!.url }, prefix: w.processEnv.CHATOPS_QUEUE_PREFIX! });
    try {
      expect(await (await q.getJob(jobId))?.getState()).toBe('delayed');
    } finally {
      await q.close();
    }
  });
});

describe('a slash command while Redis is down', () => {
  it('fails fast with a clear answer, and the next one after the restart is queued and runs', async () => {
    const w = await restartableWorld();
    await redis!.stop();
    const ack = await w.slash('deploy 0.6.1 --no-maintenance');
    expect(ack.status).toBe(200);
    expect(ack.elapsedMs).toBeLessThan(3000);
    expect(ack.body.text).toContain('The job queue is unavailable, so nothing was queued and nothing ran on the host.');
    await redis!.restart();
    await appReconnected(w);
    expect(await w.bot.producer!.store.readLock('production')).toBeUndefined();
    const ok = await w.slash('deploy 0.6.1 --no-maintenance');
    jobIdOf(ok);
    await expectCleanFinish(w, false);
  });
});
