// The bot's standard deploy end to end against the real host (signed Slack request → Bolt →
// BullMQ → worker → SSH → real Docker, Compose, registry, PostgreSQL, alembic), checked afterwards
// with the real CLI, the real database and real HTTP.
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { OPS_CHANNEL } from '../world/config.js';
import { findButton, sendBlockAction } from '../world/slack-requests.js';
import { tearDownAfterFile } from './bot-steps.js';
import { SIGNING_SECRET, startRealBotWorld, type RealBotWorld } from './bot-world.js';
import { API_SERVICE, createDeployFolder, DB_SERVICE, type DeployFolder } from './deploy-host.js';
import { bringUp, connectVm, type Vm } from './vm.js';

const host = inject('realHost');
let vm: Vm;
let deploy: DeployFolder;
let w: RealBotWorld | undefined;

beforeAll(async () => {
  deploy = await createDeployFolder({ registryAddress: host.registry.address, tag: '0.6.0', name: 'engramia-deploy' });
  vm = connectVm({ sshd: host.sshd, deploy });
  await bringUp(vm, host.registry, '0.6.0');
  w = await startRealBotWorld(host, deploy, { verifySettleSeconds: 30 });
}, 600_000);
tearDownAfterFile(() => ({ w, vm }), 40);

function text(blocks: unknown): string {
  return JSON.stringify(blocks ?? []);
}

/** Production is four-eyes: Bob approves Alice's plan before the first change on the host. */
async function approvePlan(world: RealBotWorld) {
  const msg = await world.slack.waitFor(() => world.slack.messagesIn(OPS_CHANNEL).findLast((m) => findButton(m.blocks as never, 'deploy.approve')), { timeoutMs: 120_000, description: 'deploy.approve' });
  expect((await sendBlockAction(`${world.botUrl}/slack/events`, SIGNING_SECRET, { user: 'U02BOB', channel: OPS_CHANNEL, message: msg, action_id: 'deploy.approve' })).status).toBe(200);
}

async function finalCard(world: RealBotWorld, title: string, outcome: RegExp, timeoutMs = 120_000) {
  return world.slack.waitFor(
    () => {
      const top = world.slack.messagesIn(OPS_CHANNEL).filter((m) => !m.thread_ts || m.thread_ts === m.ts);
      const card = top.find((m) => text(m.blocks).includes(title));
      return card && outcome.test(text(card.blocks)) ? card : undefined;
    },
    { timeoutMs, description: `deploy card matching ${outcome}` },
  );
}

/** Polls the API through Caddy until stopped, as a user of Engramia would see it during a deploy. */
function watchVersion(url: string): { stop(): Promise<{ status: number; body: string }[]> } {
  const answers: { status: number; body: string }[] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
        answers.push({ status: res.status, body: await res.text() });
      } catch (err) {
        answers.push({ status: 0, body: String(err) });
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return answers;
    },
  };
}

async function must(what: string, p: ReturnType<Vm['exec']>): Promise<string> {
  const r = await p;
  expect(r.code, `${what}: ${r.output}`).toBe(0);
  return r.stdout;
}

/** Service → image of what runs, from the real `docker compose ps`. */
async function running(): Promise<Record<string, string>> {
  const out = await must('compose ps', vm.compose(['ps', '--format', 'json']));
  const rows = out.trim().split('\n').map((l) => JSON.parse(l) as { Service: string; State: string; Image: string });
  return Object.fromEntries(rows.filter((r) => r.State === 'running').map((r) => [r.Service, r.Image]));
}

describe('deploy through the bot against the real host', () => {
  it('deploy 9.9.9 (not in the registry): stops at the pull, nothing on the host changes, the registry\'s words reach the thread', async () => {
    const before = { running: await running(), env: await must('cat .env', vm.exec({ argv: ['cat', '.env'] })) };
    const ack = await w!.slash('deploy 9.9.9 --no-maintenance');
    expect(ack.status).toBe(200);
    const card = await finalCard(w!, 'Deploy 9.9.9', /succeeded|failed|stopped/);
    expect(text(card.blocks)).toContain('failed');
    // The card names the cause in the registry's own words and does not offer the same tag again.
    expect(text(card.blocks)).toContain('9.9.9 is not in the registry');
    expect(text(card.blocks)).toContain('manifest unknown');

    expect(await running()).toEqual(before.running);
    expect(await must('cat .env', vm.exec({ argv: ['cat', '.env'] }))).toBe(before.env);
    expect((await must('alembic current', vm.compose(['exec', '-T', API_SERVICE, 'alembic', 'current']))).trim()).toBe('031 (head)');
    // Real Compose/registry wording, shown in the pull step's reply.
    const said = JSON.stringify(w!.slack.messagesIn(OPS_CHANNEL).map((m) => m.blocks));
    expect(said).toContain(`manifest for ${host.apiRepository}:9.9.9 not found: manifest unknown: manifest unknown`);
  });

  it('a registry that refuses the login (wrong token): stops before anything changes, in the registry\'s own words, and no token is shown', async () => {
    const wrongToken = `wrong-${deploy.apiKey.slice(0, 6)}`;
    const bad = await startRealBotWorld(host, deploy, { verifySettleSeconds: 30 }, { registryToken: wrongToken });
    try {
      const before = { running: await running(), env: await must('cat .env', vm.exec({ argv: ['cat', '.env'] })) };
      // The login is one of the checks made before anyone is asked to approve anything.
      expect((await bad.slash('deploy 0.6.1 --no-maintenance')).status).toBe(200);
      const card = await finalCard(bad, 'Deploy 0.6.1', /succeeded|failed|stopped/);
      expect(text(card.blocks)).toContain('failed');
      // Engine 20.10 against distribution 2.8 with htpasswd; ghcr.io says "denied: denied" instead.
      expect(text(card.blocks)).toContain(`check the token in REGISTRY_TOKEN`);
      expect(text(card.blocks)).toMatch(/login attempt to http:\/\/127\.0\.0\.1:\d+\/v2\/ failed with status: 401 Unauthorized/);

      expect(await running()).toEqual(before.running);
      expect(await must('cat .env', vm.exec({ argv: ['cat', '.env'] }))).toBe(before.env);
      const left = await vm.exec({ argv: ['sh', '-c', 'cat "$HOME/.docker/config.json" 2>/dev/null; find .chatops-docker -type f 2>/dev/null; true'] });
      expect(left.stdout).not.toContain(host.registry.address);
      expect(JSON.stringify(bad.slack.calls) + bad.logs.join('')).not.toContain(wrongToken);
    } finally {
      await bad.close();
    }
  });

  it('deploy 0.6.1 --maintenance: users get the maintenance 503 during it; pulled after a real login, 0.6.1 runs, the database is at 032, .env pins it, maintenance off, 0.6.0 stays for rollback', async () => {
    const seen = watchVersion(`${deploy.apiUrl}/v1/version`);
    const ack = await w!.slash('deploy 0.6.1 --maintenance');
    expect(ack.status).toBe(200);
    await approvePlan(w!);
    const card = await finalCard(w!, 'Deploy 0.6.1', /succeeded|failed|stopped/);
    const answers = await seen.stop();
    expect(text(card.blocks)).toContain('succeeded');
    // What a user of the API saw while the bot worked: the old version, then maintenance, then the new one.
    const firstMaintenance = answers.findIndex((a) => a.status === 503 && a.body.includes('scheduled maintenance'));
    const firstNew = answers.findIndex((a) => a.status === 200 && a.body.includes('"0.6.1"'));
    expect(firstMaintenance, JSON.stringify(answers.slice(-5))).toBeGreaterThanOrEqual(0);
    expect(firstNew).toBeGreaterThan(firstMaintenance);
    expect(answers.slice(0, firstMaintenance).some((a) => a.body.includes('"0.6.1"'))).toBe(false);

    // The host's own word, not the bot's: which image the container runs…
    expect((await running())[API_SERVICE]).toBe(`${host.apiRepository}:0.6.1`);

    // …where the database is, read by alembic and by PostgreSQL…
    const current = await must('alembic current', vm.compose(['exec', '-T', API_SERVICE, 'alembic', 'current']));
    expect(current.trim()).toBe('032 (head)');
    const tables = await must(
      'psql',
      vm.compose(['exec', '-T', DB_SERVICE, 'psql', '-U', 'engramia', '-d', 'engramia', '-At', '-c', "SELECT to_regclass('public.pattern_feedback')"]),
    );
    expect(tables.trim()).toBe('pattern_feedback');

    // …what .env pins, that maintenance is not on in the running container…
    const env = await must('cat .env', vm.exec({ argv: ['cat', '.env'] }));
    expect(env.match(/^IMAGE_TAG=.*$/gm)).toEqual(['IMAGE_TAG=0.6.1']);
    const maint = await vm.compose(['exec', '-T', API_SERVICE, 'printenv', 'ENGRAMIA_MAINTENANCE']);
    expect(maint.code).toBe(1); // printenv: not set
    expect(env).not.toMatch(/^\s*(export\s+)?ENGRAMIA_MAINTENANCE\s*=\s*true/m);
    expect((await fetch(`${deploy.apiUrl}/v1/health`, { headers: { authorization: `Bearer ${deploy.apiKey}` } })).status).toBe(200);

    // …that the previous release's image survived `image prune -f`…
    const images = await must('image ls', vm.exec({ argv: ['docker', 'image', 'ls', '--format', '{{.Repository}}:{{.Tag}}'] }));
    expect(images.split('\n')).toContain(`${host.apiRepository}:0.6.0`);

    // …that no registry credential stayed on the host (the SSH user's docker config, the bot's own folders)…
    const left = await vm.exec({ argv: ['sh', '-c', 'cat "$HOME/.docker/config.json" 2>/dev/null; find .chatops-docker -type f 2>/dev/null; true'] });
    expect(left.code).toBe(0);
    expect(left.stdout).not.toContain(host.registry.address);
    expect(left.stdout).not.toContain('.chatops-docker/');

    // …and what the API answers through Caddy.
    const version = (await (await fetch(`${deploy.apiUrl}/v1/version`)).json()) as { app_version: string };
    expect(version.app_version).toBe('0.6.1');

    // Nothing the bot logged or sent to Slack holds the registry password or the API key.
    const everything = JSON.stringify(w!.slack.calls) + w!.logs.join('');
    expect(everything).not.toContain(host.registry.password);
    expect(everything).not.toContain(deploy.apiKey);
  });
});
