// SSH sessions killed in the middle of a command, on a private sshd so no other test's
// connections are touched. The bot must reconnect, stop or wait for what it left running,
// settle the step from the host, and ask a person when the host cannot tell.
import { afterEach, describe, expect, it } from 'vitest';
import { findButton } from '../world/slack-requests.js';
import { readCommandLog, readEnvFile, readState, runningApiTag, setFault } from '../world/sim/host.mjs';
import { ALICE, OPS_CHANNEL, startWorld, type World } from './harness.js';
import { blockText, type Block } from './blocks.js';
import { completed, finalCard, invocations, press, privateSshd, processGone, startedOnHost, thread, until } from './faults.js';

const sshd = privateSshd();
let world: World | undefined;

afterEach(async (ctx) => {
  if (ctx.task.result?.state === 'fail' && world) {
    console.error(`--- bot log (last 40) ---\n${world.logs.slice(-40).join('')}`);
    console.error(`--- host commands ---\n${JSON.stringify(readCommandLog(world.deployPath).map((r: any) => [r.phase, r.pid, r.exitCode, r.argv.join(' ')]))}`);
  }
  await world?.close();
  world = undefined;
});

async function dropWorld(envExtra: Record<string, string | number> = {}): Promise<World> {
  world = await startWorld({
    slackLimits: false,
    sshd: sshd.worldSshd(),
    envExtra: { verifySettleSeconds: 5, gateTimeoutSeconds: 60, ...envExtra },
  });
  return world;
}

/** Kill the SSH session during a slow migration, and make `alembic current` fail once so the host cannot tell. */
async function migrationOutcomeUnknown(w: World): Promise<void> {
  setFault(w.deployPath, { match: 'alembic upgrade head', delayMs: 2500, times: 1 });
  await w.slash('deploy 0.6.1 --no-maintenance');
  await startedOnHost(w, 'alembic upgrade head', 'migrate');
  setFault(w.deployPath, { match: 'alembic current', exitCode: 1, stderr: 'FATAL: could not connect to the database\n', times: 1 });
  expect(sshd.dropSessions()).toBeGreaterThan(0);
}

describe('the SSH session dies mid-command', { timeout: 60_000 }, () => {
  it('during a pull (safe to repeat): the bot reconnects, stops the leftover pull, and runs it once more', async () => {
    const w = await dropWorld();
    setFault(w.deployPath, { match: ' pull', delayMs: 3000, times: 1 });
    await w.slash('deploy 0.6.1 --no-maintenance');
    const { orphan } = await startedOnHost(w, ' pull', 'pull');
    expect(sshd.dropSessions()).toBeGreaterThan(0);

    await finalCard(w, /succeeded/);
    expect(thread(w)).toMatch(/Pull 0\.6\.1\* runs again\. Interrupted: the SSH connection failed/);
    expect(processGone(orphan.pid)).toBe(true);
    expect(completed(w, ' pull')).toHaveLength(1);
    expect(invocations(w, ' pull')).toBe(2);
    for (const n of ['login', 'alembic upgrade head', 'up -d engramia-api caddy', 'image prune']) expect(completed(w, n), n).toHaveLength(1);
    expect(runningApiTag(w.deployPath)).toBe('0.6.1');
  });

  it('during the migration, outcome unknown: a step.retry / step.abort / step.skip question says what is known; Retry runs it again', async () => {
    const w = await dropWorld();
    await migrationOutcomeUnknown(w);
    const gate = await until(() => w.slack.messagesIn(OPS_CHANNEL).find((m) => findButton(m.blocks as Block[], 'step.retry')), 'the step question');
    const text = blockText(gate.blocks as Block[]);
    expect(text).toMatch(/Run database migrations" was interrupted and its outcome is unknown/);
    expect(text).toMatch(/the SSH connection failed/);
    expect(text).toMatch(/could not connect to the database|did not answer/);
    expect(text).toMatch(/not safe to repeat blindly/);
    for (const id of ['step.retry', 'step.abort', 'step.skip']) expect(findButton(gate.blocks as Block[], id), id).toBeDefined();
    // The question is a gate like any other: the requester, no approver here, may not answer it.
    await press(w, 'step.retry', ALICE);
    const value = JSON.parse(findButton(gate.blocks as Block[], 'step.retry')!.element.value) as { j: string; g: string };
    expect(await w.bot.producer!.store.readGate(value.j, value.g)).toBeUndefined();
    await press(w, 'step.retry');

    await finalCard(w, /succeeded/);
    expect(readState(w.deployPath).db.revision).toBe('032');
    expect(invocations(w, 'alembic upgrade head')).toBe(2);
    expect(w.slack.invalidBlockCalls()).toEqual([]);
  });

  it('Abort stops the job there and reports the host state; the lock is freed and nothing else runs', async () => {
    const w = await dropWorld();
    await migrationOutcomeUnknown(w);
    await press(w, 'step.abort');
    const text = await finalCard(w, /cancelled|Stopped at/i);
    expect(text).toMatch(/Host now:/);
    expect(text).toMatch(/aborted by <?@?U02BOB/);
    expect(completed(w, 'image prune')).toHaveLength(0);
    expect(readEnvFile(w.deployPath)).not.toMatch(/IMAGE_TAG=0\.6\.1/);
    expect(await w.bot.producer!.store.readLock('production')).toBeUndefined();
  });

  it('Skip goes on without running it again, and verification still checks the result', async () => {
    const w = await dropWorld();
    await migrationOutcomeUnknown(w);
    await press(w, 'step.skip');
    const text = await finalCard(w, /succeeded/);
    expect(text).toMatch(/skipped by U02BOB/);
    expect(invocations(w, 'alembic upgrade head')).toBe(1);
    expect(readState(w.deployPath).db.revision).toBe('032');
  });

  it('a hung pull hits the per-step limit from the config (timeouts.pull), and the process is really stopped on the host', async () => {
    const w = await dropWorld({ timeouts: '{ pull: 2 }' });
    setFault(w.deployPath, { match: ' pull', hang: true, times: 1 });
    await w.slash('deploy 0.6.1 --no-maintenance');
    const { orphan: hung } = await startedOnHost(w, ' pull', 'pull');
    const text = await finalCard(w, /failed|Stopped at/i);
    expect(text).toMatch(/timed out after 2 s/);
    expect(processGone(hung.pid)).toBe(true);
    // Nothing after the pull ran, and what runs is still the old version.
    expect(completed(w, 'up -d')).toHaveLength(0);
    expect(runningApiTag(w.deployPath)).toBe('0.6.0');
  });
});
