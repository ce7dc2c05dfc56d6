import { afterEach, describe, expect, it } from 'vitest';
import { findButton, sendBlockAction } from '../world/slack-requests.js';
import { readCommandLog, readEnvFile, runningApiTag } from '../world/sim/host.mjs';
import { OPS_CHANNEL, SIGNING_SECRET, startWorld, type World } from './harness.js';
import { text, BOB, CAROL, type Block } from './blocks.js';


let world: World | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});


async function parkedDeploy(w: World) {
  await w.slash('deploy 0.6.1');
  const gate = structuredClone(await w.slack.waitFor(() => w.slack.messagesIn(OPS_CHANNEL).find((m) => findButton(m.blocks as Block[], 'maintenance.enable')), { timeoutMs: 20_000 }));
  return gate;
}

describe('/engramia cancel', () => {
  it('stops a parked deploy at once, reports the host state, closes its question and frees the lock', async () => {
    const w = (world = await startWorld({ slackLimits: false }));
    const gate = await parkedDeploy(w);
    const ack = await w.slash('cancel');
    expect(text(ack.body.blocks)).toContain('stops at its next safe point');
    const card = await w.slack.waitFor(
      () => w.slack.messagesIn(OPS_CHANNEL).find((m) => (!m.thread_ts || m.thread_ts === m.ts) && text(m.blocks).includes('cancelled by U01ALICE')),
      { timeoutMs: 20_000 },
    );
    expect(text(card.blocks)).toContain('🛑 cancelled');
    expect(text(card.blocks)).toContain('runs `0.6.0`');
    expect(readCommandLog(w.deployPath).some((r: any) => r.argv.includes('up'))).toBe(false);
    expect(runningApiTag(w.deployPath)).toBe('0.6.0');
    expect(readEnvFile(w.deployPath)).not.toContain('ENGRAMIA_MAINTENANCE');
    expect(await w.bot.producer!.store.readLock('production')).toBeUndefined();
    await w.slack.waitFor(() => text(w.slack.findMessage(OPS_CHANNEL, gate.ts)?.blocks).includes('Closed: the job was cancelled'), { timeoutMs: 5000 });
    // A press on the stale buttons changes nothing.
    await sendBlockAction(`${w.botUrl}/slack/events`, SIGNING_SECRET, { user: BOB, channel: OPS_CHANNEL, message: gate, action_id: 'maintenance.enable' });
    await w.slack.waitFor(() => text(w.slack.ephemerals.filter((e) => e.user === BOB).at(-1)?.blocks).includes('has ended'), { timeoutMs: 5000 });
  });

  it("lets an admin cancel someone else's job; another deployer may not", async () => {
    const w = (world = await startWorld({ slackLimits: false, access: { deployers: ['U01ALICE', 'U04DAN'] } }));
    await w.slash('deploy 0.6.1', { user_id: 'U04DAN' });
    await w.slack.waitFor(() => w.slack.messagesIn(OPS_CHANNEL).find((m) => findButton(m.blocks as Block[], 'maintenance.enable')), { timeoutMs: 20_000 });
    const lock = (await w.bot.producer!.store.readLock('production'))!;
    const alice = await w.slash(`cancel ${lock.jobId}`);
    expect(text(alice.body.blocks)).toContain(`You may not cancel job ${lock.jobId}`);
    // Carol is an admin (not a deployer): she may cancel anyone's job, but not deploy.
    const deploy = await w.slash('deploy 0.6.1', { user_id: CAROL });
    expect(text(deploy.body.blocks)).toContain('You may not run `deploy`');
    const admin = await w.slash('cancel', { user_id: CAROL });
    expect(text(admin.body.blocks)).toContain('stops at its next safe point');
    await w.slack.waitFor(() => w.slack.messagesIn(OPS_CHANNEL).find((m) => text(m.blocks).includes('cancelled by U03CAROL')), { timeoutMs: 20_000 });
  });
});

describe('/engramia unlock', () => {
  it('is for admins, names the holder it removed, and frees the environment', async () => {
    const w = (world = await startWorld({ slackLimits: false }));
    await parkedDeploy(w);
    const alice = await w.slash('unlock production');
    expect(text(alice.body.blocks)).toContain('You may not run `unlock`');
    expect(await w.bot.producer!.store.readLock('production')).toBeDefined();
    const noEnv = await w.slash('unlock', { user_id: CAROL });
    expect(text(noEnv.body.blocks)).toContain('needs the environment named explicitly');
    const carol = await w.slash('unlock production', { user_id: CAROL });
    expect(text(carol.body.blocks)).toMatch(/production unlocked\. It was held by deploy 0\.6\.1 \(<@U01ALICE>, \d+ s ago\), job `deploy-/);
    expect(await w.bot.producer!.store.readLock('production')).toBeUndefined();
    const unlock = (await w.bot.producer!.store.readAudit(50)).find((e) => e.type === 'unlock');
    expect(unlock).toMatchObject({ user: CAROL, env: 'production', heldBy: 'U01ALICE' });
  });
});

describe('the environment lock is re-checked before each step', () => {
  const finalCard = (w: World) =>
    w.slack.waitFor(() => w.slack.messagesIn(OPS_CHANNEL).find((m) => (!m.thread_ts || m.thread_ts === m.ts) && /❌ failed/.test(text(m.blocks))), { timeoutMs: 20_000, description: 'the failed card' });

  it("a job whose lock an admin took away stops before its next step, says why and what the host runs, and leaves the new holder's lock alone", async () => {
    const w = (world = await startWorld({ slackLimits: false }));
    const gate = await parkedDeploy(w);
    await w.slash('unlock production', { user_id: CAROL });
    // Someone else's job takes production meanwhile.
    const other = { jobId: 'deploy-other', user: 'U04DAN', command: 'deploy 0.6.2', startedAt: new Date().toISOString(), channel: OPS_CHANNEL };
    expect(await w.bot.producer!.store.acquireLock('production', other, 60_000)).toEqual({ ok: true });
    await sendBlockAction(`${w.botUrl}/slack/events`, SIGNING_SECRET, { user: BOB, channel: OPS_CHANNEL, message: gate, action_id: 'maintenance.skip' });
    const card = text((await finalCard(w)).blocks);
    expect(card).toContain('this job no longer holds the lock on production: it is now held by deploy 0.6.2 (U04DAN, job deploy-other)');
    expect(card).toContain('runs `0.6.0`');
    // What it did is on the card: the steps before the stop, done; nothing after.
    expect(card).toMatch(/✅ Check for database migrations/);
    expect(readCommandLog(w.deployPath).some((r: any) => r.argv.includes('up'))).toBe(false);
    expect(await w.bot.producer!.store.readLock('production')).toMatchObject({ jobId: 'deploy-other' });
    expect(w.slack.messagesIn(OPS_CHANNEL).some((m) => findButton(m.blocks as Block[], 'rollback.approve'))).toBe(false);
    await w.slack.waitFor(() => w.slack.messagesIn(OPS_CHANNEL).some((m) => m.thread_ts && m.thread_ts !== m.ts && text(m.blocks).includes('🔒') && text(m.blocks).includes('no longer holds the lock') && text(m.blocks).includes('runs `0.6.0`')) || undefined, { timeoutMs: 5000, description: 'the thread to say why it stopped' });
  });

  it('a lock gone while the job was parked (expired during a Redis outage) stops it too', async () => {
    const w = (world = await startWorld({ slackLimits: false }));
    const gate = await parkedDeploy(w);
    // As if the key had expired: nobody holds production now.
    await w.bot.producer!.store.forceUnlock('production');
    await sendBlockAction(`${w.botUrl}/slack/events`, SIGNING_SECRET, { user: BOB, channel: OPS_CHANNEL, message: gate, action_id: 'maintenance.enable' });
    const card = text((await finalCard(w)).blocks);
    expect(card).toContain('nobody holds it now');
    expect(readCommandLog(w.deployPath).some((r: any) => r.argv.includes('up'))).toBe(false);
    expect(readEnvFile(w.deployPath)).not.toContain('ENGRAMIA_MAINTENANCE');
    expect((await w.bot.producer!.store.readAudit(100)).some((e) => e.type === 'lock' && e.action === 'lost')).toBe(true);
  });
});
