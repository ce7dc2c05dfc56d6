// The bot's read-only commands (`health`, `version`, `status`, `logs --tail 50`, `diagnose`) end to
// end against the real host (signed Slack request → Bolt → BullMQ → worker → SSH → real Docker,
// Compose, Caddy, PostgreSQL, alembic), in three host states: normal, maintenance, and the API
// container down (stopped, then crash-looping). Each answer is compared with the host's truth read
// independently in the same test: the real `docker compose ps`/`logs`, `alembic` and HTTP through Caddy.
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { Secret } from '../../src/config/secret.js';
import { OPS_CHANNEL } from '../world/config.js';
import { blockText, type Block } from '../integration/blocks.js';
import { tearDownAfterFile } from './bot-steps.js';
import { startRealBotWorld, type RealBotWorld } from './bot-world.js';
import { API_SERVICE, createDeployFolder, DB_SERVICE, PROXY_SERVICE, type DeployFolder } from './deploy-host.js';
import { release } from './releases.js';
import { bringUp, connectVm, eventually, type Vm, type VmResult } from './vm.js';

const host = inject('realHost');
let vm: Vm;
let deploy: DeployFolder;
let w: RealBotWorld;

beforeAll(async () => {
  deploy = await createDeployFolder({ registryAddress: host.registry.address, tag: '0.6.0', name: 'engramia-reads' });
  vm = connectVm({ sshd: host.sshd, deploy });
  await bringUp(vm, host.registry, '0.6.0');
  w = await startRealBotWorld(host, deploy);
}, 600_000);
tearDownAfterFile(() => ({ w, vm }), 40);

// ---- what the bot told Slack ----

interface Answer {
  header: string;
  text: string;
  summary: string;
}

/** Runs one slash command and returns the bot's answer: the first top-level message in #ops after it whose header matches. */
async function ask(command: string, header: RegExp): Promise<Answer> {
  const since = w.slack.calls.length;
  const ack = await w.slash(command);
  expect(ack.status).toBe(200);
  const call = await w.slack.waitForCall(
    'chat.postMessage',
    (c) => c.args.channel === OPS_CHANNEL && !c.args.thread_ts && header.test(String((c.args.blocks as Block[] | undefined)?.[0]?.text?.text ?? '')),
    { since, timeoutMs: 90_000 },
  );
  const blocks = call.args.blocks as Block[];
  return { header: String(blocks[0]?.text?.text), text: blockText(blocks), summary: String(call.args.text) };
}

// ---- the host's truth, read without the bot ----

async function must(what: string, p: Promise<VmResult>): Promise<string> {
  const r = await p;
  expect(r.code, `${what}: ${r.output}`).toBe(0);
  return r.stdout;
}

interface PsRow {
  Service: string;
  State: string;
  Image: string;
  Status: string;
}

async function ps(): Promise<PsRow[]> {
  const out = await must('compose ps', vm.compose(['ps', '-a', '--format', 'json']));
  return out.trim() === '' ? [] : out.trim().split('\n').map((l) => JSON.parse(l) as PsRow);
}

const tagOf = (image: string) => image.slice(image.lastIndexOf(':') + 1);

async function http(path: string, auth = false): Promise<{ status: number; body: string; json: any }> {
  const res = await fetch(`${deploy.apiUrl}${path}`, auth ? { headers: { authorization: `Bearer ${deploy.apiKey}` } } : {});
  const body = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    json = undefined;
  }
  return { status: res.status, body, json };
}

/**
 * The API's log as the host keeps it, one line per entry, without Compose's prefix. Compose 2.26
 * starts every line with the terminal code ESC[2K (erase line) even without a TTY; only that is removed.
 */
async function realLogLines(): Promise<string[]> {
  const out = await must('compose logs', vm.compose(['logs', '--no-log-prefix', '--no-color', API_SERVICE]));
  return out.split('\n').map((l) => l.replace(/^\x1b\[2K/, '').trimEnd()).filter((l) => l !== '');
}

/** The code block of a `logs` answer: its lines, as the bot showed them. */
function shownLogLines(a: Answer): string[] {
  const block = /```\n?([\s\S]*?)\n?```/.exec(a.text)?.[1] ?? '';
  return block.split('\n').filter((l) => l.trim() !== '');
}

/** The bot's lines are a run of consecutive lines of the real log (the tail at the time it read). */
function expectRunOf(shown: string[], real: string[]) {
  expect(shown.length).toBeGreaterThan(0);
  const start = real.indexOf(shown[0]!);
  expect(start, `first shown line not in the real log: ${JSON.stringify(shown.slice(0, 3))} / real: ${JSON.stringify(real.slice(0, 3))}`).toBeGreaterThanOrEqual(0);
  expect(real.slice(start, start + shown.length)).toEqual(shown);
}

async function alembicCurrent(): Promise<string> {
  return (await must('alembic current', vm.compose(['exec', '-T', API_SERVICE, 'alembic', 'current']))).trim().split(/\s+/)[0]!;
}

async function setMaintenanceInEnv(on: boolean): Promise<void> {
  const script = on ? 'grep -q "^ENGRAMIA_MAINTENANCE=" .env || echo "ENGRAMIA_MAINTENANCE=true" >> .env' : 'sed -i "/^ENGRAMIA_MAINTENANCE=/d" .env';
  await must('edit .env', vm.exec({ argv: ['sh', '-c', script] }));
}

async function recreateApi(tag: string): Promise<void> {
  await must('compose up', vm.compose(['up', '-d', API_SERVICE], { env: { IMAGE_TAG: tag }, timeoutMs: 120_000 }));
}

/** Each container the host lists appears in the bot's answer with its real state (and the API's real tag). */
function expectContainers(a: Answer, rows: PsRow[]) {
  for (const r of rows) {
    const dot = r.State === 'running' ? '🟢' : '🔴';
    expect(a.text).toContain(`${dot} \`${r.Service}\` ${r.State}`);
  }
}

describe('read commands through the bot, checked against the real host', () => {
  it('(a) normal: 0.6.0 runs healthy; each answer matches compose ps, alembic, the log and the API through Caddy', async () => {
    const version = await http('/v1/version');
    const deep = await http('/v1/health/deep', true);
    expect(version.status).toBe(200);
    expect(deep.status).toBe(200);
    const rows = await ps();
    const api = rows.find((r) => r.Service === API_SERVICE)!;
    expect(api.State).toBe('running');
    const current = await alembicCurrent();

    const v = await ask('version', /version/);
    expect(v.header).toBe(`production: version ${version.json.app_version}`);
    expect(v.text).toContain(`\`${API_SERVICE}\` running · \`${tagOf(api.Image)}\``);
    expect(v.text).not.toContain('⚠️');

    const h = await ask('health', /production:/);
    expect(deep.json.status).toBe('ok');
    expect(h.header).toBe('🟢 production: healthy');
    expect(h.summary).toBe(`production: healthy, version ${version.json.app_version}`);
    for (const [name, check] of Object.entries(deep.json.checks as Record<string, { status: string }>)) {
      expect(h.text).toMatch(new RegExp(`\\*${name}\\*\\s+${check.status === 'not_configured' ? 'not configured' : check.status}`));
    }
    expect(h.text).toContain(`revision \`${deep.json.checks.migration.current_revision}\` (expected \`${deep.json.checks.migration.expected_revision}\`)`);
    expectContainers(h, await ps());

    const s = await ask('status', /status/);
    expect(s.summary).toBe(`production: running ${tagOf(api.Image)}, maintenance off`);
    expect(s.text).toContain(`*Database*\n\`${current}\``);
    expect(s.text).toContain('*Maintenance*\noff');
    expectContainers(s, await ps());

    const l = await ask('logs --tail 50', /logs/);
    const real = await realLogLines();
    const shown = shownLogLines(l);
    expectRunOf(shown, real);
    // The bot's own health probe a moment ago is in the log the bot read: the access line is real.
    expect(shown.some((x) => /"GET \/v1\/health\/deep HTTP\/1\.1" 200/.test(x))).toBe(true);
    expect(shown.length).toBe(Math.min(50, real.length));

    const d = await ask('diagnose', /🩺/);
    expect(d.header).toBe('🩺 production: no problems found');
    expect(d.text).toContain(`*Database (alembic)*\n\`${current}\`, head of \`0.6.0\`: \`${release('0.6.0').head}\``);
    for (const svc of [API_SERVICE, DB_SERVICE, PROXY_SERVICE]) expect(d.text).toMatch(new RegExp(`🟢 ${svc} running`));
  });

  it('(b) maintenance: /v1/version answers 503, deep health still answers; the bot says maintenance, never hides it', async () => {
    await setMaintenanceInEnv(true);
    await recreateApi('0.6.0');
    // The re-created container needs a moment; the truth is what Caddy answers once it does.
    const deep = await eventually('deep health during maintenance', async () => {
      const r = await http('/v1/health/deep', true);
      return r.status === 200 ? r : undefined;
    });
    const version = await http('/v1/version');
    expect(version.status).toBe(503);
    expect(version.json.error_code).toBe('SERVICE_UNAVAILABLE');
    const maint = await must('printenv', vm.compose(['exec', '-T', API_SERVICE, 'printenv', 'ENGRAMIA_MAINTENANCE']));
    expect(maint.trim()).toBe('true');
    const api = (await ps()).find((r) => r.Service === API_SERVICE)!;

    const v = await ask('version', /maintenance|version/);
    expect(v.header).toBe('🚧 production: in maintenance');
    expect(v.text).toContain(`the host runs image tag \`${tagOf(api.Image)}\``);
    expect(v.summary).toBe(`production: version ${tagOf(api.Image)} (maintenance on)`);

    const h = await ask('health', /production:/);
    expect(h.header).toBe(`${deep.json.status === 'ok' ? '🟢' : '🟡'} production: ${deep.json.status === 'ok' ? 'healthy' : deep.json.status}`);
    expect(h.summary).toContain('maintenance on');
    expect(h.text).toContain('🚧 on: every endpoint but /v1/health answers 503');
    expect(h.text).toContain('hidden: /v1/version answers 503 in maintenance');

    const s = await ask('status', /status/);
    expect(s.summary).toBe(`production: running ${tagOf(api.Image)}, maintenance on`);
    expect(s.text).toMatch(/\*Maintenance\*\n🚧 on/);

    const l = await ask('logs --tail 50', /logs/);
    const shown = shownLogLines(l);
    expectRunOf(shown, await realLogLines());
    expect(shown.some((x) => /"GET \/v1\/version HTTP\/1\.1" 503/.test(x))).toBe(true);

    const d = await ask('diagnose', /🩺/);
    expect(d.header).toMatch(/^🩺 production: \d+ problems? found$/);
    expect(d.text).toContain('API returns 503 for all endpoints: maintenance mode is on');
    expect(d.text).toContain('*Maintenance*\n🚧 on');

    await setMaintenanceInEnv(false);
    await recreateApi('0.6.0');
    await eventually('version answers again', async () => ((await http('/v1/version')).status === 200 ? true : undefined));
  });

  it('(c) API stopped: Caddy answers 502 with an empty body; the bot reports it down, never healthy', async () => {
    await must('compose stop', vm.compose(['stop', API_SERVICE], { timeoutMs: 60_000 }));
    const version = await http('/v1/version');
    expect(version.status).toBe(502);
    expect(version.body).toBe('');
    const api = (await ps()).find((r) => r.Service === API_SERVICE)!;
    expect(api.State).toBe('exited');
    const exitCode = /Exited \((\d+)\)/.exec(api.Status)?.[1];
    expect(exitCode).toBeDefined();

    const h = await ask('health', /production:/);
    expect(h.header).toBe('⚫ production: unknown (no deep health answer)');
    expect(h.summary).not.toContain('healthy');
    expect(h.text).toContain('HTTP 502');
    expect(h.text).toContain('🔴 `engramia-api` exited');

    const v = await ask('version', /version/);
    expect(v.header).toBe('production: version unknown');
    expect(v.text).toContain('HTTP 502');

    const s = await ask('status', /status/);
    expect(s.summary).toBe('production: running nothing, maintenance off');
    expectContainers(s, await ps());

    const l = await ask('logs --tail 50', /logs/);
    expectRunOf(shownLogLines(l), await realLogLines());

    const d = await ask('diagnose', /🩺/);
    expect(d.header).not.toBe('🩺 production: no problems found');
    expect(d.text).toContain(`engramia-api is exited (exit code ${exitCode})`);
    expect(d.text).toContain('*Deep health*\n⚫ HTTP 502');
    // alembic from a throwaway container of the stopped API's image: the database is still where it was.
    expect(d.text).toContain(`*Database (alembic)*\n\`${release('0.6.0').head}\`, head of \`0.6.0\``);

    await must('compose start', vm.compose(['start', API_SERVICE], { timeoutMs: 60_000 }));
    await eventually('version answers again', async () => ((await http('/v1/version')).status === 200 ? true : undefined));
  });

  it('(c) crash-looping 0.7.0: the bot never reports it healthy or running, and diagnose names the alembic error from the real log', async () => {
    await must('docker login', vm.exec({ argv: ['docker', 'login', host.registry.address, '-u', host.registry.username, '--password-stdin'] }, { stdin: new Secret(`${host.registry.password}\n`, 'registry password') }));
    await must('compose pull', vm.compose(['pull', API_SERVICE], { env: { IMAGE_TAG: '0.7.0' }, timeoutMs: 300_000 }));
    await must('docker logout', vm.exec({ argv: ['docker', 'logout', host.registry.address] }));
    await recreateApi('0.7.0');
    // It has crashed at least once: Docker counts the restarts.
    await eventually('0.7.0 restarting', async () => {
      const out = await must('inspect', vm.exec({ argv: ['sh', '-c', `docker inspect -f '{{.RestartCount}}' $(docker compose -f docker-compose.prod.yml ps -aq ${API_SERVICE})`] }));
      return Number(out.trim()) >= 1 ? true : undefined;
    });
    expect((await http('/v1/version')).status).toBe(502);
    const realLog = (await realLogLines()).join('\n');
    expect(realLog).toContain("alembic.util.exc.CommandError: Can't locate revision identified by '034'");

    const h = await ask('health', /production:/);
    expect(h.header).not.toContain('healthy');
    expect(h.summary).not.toContain('healthy');
    // Never green: `restarting`, or caught `running` with its API's silence next to it.
    expect(h.text).toMatch(/🔴 `engramia-api` (restarting · `0\.7\.0`|running · `0\.7\.0` · [^\n]* · its API does not answer \(HTTP 502\))/);

    const v = await ask('version', /version/);
    expect(v.header).toBe('production: version unknown');
    expect(v.text).toContain('HTTP 502');

    const l = await ask('logs --tail 50', /logs/);
    const shown = shownLogLines(l);
    expectRunOf(shown, await realLogLines());
    expect(shown).toContain("alembic.util.exc.CommandError: Can't locate revision identified by '034'");

    const s = await ask('status', /status/);
    // Docker shows the container `restarting`, or `running` in the second between a restart and
    // the next crash: then the bot must say the API does not answer, not just "running 0.7.0".
    expect(s.summary).toMatch(/^production: running (nothing|0\.7\.0 \(API not answering\)), maintenance off$/);
    expect(s.text).toMatch(/🔴 `engramia-api` restarting · `0\.7\.0`|the container is up but the API does not answer \(HTTP 502\)/);

    const d = await ask('diagnose', /🩺/);
    expect(d.header).not.toBe('🩺 production: no problems found');
    // An error (the container is down), whether ps caught it `restarting` or in its second `running`.
    expect(d.text).toContain('🔴 *`alembic.util.exc.CommandError` in the engramia-api log*');
    expect(d.text).toContain("Can't locate revision identified by '034'");

    await recreateApi('0.6.0');
    await eventually('0.6.0 answers again', async () => ((await http('/v1/version')).json?.app_version === '0.6.0' ? true : undefined));
  });
});
