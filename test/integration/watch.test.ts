// The health watch: a BullMQ job scheduler per watched environment probes deep health and posts
// to the ops channel only when the status changes, each change confirmed by a second probe. An
// `error` soon after a deploy offers a rollback behind the same gate checks as every other gate.
import { Job, Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { QUEUE_NAME } from '../../src/jobs/queue.js';
import { findButton, sendBlockAction } from '../world/slack-requests.js';
import { readCommandLog, runningApiTag, setDeepHealth, setRemoteTag } from '../world/sim/host.mjs';
import { ALICE, OPS_CHANNEL, SIGNING_SECRET, startWorld, type World, type WorldOptions } from './harness.js';
import { BOB, CAROL, blockText, type Block } from './blocks.js';
import { until } from './faults.js';

let world: World | undefined;
let queue: Queue | undefined;

afterEach(async (ctx) => {
  if (ctx.task.result?.state === 'fail' && world) {
    console.error(`--- bot log (last 40) ---\n${world.logs.slice(-40).join('')}`);
    console.error(`--- host commands ---\n${JSON.stringify(readCommandLog(world.deployPath).map((r: any) => [r.phase, r.exitCode, r.argv.join(' ')]))}`);
  }
  await queue?.close();
  queue = undefined;
  await world?.close();
  world = undefined;
});

/** A world whose scheduler probes once a day: the test runs each probe itself, one at a time. */
async function manualWorld(rollbackWindow = '30m', opts: Pick<WorldOptions, 'access' | 'fourEyes'> = {}): Promise<World> {
  const w = (world = await startWorld({ slackLimits: false, ...opts, envExtra: { verifySettleSeconds: 5, watch: `{ every: 24h, rollbackWindow: ${rollbackWindow} }` } }));
  queue = new Queue(QUEUE_NAME, { connection: new Redis(w.processEnv.REDIS_URL!, { maxRetriesPerRequest: null }), prefix: w.processEnv.CHATOPS_QUEUE_PREFIX! });
  // The scheduler's first run comes at once: let it finish, so it is not counted as one of the test's probes.
  await until(async () => (await queue!.getJobs(['completed'])).some((j) => j.name === 'watch'), 'the scheduled first probe');
  return w;
}

/** One probe through the real worker, exactly as the scheduler would run it. */
async function probe(): Promise<{ outcome: string; status?: string }> {
  for (;;) {
    const added = await queue!.add('watch', { kind: 'watch', env: 'production' });
    await until(async () => ['completed', 'failed'].includes(await queue!.getJobState(added.id!)), 'a probe to finish');
    // Read after it finished: a copy read while it ran has no return value.
    const done = (await Job.fromId(queue!, added.id!))!;
    if (done.failedReason) throw new Error(`probe failed: ${done.failedReason}`);
    // Another probe of the same environment was running (they never overlap): ask again.
    if (done.returnvalue.outcome !== 'skipped_busy') return done.returnvalue;
  }
}

const watchMessages = (w: World) => w.slack.messagesIn(OPS_CHANNEL).filter((m) => (!m.thread_ts || m.thread_ts === m.ts) && blockText(m.blocks as Block[]).includes('Health watch:'));
const lastWatchText = (w: World) => blockText(watchMessages(w).at(-1)?.blocks as Block[]);

async function watchMessage(w: World, n: number, pattern: RegExp) {
  return w.slack.waitFor(
    () => {
      const m = watchMessages(w)[n - 1];
      return m && pattern.test(blockText(m.blocks as Block[])) ? m : undefined;
    },
    { timeoutMs: 10_000, description: `watch message #${n} matching ${pattern}` },
  );
}

/** Four-eyes: the plan approval before the deploy's first change, pressed by `approver` (the latest such question). */
async function approve(w: World, approver: string) {
  const gate = await w.slack.waitFor(() => w.slack.messagesIn(OPS_CHANNEL).findLast((m) => findButton(m.blocks as Block[], 'deploy.approve')), { timeoutMs: 30_000, description: 'the plan approval' });
  expect((await pressOn(w, gate, approver, 'deploy.approve')).status).toBe(200);
}

async function deploy(w: World, version: string, approver?: string) {
  await w.slash(`deploy ${version} --no-maintenance`);
  if (approver) await approve(w, approver);
  await w.slack.waitFor(
    () => w.slack.messagesIn(OPS_CHANNEL).find((m) => blockText(m.blocks as Block[]).includes(`Deploy ${version}`) && /succeeded/.test(blockText(m.blocks as Block[]))),
    { timeoutMs: 30_000, description: `deploy ${version} to succeed` },
  );
  await until(async () => (await w.bot.producer!.store.readLock('production')) === undefined, 'the deploy lock to be released');
}

function pressOn(w: World, message: unknown, user: string, actionId: string) {
  return sendBlockAction(`${w.botUrl}/slack/events`, SIGNING_SECRET, { user, channel: OPS_CHANNEL, message: structuredClone(message) as never, action_id: actionId });
}

const ephemeralFor = (w: World, user: string) => w.slack.waitFor(() => blockText(w.slack.ephemerals.filter((e) => e.user === user).at(-1)?.blocks as Block[]) || undefined, { timeoutMs: 5000, description: `an answer to ${user}` });

describe('health watch: a change is posted once, after a second probe confirms it', { timeout: 60_000 }, () => {
  it('stays quiet while healthy and while a status flaps; posts degraded, then healthy; skips while a runbook holds the lock', async () => {
    const w = await manualWorld();
    expect(await probe()).toEqual({ outcome: 'steady', status: 'ok' });

    setDeepHealth(w.deployPath, 'degraded');
    expect(await probe()).toEqual({ outcome: 'pending', status: 'degraded' });
    await new Promise((r) => setTimeout(r, 300));
    expect(watchMessages(w)).toHaveLength(0);
    expect(await probe()).toEqual({ outcome: 'changed', status: 'degraded' });
    const degraded = blockText((await watchMessage(w, 1, /production is degraded/)).blocks as Block[]);
    expect(degraded).toContain('was 🟢 healthy');
    // The same blocks as `/engramia health`: the check that fails, the host, and who asked (the watch).
    expect(degraded).toContain('🟡 production: degraded');
    expect(degraded).toMatch(/stripe\*\s+error/);
    expect(degraded).toContain('AuthenticationError');
    expect(degraded).toContain('health watch, every 24h');
    expect(degraded).not.toContain('offered');

    // Flapping: each change is seen once and never confirmed, so nothing is posted.
    for (let i = 0; i < 2; i++) {
      setDeepHealth(w.deployPath, 'ok');
      expect(await probe()).toEqual({ outcome: 'pending', status: 'ok' });
      setDeepHealth(w.deployPath, 'degraded');
      expect(await probe()).toEqual({ outcome: 'not_confirmed', status: 'degraded' });
    }
    expect(await probe()).toEqual({ outcome: 'steady', status: 'degraded' });

    // While a runbook holds the environment it reports health itself; a change seen before it does not count after.
    setDeepHealth(w.deployPath, 'ok');
    expect(await probe()).toEqual({ outcome: 'pending', status: 'ok' });
    const holder = { jobId: 'deploy-test', user: ALICE, command: 'deploy 0.6.1', startedAt: new Date().toISOString() };
    expect(await w.bot.producer!.store.acquireLock('production', holder, 60_000)).toEqual({ ok: true });
    expect(await probe()).toEqual({ outcome: 'skipped_locked' });
    await w.bot.producer!.store.releaseLock('production', 'deploy-test');
    expect(await probe()).toEqual({ outcome: 'pending', status: 'ok' });
    expect(await probe()).toEqual({ outcome: 'changed', status: 'ok' });
    const healthy = blockText((await watchMessage(w, 2, /production is healthy/)).blocks as Block[]);
    expect(healthy).toContain('was 🟡 degraded');
    expect(healthy).toContain('🟢 production: healthy');

    await new Promise((r) => setTimeout(r, 300));
    expect(watchMessages(w)).toHaveLength(2);
    expect(w.slack.invalidBlockCalls()).toEqual([]);
    // The watch only reads: nothing it ran changed the host.
    expect(new Set(readCommandLog(w.deployPath).map((r: any) => r.argv.join(' ')))).toEqual(new Set(['compose -f docker-compose.prod.yml ps -a --format json']));
  });

  it('runs on its own schedule: a change is posted after two scheduled probes, and only once', async () => {
    const w = (world = await startWorld({ slackLimits: false, envExtra: { watch: '{ every: 1s }' } }));
    await new Promise((r) => setTimeout(r, 2500));
    expect(watchMessages(w)).toHaveLength(0);
    setDeepHealth(w.deployPath, 'error');
    const msg = blockText((await watchMessage(w, 1, /production is error/)).blocks as Block[]);
    expect(msg).toContain('🔴 production: error');
    // No deploy in the history: nothing to roll back to, so nothing is offered.
    expect(msg).not.toContain('offered');
    const lines = w.logs.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, any>);
    const changedAt = lines.findIndex((l) => l.msg === 'health watch: status changed');
    const probes = lines.slice(0, changedAt + 1).filter((l) => l.msg === 'health watch probe');
    expect(probes.slice(-2).map((l) => l.status)).toEqual(['error', 'error']);
    expect(lines[changedAt]).toMatchObject({ from: 'ok', to: 'error', job: 'watch', env: 'production', user: 'health-watch', jobId: expect.stringContaining('watch-production') });
    await new Promise((r) => setTimeout(r, 3000));
    expect(watchMessages(w)).toHaveLength(1);
    const metrics = await (await fetch(`${w.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/chatops_watch_probes_total\{env="production",status="error"\} [2-9]/);
  });
});

describe('health watch: error soon after a deploy offers a rollback', { timeout: 90_000 }, () => {
  it('offers rollback.approve / rollback.dismiss in the thread; roles, four-eyes against the deploy\'s requester and decide-once apply; approving rolls back', async () => {
    // Alice deploys and approves too: four-eyes, not her role, is what must stop her here.
    const w = await manualWorld('30m', { fourEyes: true, access: { deployers: [ALICE], approvers: [ALICE, BOB], admins: [CAROL] } });
    // 0.6.2 brings no migration, so the rollback needs no downgrade gate.
    setRemoteTag(w.deployPath, '0.6.2', { head: '031' });
    await deploy(w, '0.6.2', BOB);
    setDeepHealth(w.deployPath, 'error');
    expect(await probe()).toMatchObject({ outcome: 'pending' });
    expect(await probe()).toMatchObject({ outcome: 'changed', status: 'error' });

    const change = await watchMessage(w, 1, /production is error/);
    const text = blockText(change.blocks as Block[]);
    expect(text).toMatch(new RegExp(`after <@${ALICE}> <[^|>]+\\|deployed 0\\.6\\.2>`));
    expect(text).toContain('A rollback to `0.6.0` is offered in the thread');
    expect(findButton(change.blocks as Block[], 'rollback.approve')).toBeUndefined();
    // A copy: the fake Slack updates its own message in place once the offer is decided.
    const gate = structuredClone(await w.slack.waitFor(() => w.slack.threadReplies(OPS_CHANNEL, change.ts).find((m) => findButton(m.blocks as Block[], 'rollback.approve')), { timeoutMs: 10_000, description: 'the rollback offer' }));
    expect(findButton(gate.blocks as Block[], 'rollback.dismiss')).toBeDefined();
    expect(blockText(gate.blocks as Block[])).toContain('Roll production back to 0.6.0?');

    // Not an approver; then the deploy's own requester (four-eyes): both refused, nothing decided.
    expect((await pressOn(w, gate, 'U04DAVE', 'rollback.approve')).status).toBe(200);
    expect(await ephemeralFor(w, 'U04DAVE')).toMatch(/Only approvers/);
    expect((await pressOn(w, gate, ALICE, 'rollback.approve')).status).toBe(200);
    expect(await ephemeralFor(w, ALICE)).toMatch(/someone else must decide/);
    // A button whose plan hash was tampered with is refused too.
    const forged = structuredClone(gate);
    for (const b of (forged.blocks as Block[]).flatMap((x) => x.elements ?? [])) if (b.value) b.value = b.value.replace(/"h":"[0-9a-f]+"/, '"h":"0000000000000000"');
    expect((await pressOn(w, forged, BOB, 'rollback.approve')).status).toBe(200);
    expect(await ephemeralFor(w, BOB)).toMatch(/plan changed/);
    expect(await w.bot.producer!.store.readLock('production')).toBeUndefined();

    // The bad version is gone once rolled back; the sim's health follows the running version only in part.
    setDeepHealth(w.deployPath, 'ok');
    expect((await pressOn(w, gate, BOB, 'rollback.approve')).status).toBe(200);
    const decided = await w.slack.waitFor(() => {
      const m = w.slack.findMessage(OPS_CHANNEL, gate.ts);
      return m && !findButton(m.blocks as Block[], 'rollback.approve') ? blockText(m.blocks as Block[]) : undefined;
    }, { timeoutMs: 10_000, description: 'the offer to show its decision' });
    expect(decided).toMatch(/Rollback to 0\.6\.0 started \(job rollback-/);
    expect(decided).toContain(`decided by <@${BOB}>`);
    // Decided once: a second approver is told who decided.
    expect((await pressOn(w, gate, CAROL, 'rollback.approve')).status).toBe(200);
    expect(await ephemeralFor(w, CAROL)).toMatch(/Already decided \(yes\) by <@U02BOB>/);
    // Bob asked for this rollback by approving it: its own four-eyes check needs someone else, here Carol.
    await approve(w, CAROL);

    await w.slack.waitFor(
      () => w.slack.messagesIn(OPS_CHANNEL).find((m) => blockText(m.blocks as Block[]).includes('Roll back production to 0.6.0') && /succeeded/.test(blockText(m.blocks as Block[]))),
      { timeoutMs: 45_000, description: 'the rollback to succeed' },
    );
    expect(runningApiTag(w.deployPath)).toBe('0.6.0');
    const [h] = await w.bot.producer!.store.readHistory('production');
    expect(h).toMatchObject({ kind: 'rollback', version: '0.6.0', user: BOB, channel: OPS_CHANNEL, outcome: 'succeeded' });
    expect(w.slack.invalidBlockCalls()).toEqual([]);
  });

  it('closes the offer when health changes again: the buttons go, and an old copy of them answers that it expired', async () => {
    const w = await manualWorld();
    setRemoteTag(w.deployPath, '0.6.2', { head: '031' });
    await deploy(w, '0.6.2');
    setDeepHealth(w.deployPath, 'error');
    await probe();
    await probe();
    const change = await watchMessage(w, 1, /production is error/);
    const gate = await w.slack.waitFor(() => w.slack.threadReplies(OPS_CHANNEL, change.ts).find((m) => findButton(m.blocks as Block[], 'rollback.approve')), { timeoutMs: 10_000, description: 'the rollback offer' });
    const stale = structuredClone(gate);

    setDeepHealth(w.deployPath, 'ok');
    await probe();
    expect(await probe()).toMatchObject({ outcome: 'changed', status: 'ok' });
    await watchMessage(w, 2, /production is healthy/);
    const closed = await w.slack.waitFor(() => {
      const m = w.slack.findMessage(OPS_CHANNEL, gate.ts);
      return m && !findButton(m.blocks as Block[], 'rollback.approve') ? blockText(m.blocks as Block[]) : undefined;
    }, { timeoutMs: 10_000, description: 'the offer to close' });
    expect(closed).toContain('Closed: deep health is 🟢 healthy now. Nothing was rolled back.');

    expect((await pressOn(w, stale, BOB, 'rollback.approve')).status).toBe(200);
    expect(await ephemeralFor(w, BOB)).toMatch(/already expired/);
    await new Promise((r) => setTimeout(r, 500));
    expect(await w.bot.producer!.store.readLock('production')).toBeUndefined();
    expect(w.slack.messagesIn(OPS_CHANNEL).some((m) => blockText(m.blocks as Block[]).includes('Roll back production'))).toBe(false);
    expect(runningApiTag(w.deployPath)).toBe('0.6.2');
  });

  it('a deploy between two probes starts the confirmation over; nothing is offered once the deploy is older than rollbackWindow', async () => {
    const w = await manualWorld('1s');
    setDeepHealth(w.deployPath, 'degraded');
    expect(await probe()).toEqual({ outcome: 'pending', status: 'degraded' });
    // Degraded is a warning for a deploy, not a failure: it goes through, and the host now runs another version.
    await deploy(w, '0.6.1');
    expect(await probe()).toEqual({ outcome: 'pending', status: 'degraded' });
    await new Promise((r) => setTimeout(r, 1200));
    setDeepHealth(w.deployPath, 'error');
    expect(await probe()).toEqual({ outcome: 'pending', status: 'error' });
    expect(await probe()).toMatchObject({ outcome: 'changed', status: 'error' });
    await watchMessage(w, 1, /production is error/);
    await new Promise((r) => setTimeout(r, 500));
    expect(lastWatchText(w)).not.toContain('offered');
    expect(w.slack.messagesIn(OPS_CHANNEL).some((m) => findButton(m.blocks as Block[], 'rollback.approve'))).toBe(false);
  });
});
