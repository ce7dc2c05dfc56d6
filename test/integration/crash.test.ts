// Fault injection with real processes: workers are `node dist/main.js --role worker` children that
// the tests kill -9 or SIGTERM in the middle of a deploy. The app (Slack side) runs in this process;
// Redis, sshd and the simulated host are real. Every test ends on the host's own record of what ran.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { findButton } from '../world/slack-requests.js';
import { readCommandLog, readEnvFile, readState, runningApiTag, setFault } from '../world/sim/host.mjs';
import { OPS_CHANNEL, leftCredentials, startWorld, type World } from './harness.js';
import { blockText, type Block } from './blocks.js';
import { card, completed, expectEachCompletedOnce, finalCard, invocations, isCmd, lockHolder, press, processGone, records, savedStep, startedOnHost, thread, until } from './faults.js';

const MAIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url));
/** Short locks so a dead worker's job is taken over in about two seconds, not fifteen. */
const FAST_LOCKS = { CHATOPS_JOB_LOCK_MS: '2000', CHATOPS_STALLED_INTERVAL_MS: '500' };

interface WorkerProc {
  name: string;
  child: ChildProcess;
  out: () => string;
  exited: Promise<number | null>;
}

let world: World | undefined;
const workers: WorkerProc[] = [];

afterEach(async (ctx) => {
  if (ctx.task.result?.state === 'fail' && world) {
    for (const p of workers) console.error(`--- ${p.name} (last 30 lines) ---\n${p.out().split('\n').slice(-30).join('\n')}`);
    console.error(`--- host commands ---\n${JSON.stringify(readCommandLog(world.deployPath).map((r: any) => [r.phase, r.pid, r.exitCode, r.argv.join(' ')]))}`);
  }
  for (const p of workers.splice(0)) {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await p.exited;
  }
  await world?.close();
  world = undefined;
});

function spawnWorker(w: World, name: string, extra: Record<string, string> = {}): WorkerProc {
  const child = spawn(process.execPath, [MAIN, '--role', 'worker'], {
    env: { PATH: process.env.PATH, ...w.processEnv, ...FAST_LOCKS, ...extra },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const p: WorkerProc = { name, child, out: () => out, exited: once(child, 'exit').then(([code]) => code as number | null) };
  workers.push(p);
  return p;
}

async function appWorld(): Promise<World> {
  world = await startWorld({ role: 'app', slackLimits: false, envExtra: { verifySettleSeconds: 5 } });
  return world;
}

// Each test deploys, breaks a worker and waits for the lock to expire: more than the default 30 s budget.
describe.sequential('a worker killed with SIGKILL', { timeout: 90_000 }, () => {
  it('during a slow pull: the next worker stops the orphaned pull, runs it once more, and finishes; the card says where it resumed', async () => {
    const w = await appWorld();
    setFault(w.deployPath, { match: ' pull', delayMs: 4000, times: 1 });
    const a = spawnWorker(w, 'worker-a');
    expect((await w.slash('deploy 0.6.1 --no-maintenance')).status).toBe(200);

    const { orphan, remotePid } = await startedOnHost(w, ' pull', 'pull');
    a.child.kill('SIGKILL');
    await a.exited;

    spawnWorker(w, 'worker-b');
    const text = await finalCard(w, /succeeded/);
    expect(text).toMatch(/A worker stopped during step 4/);
    expect(thread(w)).toMatch(/Worker restarted: resuming at step 4 \(Pull 0\.6\.1\)/);
    expect(thread(w)).toMatch(new RegExp(`process group ${remotePid}\\) was still running on the host and was stopped`));
    // The orphan never got to its effect: one pull finished, after two were started.
    expect(processGone(orphan.pid)).toBe(true);
    expect(invocations(w, ' pull')).toBe(2);
    expectEachCompletedOnce(w);
    expect(runningApiTag(w.deployPath)).toBe('0.6.1');
    expect(await lockHolder(w)).toBeUndefined();
    expect(w.slack.invalidBlockCalls()).toEqual([]);
    // The dead worker had logged in: the job that took over removed the credential.
    expect(leftCredentials(w)).toEqual({ home: {}, jobFolders: false });
  });

  it('during the migration: the next worker waits for the running migration instead of starting a second one, and settles the step from the database', async () => {
    const w = await appWorld();
    setFault(w.deployPath, { match: 'alembic upgrade head', delayMs: 3000, times: 1 });
    const a = spawnWorker(w, 'worker-a');
    await w.slash('deploy 0.6.1 --no-maintenance');
    await startedOnHost(w, 'alembic upgrade head', 'migrate');
    a.child.kill('SIGKILL');
    await a.exited;
    spawnWorker(w, 'worker-b');

    const text = await finalCard(w, /succeeded/);
    expect(text).toMatch(/Run database migrations/);
    // One migration process ever ran on the host; the database is at the new head.
    expect(invocations(w, 'alembic upgrade head')).toBe(1);
    expect(readState(w.deployPath).db.revision).toBe('032');
    expect(thread(w)).toMatch(/Worker restarted: resuming at step 11 \(Run database migrations\)/);
    expect(thread(w)).toMatch(/waited for it to end|no longer runs on the host/);
    expectEachCompletedOnce(w, ['login', ' pull', 'up -d engramia-api caddy', 'image prune']);
    expect(await lockHolder(w)).toBeUndefined();
  });

  it('during a migration whose `exec` client dies with its SSH channel: the migration goes on in the container, and the next worker finds it there, waits, and does not run it again', async () => {
    const w = await appWorld();
    // The migration's work runs in a process of its own session, as in a container: killing the client does not stop it.
    setFault(w.deployPath, { match: 'alembic upgrade head', inContainerMs: 6000, times: 1 });
    const a = spawnWorker(w, 'worker-a');
    await w.slash('deploy 0.6.1 --no-maintenance');
    const { orphan, remotePid } = await startedOnHost(w, 'alembic upgrade head', 'migrate');
    await until(() => (readState(w.deployPath).containerProcs ?? []).length === 1, 'the migration to run in the container');
    a.child.kill('SIGKILL');
    await a.exited;
    // SIGPIPE kills the `docker compose exec` client once the dead worker's channel is gone; here the test does it.
    process.kill(-remotePid, 'SIGKILL');
    await until(() => processGone(orphan.pid), 'the exec client to be gone');
    expect(readState(w.deployPath).db.revision).toBe('031');

    spawnWorker(w, 'worker-b');
    await finalCard(w, /succeeded/);
    // One migration ever ran: the next worker saw it in the container (docker top) and waited, instead of starting a second.
    expect(invocations(w, 'alembic upgrade head')).toBe(1);
    expect(completed(w, 'alembic upgrade head').map((r) => r.exitCode)).toEqual([0]);
    expect(readState(w.deployPath).db.revision).toBe('032');
    expect(thread(w)).toMatch(/no longer runs on the host/);
    expect(thread(w)).toMatch(/`alembic` was still running inside engramia-api \(pid \d+\) after its client had gone; the bot waited for it to end/);
    expect(thread(w)).toMatch(/not run again: database already at 032/);
    expect(records(w).some((r) => r.argv[0] === 'top')).toBe(true);
    expect(await lockHolder(w)).toBeUndefined();
  });

  it('while parked at a gate: nothing is lost; the press wakes the job on the new worker, which runs each step once', async () => {
    const w = await appWorld();
    const a = spawnWorker(w, 'worker-a');
    await w.slash('deploy 0.6.1');
    await until(() => w.slack.messagesIn(OPS_CHANNEL).find((m) => findButton(m.blocks as Block[], 'maintenance.enable')), 'the maintenance gate');
    await until(async () => (await w.bot.producer!.getJob((await lockHolder(w))!.jobId!))?.getState().then((s) => s === 'delayed'), 'the job to park');
    a.child.kill('SIGKILL');
    await a.exited;
    spawnWorker(w, 'worker-b');
    await press(w, 'maintenance.enable');

    await finalCard(w, /succeeded/);
    expectEachCompletedOnce(w);
    // Maintenance on (re-create on 0.6.0), then off (re-create on 0.6.1): each exactly once.
    expect(completed(w, 'up -d engramia-api').filter((r) => !isCmd(r, 'caddy'))).toHaveLength(2);
    expect(readEnvFile(w.deployPath)).not.toMatch(/ENGRAMIA_MAINTENANCE/);
    expect(await lockHolder(w)).toBeUndefined();
  });
});

describe('SIGTERM', { timeout: 90_000 }, () => {
  it('lets the running step finish, keeps the environment locked for the parked job, exits 0; the next worker resumes at the next step', async () => {
    const w = await appWorld();
    setFault(w.deployPath, { match: ' pull', delayMs: 2500, times: 1 });
    const a = spawnWorker(w, 'worker-a');
    await w.slash('deploy 0.6.1 --no-maintenance');
    await startedOnHost(w, ' pull', 'pull');
    a.child.kill('SIGTERM');
    expect(await a.exited).toBe(0);
    expect(a.out()).toMatch(/job checkpointed before this step/);
    // The pull finished under the old worker; the job waits, holding its lock, for the next one.
    expect(completed(w, ' pull')).toHaveLength(1);
    expect((await savedStep(w, 'pull'))?.status).toBe('done');
    expect((await lockHolder(w))?.jobId).toBeDefined();

    spawnWorker(w, 'worker-b');
    await finalCard(w, /succeeded/);
    expect(thread(w)).toMatch(/Picked up by a new worker after a restart: resuming at step 5/);
    expectEachCompletedOnce(w);
    expect(await lockHolder(w)).toBeUndefined();
  });

  it('with a step that outlasts the grace period: a step safe to repeat is stopped on the host and runs again on the next worker', async () => {
    const w = await appWorld();
    setFault(w.deployPath, { match: ' pull', hang: true, times: 1 });
    const a = spawnWorker(w, 'worker-a', { CHATOPS_SHUTDOWN_GRACE_MS: '300' });
    await w.slash('deploy 0.6.1 --no-maintenance');
    const { orphan: hung, remotePid } = await startedOnHost(w, ' pull', 'pull');
    a.child.kill('SIGTERM');
    expect(await a.exited).toBe(0);
    expect(a.out()).toMatch(/step interrupted and checkpointed/);
    expect(processGone(hung.pid)).toBe(true);
    expect(remotePid).toBeGreaterThan(1);

    spawnWorker(w, 'worker-b');
    await finalCard(w, /succeeded/);
    expect(thread(w)).toMatch(/resuming at step 4/);
    expectEachCompletedOnce(w);
  });
});

describe('SIGTERM with a migration running past the grace period', { timeout: 90_000 }, () => {
  it('never kills the migration: the worker leaves it to the next one, exits 0, and the next worker waits for it and settles the step', async () => {
    const w = await appWorld();
    // Longer than the grace (0.3 s) plus the 15 s the worker then waits before leaving the step behind.
    setFault(w.deployPath, { match: 'alembic upgrade head', delayMs: 18_000, times: 1 });
    const a = spawnWorker(w, 'worker-a', { CHATOPS_SHUTDOWN_GRACE_MS: '300' });
    await w.slash('deploy 0.6.1 --no-maintenance');
    const { orphan } = await startedOnHost(w, 'alembic upgrade head', 'migrate');
    a.child.kill('SIGTERM');
    expect(await a.exited).toBe(0);
    expect(a.out()).toMatch(/leaving the running step to the next worker/);
    // The migration still runs on the host, and the job was not ended by the worker that left it.
    expect(processGone(orphan.pid)).toBe(false);
    expect(card(w) && /failed/.test(blockText(card(w)!.blocks as Block[]))).toBe(false);
    expect((await lockHolder(w))?.jobId).toBeDefined();

    spawnWorker(w, 'worker-b');
    await finalCard(w, /succeeded/);
    expect(invocations(w, 'alembic upgrade head')).toBe(1);
    expect(readState(w.deployPath).db.revision).toBe('032');
    expect(thread(w)).toMatch(/was still running on the host; the bot waited for it to end/);
    expect(await lockHolder(w)).toBeUndefined();
  });
});

describe('two workers on one Redis', { timeout: 90_000 }, () => {
  it('each job step runs once, the environment lock holds across processes, and the survivor takes over from a killed worker', async () => {
    const w = await appWorld();
    setFault(w.deployPath, { match: ' pull', delayMs: 3000, times: 1 });
    const a = spawnWorker(w, 'worker-a');
    const b = spawnWorker(w, 'worker-b');
    await w.slash('deploy 0.6.1 --no-maintenance');
    const holder = await until(() => lockHolder(w), 'the lock');
    // A second deploy is refused by the lock, whichever process would have run it.
    const second = await w.slash('deploy 0.6.1 --no-maintenance', { trigger_id: 'second-deploy' });
    expect(JSON.stringify(second.body)).toMatch(/locked/i);
    // Read-only jobs spread over both workers meanwhile; each runs once.
    for (let i = 0; i < 6; i++) await w.slash('version', { trigger_id: `v-${i}` });

    await startedOnHost(w, ' pull', 'pull');
    const owner = await until(() => [a, b].find((p) => p.out().includes(`"jobId":"${holder.jobId}"`) && p.out().includes('"msg":"job started"')), 'the worker that runs the deploy');
    owner.child.kill('SIGKILL');
    await owner.exited;

    await finalCard(w, /succeeded/);
    expectEachCompletedOnce(w);
    const versionReplies = await until(() => {
      const n = w.slack.calls.filter((c) => c.method === 'chat.postMessage' && /^production: (version|🚧)/.test(String(c.args.text ?? ''))).length;
      return n >= 6 ? n : undefined;
    }, 'six version answers');
    expect(versionReplies).toBe(6);
    expect(await lockHolder(w)).toBeUndefined();
  });
});

describe('the reaper (a BullMQ job scheduler on the workers)', { timeout: 90_000 }, () => {
  it('closes a job BullMQ gave up on: stops its leftover command, reports the host in the thread, fails the card, frees the lock', async () => {
    const w = await appWorld();
    setFault(w.deployPath, { match: ' pull', delayMs: 8000, times: 1 });
    // No stall allowed: the first lost worker makes BullMQ fail the job, which only the reaper can then close.
    const a = spawnWorker(w, 'worker-a', { CHATOPS_JOB_MAX_STALLS: '0' });
    await w.slash('deploy 0.6.1 --no-maintenance');
    const { orphan } = await startedOnHost(w, ' pull', 'pull');
    a.child.kill('SIGKILL');
    await a.exited;
    spawnWorker(w, 'worker-b', { CHATOPS_JOB_MAX_STALLS: '0', CHATOPS_REAPER_INTERVAL_MS: '1000' });

    const text = await finalCard(w, /stopped by the bot's reaper/);
    expect(text).toMatch(/failed/i);
    expect(text).toMatch(/It had reached step 4, \*Pull 0\.6\.1\*/);
    expect(text).toMatch(/Host now:\* engramia-api runs `0\.6\.0`/);
    await until(() => /stopped by the bot's reaper/.test(thread(w)), 'the reaper reply in the thread');
    expect(processGone(orphan.pid)).toBe(true);
    expect(completed(w, ' pull')).toHaveLength(0);
    expect(completed(w, 'up -d')).toHaveLength(0);
    expect(await lockHolder(w)).toBeUndefined();
    // The job died between its login and its cleanup: the reaper removed the credential.
    expect(leftCredentials(w)).toEqual({ home: {}, jobFolders: false });
  });

  it('frees a lock whose job no longer exists, and says so in the channel; a young lock is left alone', async () => {
    const w = await appWorld();
    const store = w.bot.producer!.store;
    await w.bot.producer!.ready();
    const old = new Date(Date.now() - 5 * 60_000).toISOString();
    expect((await store.acquireLock('production', { jobId: 'deploy-ghost', user: 'U01ALICE', command: 'deploy 0.6.1', startedAt: old, channel: OPS_CHANNEL }, 600_000)).ok).toBe(true);
    const b = spawnWorker(w, 'worker-b', { CHATOPS_REAPER_INTERVAL_MS: '1000' });
    const msg = await until(() => w.slack.messagesIn(OPS_CHANNEL).find((m) => /deploy-ghost/.test(blockText(m.blocks as Block[]))), 'the reaper message');
    expect(blockText(msg.blocks as Block[])).toMatch(/production\* was still locked by deploy 0\.6\.1 .*job `deploy-ghost`\), but that job no longer exists\. The bot released the lock/);
    expect(await lockHolder(w)).toBeUndefined();

    // A lock taken a moment ago may belong to a job being enqueued right now.
    expect((await store.acquireLock('production', { jobId: 'deploy-young', user: 'U01ALICE', command: 'deploy 0.6.1', startedAt: new Date().toISOString() }, 600_000)).ok).toBe(true);
    const runs = () => b.out().split('\n').filter((l) => l.includes('"msg":"reaper run"')).length;
    const seen = runs();
    await until(() => runs() >= seen + 2, 'two more reaper runs');
    expect((await lockHolder(w))?.jobId).toBe('deploy-young');
  });
});
