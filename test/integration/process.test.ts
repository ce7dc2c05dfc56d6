import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { readCommandLog } from '../world/sim/host.mjs';
import { OPS_CHANNEL, prepareWorld, slashSender, type PreparedWorld } from './harness.js';

const MAIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url));

interface Proc {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

function run(env: NodeJS.ProcessEnv, args: string[] = []): Proc {
  // Only what the bot is given: no inherited secrets or tokens from the test runner.
  const child = spawn(process.execPath, [MAIN, ...args], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  return { child, stdout: () => out, stderr: () => err, exited: once(child, 'exit').then(([code]) => code as number | null) };
}

async function listening(p: Proc, timeoutMs = 15_000): Promise<number> {
  return (await started(p, timeoutMs)).port as number;
}

/** The bot's "started" log line, parsed: role, port, adminPort. */
async function started(p: Proc, timeoutMs = 15_000): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const line = p
      .stdout()
      .split('\n')
      .find((l) => l.includes('"msg":"engramia-chatops started"'));
    if (line) return JSON.parse(line) as Record<string, unknown>;
    if (p.child.exitCode !== null) throw new Error(`bot exited ${p.child.exitCode}: ${p.stderr()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`bot did not start: ${p.stdout()} ${p.stderr()}`);
}

let world: PreparedWorld | undefined;
let proc: Proc | undefined;
afterEach(async () => {
  if (proc && proc.child.exitCode === null) {
    proc.child.kill('SIGKILL');
    await proc.exited;
  }
  proc = undefined;
  await world?.close();
  world = undefined;
});

describe('node dist/main.js, driven from outside', () => {
  it('answers a signed /engramia health with a schema-valid message, and exits 0 on SIGTERM', async () => {
    world = await prepareWorld();
    proc = run(world.processEnv);
    const port = await listening(proc);
    const slash = slashSender(`http://127.0.0.1:${port}`, world.slack);
    const ack = await slash('health');
    expect(ack.status).toBe(200);
    expect(ack.body.text).toMatch(/Checking health of production/);
    const call = await world.slack.waitForCall('chat.postMessage', (c) => c.args.channel === OPS_CHANNEL, { timeoutMs: 20_000 });
    const text = JSON.stringify(call.args.blocks);
    for (const check of ['storage', 'llm', 'embedding', 'redis', 'stripe', 'migration']) expect(text).toContain(`*${check}*`);
    expect(world.slack.invalidBlockCalls()).toEqual([]);
    expect(readCommandLog(world.deployPath).some((r: any) => r.argv.includes('ps'))).toBe(true);

    proc.child.kill('SIGTERM');
    expect(await proc.exited).toBe(0);
    expect(proc.stdout()).toContain('stopping: no new work');
    for (const secret of [world.apiKey, world.registryToken, world.processEnv.SLACK_SIGNING_SECRET!]) {
      expect(proc.stdout() + proc.stderr()).not.toContain(secret);
    }
  });

  it('refuses to start on bad config, listing every problem with its key path', async () => {
    world = await prepareWorld();
    const bad = join(world.root, 'bad.yml');
    writeFileSync(
      bad,
      `environments:
  production:
    ssh: { host: "h;rm", port: 70000, username: deploy, privateKeyPath: /k }
    deployPath: relative/path
    apiBaseUrl: ftp://x
    apiKeyEnv: KEY
    registry: { host: ghcr.io, username: bot, tokenEnv: T }
    tpyo: 1
`,
    );
    proc = run({ ...world.processEnv, CHATOPS_CONFIG: bad });
    expect(await proc.exited).toBe(1);
    const err = proc.stderr();
    expect(err).toContain(`${bad}: environments.production.ssh.host: must be a host name or IP address`);
    expect(err).toContain('environments.production.ssh.port');
    expect(err).toContain('environments.production.ssh.hostKeySha256: is required');
    expect(err).toContain('environments.production.deployPath: must be an absolute path');
    expect(err).toContain('environments.production.apiBaseUrl');
    expect(err).toContain('unknown key "tpyo"');
    expect(err).not.toMatch(/\n\s+at /);
  });

  it('refuses to start when a secret the config names is missing, naming the variable', async () => {
    world = await prepareWorld();
    const env = { ...world.processEnv };
    delete env.GHCR_TOKEN;
    proc = run(env);
    expect(await proc.exited).toBe(1);
    expect(proc.stderr()).toContain('environments.production.registry.tokenEnv: names the environment variable GHCR_TOKEN, which is not set');
  });

  it('with no Slack tokens, opens the console; with stdin closed it prints the help and exits 0', async () => {
    world = await prepareWorld();
    const env = { ...world.processEnv };
    for (const key of ['SLACK_BOT_TOKEN', 'SLACK_SIGNING_SECRET', 'SLACK_API_URL']) delete env[key];
    proc = run(env);
    expect(await proc.exited).toBe(0);
    expect(proc.stdout()).toContain('no Slack tokens are set, so commands are typed here');
    expect(proc.stdout()).toContain('/as USER');
  });

  it('with no Slack tokens and no config, names the file and points to npm run demo', async () => {
    proc = run({ CHATOPS_CONFIG: '/nonexistent/chatops.yml' });
    expect(await proc.exited).toBe(1);
    expect(proc.stderr()).toContain('/nonexistent/chatops.yml');
    expect(proc.stderr()).toContain('npm run demo');
  });
});

/** Only these variables from the world's environment: what one compose service's env file would hold. */
function only(env: NodeJS.ProcessEnv, names: string[]): NodeJS.ProcessEnv {
  return Object.fromEntries(names.filter((n) => env[n] !== undefined).map((n) => [n, env[n]]));
}
const PLAIN = ['SLACK_API_URL', 'PORT', 'ADMIN_PORT', 'REDIS_URL', 'CHATOPS_CONFIG', 'CHATOPS_QUEUE_PREFIX', 'LOG_LEVEL'];

describe('each role starts with only its own secrets (the docker-compose.yml split)', () => {
  it('--role app with the Slack secrets alone (no host secret, no readable deploy key) serves Slack, the public /healthz and its admin listener', async () => {
    world = await prepareWorld();
    // The config still names the key, as the shared chatops.yml does; the app's container has no such file.
    const config = join(world.root, 'app-chatops.yml');
    writeFileSync(config, readFileSync(world.configPath, 'utf8').replace(/privateKeyPath: .*/, 'privateKeyPath: /nonexistent/deploy_key'));
    proc = run({ ...only(world.processEnv, [...PLAIN, 'SLACK_BOT_TOKEN', 'SLACK_SIGNING_SECRET']), CHATOPS_CONFIG: config }, ['--role', 'app']);
    const line = await started(proc);
    expect(line).toMatchObject({ role: 'app', port: expect.any(Number), adminPort: expect.any(Number) });
    const ack = await slashSender(`http://127.0.0.1:${line.port}`, world.slack)('version');
    expect(ack.status).toBe(200);
    expect(ack.body.text).toMatch(/job/);
    const hz = await fetch(`http://127.0.0.1:${line.port}/healthz`);
    // No worker runs yet: not ready, and the public answer says no more than that.
    expect(hz.status).toBe(503);
    expect(await hz.text()).toBe('{"status":"error"}');
    expect(await (await fetch(`http://127.0.0.1:${line.adminPort}/healthz`)).json()).toMatchObject({ status: 'error', workers: 0 });
    expect((await fetch(`http://127.0.0.1:${line.adminPort}/metrics`)).status).toBe(200);
    expect(readCommandLog(world.deployPath)).toEqual([]);
  });

  it('--role worker with the host secrets and the bot token alone (no signing secret) runs, and its admin listener counts it', async () => {
    world = await prepareWorld();
    proc = run(only(world.processEnv, [...PLAIN, 'SLACK_BOT_TOKEN', 'ENGRAMIA_PROD_API_KEY', 'GHCR_TOKEN']), ['--role', 'worker']);
    const line = await started(proc);
    expect(line).toMatchObject({ role: 'worker', adminPort: expect.any(Number) });
    expect(line.port).toBeUndefined();
    const admin = `http://127.0.0.1:${line.adminPort}`;
    const deadline = Date.now() + 15_000;
    let body: Record<string, unknown> = {};
    while (Date.now() < deadline) {
      body = (await (await fetch(`${admin}/healthz`)).json()) as Record<string, unknown>;
      if (body.status === 'ok') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(body).toMatchObject({ status: 'ok', redis: 'ok', slack: 'ok', workers: 1 });
    expect(await (await fetch(`${admin}/metrics`)).text()).toMatch(/^# TYPE chatops_jobs_total counter$/m);
    proc.child.kill('SIGTERM');
    expect(await proc.exited).toBe(0);
  });

  it('--role app without a signing secret or app token is refused: it is the role Slack talks to', async () => {
    world = await prepareWorld();
    proc = run(only(world.processEnv, [...PLAIN, 'SLACK_BOT_TOKEN']), ['--role', 'app']);
    expect(await proc.exited).toBe(1);
    expect(proc.stderr()).toContain('SLACK_SIGNING_SECRET: is required in HTTP mode');
  });
});

describe('a deploy key group or others may read', () => {
  it.each(['worker', 'all'])('stops --role %s at start-up, exit 1, with the chmod that fixes it', async (role) => {
    world = await prepareWorld();
    const key = join(world.root, 'deploy_key');
    copyFileSync(inject('sshd').privateKeyPath, key);
    chmodSync(key, 0o644);
    const config = join(world.root, 'exposed-key.yml');
    writeFileSync(config, readFileSync(world.configPath, 'utf8').replace(/privateKeyPath: .*/, `privateKeyPath: ${key}`));
    proc = run({ ...world.processEnv, CHATOPS_CONFIG: config }, ['--role', role]);
    expect(await proc.exited).toBe(1);
    expect(proc.stderr()).toContain(`environments.production.ssh.privateKeyPath: ${key} may be read or written by group or others (mode 0644)`);
    expect(proc.stderr()).toContain(`Fix: chmod 600 ${key}`);
    expect(proc.stderr() + proc.stdout()).not.toContain('PRIVATE KEY');
    expect(readCommandLog(world.deployPath)).toEqual([]);

    // The fix it names works.
    chmodSync(key, 0o600);
    proc = run({ ...world.processEnv, CHATOPS_CONFIG: config }, ['--role', role]);
    expect(await started(proc)).toMatchObject({ role });
  });
});
