import { afterEach, describe, expect, it } from 'vitest';
import { findButton, sendBlockAction } from '../world/slack-requests.js';
import { OPS_CHANNEL, SIGNING_SECRET, startWorld, type World } from './harness.js';
import { text, type Block } from './blocks.js';

let world: World | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});


describe('audit trail', () => {
  it('records commands, refusals, gate presses, every step with its exit code and the lock, in Redis and the log', async () => {
    const w = (world = await startWorld({ slackLimits: false, fourEyes: true, envExtra: { verifySettleSeconds: 5 } }));
    await w.slash('deploy 0.6.1;id');
    await w.slash('deploy 0.6.1');
    const gate = await w.slack.waitFor(() => w.slack.messagesIn(OPS_CHANNEL).find((m) => findButton(m.blocks as Block[], 'maintenance.skip')), { timeoutMs: 20_000 });
    await sendBlockAction(`${w.botUrl}/slack/events`, SIGNING_SECRET, { user: 'U01ALICE', channel: OPS_CHANNEL, message: gate, action_id: 'maintenance.skip' });
    await sendBlockAction(`${w.botUrl}/slack/events`, SIGNING_SECRET, { user: 'U02BOB', channel: OPS_CHANNEL, message: gate, action_id: 'maintenance.skip' });
    await w.slack.waitFor(() => w.slack.messagesIn(OPS_CHANNEL).find((m) => (!m.thread_ts || m.thread_ts === m.ts) && /succeeded/.test(text(m.blocks))), { timeoutMs: 20_000 });
    const audit = await w.bot.producer!.store.readAudit(200);

    const refusal = audit.find((e) => e.type === 'refusal');
    expect(refusal).toMatchObject({ user: 'U01ALICE', command: 'deploy', code: 'COMMAND_INVALID', text: 'deploy 0.6.1;id' });
    expect(audit.find((e) => e.type === 'command' && e.command === 'deploy')).toMatchObject({ user: 'U01ALICE', text: 'deploy 0.6.1' });
    const jobId = audit.find((e) => e.type === 'lock' && e.action === 'acquired')?.jobId;
    expect(jobId).toMatch(/^deploy-/);
    expect(audit.filter((e) => e.type === 'gate').map((e) => [e.user, e.outcome])).toEqual([
      ['U01ALICE', 'refused'],
      ['U02BOB', 'decided'],
    ]);
    const steps = audit.filter((e) => e.type === 'step' && e.jobId === jobId && e.status !== 'started');
    expect(steps.map((e) => e.step)).toEqual(['approval', 'preflight', 'login', 'pull', 'registry-logout', 'inspect', 'maintenance-decision', 'four-eyes', 'maintenance-on', 'up', 'migrate', 'maintenance-off', 'pin', 'prune', 'verify']);
    expect(steps.find((e) => e.step === 'pull')).toMatchObject({ status: 'done', exitCode: 0 });
    // Bob's maintenance answer came before the first change: it is the second person four-eyes asks for.
    expect(steps.find((e) => e.step === 'four-eyes')).toMatchObject({ status: 'done' });
    // Every event says where it came from; only the console adds an operating-system user.
    expect(audit.every((e) => e.transport === 'slack' && e.osUser === undefined)).toBe(true);
    expect(audit.find((e) => e.type === 'gate' && e.outcome === 'refused')).toMatchObject({ channel: OPS_CHANNEL });
    expect(audit.find((e) => e.type === 'lock' && e.action === 'released')).toMatchObject({ jobId, outcome: 'succeeded' });
    // The same events are in the JSON log.
    expect(w.logs.filter((l) => l.includes('"audit":{')).length).toBeGreaterThanOrEqual(audit.length);
  });
});
