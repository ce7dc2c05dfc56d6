// Issue 14, item 3: a rollback through the bot from a crash-looping release (0.7.0, head 034,
// `restart: unless-stopped`) to the previous one (0.6.2, head 033), with a downgrade, on the real
// host; checked afterwards with the real CLI, the real database and real HTTP.
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { Secret } from '../../src/config/secret.js';
import { OPS_CHANNEL } from '../world/config.js';
import { startRealBotWorld, type RealBotWorld } from './bot-world.js';
import { alembicCurrent, approvePlan, confirmDowngrade, exists, finalCard, must, psRows, text, tearDownAfterFile, listOnlySnapshot } from './bot-steps.js';
import { API_SERVICE, createDeployFolder, type DeployFolder } from './deploy-host.js';
import { bringUp, connectVm, eventually, type Vm } from './vm.js';

const host = inject('realHost');
let vm: Vm;
let deploy: DeployFolder;
let w: RealBotWorld | undefined;

/** By hand, as an operator would: pull 0.7.0, apply its migration in a one-off container, pin it, `up -d`. */
async function deployCrashLoopingRelease(): Promise<void> {
  const env = { IMAGE_TAG: '0.7.0' };
  await must('docker login', vm.exec({ argv: ['docker', 'login', host.registry.address, '-u', host.registry.username, '--password-stdin'] }, { stdin: new Secret(`${host.registry.password}\n`, 'registry password') }));
  await must('compose pull', vm.compose(['pull', API_SERVICE], { env, timeoutMs: 300_000 }));
  await must('docker logout', vm.exec({ argv: ['docker', 'logout', host.registry.address] }));
  await must('alembic upgrade head', vm.compose(['run', '--rm', '--no-deps', '-T', API_SERVICE, 'alembic', 'upgrade', 'head'], { env }));
  await must('pin 0.7.0', vm.exec({ argv: ['sed', '-i', 's/^IMAGE_TAG=.*/IMAGE_TAG=0.7.0/', '.env'] }));
  await must('compose up', vm.compose(['up', '-d'], { timeoutMs: 300_000 }));
  // The daemon restarts it over and over: wait until it has at least twice.
  await eventually('0.7.0 crash-looping', async () => {
    const id = (await psRows(vm)).find((r) => r.Service === API_SERVICE)?.ID;
    const n = id ? Number(await must('inspect', vm.exec({ argv: ['docker', 'inspect', '--format', '{{.RestartCount}}', id] }))) : 0;
    return n >= 2 ? n : undefined;
  });
}

beforeAll(async () => {
  deploy = await createDeployFolder({ registryAddress: host.registry.address, tag: '0.6.2', name: 'engramia-rollback' });
  vm = connectVm({ sshd: host.sshd, deploy });
  await bringUp(vm, host.registry, '0.6.2');
  await deployCrashLoopingRelease();
  w = await startRealBotWorld(host, deploy, { verifySettleSeconds: 30 });
}, 600_000);
tearDownAfterFile(() => ({ w, vm }), 60);

describe('rollback through the bot against the real host', () => {
  it('rollback 0.6.2 from the crash-looping 0.7.0: four-eyes, snapshot, downgrade 034 → 033 confirmed in a modal, 0.6.2 runs, maintenance off', async () => {
    // The starting point, in the host's own words: 0.7.0 pinned, its container restarting, the database at 034.
    expect(await alembicCurrent(vm, '0.7.0')).toBe('034 (head)');
    expect(await exists(vm, 'tenant_quotas')).toBe(true);

    expect((await w!.slash('rollback 0.6.2')).status).toBe(200);
    await approvePlan(w!);
    const { gate, modal } = await confirmDowngrade(w!);
    expect(text(gate.blocks)).toContain('034 → 033');
    expect(text(modal.view.blocks)).toContain('Downgrade the production database 034 → 033?');
    const card = await finalCard(w!, 'Roll back production to 0.6.2', /succeeded|failed|stopped/);
    expect(text(card.blocks), text(card.blocks)).toContain('succeeded');

    // The snapshot: a real custom-format dump that the real pg_restore lists without complaint.
    const { listing } = await listOnlySnapshot(vm);
    expect(listing).toContain('TABLE public tenant_quotas');
    expect(listing).toContain('TABLE DATA public alembic_version');

    // The database: alembic says 033, and 034's table is really gone while 033's column stays.
    expect(await alembicCurrent(vm, '0.6.2')).toBe('033 (head)');
    expect(await exists(vm, 'tenant_quotas')).toBe(false);
    expect(await exists(vm, 'patterns', 'embedding_model')).toBe(true);

    // What runs: engramia-api on 0.6.2, running (no longer restarting), pinned in .env, maintenance off.
    const api = (await psRows(vm)).find((r) => r.Service === API_SERVICE)!;
    expect(api.Image).toBe(`${host.apiRepository}:0.6.2`);
    expect(api.State).toBe('running');
    const env = await must('cat .env', vm.exec({ argv: ['cat', '.env'] }));
    expect(env.match(/^IMAGE_TAG=.*$/gm)).toEqual(['IMAGE_TAG=0.6.2']);
    expect(env).not.toMatch(/^ENGRAMIA_MAINTENANCE=/m);
    expect((await vm.compose(['exec', '-T', API_SERVICE, 'printenv', 'ENGRAMIA_MAINTENANCE'])).code).toBe(1);

    // Through Caddy, as clients see it.
    const res = await fetch(`${deploy.apiUrl}/v1/version`, { headers: { authorization: `Bearer ${deploy.apiKey}` } });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { app_version: string }).app_version).toBe('0.6.2');

    // The card tells the truth about maintenance: off at the end, and the crash loop was seen.
    expect(text(card.blocks)).toContain('*Maintenance*\\noff');
    expect(text(card.blocks)).toMatch(/engramia-api (restarting|crash-looping \(running between restarts; the daemon restarted it \d+ times\)) on 0\.7\.0/);
    // Whichever second the preflight landed in (restarting, or running between two restarts), no
    // alembic command went by `exec` into the container that could die under it (exit 137).
    const said = JSON.stringify(w!.slack.messagesIn(OPS_CHANNEL).map((m) => m.blocks)) + w!.logs.join('');
    expect(said).not.toContain('exec -T engramia-api alembic');
    // Maintenance on re-created engramia-api on the crash-looping 0.7.0 (up -d exits 0); the step does not pretend it answers 503.
    expect(said).toContain('engramia-api re-created on 0.7.0 (it was crash-looping: until another version runs, the API answers nothing, not 503)');
    expect(said).toContain('IMAGE_TAG=0.7.0 docker compose -f docker-compose.prod.yml run --rm --no-deps -T engramia-api alembic downgrade 033');
    expect(said).not.toContain(host.registry.password);
    expect(said).not.toContain(deploy.apiKey);
  });
});
