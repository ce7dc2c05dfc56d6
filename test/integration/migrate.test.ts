import { afterEach, describe, expect, it } from 'vitest';
import { findButton, sendBlockAction, sendViewSubmission } from '../world/slack-requests.js';
import { readdirSync } from 'node:fs';
import { crashLoop, readCommandLog, readEnvFile, readState, setFault, setMaintenance, setMigrationFailure } from '../world/sim/host.mjs';
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

/** Presses downgrade.confirm and answers the "are you sure?" modal the bot opens after its checks. */
async function confirmDowngrade(w: World, user: string) {
  const before = w.slack.views.length;
  await press(w, user, 'downgrade.confirm');
  const opened = await w.slack.waitFor(() => (w.slack.views.length > before ? w.slack.views.at(-1) : undefined), { timeoutMs: 5000, description: 'the confirmation modal' });
  expect((await sendViewSubmission(`${w.botUrl}/slack/events`, SIGNING_SECRET, { user, view: opened.view })).status).toBe(200);
}

async function card(w: World, outcome: RegExp) {
  return w.slack.waitFor(
    () => w.slack.messagesIn(OPS_CHANNEL).find((m) => (!m.thread_ts || m.thread_ts === m.ts) && text(m.blocks).includes('Downgrade the production database') && outcome.test(text(m.blocks))),
    { timeoutMs: 20_000, description: `downgrade card ${outcome}` },
  );
}

/** What the API answers on /v1/version: 503 while in maintenance. */
async function apiVersion(w: World): Promise<number> {
  return (await fetch(`${w.apiUrl}/v1/version`, { headers: { authorization: `Bearer ${w.apiKey}` } })).status;
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

  it('with the API crash-looping, an exec the daemon refuses falls back to a one-off run --rm container of the same image', async () => {
    const w = (world = await startWorld({ slackLimits: false }));
    crashLoop(w.deployPath, '0.6.0');
    await w.slash('migrate downgrade -1');
    await confirmDowngrade(w, CAROL);
    const c = await card(w, /succeeded/);
    expect(text(c.blocks)).toContain('one-off');
    const alembic = readCommandLog(w.deployPath).filter((r: any) => r.phase !== 'start' && r.argv.includes('alembic')).map((r: any) => `${r.argv.slice(3, r.argv.indexOf('engramia-api')).join(' ')}: ${r.argv.slice(r.argv.indexOf('alembic') + 1).join(' ')} → ${r.exitCode}`);
    // The preflight saw the crash loop, so no exec was even tried: everything in one-off containers.
    expect(alembic).toEqual(['run --rm --no-deps -T: current → 0', 'run --rm --no-deps -T: history → 0', 'run --rm --no-deps -T: downgrade 030 → 0', 'run --rm --no-deps -T: current → 0']);
    expect(readState(w.deployPath).db.revision).toBe('030');
  });

  it('an exec that dies with its container (exit 137 after a first INFO line) is not taken as alembic\'s answer: the exact downgrade runs again in a one-off container', async () => {
    const w = (world = await startWorld({ slackLimits: false }));
    setFault(w.deployPath, { match: ['exec -T engramia-api alembic downgrade'], exitCode: 137, stderr: 'INFO  [alembic.runtime.migration] Context impl PostgresqlImpl.\n', times: 1 });
    await w.slash('migrate downgrade -1');
    await confirmDowngrade(w, CAROL);
    const c = await card(w, /succeeded/);
    expect(text(c.blocks)).toContain('died under `exec` (exit 137)');
    expect(downgrades(w)).toEqual(['downgrade 030', 'downgrade 030']);
    const last = readCommandLog(w.deployPath).filter((r: any) => r.argv.includes('downgrade')).map((r: any) => `${r.argv.includes('run') ? 'run' : 'exec'} → ${r.exitCode}`);
    expect(last).toEqual(['exec → 137', 'run → 0']);
    expect(readState(w.deployPath).db.revision).toBe('030');
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

  it('refuses a revision the running image does not know before anything changes: no snapshot, no maintenance, no question', async () => {
    const w = (world = await startWorld({ slackLimits: false }));
    const envBefore = readEnvFile(w.deployPath);
    await w.slash('migrate downgrade zzz');
    const c = await card(w, /failed/);
    expect(text(c.blocks)).toContain('zzz is not a revision the running image (0.6.0) knows; nothing was changed on the host');
    const ran = readCommandLog(w.deployPath).map((r: any) => r.argv.join(' '));
    expect(ran.filter((l: string) => /pg_dump|pg_database_size| up /.test(l))).toEqual([]);
    expect(readEnvFile(w.deployPath)).toBe(envBefore);
    expect(readdirSync(w.deployPath).filter((f) => f.endsWith('.dump') || f.endsWith('.partial'))).toEqual([]);
    expect(w.slack.messagesIn(OPS_CHANNEL).some((m) => findButton(m.blocks as Block[], 'downgrade.confirm'))).toBe(false);
  });

  it('refuses a revision above the current one (032, which 0.6.0 does not have) the same way', async () => {
    const w = (world = await startWorld({ slackLimits: false }));
    await w.slash('migrate downgrade 032');
    const c = await card(w, /failed/);
    expect(text(c.blocks)).toContain('032 is not a revision the running image (0.6.0) knows');
    expect(downgrades(w)).toEqual([]);
    expect(readCommandLog(w.deployPath).some((r: any) => r.argv.join(' ').includes('pg_dump'))).toBe(false);
  });

  it('keeps the API in maintenance from before the snapshot while it waits at the gate, and turns it off after', async () => {
    const w = (world = await startWorld({ slackLimits: false }));
    await w.slash('migrate downgrade -1');
    await w.slack.waitFor(() => w.slack.messagesIn(OPS_CHANNEL).find((m) => findButton(m.blocks as Block[], 'downgrade.confirm')), { timeoutMs: 20_000 });
    expect(await apiVersion(w)).toBe(503);
    expect(readEnvFile(w.deployPath)).toMatch(/^ENGRAMIA_MAINTENANCE=true$/m);
    const lines = readCommandLog(w.deployPath).map((r: any) => r.argv.join(' '));
    expect(lines.findIndex((l: string) => l.includes(' up -d engramia-api'))).toBeLessThan(lines.findIndex((l: string) => l.includes('pg_dump')));
    await confirmDowngrade(w, CAROL);
    const c = await card(w, /succeeded/);
    expect(text(c.blocks)).toContain('Maintenance is off again.');
    expect(await apiVersion(w)).toBe(200);
    expect(readEnvFile(w.deployPath)).not.toContain('ENGRAMIA_MAINTENANCE');
    expect(await w.bot.producer!.store.maintenanceSince('production')).toBeUndefined();
  });

  it('a cancelled downgrade gate puts maintenance back off, and the card says so', async () => {
    const w = (world = await startWorld({ slackLimits: false }));
    await w.slash('migrate downgrade -1');
    await press(w, CAROL, 'downgrade.cancel');
    const c = await card(w, /cancelled/);
    expect(await apiVersion(w)).toBe(200);
    expect(readEnvFile(w.deployPath)).not.toContain('ENGRAMIA_MAINTENANCE');
    expect(text(c.blocks)).toContain('maintenance off in .env');
    expect(text(c.blocks)).toMatch(/✅ Put maintenance back as it was/);
    expect(text(c.blocks)).not.toContain('Maintenance is still ON');
    expect(downgrades(w)).toEqual([]);
    expect(readState(w.deployPath).db.revision).toBe('031');
  });

  it('a failed downgrade leaves maintenance on (the database may be between revisions) and says so', async () => {
    const w = (world = await startWorld({ slackLimits: false }));
    setMigrationFailure(w.deployPath, { downgradeFrom: '031' });
    await w.slash('migrate downgrade -1');
    await confirmDowngrade(w, CAROL);
    const c = await card(w, /failed/);
    expect(text(c.blocks)).toContain('Maintenance is still ON');
    expect(text(c.blocks)).toContain('left ON: the downgrade failed and the database may be between revisions');
    expect(await apiVersion(w)).toBe(503);
  });

  it('leaves maintenance on when it was on before the job', async () => {
    const w = (world = await startWorld({ slackLimits: false }));
    setMaintenance(w.deployPath, true);
    await w.slash('migrate downgrade -1');
    await confirmDowngrade(w, CAROL);
    const c = await card(w, /succeeded/);
    expect(text(c.blocks)).toContain('Maintenance is *on*, as it was before this job.');
    expect(await apiVersion(w)).toBe(503);
    expect(readEnvFile(w.deployPath)).toMatch(/^ENGRAMIA_MAINTENANCE=true$/m);
    // Already on and obeyed: nothing was re-created.
    expect(readCommandLog(w.deployPath).filter((r: any) => r.argv.includes('up'))).toEqual([]);
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
