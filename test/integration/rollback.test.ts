import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { findButton, sendBlockAction, sendViewSubmission } from '../world/slack-requests.js';
import { crashLoop, expectedPgDump, readCommandLog, readEnvFile, readState, runningApiTag, setDeepHealth, setFault, setRemoteTag } from '../world/sim/host.mjs';
import { OPS_CHANNEL, SIGNING_SECRET, leftCredentials, startWorld, type World } from './harness.js';
import { text, BOB, CAROL, type Block } from './blocks.js';


let world: World | undefined;
afterEach(async (ctx) => {
  if (ctx.task.result?.state === 'fail' && world) {
    console.error(`--- bot log (last 30) ---\n${world.logs.slice(-30).join('')}`);
  }
  await world?.close();
  world = undefined;
});


function cards(w: World) {
  return w.slack.messagesIn(OPS_CHANNEL).filter((m) => !m.thread_ts || m.thread_ts === m.ts);
}

async function card(w: World, title: string, outcome: RegExp, timeoutMs = 30_000) {
  return w.slack.waitFor(
    () => {
      const c = cards(w).find((m) => text(m.blocks).includes(title));
      return c && outcome.test(text(c.blocks)) ? c : undefined;
    },
    { timeoutMs, description: `card "${title}" matching ${outcome}` },
  );
}

async function press(w: World, user: string, actionId: string) {
  const msg = await w.slack.waitFor(() => w.slack.messagesIn(OPS_CHANNEL).find((m) => findButton(m.blocks as Block[], actionId)), { timeoutMs: 20_000, description: actionId });
  const res = await sendBlockAction(`${w.botUrl}/slack/events`, SIGNING_SECRET, { user, channel: OPS_CHANNEL, message: msg, action_id: actionId });
  expect(res.status).toBe(200);
  return msg;
}

/**
 * Presses downgrade.confirm. Only after its checks does the bot ask "are you sure?" (a modal, views.open);
 * `user` confirms it there. Returns the modal as opened.
 */
async function confirmDowngrade(w: World, user: string) {
  const before = w.slack.views.length;
  const msg = await w.slack.waitFor(() => w.slack.messagesIn(OPS_CHANNEL).find((m) => findButton(m.blocks as Block[], 'downgrade.confirm')), { timeoutMs: 20_000, description: 'downgrade.confirm' });
  expect((await sendBlockAction(`${w.botUrl}/slack/events`, SIGNING_SECRET, { user, channel: OPS_CHANNEL, message: msg, action_id: 'downgrade.confirm', trigger_id: w.slack.triggerId() })).status).toBe(200);
  const opened = await w.slack.waitFor(() => (w.slack.views.length > before ? w.slack.views.at(-1) : undefined), { timeoutMs: 5000, description: 'the confirmation modal' });
  expect((await sendViewSubmission(`${w.botUrl}/slack/events`, SIGNING_SECRET, { user, view: opened.view })).status).toBe(200);
  return opened;
}

/** Four-eyes: the latest plan approval, pressed by `user`. */
async function approvePlan(w: World, user: string) {
  const msg = await w.slack.waitFor(() => w.slack.messagesIn(OPS_CHANNEL).findLast((m) => findButton(m.blocks as Block[], 'deploy.approve')), { timeoutMs: 20_000, description: 'deploy.approve' });
  expect((await sendBlockAction(`${w.botUrl}/slack/events`, SIGNING_SECRET, { user, channel: OPS_CHANNEL, message: msg, action_id: 'deploy.approve' })).status).toBe(200);
}

/** Docker commands as the host recorded them, with the tag each was given. */
function ran(w: World): string[] {
  return readCommandLog(w.deployPath)
    .filter((r: any) => r.phase !== 'start')
    .map((r: any) => `${r.env?.IMAGE_TAG ? `IMAGE_TAG=${r.env.IMAGE_TAG} ` : ''}${r.argv.join(' ')}`);
}

function dumps(w: World): string[] {
  return readdirSync(w.deployPath).filter((f) => /^pre_rollback_\d{12}\.dump$/.test(f));
}

async function failedDeploy(w: World, approver?: string) {
  setDeepHealth(w.deployPath, 'error');
  await w.slash('deploy 0.6.1 --no-maintenance');
  if (approver) await approvePlan(w, approver);
  await card(w, 'Deploy 0.6.1', /failed/);
  // The bad version was the cause: once it is gone, health is fine again.
  setDeepHealth(w.deployPath, 'ok');
}

describe('/engramia rollback and the rollback button', () => {
  it('rolls back a bad deploy from the button: four-eyes plan approval, snapshot, exact downgrade after confirmation, pin, maintenance off', async () => {
    const w = (world = await startWorld({ slackLimits: false, fourEyes: true, envExtra: { verifySettleSeconds: 5 } }));
    await failedDeploy(w, BOB);
    expect(readState(w.deployPath).db.revision).toBe('032');

    await press(w, BOB, 'rollback.approve');
    // Bob asked for the rollback (by approving it), so its first change (maintenance on) waits for someone else.
    await w.slack.waitFor(() => w.slack.messagesIn(OPS_CHANNEL).filter((m) => findButton(m.blocks as Block[], 'deploy.approve')).length === 1 || undefined, { timeoutMs: 20_000, description: "the rollback's plan approval" });
    expect(readEnvFile(w.deployPath)).not.toContain('ENGRAMIA_MAINTENANCE');
    await approvePlan(w, BOB);
    await w.slack.waitFor(() => text(w.slack.ephemerals.filter((e) => e.user === BOB).at(-1)?.blocks).includes('someone else must decide'), { timeoutMs: 5000 });
    await approvePlan(w, CAROL);
    const gate = await w.slack.waitFor(() => w.slack.messagesIn(OPS_CHANNEL).find((m) => findButton(m.blocks as Block[], 'downgrade.confirm')), { timeoutMs: 20_000 });
    const g = text(gate.blocks);
    expect(g).toContain('032 → 031');
    expect(g).toMatch(/pre_rollback_\d{12}\.dump/);
    // No client-side "are you sure?": the bot asks in a modal, after checking who pressed.
    expect(findButton(gate.blocks as Block[], 'downgrade.confirm')?.element).toMatchObject({ style: 'danger' });
    expect(findButton(gate.blocks as Block[], 'downgrade.confirm')?.element.confirm).toBeUndefined();
    // Parked at the gate: maintenance is on, the snapshot exists, nothing is downgraded yet.
    expect(readEnvFile(w.deployPath)).toContain('ENGRAMIA_MAINTENANCE=true');
    expect(readState(w.deployPath).db.revision).toBe('032');
    const [dump] = dumps(w);
    expect(dump).toBeDefined();
    expect(readFileSync(join(w.deployPath, dump!)).equals(expectedPgDump(w.deployPath))).toBe(true);

    // Bob asked for the rollback, so four-eyes needs someone else for the downgrade.
    const views = w.slack.views.length;
    await press(w, BOB, 'downgrade.confirm');
    await w.slack.waitFor(() => text(w.slack.ephemerals.filter((e) => e.user === BOB).at(-1)?.blocks).includes('someone else must decide'), { timeoutMs: 5000 });
    // Refused before any confirmation was asked.
    expect(w.slack.views.length).toBe(views);
    expect(readState(w.deployPath).db.revision).toBe('032');
    const modal = await confirmDowngrade(w, CAROL);
    expect(text(modal.view.blocks)).toContain('Downgrade the production database 032 → 031?');
    const c = await card(w, 'Roll back production to 0.6.0', /succeeded/);
    expect(text(c.blocks)).toContain('downgraded to `031`');

    const lines = ran(w);
    expect(lines.filter((l) => l.includes('alembic downgrade'))).toEqual(['IMAGE_TAG=0.6.1 compose -f docker-compose.prod.yml exec -T engramia-api alembic downgrade 031']);
    expect(lines.some((l) => l.includes('downgrade -1'))).toBe(false);
    const downgradeAt = lines.findIndex((l) => l.includes('alembic downgrade'));
    expect(lines.findIndex((l) => l.includes('pg_dump'))).toBeLessThan(downgradeAt);
    expect(lines.findIndex((l) => l === 'IMAGE_TAG=0.6.0 compose -f docker-compose.prod.yml up -d engramia-api caddy')).toBeGreaterThan(downgradeAt);
    expect(runningApiTag(w.deployPath)).toBe('0.6.0');
    expect(readState(w.deployPath).db.revision).toBe('031');
    const env = readEnvFile(w.deployPath);
    expect(env.match(/^IMAGE_TAG=.*$/gm)).toEqual(['IMAGE_TAG=0.6.0']);
    expect(env).not.toContain('ENGRAMIA_MAINTENANCE');
    const [h] = await w.bot.producer!.store.readHistory('production');
    expect(h).toMatchObject({ kind: 'rollback', version: '0.6.0', fromVersion: '0.6.1', user: BOB, outcome: 'succeeded' });
    expect(await w.bot.producer!.store.readLock('production')).toBeUndefined();
    expect(w.slack.invalidBlockCalls()).toEqual([]);
    // Neither the deploy nor the rollback left the registry credential on the host.
    expect(leftCredentials(w)).toEqual({ home: {}, jobFolders: false });
  });

  it('skips the downgrade gate when no migrations differ, and finds the target in the history', async () => {
    const w = (world = await startWorld({ slackLimits: false, envExtra: { verifySettleSeconds: 5 } }));
    setRemoteTag(w.deployPath, '0.6.2', { head: '031' });
    await w.slash('deploy 0.6.2 --no-maintenance');
    await card(w, 'Deploy 0.6.2', /succeeded/);
    const ack = await w.slash('rollback');
    expect(text(ack.body.blocks)).toContain('Target 0.6.0');
    const c = await card(w, 'Roll back production to 0.6.0', /succeeded/);
    expect(text(c.blocks)).toContain('no migrations differ');
    expect(w.slack.messagesIn(OPS_CHANNEL).some((m) => findButton(m.blocks as Block[], 'downgrade.confirm'))).toBe(false);
    expect(ran(w).some((l) => l.includes('alembic downgrade'))).toBe(false);
    expect(dumps(w)).toHaveLength(1);
    expect(runningApiTag(w.deployPath)).toBe('0.6.0');
    const history = await w.slash('history');
    const h = text(history.body.blocks);
    expect(h.indexOf('rollback to `0.6.0`')).toBeLessThan(h.indexOf('deploy `0.6.2`'));
    expect(h).toContain('(from `0.6.0`) by <@U01ALICE>');
    expect(h).toMatch(/<https?:\/\/[^|>]+\|thread>/);
  });

  it('cancel at the downgrade gate stops there and reports the exact host state', async () => {
    const w = (world = await startWorld({ slackLimits: false, envExtra: { verifySettleSeconds: 5 } }));
    await failedDeploy(w);
    await press(w, BOB, 'rollback.approve');
    await press(w, CAROL, 'downgrade.cancel');
    const c = await card(w, 'Roll back production to 0.6.0', /cancelled/);
    const t = text(c.blocks);
    expect(t).toContain('cancelled by U03CAROL');
    expect(t).toContain('runs `0.6.1`');
    expect(t).toContain('not downgraded, at `032`');
    expect(t).toMatch(/Snapshot:\* `[^`]*pre_rollback_\d{12}\.dump`/);
    expect(t).toContain('Maintenance is still ON');
    expect(ran(w).some((l) => l.includes('alembic downgrade'))).toBe(false);
    expect(readState(w.deployPath).db.revision).toBe('032');
    expect(await w.bot.producer!.store.readLock('production')).toBeUndefined();
  });

  it('a failed snapshot stops the rollback before anything is downgraded', async () => {
    const w = (world = await startWorld({ slackLimits: false, envExtra: { verifySettleSeconds: 5 } }));
    await failedDeploy(w);
    setFault(w.deployPath, { match: ['pg_dump'], exitCode: 1, stderr: 'pg_dump: error: connection to server failed' });
    await press(w, BOB, 'rollback.approve');
    const c = await card(w, 'Roll back production to 0.6.0', /failed/);
    const t = text(c.blocks);
    expect(t).toContain('Stopped at *Snapshot the database (pg_dump)*');
    expect(t).toContain('none taken');
    expect(ran(w).some((l) => l.includes('alembic downgrade'))).toBe(false);
    expect(dumps(w)).toEqual([]);
    expect(readState(w.deployPath).db.revision).toBe('032');
  });

  it('refuses a rollback with no resolvable target and says how to name one; nothing is queued', async () => {
    const w = (world = await startWorld({ slackLimits: false }));
    const ack = await w.slash('rollback');
    const t = text(ack.body.blocks);
    expect(t).toContain('no version to go back to');
    expect(t).toContain('/engramia rollback 0.6.0');
    await new Promise((r) => setTimeout(r, 300));
    expect(readCommandLog(w.deployPath)).toEqual([]);
    expect(await w.bot.producer!.store.readLock('production')).toBeUndefined();
    // Only deployers may roll back.
    const bob = await w.slash('rollback 0.6.0', { user_id: BOB });
    expect(text(bob.body.blocks)).toContain('You may not run `rollback`');
  });

  it('rollback to a tag the registry does not have is refused before maintenance, snapshot or any change', async () => {
    const w = (world = await startWorld({ slackLimits: false, envExtra: { verifySettleSeconds: 5 } }));
    const envBefore = readEnvFile(w.deployPath);
    await w.slash('rollback 9.9.9');
    const c = await card(w, 'Roll back production to 9.9.9', /failed/);
    const t = text(c.blocks);
    expect(t).toContain('9.9.9 is not in the registry');
    expect(t).toContain('maintenance was never turned on');
    expect(t).not.toContain('/engramia rollback 9.9.9');
    expect(t).not.toContain('Maintenance is still ON');
    // Only read-only probes besides: `ps` and the restart count of the running API (crash-loop check).
    expect(ran(w).filter((l) => !l.startsWith('compose -f docker-compose.prod.yml ps') && !l.startsWith('inspect --format {{.RestartCount}} '))).toEqual(['login ghcr.io -u engramia-bot --password-stdin', 'IMAGE_TAG=9.9.9 compose -f docker-compose.prod.yml run --rm --no-deps -T engramia-api alembic heads']);
    expect(readEnvFile(w.deployPath)).toBe(envBefore);
    expect(dumps(w)).toEqual([]);
    expect(runningApiTag(w.deployPath)).toBe('0.6.0');
    expect(leftCredentials(w)).toEqual({ home: {}, jobFolders: false });
  });

  it('with the registry down too, a rollback to an image already on the host goes on, with a warning', async () => {
    const w = (world = await startWorld({ slackLimits: false, envExtra: { verifySettleSeconds: 5 } }));
    await failedDeploy(w);
    const outage = 'Error response from daemon: Get "https://ghcr.io/v2/": net/http: request canceled while waiting for connection (Client.Timeout exceeded while awaiting headers)';
    setFault(w.deployPath, { match: ['login'], exitCode: 1, stderr: `${outage}\n` });
    setFault(w.deployPath, { match: ['pull'], exitCode: 1, stderr: `${outage}\n` });
    await press(w, BOB, 'rollback.approve');
    await confirmDowngrade(w, CAROL);
    const c = await card(w, 'Roll back production to 0.6.0', /succeeded/);
    expect(text(c.blocks)).toContain('docker login to ghcr.io failed');
    expect(runningApiTag(w.deployPath)).toBe('0.6.0');
    expect(readState(w.deployPath).db.revision).toBe('031');
    expect(leftCredentials(w)).toEqual({ home: {}, jobFolders: false });
  });

  it('refuses a rollback to the version that already runs, on the revision it expects, before maintenance or a snapshot', async () => {
    const w = (world = await startWorld({ slackLimits: false, envExtra: { verifySettleSeconds: 5 } }));
    const envBefore = readEnvFile(w.deployPath);
    await w.slash('rollback 0.6.0');
    const c = await card(w, 'Roll back production to 0.6.0', /failed/);
    const t = text(c.blocks);
    expect(t).toContain('0.6.0 already runs and the database is at its revision 031: there is nothing to roll back');
    expect(t).toContain('maintenance was never turned on');
    expect(readEnvFile(w.deployPath)).toBe(envBefore);
    expect(dumps(w)).toEqual([]);
    expect(ran(w).some((l) => l.includes('up -d'))).toBe(false);
  });

  it('refuses, before maintenance and before the downgrade gate, a target whose revision is not below the database', async () => {
    const w = (world = await startWorld({ slackLimits: false, envExtra: { verifySettleSeconds: 5 } }));
    // 0.5.8 was built on a revision the running 0.6.0 has never heard of: no downgrade reaches it.
    setRemoteTag(w.deployPath, '0.5.8', { head: '033' });
    const envBefore = readEnvFile(w.deployPath);
    await w.slash('rollback 0.5.8');
    const c = await card(w, 'Roll back production to 0.5.8', /failed/);
    const t = text(c.blocks);
    expect(t).toContain("0.5.8 expects revision 033, which is not below the database's 031");
    expect(t).toContain('maintenance was never turned on');
    expect(t).not.toContain('/engramia rollback 0.5.8');
    expect(w.slack.messagesIn(OPS_CHANNEL).some((m) => findButton(m.blocks as Block[], 'downgrade.confirm'))).toBe(false);
    expect(ran(w).some((l) => l.includes('alembic downgrade') || l.includes('up -d'))).toBe(false);
    expect(readEnvFile(w.deployPath)).toBe(envBefore);
    expect(dumps(w)).toEqual([]);
    expect(readState(w.deployPath).db.revision).toBe('031');
  });

  it('a crash loop caught "running" between restarts (as real Docker often shows it) is told by its restart count: no exec, which would die with it (137)', async () => {
    const w = (world = await startWorld({ slackLimits: false, envExtra: { verifySettleSeconds: 5 } }));
    await w.slash('deploy 0.6.1 --no-maintenance');
    await card(w, 'Deploy 0.6.1', /succeeded/);
    crashLoop(w.deployPath, '0.6.1', undefined, { runningWindow: true });
    // What the real host shows: `ps` says running, the daemon's restart count says otherwise.
    expect(readState(w.deployPath).containers['engramia-api']?.state).toBe('running');
    const before = readCommandLog(w.deployPath).length;

    await w.slash('rollback');
    await confirmDowngrade(w, CAROL);
    const c = await card(w, 'Roll back production to 0.6.0', /succeeded/);
    expect(text(c.blocks)).toContain('crash-looping (running between restarts; the daemon restarted it 3 times)');
    // The maintenance step's note (in the thread) does not pretend the crash-looping API answers 503.
    expect(text(w.slack.messagesIn(OPS_CHANNEL).map((m) => m.blocks))).toContain('engramia-api re-created on 0.6.1 (it was crash-looping: until another version runs, the API answers nothing, not 503)');
    const lines = readCommandLog(w.deployPath).slice(before).filter((r: any) => r.phase !== 'start').map((r: any) => `${r.env?.IMAGE_TAG ? `IMAGE_TAG=${r.env.IMAGE_TAG} ` : ''}${r.argv.join(' ')} → ${r.exitCode}`);
    expect(lines.filter((l) => l.startsWith('inspect '))).toEqual([expect.stringMatching(/^inspect --format \{\{\.RestartCount\}\} [0-9a-f]+ → 0$/)]);
    expect(lines.filter((l) => l.includes(' alembic '))).toEqual([
      'IMAGE_TAG=0.6.0 compose -f docker-compose.prod.yml run --rm --no-deps -T engramia-api alembic heads → 0',
      'IMAGE_TAG=0.6.1 compose -f docker-compose.prod.yml run --rm --no-deps -T engramia-api alembic current → 0',
      'IMAGE_TAG=0.6.1 compose -f docker-compose.prod.yml run --rm --no-deps -T engramia-api alembic history → 0',
      'IMAGE_TAG=0.6.1 compose -f docker-compose.prod.yml run --rm --no-deps -T engramia-api alembic downgrade 031 → 0',
    ]);
    expect(readState(w.deployPath).db.revision).toBe('031');
    expect(runningApiTag(w.deployPath)).toBe('0.6.0');
    expect(readEnvFile(w.deployPath)).not.toContain('ENGRAMIA_MAINTENANCE');
  });

  it('rolls back a crash-looping release: alembic runs in one-off containers of its image, the plan says so, no exec is tried twice', async () => {
    const w = (world = await startWorld({ slackLimits: false, envExtra: { verifySettleSeconds: 5 } }));
    await w.slash('deploy 0.6.1 --no-maintenance');
    await card(w, 'Deploy 0.6.1', /succeeded/);
    // The incident: 0.6.1 (database at its 032) starts dying on every start; the API is down.
    crashLoop(w.deployPath, '0.6.1');
    expect((await fetch(`${w.apiUrl}/v1/health`)).status).toBe(502);
    const before = readCommandLog(w.deployPath).length;

    const ack = await w.slash('rollback');
    expect(text(ack.body.blocks)).toContain('Target 0.6.0');
    const gate = await w.slack.waitFor(() => w.slack.messagesIn(OPS_CHANNEL).find((m) => findButton(m.blocks as Block[], 'downgrade.confirm')), { timeoutMs: 30_000 });
    const g = text(gate.blocks);
    expect(g).toContain('032 → 031');
    expect(g).toContain('docker compose run --rm --no-deps -T engramia-api alembic downgrade 031');
    expect(g).toContain('no running container');
    await confirmDowngrade(w, CAROL);
    const c = await card(w, 'Roll back production to 0.6.0', /succeeded/);
    expect(text(c.blocks)).toContain('downgraded to `031`');
    expect(text(c.blocks)).toContain('engramia-api restarting on 0.6.1');

    const lines = readCommandLog(w.deployPath).slice(before).filter((r: any) => r.phase !== 'start').map((r: any) => `${r.env?.IMAGE_TAG ? `IMAGE_TAG=${r.env.IMAGE_TAG} ` : ''}${r.argv.join(' ')}`);
    const alembic = lines.filter((l) => l.includes(' alembic '));
    expect(alembic).toEqual([
      'IMAGE_TAG=0.6.0 compose -f docker-compose.prod.yml run --rm --no-deps -T engramia-api alembic heads',
      'IMAGE_TAG=0.6.1 compose -f docker-compose.prod.yml run --rm --no-deps -T engramia-api alembic current',
      'IMAGE_TAG=0.6.1 compose -f docker-compose.prod.yml run --rm --no-deps -T engramia-api alembic history',
      'IMAGE_TAG=0.6.1 compose -f docker-compose.prod.yml run --rm --no-deps -T engramia-api alembic downgrade 031',
    ]);
    expect(lines.some((l) => l.includes(' exec -T engramia-api'))).toBe(false);
    expect(readState(w.deployPath).db.revision).toBe('031');
    expect(runningApiTag(w.deployPath)).toBe('0.6.0');
    expect(readState(w.deployPath).containers['engramia-api']?.state).toBe('running');
    expect(readEnvFile(w.deployPath)).not.toContain('ENGRAMIA_MAINTENANCE');
    expect(dumps(w)).toHaveLength(1);
  });

  it('rollback with no version skips a same-version redeploy and goes to the version before it', async () => {
    const w = (world = await startWorld({ slackLimits: false, envExtra: { verifySettleSeconds: 5 } }));
    setRemoteTag(w.deployPath, '0.6.1', { head: '031' });
    await w.slash('deploy 0.6.1 --no-maintenance');
    await card(w, 'Deploy 0.6.1', /succeeded/);
    await w.slash('deploy 0.6.1 --no-maintenance');
    await w.slack.waitFor(() => cards(w).filter((m) => text(m.blocks).includes('Deploy 0.6.1') && /succeeded/.test(text(m.blocks))).length === 2 || undefined, { timeoutMs: 30_000, description: 'the redeploy' });
    const ack = await w.slash('rollback');
    expect(text(ack.body.blocks)).toContain('Target 0.6.0');
    await card(w, 'Roll back production to 0.6.0', /succeeded/);
    expect(runningApiTag(w.deployPath)).toBe('0.6.0');
  });

  it('rollback with no version is refused when the history holds only the running version; nothing is queued or run', async () => {
    const w = (world = await startWorld({ slackLimits: false, envExtra: { verifySettleSeconds: 5 } }));
    await w.slash('deploy 0.6.0 --no-maintenance');
    await card(w, 'Deploy 0.6.0', /succeeded/);
    const before = readCommandLog(w.deployPath).length;
    const ack = await w.slash('rollback');
    const t = text(ack.body.blocks);
    expect(t).toContain('no version to go back to on production other than the running 0.6.0');
    await new Promise((r) => setTimeout(r, 500));
    expect(readCommandLog(w.deployPath)).toHaveLength(before);
    expect(await w.bot.producer!.store.readLock('production')).toBeUndefined();
    expect(cards(w).some((m) => text(m.blocks).includes('Roll back'))).toBe(false);
  });

  it('--dry-run shows the rollback plan, with the snapshot before any downgrade, and runs nothing', async () => {
    const w = (world = await startWorld({ slackLimits: false }));
    await w.slash('rollback 0.6.0 --dry-run');
    const plan = await w.slack.waitFor(() => w.slack.messagesIn(OPS_CHANNEL).find((m) => text(m.blocks).includes('pg_dump -U')), { timeoutMs: 20_000 });
    const t = text(plan.blocks);
    expect(t.indexOf('pg_dump -U')).toBeLessThan(t.indexOf('alembic downgrade'));
    expect(t).toContain('IMAGE_TAG=0.6.0 docker compose -f docker-compose.prod.yml up -d engramia-api caddy');
    await new Promise((r) => setTimeout(r, 300));
    expect(readCommandLog(w.deployPath)).toEqual([]);
  });

  it('a rollback that had already downgraded resumes on a new worker without a second downgrade', async () => {
    const w = (world = await startWorld({ slackLimits: false, envExtra: { verifySettleSeconds: 5 } }));
    await failedDeploy(w);
    // Slow start of the target version: the restart lands while it runs, after the downgrade.
    setFault(w.deployPath, { match: ['up', '-d', 'caddy'], delayMs: 1500, times: 1 });
    await press(w, BOB, 'rollback.approve');
    await confirmDowngrade(w, CAROL);
    await w.slack.waitFor(() => readCommandLog(w.deployPath).some((r: any) => r.phase === 'start' && r.argv.includes('caddy') && r.env?.IMAGE_TAG === '0.6.0'), { timeoutMs: 20_000, description: 'the slow up' });
    await w.restart();
    await card(w, 'Roll back production to 0.6.0', /succeeded/);
    expect(ran(w).filter((l) => l.includes('alembic downgrade'))).toEqual(['IMAGE_TAG=0.6.1 compose -f docker-compose.prod.yml exec -T engramia-api alembic downgrade 031']);
    expect(dumps(w)).toHaveLength(1);
    expect(readState(w.deployPath).db.revision).toBe('031');
    expect(runningApiTag(w.deployPath)).toBe('0.6.0');
    expect(w.logs.join('')).toContain('worker stopping: job checkpointed before this step');
  });
});
