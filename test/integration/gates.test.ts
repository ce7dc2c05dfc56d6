import { afterEach, describe, expect, it } from 'vitest';
import { findButton, sendBlockAction } from '../world/slack-requests.js';
import { readCommandLog } from '../world/sim/host.mjs';
import { OPS_CHANNEL, OTHER_CHANNEL, SIGNING_SECRET, startWorld, type World } from './harness.js';
import { text, BOB, CAROL, type Block } from './blocks.js';


let world: World | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});


async function gateOf(w: World) {
  await w.slash('deploy 0.6.1');
  return structuredClone(await w.slack.waitFor(() => w.slack.messagesIn(OPS_CHANNEL).find((m) => findButton(m.blocks as Block[], 'maintenance.enable')), { timeoutMs: 20_000 }));
}

function press(w: World, user: string, message: any, actionId: string, retryNum?: number) {
  return sendBlockAction(`${w.botUrl}/slack/events`, SIGNING_SECRET, { user, channel: OPS_CHANNEL, message, action_id: actionId }, retryNum ? { retryNum } : {});
}

const ups = (w: World) => readCommandLog(w.deployPath).filter((r: any) => r.argv.includes('up')).map((r: any) => `${r.env.IMAGE_TAG} ${r.argv.join(' ')}`);

describe('gates cannot be fooled', () => {
  it('two approvers at the same instant, a double click and a Slack retry give one decision and one action', async () => {
    const w = (world = await startWorld({ slackLimits: false, envExtra: { verifySettleSeconds: 5 } }));
    const gate = await gateOf(w);
    const results = await Promise.all([
      press(w, BOB, gate, 'maintenance.enable'),
      press(w, CAROL, gate, 'maintenance.skip'),
      press(w, BOB, gate, 'maintenance.enable'),
      press(w, BOB, gate, 'maintenance.enable', 1),
    ]);
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    await w.slack.waitFor(() => w.slack.messagesIn(OPS_CHANNEL).find((m) => (!m.thread_ts || m.thread_ts === m.ts) && /succeeded/.test(text(m.blocks))), { timeoutMs: 20_000 });
    const gates = (await w.bot.producer!.store.readAudit(200)).filter((e) => e.type === 'gate');
    expect(gates.filter((e) => e.outcome === 'decided')).toHaveLength(1);
    expect(gates.filter((e) => e.outcome === 'refused')).toHaveLength(3);
    const winner = gates.find((e) => e.outcome === 'decided')!;
    // Exactly the winner's choice happened on the host, once.
    const onOld = ups(w).filter((l) => l.startsWith('0.6.0'));
    expect(onOld).toHaveLength(winner.action === 'maintenance.enable' ? 1 : 0);
    expect(ups(w).filter((l) => l.includes('caddy'))).toHaveLength(1);
    // The losers were told who decided.
    const told = w.slack.ephemerals.map((e) => text(e.blocks)).filter((t) => t.includes('Already decided'));
    expect(told.length).toBe(3);
    expect(told.every((t) => t.includes(`<@${winner.user}>`))).toBe(true);
  });

  it('an expired gate says so and changes nothing', async () => {
    const w = (world = await startWorld({ slackLimits: false, envExtra: { gateTimeoutSeconds: 5, verifySettleSeconds: 5 } }));
    const gate = await gateOf(w);
    await w.slack.waitFor(() => w.slack.messagesIn(OPS_CHANNEL).find((m) => (!m.thread_ts || m.thread_ts === m.ts) && /succeeded/.test(text(m.blocks))), { timeoutMs: 30_000 });
    await press(w, BOB, gate, 'maintenance.enable');
    await w.slack.waitFor(() => text(w.slack.ephemerals.filter((e) => e.user === BOB).at(-1)?.blocks).includes('expired'), { timeoutMs: 5000 });
    expect(ups(w).filter((l) => l.startsWith('0.6.0'))).toEqual([]);
  });

  it('a button whose value was tampered with is refused', async () => {
    const w = (world = await startWorld({ slackLimits: false }));
    const gate = await gateOf(w);
    const value = JSON.parse(findButton(gate.blocks as Block[], 'maintenance.enable')!.element.value) as { j: string; g: string; h: string };
    const forged = JSON.stringify({ ...value, h: '0000000000000000' });
    await sendBlockAction(`${w.botUrl}/slack/events`, SIGNING_SECRET, { user: BOB, channel: OPS_CHANNEL, message: gate, action_id: 'maintenance.enable', value: forged });
    await w.slack.waitFor(() => text(w.slack.ephemerals.filter((e) => e.user === BOB).at(-1)?.blocks).includes('The plan changed'), { timeoutMs: 5000 });
    await sendBlockAction(`${w.botUrl}/slack/events`, SIGNING_SECRET, { user: BOB, channel: OPS_CHANNEL, message: gate, action_id: 'maintenance.enable', value: 'not json' });
    await w.slack.waitFor(() => text(w.slack.ephemerals.filter((e) => e.user === BOB).at(-1)?.blocks).includes('not one the bot understands'), { timeoutMs: 5000 });
    expect(await w.bot.producer!.store.readGate(value.j, value.g)).toBeUndefined();
  });
});

describe('hostile input never reaches the host', () => {
  it('refuses every hostile command before anything is queued or run', async () => {
    const w = (world = await startWorld({ slackLimits: false }));
    const hostile = ['deploy 0.6.1;id', 'deploy $(id)', 'deploy `id`', 'deploy 0.6.1\nid', "health --env 'x;y'", 'deploy ０.６.１', `deploy ${'a'.repeat(10_000)}`, 'migrate downgrade 031;rm', 'logs --tail 1;id'];
    for (const t of hostile) {
      const ack = await w.slash(t);
      expect(ack.status).toBe(200);
      expect(ack.body.text, t).not.toMatch(/Deploying|Checking|Reading/);
    }
    await new Promise((r) => setTimeout(r, 300));
    expect(readCommandLog(w.deployPath)).toEqual([]);
    expect(w.slack.callsTo('chat.postMessage')).toEqual([]);
    expect(await w.bot.producer!.store.readLock('production')).toBeUndefined();
  });
});

describe('requireApproval', () => {
  it('holds the whole plan until an approver other than the requester says go', async () => {
    const w = (world = await startWorld({ slackLimits: false, envExtra: { requireApproval: true, verifySettleSeconds: 5 } }));
    await w.slash('deploy 0.6.1 --no-maintenance');
    const gate = structuredClone(await w.slack.waitFor(() => w.slack.messagesIn(OPS_CHANNEL).find((m) => findButton(m.blocks as Block[], 'deploy.approve')), { timeoutMs: 20_000 }));
    expect(text(gate.blocks)).toContain('IMAGE_TAG=0.6.1 docker compose -f docker-compose.prod.yml pull engramia-api');
    // Nothing ran on the host, not even the read-only checks.
    expect(readCommandLog(w.deployPath)).toEqual([]);
    await press(w, 'U01ALICE', gate, 'deploy.approve');
    await w.slack.waitFor(() => text(w.slack.ephemerals.filter((e) => e.user === 'U01ALICE').at(-1)?.blocks).includes('Only approvers'), { timeoutMs: 5000 });
    await press(w, BOB, gate, 'deploy.approve');
    await w.slack.waitFor(() => w.slack.messagesIn(OPS_CHANNEL).find((m) => (!m.thread_ts || m.thread_ts === m.ts) && /succeeded/.test(text(m.blocks))), { timeoutMs: 20_000 });
  });

  it('a cancelled plan stops before anything changed', async () => {
    const w = (world = await startWorld({ slackLimits: false, envExtra: { requireApproval: true } }));
    await w.slash('deploy 0.6.1 --no-maintenance');
    const gate = structuredClone(await w.slack.waitFor(() => w.slack.messagesIn(OPS_CHANNEL).find((m) => findButton(m.blocks as Block[], 'deploy.cancel')), { timeoutMs: 20_000 }));
    await press(w, BOB, gate, 'deploy.cancel');
    const c = await w.slack.waitFor(() => w.slack.messagesIn(OPS_CHANNEL).find((m) => (!m.thread_ts || m.thread_ts === m.ts) && /cancelled/.test(text(m.blocks))), { timeoutMs: 20_000 });
    expect(text(c.blocks)).toContain('the plan was cancelled by U02BOB');
    expect(readCommandLog(w.deployPath).filter((r: any) => !r.argv.includes('ps'))).toEqual([]);
    expect(await w.bot.producer!.store.readLock('production')).toBeUndefined();
  });
});

describe('access lists may name Slack user groups', () => {
  it('lets a member of an approver group decide, and nobody outside it', async () => {
    const w = (world = await startWorld({
      slackLimits: false,
      envExtra: { verifySettleSeconds: 5 },
      access: { approvers: ['S0OPSLEADS'], deployers: ['S0DEPLOYERS'] },
      userGroups: { S0OPSLEADS: ['U05DAVE'], S0DEPLOYERS: ['U01ALICE'] },
    }));
    const gate = await gateOf(w);
    await press(w, BOB, gate, 'maintenance.enable');
    await w.slack.waitFor(() => text(w.slack.ephemerals.filter((e) => e.user === BOB).at(-1)?.blocks).includes('Only approvers'), { timeoutMs: 5000 });
    await press(w, 'U05DAVE', gate, 'maintenance.skip');
    await w.slack.waitFor(() => w.slack.messagesIn(OPS_CHANNEL).find((m) => (!m.thread_ts || m.thread_ts === m.ts) && /succeeded/.test(text(m.blocks))), { timeoutMs: 20_000 });
    expect(w.slack.callsTo('usergroups.users.list').length).toBeGreaterThan(0);
  });
});

describe('replays', () => {
  it('a replayed slash command (same signed request) is refused and runs nothing again', async () => {
    const w = (world = await startWorld({ slackLimits: false }));
    const fields = { trigger_id: '12345.67890.replayme' };
    const first = await w.slash('health', fields);
    expect(first.body.text).toMatch(/Checking health of production/);
    const again = await w.slash('health', fields);
    expect(again.body.text).toContain('already handled');
    await w.slack.waitFor(() => w.slack.callsTo('chat.postMessage').length >= 1 || undefined, { timeoutMs: 20_000 });
    await new Promise((r) => setTimeout(r, 500));
    expect(w.slack.callsTo('chat.postMessage')).toHaveLength(1);
    expect((await w.bot.producer!.store.readAudit(20)).some((e) => e.type === 'refusal' && e.code === 'REPLAY')).toBe(true);
  });
});

describe('buttons obey slack.allowedChannels', () => {
  it('a signed press from another channel or a DM is refused, audited, and decides nothing', async () => {
    const w = (world = await startWorld({ slackLimits: false }));
    const gate = await gateOf(w);
    for (const channel of [OTHER_CHANNEL, 'D0DIRECT1']) {
      const res = await sendBlockAction(`${w.botUrl}/slack/events`, SIGNING_SECRET, { user: BOB, channel, message: gate, action_id: 'maintenance.enable' });
      expect(res.status).toBe(200);
    }
    const refused = (await w.slack.waitFor(
      async () => {
        const events = (await w.bot.producer!.store.readAudit(100)).filter((e) => e.type === 'gate' && e.outcome === 'refused');
        return events.length >= 2 ? events : undefined;
      },
      { timeoutMs: 5000, description: 'both presses audited' },
    ))!;
    expect(refused.map((e) => [e.user, e.channel, e.transport])).toEqual([
      [BOB, OTHER_CHANNEL, 'slack'],
      [BOB, 'D0DIRECT1', 'slack'],
    ]);
    expect(String(refused[0]!.answer)).toContain('Buttons are not accepted in this channel');
    expect(String(refused[1]!.answer)).toContain('Buttons are not accepted in direct messages');
    const value = JSON.parse(findButton(gate.blocks as Block[], 'maintenance.enable')!.element.value) as { j: string; g: string };
    expect(await w.bot.producer!.store.readGate(value.j, value.g)).toBeUndefined();
    expect(ups(w)).toEqual([]);
    // From the ops channel the same press decides.
    await press(w, BOB, gate, 'maintenance.enable');
    await w.slack.waitFor(() => w.slack.messagesIn(OPS_CHANNEL).find((m) => (!m.thread_ts || m.thread_ts === m.ts) && /succeeded/.test(text(m.blocks))), { timeoutMs: 20_000 });
  });
});

describe('permission before confirmation', () => {
  it('someone who may not decide a downgrade is told so at the press, and no "are you sure?" is ever shown to them', async () => {
    const w = (world = await startWorld({ slackLimits: false }));
    await w.slash('migrate downgrade -1');
    const gate = structuredClone(await w.slack.waitFor(() => w.slack.messagesIn(OPS_CHANNEL).find((m) => findButton(m.blocks as Block[], 'downgrade.confirm')), { timeoutMs: 20_000 }));
    // No client-side confirm: Slack would show it before the bot could say no.
    expect(findButton(gate.blocks as Block[], 'downgrade.confirm')!.element.confirm).toBeUndefined();
    await sendBlockAction(`${w.botUrl}/slack/events`, SIGNING_SECRET, { user: 'U01ALICE', channel: OPS_CHANNEL, message: gate, action_id: 'downgrade.confirm', trigger_id: w.slack.triggerId() });
    await w.slack.waitFor(() => text(w.slack.ephemerals.filter((e) => e.user === 'U01ALICE').at(-1)?.blocks).includes('Only approvers'), { timeoutMs: 5000 });
    expect(w.slack.callsTo('views.open')).toEqual([]);
    // An approver gets the question, in a modal, only after the checks.
    await sendBlockAction(`${w.botUrl}/slack/events`, SIGNING_SECRET, { user: BOB, channel: OPS_CHANNEL, message: gate, action_id: 'downgrade.confirm', trigger_id: w.slack.triggerId() });
    const opened = await w.slack.waitFor(() => w.slack.views.at(-1), { timeoutMs: 5000, description: 'the confirmation modal' });
    expect(text(opened.view.blocks)).toContain('Data added by the newer revisions is dropped');
    expect(readCommandLog(w.deployPath).some((r: any) => r.argv.includes('downgrade'))).toBe(false);
    expect(w.slack.invalidBlockCalls()).toEqual([]);
  });
});
