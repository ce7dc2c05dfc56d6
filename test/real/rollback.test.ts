// The incident the runbook's rollback exists for, on the real host: 0.7.0 went out with its
// migration (034) and crash-loops at start-up (`restart: unless-stopped`). `/engramia rollback 0.6.2`
// through the bot (signed Slack request → Bolt → BullMQ → worker → SSH → real Docker) must take a
// snapshot that pg_restore can read, downgrade the real database with the scripts only 0.7.0's image
// holds (its container cannot be exec'd into), and bring 0.6.2 back. Checked with the real CLI,
// the real database and real HTTP afterwards.
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { Secret } from '../../src/config/secret.js';
import { OPS_CHANNEL } from '../world/config.js';
import { findButton, sendBlockAction, sendViewSubmission } from '../world/slack-requests.js';
import { SIGNING_SECRET, startRealBotWorld, type RealBotWorld } from './bot-world.js';
import { API_SERVICE, createDeployFolder, DB_SERVICE, type DeployFolder } from './deploy-host.js';
import { bringUp, connectVm, eventually, type Vm, type VmResult } from './vm.js';

const host = inject('realHost');
const BOB = 'U02BOB';
const CAROL = 'U03CAROL';
let vm: Vm;
let deploy: DeployFolder;
let w: RealBotWorld | undefined;

async function must(what: string, p: Promise<VmResult>): Promise<string> {
  const r = await p;
  expect(r.code, `${what}: ${r.output}`).toBe(0);
  return r.stdout;
}

/** What an operator did to cause the incident: 0.7.0 pulled, migrated to 034 and pinned; it crash-loops since. */
async function shipTheBadRelease(): Promise<void> {
  const env = { IMAGE_TAG: '0.7.0' };
  await must('docker login', vm.exec({ argv: ['docker', 'login', host.registry.address, '-u', host.registry.username, '--password-stdin'] }, { stdin: new Secret(`${host.registry.password}\n`, 'registry password') }));
  await must('pull 0.7.0', vm.compose(['pull', API_SERVICE], { env, timeoutMs: 300_000 }));
  await must('docker logout', vm.exec({ argv: ['docker', 'logout', host.registry.address] }));
  await must('alembic upgrade head on 0.7.0', vm.compose(['run', '--rm', '--no-deps', '-T', API_SERVICE, 'alembic', 'upgrade', 'head'], { env }));
  await must('pin 0.7.0', vm.exec({ argv: ['sed', '-i', 's/^IMAGE_TAG=.*/IMAGE_TAG=0.7.0/', '.env'] }));
  await must('up 0.7.0', vm.compose(['up', '-d', API_SERVICE]));
  // Docker's own count of restarts: the crash loop is real, not assumed.
  await eventually('0.7.0 restarting', async () => {
    const r = await vm.exec({ argv: ['sh', '-c', 'docker inspect --format "{{.RestartCount}}" "$(docker compose -f docker-compose.prod.yml ps -aq engramia-api)"'] });
    return r.code === 0 && Number(r.stdout.trim()) >= 2 ? true : undefined;
  });
}

beforeAll(async () => {
  deploy = await createDeployFolder({ registryAddress: host.registry.address, tag: '0.6.2', name: 'engramia-rollback' });
  vm = connectVm({ sshd: host.sshd, deploy });
  await bringUp(vm, host.registry, '0.6.2');
  await shipTheBadRelease();
  w = await startRealBotWorld(host, deploy, { verifySettleSeconds: 30 });
}, 600_000);
afterEach(async (ctx) => {
  if (ctx.task.result?.state === 'fail' && w) console.error(`--- bot log (last 40) ---\n${w.logs.slice(-40).join('')}`);
});
afterAll(async () => {
  await w?.close();
  await vm?.compose(['down', '-v'], { timeoutMs: 120_000 });
  await vm?.close();
});

function text(blocks: unknown): string {
  return JSON.stringify(blocks ?? []);
}

async function press(world: RealBotWorld, user: string, actionId: string) {
  const msg = await world.slack.waitFor(() => world.slack.messagesIn(OPS_CHANNEL).findLast((m) => findButton(m.blocks as never, actionId)), { timeoutMs: 180_000, description: actionId });
  expect((await sendBlockAction(`${world.botUrl}/slack/events`, SIGNING_SECRET, { user, channel: OPS_CHANNEL, message: msg, action_id: actionId, trigger_id: world.slack.triggerId() })).status).toBe(200);
  return msg;
}

/** The downgrade is confirmed twice: the button, then the modal the bot opens after its checks. */
async function confirmDowngrade(world: RealBotWorld, user: string) {
  const before = world.slack.views.length;
  const gate = await press(world, user, 'downgrade.confirm');
  const opened = await world.slack.waitFor(() => (world.slack.views.length > before ? world.slack.views.at(-1) : undefined), { timeoutMs: 10_000, description: 'the confirmation modal' });
  expect((await sendViewSubmission(`${world.botUrl}/slack/events`, SIGNING_SECRET, { user, view: opened.view })).status).toBe(200);
  return gate;
}

describe('rollback from a crash-looping release, through the bot, on the real host', () => {
  it('rollback 0.6.2: snapshot pg_restore can list, database downgraded 034 → 033 with 0.7.0\'s scripts, 0.6.2 answers, maintenance off', async () => {
    expect((await fetch(`${deploy.apiUrl}/v1/version`)).status).toBe(502); // Caddy: nothing behind it

    expect((await w!.slash('rollback 0.6.2')).status).toBe(200);
    await press(w!, BOB, 'deploy.approve');
    const gate = await confirmDowngrade(w!, CAROL);
    expect(text(gate.blocks)).toContain('034 → 033');
    const card = await w!.slack.waitFor(
      () => w!.slack.messagesIn(OPS_CHANNEL).find((m) => (!m.thread_ts || m.thread_ts === m.ts) && /Roll back production to 0\.6\.2/.test(text(m.blocks)) && /succeeded|failed|stopped/.test(text(m.blocks))),
      { timeoutMs: 300_000, description: 'the rollback card, finished' },
    );
    console.log(`[real] rollback card: ${text(card.blocks)}`);
    expect(text(card.blocks)).toContain('succeeded');

    // The host's word: the snapshot is a real custom-format dump that pg_restore lists…
    const dumps = (await must('ls', vm.exec({ argv: ['sh', '-c', 'ls pre_rollback_*.dump'] }))).trim().split('\n');
    expect(dumps).toHaveLength(1);
    const listed = await must(
      'pg_restore -l',
      vm.exec({ argv: ['sh', '-c', 'exec docker compose -f docker-compose.prod.yml exec -T pgvector pg_restore -l < "$1"', 'sh', dumps[0]!] }),
    );
    expect(listed).toContain('TABLE public alembic_version');
    expect(listed).toMatch(/TABLE public pattern_feedback/);

    // …the database is at 0.6.2's head, and what 034 added is gone…
    const current = await must('alembic current', vm.compose(['exec', '-T', API_SERVICE, 'alembic', 'current']));
    expect(current.trim()).toBe('033 (head)');
    const psql = (sql: string) => must('psql', vm.compose(['exec', '-T', DB_SERVICE, 'psql', '-U', 'engramia', '-d', 'engramia', '-At', '-c', sql]));
    expect((await psql('SELECT version_num FROM alembic_version')).trim()).toBe('033');
    expect((await psql("SELECT coalesce(to_regclass('public.tenant_quotas')::text, 'gone')")).trim()).toBe('gone');
    // The snapshot was taken before the downgrade: it still has 034's table.
    expect(listed).toContain('TABLE public tenant_quotas');

    // …0.6.2 runs (Docker's word) and answers through Caddy, out of maintenance…
    const ps = (await must('compose ps', vm.compose(['ps', '--format', 'json']))).trim().split('\n').map((l) => JSON.parse(l) as { Service: string; State: string; Image: string });
    expect(ps.find((r) => r.Service === API_SERVICE)).toMatchObject({ State: 'running', Image: `${host.apiRepository}:0.6.2` });
    const v = await fetch(`${deploy.apiUrl}/v1/version`);
    expect(v.status).toBe(200);
    expect(((await v.json()) as { app_version: string }).app_version).toBe('0.6.2');
    const env = await must('cat .env', vm.exec({ argv: ['cat', '.env'] }));
    expect(env.match(/^IMAGE_TAG=.*$/gm)).toEqual(['IMAGE_TAG=0.6.2']);
    expect(env).not.toMatch(/^\s*ENGRAMIA_MAINTENANCE\s*=\s*true/m);
    expect((await vm.compose(['exec', '-T', API_SERVICE, 'printenv', 'ENGRAMIA_MAINTENANCE'])).code).toBe(1);

    // …and no secret reached Slack or the logs.
    const everything = JSON.stringify(w!.slack.calls) + w!.logs.join('');
    expect(everything).not.toContain(host.registry.password);
    expect(everything).not.toContain(deploy.apiKey);
  }, 420_000);
});
