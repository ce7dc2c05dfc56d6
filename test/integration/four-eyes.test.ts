// Four-eyes covers the change itself: on a `fourEyes` environment every state-changing runbook waits, before its
// first change on the host, for a decision by someone other than the requester. Through the real chain: signed
// Slack requests, Bolt, BullMQ, the worker, SSH, and the simulated host's own record of what ran.
import { afterEach, describe, expect, it } from 'vitest';
import { findButton, sendBlockAction } from '../world/slack-requests.js';
import { readCommandLog, readEnvFile, runningApiTag, setRemoteTag } from '../world/sim/host.mjs';
import { ALICE, OPS_CHANNEL, SIGNING_SECRET, startWorld, type World, type WorldOptions } from './harness.js';
import { BOB, blockText, type Block } from './blocks.js';

let world: World | undefined;
afterEach(async (ctx) => {
  if (ctx.task.result?.state === 'fail' && world) console.error(`--- bot log (last 30) ---\n${world.logs.slice(-30).join('')}`);
  await world?.close();
  world = undefined;
});

// Alice may approve too: a refusal of her own press is four-eyes at work, not a missing role.
const ACCESS = { deployers: [ALICE], approvers: [ALICE, BOB], admins: ['U03CAROL'] };

async function fourEyesWorld(opts: WorldOptions = {}): Promise<World> {
  world = await startWorld({ slackLimits: false, fourEyes: true, access: ACCESS, ...opts, envExtra: { verifySettleSeconds: 5, ...(opts.envExtra ?? {}) } });
  return world;
}

const cards = (w: World) => w.slack.messagesIn(OPS_CHANNEL).filter((m) => !m.thread_ts || m.thread_ts === m.ts);
const approvals = (w: World) => w.slack.messagesIn(OPS_CHANNEL).filter((m) => findButton(m.blocks as Block[], 'deploy.approve'));

async function finalCard(w: World, title: string, outcome: RegExp) {
  return w.slack.waitFor(
    () => cards(w).find((m) => blockText(m.blocks as Block[]).includes(title) && outcome.test(blockText(m.blocks as Block[]))),
    { timeoutMs: 30_000, description: `card "${title}" ${outcome}` },
  );
}

/** The `n`-th plan approval this world has posted (1-based), once it is there. */
async function nthApproval(w: World, n: number) {
  const seen = () => w.slack.messagesIn(OPS_CHANNEL).filter((m) => m.thread_ts && blockText(m.blocks as Block[]).includes('Approve:'));
  return structuredClone(await w.slack.waitFor(() => seen()[n - 1], { timeoutMs: 30_000, description: `plan approval #${n}` }));
}

async function press(w: World, user: string, message: unknown, actionId = 'deploy.approve') {
  const res = await sendBlockAction(`${w.botUrl}/slack/events`, SIGNING_SECRET, { user, channel: OPS_CHANNEL, message: structuredClone(message) as never, action_id: actionId });
  expect(res.status).toBe(200);
}

const lastEphemeral = (w: World, user: string) => blockText(w.slack.ephemerals.filter((e) => e.user === user).at(-1)?.blocks as Block[]);

/** `up` commands the host ran, with the tag each was given. */
const ups = (w: World) => readCommandLog(w.deployPath).filter((r: any) => r.phase !== 'start' && r.argv.includes('up')).map((r: any) => `${r.env?.IMAGE_TAG} ${r.argv.slice(r.argv.indexOf('up')).join(' ')}`);

/** The requester's own press is refused and changes nothing; then Bob's go lets the job continue. */
async function refuseThenApprove(w: World, gate: unknown) {
  await press(w, ALICE, gate);
  await w.slack.waitFor(() => lastEphemeral(w, ALICE).includes('someone else must decide') || undefined, { timeoutMs: 5000, description: "Alice's refusal" });
  await press(w, BOB, gate);
}

describe('four-eyes: no change by one person alone', () => {
  it('deploy --no-maintenance waits for a second person before its first change; a rollback without a downgrade does too', async () => {
    const w = await fourEyesWorld();
    // 0.6.2 brings no migration: the rollback to 0.6.0 afterwards needs no downgrade gate.
    setRemoteTag(w.deployPath, '0.6.2', { head: '031' });
    await w.slash('deploy 0.6.2 --no-maintenance');
    const gate = await nthApproval(w, 1);
    expect(blockText(gate.blocks as Block[])).toContain('Approve: deploy 0.6.2 to production?');
    expect(blockText(gate.blocks as Block[])).toContain('Four-eyes on production:* someone other than <@U01ALICE> approves before anything on the host changes.');
    await w.slack.waitFor(() => cards(w).some((m) => blockText(m.blocks as Block[]).includes('waiting for a decision')) || undefined, { timeoutMs: 5000 });
    // Read, log in and pull only: nothing that runs or is stored on the host has changed.
    expect(ups(w)).toEqual([]);
    expect(readEnvFile(w.deployPath)).not.toContain('IMAGE_TAG=0.6.2');
    await refuseThenApprove(w, gate);
    const c = await finalCard(w, 'Deploy 0.6.2', /succeeded/);
    expect(blockText(c.blocks as Block[])).toMatch(/A second person approves \(four-eyes\)\s+_[^_]*approved by U02BOB_/);
    expect(ups(w)).toEqual(['0.6.2 up -d engramia-api caddy']);

    await w.slash('rollback');
    const again = await nthApproval(w, 2);
    expect(blockText(again.blocks as Block[])).toContain('Approve: roll production back to 0.6.0?');
    // Maintenance on is the rollback's first change: not yet.
    expect(readEnvFile(w.deployPath)).not.toContain('ENGRAMIA_MAINTENANCE');
    expect(ups(w)).toEqual(['0.6.2 up -d engramia-api caddy']);
    await refuseThenApprove(w, again);
    await finalCard(w, 'Roll back production to 0.6.0', /succeeded/);
    expect(runningApiTag(w.deployPath)).toBe('0.6.0');
    expect(w.slack.messagesIn(OPS_CHANNEL).some((m) => findButton(m.blocks as Block[], 'downgrade.confirm'))).toBe(false);
    expect(w.slack.invalidBlockCalls()).toEqual([]);
  });

  it('deploy --maintenance and `maintenance on` wait too; maintenance goes on only after the go', async () => {
    const w = await fourEyesWorld();
    await w.slash('deploy 0.6.1 --maintenance');
    const gate = await nthApproval(w, 1);
    expect(ups(w)).toEqual([]);
    expect(readEnvFile(w.deployPath)).not.toContain('ENGRAMIA_MAINTENANCE');
    await refuseThenApprove(w, gate);
    await finalCard(w, 'Deploy 0.6.1', /succeeded/);
    // Maintenance went on (engramia-api re-created on the running 0.6.0) only after the go.
    expect(ups(w)[0]).toBe('0.6.0 up -d engramia-api');

    await w.slash('maintenance on');
    const on = await nthApproval(w, 2);
    expect(blockText(on.blocks as Block[])).toContain('Approve: maintenance on for production?');
    const before = ups(w).length;
    expect(readEnvFile(w.deployPath)).not.toContain('ENGRAMIA_MAINTENANCE');
    await refuseThenApprove(w, on);
    await finalCard(w, 'Maintenance on for production', /succeeded/);
    expect(readEnvFile(w.deployPath)).toContain('ENGRAMIA_MAINTENANCE=true');
    expect(ups(w)).toHaveLength(before + 1);
  });

  it('an expired maintenance question is nobody\'s decision: the plan approval is asked before the first change', async () => {
    const w = await fourEyesWorld({ envExtra: { gateTimeoutSeconds: 5 } });
    await w.slash('deploy 0.6.1');
    await w.slack.waitFor(() => w.slack.messagesIn(OPS_CHANNEL).find((m) => findButton(m.blocks as Block[], 'maintenance.enable')), { timeoutMs: 20_000 });
    // Nobody answers the maintenance question; it runs out after 5 s and four-eyes still wants a person.
    const gate = await nthApproval(w, 1);
    expect(ups(w)).toEqual([]);
    await press(w, BOB, gate);
    const c = await finalCard(w, 'Deploy 0.6.1', /succeeded/);
    expect(blockText(c.blocks as Block[])).toContain('approved by U02BOB');
    expect(ups(w)).toEqual(['0.6.1 up -d engramia-api caddy']);
  });

  it('with fourEyes and requireApproval off, no runbook waits for anyone', async () => {
    const w = (world = await startWorld({ slackLimits: false, fourEyes: false, access: ACCESS, envExtra: { verifySettleSeconds: 5 } }));
    setRemoteTag(w.deployPath, '0.6.2', { head: '031' });
    await w.slash('deploy 0.6.2 --no-maintenance');
    await finalCard(w, 'Deploy 0.6.2', /succeeded/);
    await w.slash('rollback');
    await finalCard(w, 'Roll back production to 0.6.0', /succeeded/);
    await w.slash('deploy 0.6.2 --maintenance');
    await w.slack.waitFor(() => cards(w).filter((m) => blockText(m.blocks as Block[]).includes('Deploy 0.6.2') && /succeeded/.test(blockText(m.blocks as Block[]))).length === 2 || undefined, { timeoutMs: 30_000 });
    await w.slash('maintenance on');
    await finalCard(w, 'Maintenance on for production', /succeeded/);
    expect(approvals(w)).toEqual([]);
    expect(w.slack.messagesIn(OPS_CHANNEL).some((m) => blockText(m.blocks as Block[]).includes('Approve:'))).toBe(false);
    expect(readEnvFile(w.deployPath)).toContain('ENGRAMIA_MAINTENANCE=true');
  });
});
