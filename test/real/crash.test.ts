// A worker killed with SIGKILL in the middle of a real `docker compose pull` and of a real alembic
// migration. The app (Slack side) runs in this process; the workers are `src/main.ts --role worker`
// child processes; the host is real (sshd, Docker, registry, PostgreSQL, alembic). What ran is read
// from the host's own record (the VM's `docker` recorder), the database and the CLI, not the bot.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { groupAliveScript } from '../../src/ssh/executor.js';
import { OPS_CHANNEL } from '../world/config.js';
import { findButton, sendBlockAction } from '../world/slack-requests.js';
import { SIGNING_SECRET, startRealBotWorld, type RealBotWorld } from './bot-world.js';
import { API_SERVICE, createDeployFolder, DB_SERVICE, type DeployFolder } from './deploy-host.js';
import { completedOnHost, hostCommands, startedOnHost, type HostCommand } from './host-record.js';
import { bringUp, connectVm, eventually, type Vm } from './vm.js';

const host = inject('realHost');
const MAIN = fileURLToPath(new URL('../../src/main.ts', import.meta.url));
/** Short job locks, so a dead worker's job is taken over in seconds. */
const FAST_LOCKS = { CHATOPS_JOB_LOCK_MS: '2000', CHATOPS_STALLED_INTERVAL_MS: '500' };
/** Marks the test's own lock-holding psql session in pg_stat_activity. */
const HOLDER = 'crash-test-hold';

interface WorkerProc {
  name: string;
  child: ChildProcess;
  out: () => string;
  exited: Promise<number | null>;
}

let vm: Vm;
let deploy: DeployFolder;
let w: RealBotWorld;
const workers: WorkerProc[] = [];

beforeAll(async () => {
  deploy = await createDeployFolder({ registryAddress: host.registry.address, tag: '0.6.0', name: 'engramia-crash' });
  vm = connectVm({ sshd: host.sshd, deploy });
  await bringUp(vm, host.registry, '0.6.0');
  w = await startRealBotWorld(host, deploy, { verifySettleSeconds: 30 }, { role: 'app' });
}, 600_000);
afterEach(async (ctx) => {
  process.kill(host.registry.pid, 'SIGCONT');
  if (ctx.task.result?.state === 'fail') {
    for (const p of workers) console.error(`--- ${p.name} (last 30 lines) ---\n${p.out().split('\n').slice(-30).join('\n')}`);
    console.error(`--- host commands ---\n${cmds().map((c) => `${c.pid} ${c.exitCode ?? '-'} ${c.line}`).join('\n')}`);
  }
  for (const p of workers.splice(0)) {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await p.exited;
  }
});
afterAll(async () => {
  process.kill(host.registry.pid, 'SIGCONT');
  await w?.close();
  await vm?.compose(['down', '-v'], { timeoutMs: 120_000 });
  await vm?.close();
});

/** `onOutput` sees the worker's whole output so far, each time more arrives. */
function spawnWorker(name: string, onOutput?: (out: string) => void): WorkerProc {
  // Only what the bot is given, as in production: no secrets of the test runner's own.
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, '--role', 'worker'], {
    env: { PATH: process.env.PATH, ...w.processEnv, ...FAST_LOCKS },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const take = (d: Buffer) => {
    out += d;
    onOutput?.(out);
  };
  child.stdout!.on('data', take);
  child.stderr!.on('data', take);
  const p: WorkerProc = { name, child, out: () => out, exited: once(child, 'exit').then(([code]) => code as number | null) };
  workers.push(p);
  return p;
}

async function killWorker(p: WorkerProc): Promise<void> {
  p.child.kill('SIGKILL');
  await p.exited;
}

const cmds = (): HostCommand[] => hostCommands(host.commandLog, deploy.path);

/** Polls `fn` every 20 ms: the moments these tests act on (a command starting on the host) are short. */
async function until<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
const text = (blocks: unknown) => JSON.stringify(blocks ?? []);
// The newest card of that title: two tests deploy 0.6.2.
const topCard = (title: string) => w.slack.messagesIn(OPS_CHANNEL).findLast((m) => (!m.thread_ts || m.thread_ts === m.ts) && text(m.blocks).includes(title));

function thread(title: string): string {
  const c = topCard(title);
  return c ? w.slack.threadReplies(OPS_CHANNEL, c.ts).map((m) => text(m.blocks)).join('\n') : '';
}

/** The card once its Status field says how the job ended. */
async function finalCard(title: string): Promise<string> {
  return until(`the ${title} card to end`, () => {
    const t = text(topCard(title)?.blocks);
    return /\*Status\*\\n[^"]*(succeeded|failed|stopped)/.test(t) ? t : undefined;
  }, 240_000);
}

async function approvePlan(): Promise<void> {
  const before = w.slack.messagesIn(OPS_CHANNEL).length;
  const msg = await eventually('the plan to approve', async () => w.slack.messagesIn(OPS_CHANNEL).slice(before - 1).findLast((m) => findButton(m.blocks as never, 'deploy.approve')), 120_000);
  expect((await sendBlockAction(`${w.botUrl}/slack/events`, SIGNING_SECRET, { user: 'U02BOB', channel: OPS_CHANNEL, message: msg, action_id: 'deploy.approve' })).status).toBe(200);
}

/** The job's saved record of a step, read from Redis the way any worker would. */
async function savedStep(stepId: string): Promise<{ status?: string; remotePid?: number } | undefined> {
  const holder = await w.bot.producer!.store.readLock('production');
  if (!holder?.jobId) return undefined;
  const job = await w.bot.producer!.getJob(holder.jobId);
  return (job?.data as { state?: { steps?: Array<{ id: string; status?: string; remotePid?: number }> } })?.state?.steps?.find((s) => s.id === stepId);
}

/** Waits until the step runs on the host and its process group is saved in the job: the moment to kill. */
async function runningWithGroupSaved(stepId: string): Promise<number> {
  return until(`${stepId} running with its process group saved`, async () => {
    const s = await savedStep(stepId);
    return s?.status === 'running' && s.remotePid ? s.remotePid : undefined;
  }, 120_000);
}

async function must(what: string, p: ReturnType<Vm['exec']>): Promise<string> {
  const r = await p;
  expect(r.code, `${what}: ${r.output}`).toBe(0);
  return r.stdout;
}

const psql = (sql: string) => vm.compose(['exec', '-T', DB_SERVICE, 'psql', '-U', 'engramia', '-d', 'engramia', '-At', '-c', sql]);
const alembicCurrent = async () => (await must('alembic current', vm.compose(['exec', '-T', API_SERVICE, 'alembic', 'current']))).trim();
const apiVersion = async () => ((await (await fetch(`${deploy.apiUrl}/v1/version`)).json()) as { app_version: string }).app_version;

async function runningImage(): Promise<string | undefined> {
  const out = await must('compose ps', vm.compose(['ps', '--format', 'json']));
  const rows = out.trim().split('\n').map((l) => JSON.parse(l) as { Service: string; State: string; Image: string });
  return rows.find((r) => r.Service === API_SERVICE && r.State === 'running')?.Image;
}

/**
 * Each state-changing docker command of a deploy succeeded exactly once on the host. (An orphan
 * that ended by itself, unfinished, has an exit code too: it must not be 0.)
 */
function expectEachSucceededOnce(needles: string[], record: HostCommand[]): void {
  for (const n of needles) {
    const ok = completedOnHost(record, n).filter((c) => c.exitCode === 0);
    expect(ok.map((c) => c.line), n).toHaveLength(1);
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * A session of the test's own holds a lock on `patterns`: 0.6.2's migration (033 alters that table)
 * starts, takes its transaction and waits inside it, until the test lets it go.
 */
async function holdPatternsLock(): Promise<{ hold: Promise<unknown>; release: () => Promise<unknown> }> {
  const hold = vm.compose(
    ['exec', '-T', '-e', `PGAPPNAME=${HOLDER}`, DB_SERVICE, 'psql', '-U', 'engramia', '-d', 'engramia', '-c', 'BEGIN; LOCK TABLE patterns IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(600); COMMIT;'],
    { timeoutMs: 700_000 },
  );
  await eventually('the test to hold the lock', async () => ((await psql(`SELECT 1 FROM pg_stat_activity WHERE application_name = '${HOLDER}' AND query LIKE '%pg_sleep%' AND state = 'active'`)).stdout.trim() === '1' ? true : undefined));
  return { hold, release: () => psql(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '${HOLDER}'`) };
}

/** Sessions other than the test's own that wait for a lock: the migration, inside its transaction. */
const MIGRATION_WAITING = `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND application_name <> '${HOLDER}'`;

/**
 * `deploy 0.6.2` through a worker killed while the migration waits for the test's lock inside its
 * transaction (hold it first): the process group of the migration's command, as the job saved it.
 */
async function killedDuringMigration(): Promise<number> {
  const a = spawnWorker('worker-a');
  expect((await w.slash('deploy 0.6.2 --no-maintenance')).status).toBe(200);
  await approvePlan();
  const remotePid = await runningWithGroupSaved('migrate');
  await eventually('the migration to wait inside its transaction', async () => ((await psql(MIGRATION_WAITING)).stdout.trim() === '1' ? true : undefined));
  await killWorker(a);
  return remotePid;
}

describe.sequential('a worker killed with SIGKILL on the real host', () => {
  it('during the real `docker compose pull`: the next worker settles the orphaned pull from the host, pulls once more, and the deploy finishes', async () => {
    const mark = cmds().length;
    const mine = () => cmds().slice(mark);
    // The registry freezes the moment the worker says it starts the pull step (its login is done by
    // then): the real pull that follows hangs on the registry, running on the host. A pull of a
    // release whose layers are mostly on the host is over faster than anything could poll for it.
    let frozen = false;
    const a = spawnWorker('worker-a', (out) => {
      if (!frozen && /"step":"pull","status":"started"/.test(out)) {
        process.kill(host.registry.pid, 'SIGSTOP');
        frozen = true;
      }
    });
    expect((await w.slash('deploy 0.6.1 --no-maintenance')).status).toBe(200);
    // (Four-eyes asks for the approval after the pull and the migration check: the first change is `up`.)
    const remotePid = await runningWithGroupSaved('pull');
    // (The job saves the group before the recorder, a child of that group's shell, writes its line.)
    const orphan = await until('the pull in the host record', () => startedOnHost(mine(), ' pull')[0]);
    expect(orphan.exitCode).toBeUndefined();
    // The pull is visible on the host, in the process group the job saved.
    expect(await must('ps', vm.exec({ argv: ['ps', '-o', 'args=', '-g', String(remotePid)] }))).toMatch(/docker compose .* pull/);
    await killWorker(a);

    spawnWorker('worker-b');
    // The registry answers again only once the next worker has started its own pull.
    await until('a second pull on the host', () => startedOnHost(mine(), ' pull').length === 2);
    process.kill(host.registry.pid, 'SIGCONT');
    await approvePlan();

    const card = await finalCard('Deploy 0.6.1');
    expect(card).toContain('succeeded');
    expect(thread('Deploy 0.6.1')).toMatch(/resuming at step \d+ \(Pull 0\.6\.1\)/);
    // Real Compose does not wait for the bot: once the SSH session that ran it is gone, the pull
    // exits by itself (255, its pull unfinished), often before the next worker looks. Either way the
    // next worker settles the step from the host: it stops the pull, or finds it gone; then pulls again.
    expect(thread('Deploy 0.6.1')).toMatch(new RegExp(`process group ${remotePid}\\) (was still running on the host and was stopped|no longer runs on the host)`));
    // The host's record: two pulls started; the orphan never finished one (no exit 0); one did.
    const pulls = startedOnHost(mine(), ' pull');
    expect(pulls).toHaveLength(2);
    expect(pulls[0]!.exitCode ?? 'killed').not.toBe(0);
    expect(processAlive(orphan.pid)).toBe(false);
    expectEachSucceededOnce([' login ', ' pull', 'alembic upgrade head', ' up -d ', 'image prune'], mine());

    expect(await runningImage()).toBe(`${host.apiRepository}:0.6.1`);
    expect(await alembicCurrent()).toBe('032 (head)');
    expect((await must('cat .env', vm.exec({ argv: ['cat', '.env'] }))).match(/^IMAGE_TAG=.*$/gm)).toEqual(['IMAGE_TAG=0.6.1']);
    expect(await apiVersion()).toBe('0.6.1');
    expect(await w.bot.producer!.store.readLock('production')).toBeUndefined();
    // The dead worker had logged in: the job that took over removed the credential.
    const left = await must('credentials', vm.exec({ argv: ['sh', '-c', 'cat "$HOME/.docker/config.json" 2>/dev/null; find .chatops-docker -type f 2>/dev/null; true'] }));
    expect(left).not.toContain(host.registry.address);
    expect(left).not.toContain('.chatops-docker/');
  });

  it('during a real alembic migration: the migration is not killed, the next worker waits for it, does not run it again, and the database ends at the head', async () => {
    const mark = cmds().length;
    const mine = () => cmds().slice(mark);
    const { hold, release } = await holdPatternsLock();
    try {
      const remotePid = await killedDuringMigration();
      expect(startedOnHost(mine(), 'alembic upgrade head')).toHaveLength(1);
      // Killing the worker did not kill the migration.
      expect((await psql(MIGRATION_WAITING)).stdout.trim()).toBe('1');

      const b = spawnWorker('worker-b');
      await eventually('the next worker to wait for the migration, or to start one of its own', async () =>
        b.out().includes('still runs on the host: waiting for it to end') || startedOnHost(mine(), 'alembic upgrade head').length > 1 ? true : undefined,
      120_000);
      await release();

      const card = await finalCard('Deploy 0.6.2');
      expect(card).toContain('succeeded');
      expect(thread('Deploy 0.6.2')).toMatch(/resuming at step \d+ \(Run database migrations\)/);
      expect(thread('Deploy 0.6.2')).toContain(`process group ${remotePid}) was still running on the host; the bot waited for it to end`);
      // One migration ever ran on the host, to its end; the database is at 0.6.2's head.
      expect(startedOnHost(mine(), 'alembic upgrade head')).toHaveLength(1);
      expectEachSucceededOnce([' login ', ' pull', 'alembic upgrade head', ' up -d ', 'image prune'], mine());
      expect(await alembicCurrent()).toBe('033 (head)');
      expect((await psql("SELECT count(*) FROM information_schema.columns WHERE table_name = 'patterns' AND column_name = 'embedding_model'")).stdout.trim()).toBe('1');
      expect(await runningImage()).toBe(`${host.apiRepository}:0.6.2`);
      expect(await apiVersion()).toBe('0.6.2');
      expect(await w.bot.producer!.store.readLock('production')).toBeUndefined();
    } finally {
      await release();
      await hold;
    }
  });

  it('during a real migration whose `docker compose exec` client is killed too: the migration goes on inside the container, and the next worker finds it with `docker top`, waits, and does not run it again', async () => {
    // Back to 0.6.1's head, so deploying 0.6.2 again has 033 to apply.
    await must('downgrade to 032', vm.compose(['exec', '-T', API_SERVICE, 'alembic', 'downgrade', '032']));
    const mark = cmds().length;
    const mine = () => cmds().slice(mark);
    const { hold, release } = await holdPatternsLock();
    try {
      const remotePid = await killedDuringMigration();
      // SIGPIPE kills the client once the dead worker's SSH channel is gone and it writes; the test
      // does it now. Docker does not stop an exec'd process when its client goes.
      process.kill(-remotePid, 'SIGKILL');
      await eventually('the client group to be gone', async () => ((await vm.exec({ argv: ['sh', '-c', groupAliveScript(remotePid)] })).stdout.trim() === 'gone' ? true : undefined));
      expect((await psql(MIGRATION_WAITING)).stdout.trim()).toBe('1');
      expect(await must('compose top', vm.compose(['top', API_SERVICE]))).toMatch(/alembic upgrade head/);

      const b = spawnWorker('worker-b');
      await eventually('the next worker to find the migration in the container, or to start one of its own', async () =>
        b.out().includes('still runs inside the container after its client died') || startedOnHost(mine(), 'alembic upgrade head').length > 1 ? true : undefined,
      120_000);
      await release();

      const card = await finalCard('Deploy 0.6.2');
      expect(card).toContain('succeeded');
      const t = thread('Deploy 0.6.2');
      expect(t).toContain(`process group ${remotePid}) no longer runs on the host`);
      expect(t).toMatch(/`alembic` was still running inside engramia-api \(pid \d+\) after its client had gone; the bot waited for it to end/);
      expect(t).toMatch(/not run again: database already at 033/);
      // One migration was ever started on the host; the database is at 0.6.2's head.
      expect(startedOnHost(mine(), 'alembic upgrade head')).toHaveLength(1);
      expect(await alembicCurrent()).toBe('033 (head)');
      expect(await apiVersion()).toBe('0.6.2');
      expect(await w.bot.producer!.store.readLock('production')).toBeUndefined();
    } finally {
      await release();
      await hold;
    }
  });
});
