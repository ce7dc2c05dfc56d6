import { afterEach, describe, expect, it } from 'vitest';
import { findButton, sendBlockAction, sendViewSubmission } from '../world/slack-requests.js';
import { readCommandLog, readState } from '../world/sim/host.mjs';
import { OPS_CHANNEL, SIGNING_SECRET, startWorld, type World } from './harness.js';
import { text, BOB, CAROL, type Block } from './blocks.js';


let world: World | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});


async function press(w: World, user: string, actionId: string) {
  const msg = await w.slack.waitFor(() => w.slack.messagesIn(OPS_CHANNEL).find((m) => findButton(m.blocks as Block[], actionId)), { timeoutMs: 20_000, description: actionId });
  const res = await sendBlockAction(`${w.botUrl}/slack/events`, SIGNING_SECRET, { user, channel: OPS_CHANNEL, message: msg, action_id: actionId, trigger_id: w.slack.triggerId() });
  expect(res.status).toBe(200);
  return msg;
}

async function card(w: World, outcome: RegExp) {
  return w.slack.waitFor(
    () => w.slack.messagesIn(OPS_CHANNEL).find((m) => (!m.thread_ts || m.thread_ts === m.ts) && text(m.blocks).includes('Downgrade the production database') && outcome.test(text(m.blocks))),
    { timeoutMs: 20_000, description: `downgrade card ${outcome}` },
  );
}

const downgrades = (w: World) => readCommandLog(w.deployPath).filter((r: any) => r.argv.includes('downgrade')).map((r: any) => r.argv.slice(-2).join(' '));

describe('/engramia migrate downgrade', () => {
  it('resolves -1 to the exact revision before asking, snapshots first, and runs that exact downgrade', async () => {
    const w = (world = await startWorld({ slackLimits: false }));
    await w.slash('migrate downgrade -1');
    const gate = await press(w, CAROL, 'downgrade.confirm');
    // The press passed every check; only now is Carol asked "are you sure?" (a modal without a word to type).
    const opened = await w.slack.waitFor(() => w.slack.views.at(-1), { timeoutMs: 5000, description: 'the confirmation modal' });
    expect(opened.view.blocks.some((b: { type: string }) => b.type === 'input')).toBe(false);
    expect(downgrades(w)).toEqual([]);
    expect((await sendViewSubmission(`${w.botUrl}/slack/events`, SIGNING_SECRET, { user: CAROL, view: opened.view })).status).toBe(200);
    expect(text(gate.blocks)).toContain('031 → 030');
    expect(text(gate.blocks)).toMatch(/pre_rollback_\d{12}\.dump/);
    await card(w, /succeeded/);
    expect(downgrades(w)).toEqual(['downgrade 030']);
    expect(readState(w.deployPath).db.revision).toBe('030');
    const lines = readCommandLog(w.deployPath).map((r: any) => r.argv.join(' '));
    expect(lines.findIndex((l: string) => l.includes('pg_dump'))).toBeLessThan(lines.findIndex((l: string) => l.includes('downgrade 030')));
  });

  it('base needs the environment name typed in a modal; a wrong word changes nothing', async () => {
    const w = (world = await startWorld({ slackLimits: false }));
    await w.slash('migrate downgrade base');
    const gate = await press(w, BOB, 'downgrade.confirm');
    expect(text(gate.blocks)).toContain('drops *every* table');
    const opened = await w.slack.waitFor(() => w.slack.views.at(-1), { timeoutMs: 5000, description: 'a modal' });
    expect(text(opened.view.blocks)).toContain('Type production to confirm');
    // The button alone decided nothing.
    expect(await w.bot.producer!.store.readGate((JSON.parse(findButton(gate.blocks as Block[], 'downgrade.confirm')!.element.value) as { j: string }).j, 'downgrade')).toBeUndefined();

    const wrong = await sendViewSubmission(`${w.botUrl}/slack/events`, SIGNING_SECRET, { user: BOB, view: opened.view, values: { typed: { typed_value: 'prod' } } });
    expect(wrong.status).toBe(200);
    expect(wrong.body).toMatchObject({ response_action: 'errors', errors: { typed: expect.stringContaining('Type production exactly') } });
    expect(downgrades(w)).toEqual([]);

    const right = await sendViewSubmission(`${w.botUrl}/slack/events`, SIGNING_SECRET, { user: BOB, view: opened.view, values: { typed: { typed_value: 'production' } } });
    expect(right.status).toBe(200);
    await card(w, /succeeded/);
    expect(downgrades(w)).toEqual(['downgrade base']);
    expect(readState(w.deployPath).db.revision).toBeNull();
    expect(text(w.slack.findMessage(OPS_CHANNEL, gate.ts)?.blocks)).toContain(`decided by <@${BOB}>`);
  });

  it('refuses a revision that is not below the current one, after the snapshot, without asking', async () => {
    const w = (world = await startWorld({ slackLimits: false }));
    await w.slash('migrate downgrade 032');
    const c = await card(w, /failed/);
    expect(text(c.blocks)).toContain('032 is not a revision below the current one (031)');
    expect(downgrades(w)).toEqual([]);
    expect(w.slack.messagesIn(OPS_CHANNEL).some((m) => findButton(m.blocks as Block[], 'downgrade.confirm'))).toBe(false);
  });

  it('writes the snapshot to backupPath when one is configured', async () => {
    const { mkdtempSync, readdirSync, readFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { expectedPgDump } = await import('../world/sim/host.mjs');
    const backups = mkdtempSync(join(tmpdir(), 'chatops-backups-'));
    const w = (world = await startWorld({ slackLimits: false, envExtra: { backupPath: backups } }));
    await w.slash('migrate downgrade -1');
    const gate = await w.slack.waitFor(() => w.slack.messagesIn(OPS_CHANNEL).find((m) => findButton(m.blocks as Block[], 'downgrade.confirm')), { timeoutMs: 20_000 });
    const files = readdirSync(backups);
    expect(files).toHaveLength(1);
    expect(text(gate.blocks)).toContain(join(backups, files[0]!));
    expect(readFileSync(join(backups, files[0]!)).equals(expectedPgDump(w.deployPath))).toBe(true);
    expect(readdirSync(w.deployPath).filter((f) => f.endsWith('.dump'))).toEqual([]);
  });

  it('never overwrites an earlier snapshot taken in the same minute', async () => {
    const { readdirSync, readFileSync, writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { snapshotName } = await import('../../src/runbooks/rollback.js');
    const w = (world = await startWorld({ slackLimits: false }));
    // An earlier snapshot with the name this minute would get.
    const name = snapshotName();
    writeFileSync(join(w.deployPath, name), 'PGDMP earlier snapshot');
    await w.slash('migrate downgrade -1');
    await w.slack.waitFor(() => w.slack.messagesIn(OPS_CHANNEL).find((m) => findButton(m.blocks as Block[], 'downgrade.confirm')), { timeoutMs: 20_000 });
    const dumps = readdirSync(w.deployPath).filter((f) => f.startsWith('pre_rollback_')).sort();
    // The minute may have turned meanwhile; either way the earlier file is intact and a new one exists.
    expect(dumps.length).toBe(2);
    expect(readFileSync(join(w.deployPath, name), 'utf8')).toBe('PGDMP earlier snapshot');
  });
});
