// The console adapter from outside: `node dist/main.js` with no Slack tokens, driven through stdin
// like a person at a terminal, against the real Redis, sshd and simulated host of the test world.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { userInfo } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { readCommandLog, readEnvFile, readState, runningApiTag, setMaintenance } from '../world/sim/host.mjs';
import { ALICE, prepareWorld, type PreparedWorld } from './harness.js';
import { BOB } from './blocks.js';

const MAIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url));

interface Console {
  child: ChildProcess;
  out: () => string;
  err: () => string;
  type(line: string): void;
  /** Waits until stdout, from `from` on, matches; returns the index just past the match. */
  waitFor(re: RegExp, from?: number, timeoutMs?: number): Promise<number>;
  exited: Promise<number | null>;
}

function consoleEnv(w: PreparedWorld): NodeJS.ProcessEnv {
  // Console mode is what the bot chooses when no Slack token is set.
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, ...w.processEnv };
  for (const key of ['SLACK_BOT_TOKEN', 'SLACK_SIGNING_SECRET', 'SLACK_APP_TOKEN', 'SLACK_API_URL', 'LOG_LEVEL']) delete env[key];
  return env;
}

function startConsole(env: NodeJS.ProcessEnv, args: string[] = []): Console {
  const child = spawn(process.execPath, [MAIN, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  return {
    child,
    out: () => out,
    err: () => err,
    type: (line) => child.stdin!.write(`${line}\n`),
    async waitFor(re, from = 0, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const m = re.exec(out.slice(from));
        if (m) return from + m.index + m[0].length;
        if (child.exitCode !== null) throw new Error(`console exited ${child.exitCode} before ${re}:\n${out}\n${err}`);
        if (Date.now() > deadline) throw new Error(`no ${re} within ${timeoutMs} ms:\n${out.slice(from)}\n--- stderr ---\n${err}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    exited,
  };
}

let world: PreparedWorld | undefined;
let con: Console | undefined;
afterEach(async (ctx) => {
  if (ctx.task.result?.state === 'fail' && con) console.error(`--- console stdout ---\n${con.out().slice(-6000)}\n--- stderr ---\n${con.err().slice(-3000)}`);
  if (con && con.child.exitCode === null) {
    con.child.kill('SIGKILL');
    await con.exited;
  }
  con = undefined;
  await world?.close();
  world = undefined;
});

function ran(deployPath: string): string[] {
  return readCommandLog(deployPath)
    .filter((r: any) => r.phase !== 'start')
    .map((r: any) => `${r.env?.IMAGE_TAG ? `IMAGE_TAG=${r.env.IMAGE_TAG} ` : ''}${r.argv.join(' ')}`);
}

describe('console adapter (no Slack tokens)', () => {
  it('on a four-eyes environment neither the requester nor `/as` in the same console may decide; the audit names the console and its OS user', async () => {
    // Alice may approve too, so her own press is refused for four-eyes, not for want of a role.
    world = await prepareWorld({ fourEyes: true, access: { deployers: [ALICE], approvers: [ALICE, BOB] } });
    con = startConsole(consoleEnv(world));
    let at = await con.waitFor(new RegExp(`You are ${ALICE} \\(deployer, approver\\)`));

    // --no-maintenance: no other question comes, so four-eyes asks for the plan approval before the first change.
    con.type('/engramia deploy 0.6.1 --no-maintenance');
    at = await con.waitFor(/\[1\] Approve[\s│]+\[2\] Cancel/, at);
    con.type('1');
    at = await con.waitFor(/You requested this job; on production \(four-eyes\) someone else must decide\. Nothing was done\./, at);
    con.type(`/as ${BOB}`);
    con.type('1');
    at = await con.waitFor(/requested from this console session \(as U01ALICE\); on production \(four-eyes\) `\/as` does not make a second person/, at);
    expect(ran(world.deployPath).some((l) => l.includes('up -d'))).toBe(false);
    expect(readEnvFile(world.deployPath)).not.toContain('IMAGE_TAG=0.6.1');

    con.type('exit');
    expect(await con.exited).toBe(0);
    const redis = new Redis(world.processEnv.REDIS_URL!);
    try {
      const rows = await redis.xrange(`${world.processEnv.CHATOPS_QUEUE_PREFIX}:ops:audit`, '-', '+');
      const events = rows.map(([, f]) => JSON.parse(f[1]!) as Record<string, unknown>);
      const gates = events.filter((e) => e.type === 'gate');
      expect(gates.map((e) => [e.user, e.outcome])).toEqual([
        [ALICE, 'refused'],
        [BOB, 'refused'],
      ]);
      // Every event, the job's steps included, says it came from the console and who ran it.
      expect(events.length).toBeGreaterThan(gates.length);
      for (const e of events) expect(e).toMatchObject({ transport: 'console', osUser: userInfo().username });
    } finally {
      redis.disconnect();
    }
  });

  it('a downgrade press by someone who may not decide is refused before any "are you sure?"; an approver is asked after the checks', async () => {
    world = await prepareWorld({ access: { deployers: [ALICE], approvers: [BOB] } });
    con = startConsole(consoleEnv(world));
    let at = await con.waitFor(new RegExp(`You are ${ALICE} \\(deployer\\)`));
    con.type('migrate downgrade -1');
    at = await con.waitFor(/\[1\] Downgrade the database[\s│]+\[2\] Cancel/, at);
    con.type('1');
    at = await con.waitFor(/Only approvers \(access\.approvers\) and admins may decide this\. Nothing was done\./, at);
    expect(con.out()).not.toMatch(/Type y to downgrade/);
    con.type(`/as ${BOB}`);
    con.type('1');
    at = await con.waitFor(/Confirm the downgrade: Downgrade the production database 031 → 030\? Data added by the newer revisions is dropped\.\s+Type y to downgrade, anything else to keep it\./, at);
    expect(readState(world.deployPath).db.revision).toBe('031');
    con.type('y');
    await con.waitFor(/\*Status\* ✅ succeeded/, at, 30_000);
    expect(readState(world.deployPath).db.revision).toBe('030');
    con.type('exit');
    expect(await con.exited).toBe(0);
  });

  it('runs a deploy through its maintenance gate: another approver answers by number', async () => {
    world = await prepareWorld({ access: { deployers: [ALICE], approvers: [ALICE, BOB] }, envExtra: { verifySettleSeconds: 5 } });
    con = startConsole(consoleEnv(world));
    let at = await con.waitFor(new RegExp(`You are ${ALICE} \\(deployer, approver\\)`));

    con.type('/engramia deploy 0.6.1');
    at = await con.waitFor(/\[1\] Enable maintenance[\s│]+\[2\] Deploy without maintenance/, at);
    // Parked at the gate: nothing has been started on the host yet.
    expect(ran(world.deployPath).some((l) => l.includes('up -d'))).toBe(false);

    con.type(`/as ${BOB}`);
    con.type('1');
    at = await con.waitFor(new RegExp(`Now acting as ${BOB}`), at);
    at = await con.waitFor(new RegExp(`Enable maintenance — decided by @${BOB}`), at);
    await con.waitFor(/\*Status\* ✅ succeeded/, at, 30_000);

    const lines = ran(world.deployPath);
    const onOld = lines.indexOf('IMAGE_TAG=0.6.0 compose -f docker-compose.prod.yml up -d engramia-api');
    const upNew = lines.indexOf('IMAGE_TAG=0.6.1 compose -f docker-compose.prod.yml up -d engramia-api caddy');
    const migrate = lines.indexOf('IMAGE_TAG=0.6.1 compose -f docker-compose.prod.yml exec -T engramia-api alembic upgrade head');
    const offNew = lines.lastIndexOf('IMAGE_TAG=0.6.1 compose -f docker-compose.prod.yml up -d engramia-api');
    expect(onOld).toBeGreaterThanOrEqual(0);
    expect(upNew).toBeGreaterThan(onOld);
    expect(migrate).toBeGreaterThan(upNew);
    expect(offNew).toBeGreaterThan(migrate);
    expect(lines.filter((l) => l.includes('alembic upgrade head'))).toHaveLength(1);
    expect(runningApiTag(world.deployPath)).toBe('0.6.1');
    expect(readEnvFile(world.deployPath)).not.toContain('ENGRAMIA_MAINTENANCE');

    con.type('exit');
    expect(await con.exited).toBe(0);
    // What the console prints went through the same scrubbing as Slack payloads.
    for (const secret of [world.apiKey, world.registryToken]) expect(con.out() + con.err()).not.toContain(secret);
  });

  it('takes --as at start, applies the access lists, and with its input ended answers what was asked, then exits 0', async () => {
    world = await prepareWorld();
    con = startConsole(consoleEnv(world), ['--as', BOB]);
    await con.waitFor(new RegExp(`You are ${BOB} \\(approver\\)`));
    // Bob is no deployer in this config: refused before anything is queued.
    con.type('deploy 0.6.1');
    con.type('version');
    con.child.stdin!.end();
    expect(await con.exited).toBe(0);
    expect(con.out()).toContain('You may not run `deploy`');
    expect(con.out()).toMatch(/production: version 0\.6\.0/);
    expect(ran(world.deployPath).some((l) => l.includes('pull'))).toBe(false);
  });

  it('serves no admin listener unless ADMIN_PORT is set; when set, names it in the banner and answers /metrics', async () => {
    world = await prepareWorld();
    const plain = consoleEnv(world);
    delete plain.ADMIN_PORT;
    con = startConsole(plain);
    await con.waitFor(/You are /);
    con.child.stdin!.end();
    expect(await con.exited).toBe(0);
    expect(con.out()).not.toContain('Admin listener');

    con = startConsole({ ...plain, ADMIN_PORT: '0' });
    const at = await con.waitFor(/Admin listener \(ADMIN_PORT\): http:\/\/127\.0\.0\.1:\d+/);
    const url = /http:\/\/127\.0\.0\.1:\d+/.exec(con.out().slice(0, at))![0];
    const metrics = await fetch(`${url}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toMatch(/^# TYPE chatops_jobs_total counter$/m);
    expect(await (await fetch(`${url}/healthz`)).json()).toMatchObject({ redis: 'ok', slack: 'ok' });
    con.child.stdin!.end();
    expect(await con.exited).toBe(0);
  });

  it("a diagnosis's fix button answers by number and runs the command it names, as the person pressing", async () => {
    world = await prepareWorld({ access: { deployers: [ALICE] } });
    setMaintenance(world.deployPath, true);
    con = startConsole(consoleEnv(world));
    let at = await con.waitFor(new RegExp(`You are ${ALICE}`));
    con.type('diagnose');
    at = await con.waitFor(/\[1\] Turn maintenance off/, at);
    con.type('1');
    // Slack asks "are you sure?" before sending this press; so does the console.
    at = await con.waitFor(/Type y to/, at);
    con.type('y');
    // The host's record: the flag removed, then the API re-created on the running version, once.
    const recreated = () => ran(world!.deployPath).filter((l) => l === 'IMAGE_TAG=0.6.0 compose -f docker-compose.prod.yml up -d engramia-api');
    const deadline = Date.now() + 20_000;
    while (recreated().length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(recreated()).toHaveLength(1);
    expect(readEnvFile(world.deployPath)).not.toContain('ENGRAMIA_MAINTENANCE');
    con.type('exit');
    expect(await con.exited).toBe(0);
  });
});
