// The bot's own packaging against the real host: the project's Dockerfile built by Compose, the
// project's docker-compose.yml (app, worker and Redis with its AOF volume) run on the test daemon,
// its production environment being the real VM (sshd, deploy folder, Caddy, registry) and its
// Slack the fake Web API. Checked: /healthz, a command answered into Slack, a non-root image with
// no secret in it or in argv, and a job parked at a gate surviving `docker compose restart`.
import { chownSync, chmodSync, copyFileSync, cpSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { QUEUE_NAME } from '../../src/jobs/queue.js';
import { OPS_CHANNEL, ALICE } from '../world/config.js';
import { startFakeSlack, type FakeSlack } from '../world/fake-slack.js';
import { findFreePort, makeTempDir } from '../world/proc.js';
import { findButton, sendBlockAction, sendSlashCommand } from '../world/slack-requests.js';
import { realConfigYaml, SIGNING_SECRET } from './bot-world.js';
import { buildBotBaseImages, type BotBaseImages } from './bot-images.js';
import { createDeployFolder, API_SERVICE, type DeployFolder } from './deploy-host.js';
import { docker, type RunResult } from './docker-cli.js';
import { bringUp, connectVm, eventually, type Vm } from './vm.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
/** What an operator's checkout holds for `docker compose build`: the Dockerfile's inputs and the compose file. */
const CHECKOUT = ['Dockerfile', '.dockerignore', 'docker-compose.yml', 'package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'src'];
const PROJECT = 'chatops-pack';
const OVERRIDE = 'docker-compose.test-host.yml';

const host = inject('realHost');
let vm: Vm;
let deploy: DeployFolder;
let slack: FakeSlack;
let bases: BotBaseImages;
let dir: string;
const ports = { app: 0, appAdmin: 0, workerAdmin: 0, redis: 0 };
const timings: Record<string, number> = {};

/** `docker compose` on the bot's project: the production file plus the test host's override. */
function compose(args: readonly string[], opts: { allowFailure?: boolean; timeoutMs?: number } = {}): Promise<RunResult> {
  return docker(host, ['compose', '-p', PROJECT, '-f', 'docker-compose.yml', '-f', OVERRIDE, ...args], {
    cwd: dir,
    // The classic builder: BuildKit cannot build on a daemon started with --bridge=none.
    env: { DOCKER_BUILDKIT: '0', REDIS_IMAGE: bases.redisImage },
    ...opts,
  });
}

/**
 * Only what the test host needs, and why: the VM's sshd, Caddy, the registry and fake Slack listen
 * on this machine's loopback, which a container on Compose's bridge cannot reach, so app and worker
 * use the host's network (and therefore free ports instead of 3000/9464, shared with other tests).
 * Redis keeps Compose's bridge network, its command and its AOF volume; it is published on a
 * loopback port for the bot (and the test) to reach. The build takes the Node base made here, and
 * the host network for `npm ci` (the daemon has no default bridge).
 */
function overrideYaml(): string {
  const bot = (adminPort: number, extra: string) => `    build:
      network: host
      args:
        NODE_IMAGE: ${bases.nodeImage}
    network_mode: host
    expose: !reset []
    environment:
      REDIS_URL: redis://127.0.0.1:${ports.redis}
      ADMIN_HOST: 127.0.0.1
      ADMIN_PORT: "${adminPort}"
${extra}`;
  return `services:
  redis:
    ports:
      - "127.0.0.1:${ports.redis}:6379"
  app:
${bot(ports.appAdmin, `      PORT: "${ports.app}"\n    ports: !reset []\n`)}
  worker:
${bot(ports.workerAdmin, '')}`;
}

/** The operator's files next to the compose file: chatops.yml, app.env, worker.env, secrets/deploy_key. */
function writeOperatorFiles(): void {
  const inContainer = { ...host, sshd: { ...host.sshd, privateKeyPath: '/run/secrets/deploy_key' } };
  writeFileSync(path.join(dir, 'chatops.yml'), realConfigYaml(inContainer, deploy));
  writeFileSync(path.join(dir, 'app.env'), `SLACK_BOT_TOKEN=${slack.botToken}\nSLACK_SIGNING_SECRET=${SIGNING_SECRET}\nSLACK_API_URL=${slack.apiUrl}\nLOG_LEVEL=debug\n`);
  writeFileSync(
    path.join(dir, 'worker.env'),
    `SLACK_BOT_TOKEN=${slack.botToken}\nSLACK_API_URL=${slack.apiUrl}\nLOG_LEVEL=debug\nENGRAMIA_PROD_API_KEY=${deploy.apiKey}\nREGISTRY_TOKEN=${host.registry.password}\n`,
  );
  writeFileSync(path.join(dir, OVERRIDE), overrideYaml());
  // As docker-compose.yml tells the operator: 0600 and owned by uid 1000, the image's `node` user.
  mkdirSync(path.join(dir, 'secrets'), { mode: 0o700 });
  chownSync(path.join(dir, 'secrets'), 1000, 1000);
  const key = path.join(dir, 'secrets', 'deploy_key');
  copyFileSync(host.sshd.privateKeyPath, key);
  chmodSync(key, 0o600);
  chownSync(key, 1000, 1000);
}

async function timed<T>(name: string, f: () => Promise<T>): Promise<T> {
  const t = Date.now();
  try {
    return await f();
  } finally {
    timings[name] = Date.now() - t;
  }
}

const secrets = () => [SIGNING_SECRET, slack.botToken, deploy.apiKey, host.registry.password];
const appUrl = () => `http://127.0.0.1:${ports.app}`;

async function getJson(url: string): Promise<{ status: number; body: any }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.json() };
}

/** Both roles up: the public /healthz says ok and the app's admin /healthz counts a live worker. */
async function botReady(): Promise<void> {
  await eventually('bot /healthz', async () => ((await getJson(`${appUrl()}/healthz`)).status === 200 ? true : undefined), 120_000);
  await eventually('a live worker', async () => {
    const h = await getJson(`http://127.0.0.1:${ports.appAdmin}/healthz`);
    return h.status === 200 && h.body.workers >= 1 ? true : undefined;
  }, 120_000);
}

beforeAll(async () => {
  deploy = await createDeployFolder({ registryAddress: host.registry.address, tag: '0.6.0', name: 'engramia-pack' });
  vm = connectVm({ sshd: host.sshd, deploy });
  [slack, bases] = await Promise.all([
    startFakeSlack({ channels: [{ id: OPS_CHANNEL, name: 'ops', member: true }], limits: false }),
    timed('baseImages', () => buildBotBaseImages(host, host.baseImage)),
    bringUp(vm, host.registry, '0.6.0'),
  ]).then(([s, b]) => [s, b] as const);
  [ports.app, ports.appAdmin, ports.workerAdmin, ports.redis] = await Promise.all([findFreePort(), findFreePort(), findFreePort(), findFreePort()]);
  dir = makeTempDir('chatops-pack-');
  for (const f of CHECKOUT) cpSync(path.join(REPO, f), path.join(dir, f), { recursive: true });
  writeOperatorFiles();
  const build = await timed('composeBuild', () => compose(['build'], { timeoutMs: 900_000, allowFailure: true }));
  // The classic builder prints the failing step's output on stdout, which the error alone would hide.
  if (build.code !== 0) throw new Error(`compose build exited ${build.code}:\n${build.stdout.slice(-4000)}\n${build.stderr}`);
  await timed('composeUp', async () => {
    await compose(['up', '-d'], { timeoutMs: 300_000 });
    await botReady().catch(async (err: unknown) => {
      const ps = await compose(['ps', '-a'], { allowFailure: true });
      const logs = await compose(['logs', '--no-color', '--tail', '40'], { allowFailure: true });
      throw new Error(`${String(err)}\n${ps.stdout}\n${logs.stdout}${logs.stderr}`);
    });
  });
  console.log(`[real] packaging: ${Object.entries(timings).map(([k, v]) => `${k} ${(v / 1000).toFixed(1)} s`).join(', ')}`);
}, 1_200_000);
afterEach(async (ctx) => {
  if (ctx.task.result?.state === 'fail') console.error(`--- compose logs (last 60) ---\n${(await compose(['logs', '--tail', '60'], { allowFailure: true })).stdout}`);
});
afterAll(async () => {
  if (dir) await compose(['down', '-v', '--rmi', 'local'], { allowFailure: true, timeoutMs: 180_000 });
  await slack?.close();
  await vm?.compose(['down', '-v'], { timeoutMs: 120_000 });
  await vm?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function text(blocks: unknown): string {
  return JSON.stringify(blocks ?? []);
}

const slash = (cmd: string) =>
  sendSlashCommand(`${appUrl()}/slack/events`, SIGNING_SECRET, { text: cmd, user_id: ALICE, channel_id: OPS_CHANNEL, response_url: slack.responseUrl() });

async function inspect(container: string, format: string): Promise<string> {
  return (await docker(host, ['inspect', '-f', format, container])).stdout.trim();
}

async function containerOf(service: string): Promise<string> {
  const id = (await compose(['ps', '-q', service])).stdout.trim();
  expect(id, `one ${service} container`).toMatch(/^[0-9a-f]{64}$/);
  return id;
}

async function parkedJobs(redisUrl: string): Promise<Array<{ id: string; state: string; kind: string }>> {
  const queue = new Queue(QUEUE_NAME, { connection: { url: redisUrl }, prefix: 'chatops' });
  try {
    const jobs = await queue.getJobs(['delayed', 'waiting', 'active', 'prioritized']);
    return Promise.all(jobs.map(async (j) => ({ id: String(j.id), state: await j.getState(), kind: String((j.data as { kind?: unknown }).kind) })));
  } finally {
    await queue.close();
  }
}

async function redisRunId(redisUrl: string): Promise<string> {
  const r = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  try {
    return /run_id:(\w+)/.exec(await r.info('server'))![1]!;
  } finally {
    r.disconnect();
  }
}

describe("the bot's packaging (Dockerfile, docker-compose.yml) on the real host", () => {
  it('the image runs as the non-root node user, and no secret is in the image, its history or any container argv', async () => {
    const image = (await compose(['images', '-q', 'app'])).stdout.trim();
    expect(image).not.toBe('');
    expect(await inspect(image, '{{.Config.User}}')).toBe('node');
    for (const service of ['app', 'worker']) {
      const c = await containerOf(service);
      expect((await docker(host, ['exec', c, 'id', '-u'])).stdout.trim()).toBe('1000');
      const argv = await inspect(c, '{{json .Path}} {{json .Args}} {{json .Config.Cmd}} {{json .Config.Entrypoint}}');
      expect(argv).toBe(`"node" ["dist/main.js","--role","${service}"] ["--role","${service}"] ["node","dist/main.js"]`);
    }
    const history = (await docker(host, ['history', '--no-trunc', image])).stdout;
    // The image's whole filesystem, read in a container given no environment at all.
    const files = await docker(host, ['run', '--rm', '--network', 'none', '--entrypoint', 'sh', image, '-c', 'ls -A /app; echo --; grep -rlF -e "$1" -e "$2" -e "$3" -e "$4" / --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev; true', 'sh', ...secrets()]);
    // Only what the Dockerfile copies is in /app, and no file anywhere holds a secret (grep lists none).
    expect(files.stdout.trim().split('\n')).toEqual(['dist', 'node_modules', 'package.json', '--']);
    for (const s of secrets()) expect(history).not.toContain(s);
  });

  it('/healthz answers on the public port (verdict only) and on the admin listener (redis, a live worker)', async () => {
    expect(await getJson(`${appUrl()}/healthz`)).toEqual({ status: 200, body: { status: 'ok' } });
    const admin = await getJson(`http://127.0.0.1:${ports.appAdmin}/healthz`);
    expect(admin.status).toBe(200);
    expect(admin.body).toMatchObject({ status: 'ok', redis: 'ok' });
    expect(admin.body.workers).toBeGreaterThanOrEqual(1);
    expect((await getJson(`http://127.0.0.1:${ports.workerAdmin}/healthz`)).status).toBe(200);
  });

  it('/engramia status: signed by Slack, run by the worker over SSH, answered into Slack with what the real host runs', async () => {
    expect((await slash('status')).status).toBe(200);
    const msg = await slack.waitFor(() => slack.messagesIn(OPS_CHANNEL).find((m) => text(m.blocks).includes('production: status')), { timeoutMs: 60_000, description: 'status card' });
    const t = text(msg.blocks);
    expect(t).toContain('*Running*\\n`0.6.0`');
    expect(t).toContain('*Database*\\n`031`');
    expect(t).toMatch(/🟢 `engramia-api` running · `0\.6\.0`/);
    // It went through the Web API the containers were given (SLACK_API_URL), with the bot token.
    expect(slack.calls.some((c) => c.method === 'chat.postMessage')).toBe(true);
  });

  it('`docker compose restart` keeps a job parked at a gate: same job, same state, and it completes after the restart', async () => {
    const redisUrl = `redis://127.0.0.1:${ports.redis}`;
    expect((await slash('maintenance on')).status).toBe(200);
    const gate = await slack.waitFor(() => slack.messagesIn(OPS_CHANNEL).findLast((m) => findButton(m.blocks as never, 'deploy.approve')), { timeoutMs: 60_000, description: 'deploy.approve' });
    const before = await eventually('the parked job', async () => {
      const jobs = (await parkedJobs(redisUrl)).filter((j) => j.kind === 'maintenance');
      return jobs.length === 1 && jobs[0]!.state === 'delayed' ? jobs : undefined;
    });
    const started = { redis: await redisRunId(redisUrl), app: await inspect(await containerOf('app'), '{{.State.StartedAt}}'), worker: await inspect(await containerOf('worker'), '{{.State.StartedAt}}') };

    await timed('composeRestart', () => compose(['restart'], { timeoutMs: 600_000 }));
    await botReady();

    // Every process really restarted: a new Redis (run_id) and new bot containers…
    expect(await redisRunId(redisUrl)).not.toBe(started.redis);
    expect(await inspect(await containerOf('app'), '{{.State.StartedAt}}')).not.toBe(started.app);
    expect(await inspect(await containerOf('worker'), '{{.State.StartedAt}}')).not.toBe(started.worker);
    // …Redis read its AOF back from the volume, and the job is there, still parked at its gate.
    const aof = await compose(['exec', '-T', 'redis', 'sh', '-c', 'ls /data/appendonlydir']);
    expect(aof.stdout).toMatch(/appendonly\.aof\.\d+\.incr\.aof/);
    expect((await parkedJobs(redisUrl)).filter((j) => j.kind === 'maintenance')).toEqual(before);
    const env = await vm.exec({ argv: ['cat', '.env'] });
    expect(env.stdout).not.toContain('ENGRAMIA_MAINTENANCE');

    // Bob approves on the message posted before the restart; the restarted worker finishes the job.
    expect((await sendBlockAction(`${appUrl()}/slack/events`, SIGNING_SECRET, { user: 'U02BOB', channel: OPS_CHANNEL, message: gate, action_id: 'deploy.approve' })).status).toBe(200);
    await slack.waitFor(
      () => slack.messagesIn(OPS_CHANNEL).find((m) => (!m.thread_ts || m.thread_ts === m.ts) && text(m.blocks).includes('Maintenance on for production') && /succeeded/.test(text(m.blocks))),
      { timeoutMs: 180_000, description: 'maintenance card succeeded' },
    );
    // The host's own word: .env and the re-created API container.
    expect((await vm.exec({ argv: ['cat', '.env'] })).stdout).toContain('ENGRAMIA_MAINTENANCE=true');
    const printenv = await vm.compose(['exec', '-T', API_SERVICE, 'printenv', 'ENGRAMIA_MAINTENANCE']);
    expect(printenv.stdout.trim()).toBe('true');
    expect((await parkedJobs(redisUrl)).filter((j) => j.kind === 'maintenance')).toEqual([]);
    const everything = JSON.stringify(slack.calls) + (await compose(['logs', '--no-color'])).stdout;
    for (const s of [deploy.apiKey, host.registry.password]) expect(everything).not.toContain(s);
  });
});
