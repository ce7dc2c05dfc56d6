// Tests of the simulated Engramia host (test/world/sim): the fake docker CLI run as a
// real child process in a deploy dir, and the fake API server over real HTTP.

import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startEngramiaApi } from './sim/api.mjs';
import * as sim from './sim/host.mjs';

const F = ['compose', '-f', 'docker-compose.prod.yml'];

let root: string;
let dir: string;
let host: ReturnType<typeof sim.createHost>;
let closers: Array<() => Promise<void>> = [];

/** A fresh shell's environment: nothing exported from earlier commands survives. */
function shellEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    PATH: `${sim.SIM_BIN_DIR}:${dirname(process.execPath)}:/usr/bin:/bin`,
    HOME: root,
    LANG: 'C.UTF-8',
    ...extra,
  };
}

function docker(args: string[], opts: { input?: string | Buffer; env?: Record<string, string>; cwd?: string } = {}) {
  const r = spawnSync(sim.DOCKER_SHIM, args, {
    cwd: opts.cwd ?? dir,
    input: opts.input ?? '',
    env: shellEnv(opts.env),
    timeout: 20_000,
  });
  return { code: r.status, stdout: r.stdout.toString('utf8'), stderr: r.stderr.toString('utf8'), raw: r.stdout };
}

function dockerAsync(args: string[], env: Record<string, string> = {}) {
  const child = spawn(sim.DOCKER_SHIM, args, { cwd: dir, env: shellEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  return { child, done };
}

async function api() {
  const a = await startEngramiaApi({ deployPath: dir });
  closers.push(a.close);
  return a;
}

/** JSON body of a response; these tests check shapes at run time. */
async function body(r: Response | Promise<Response>): Promise<any> {
  return (await r).json();
}

function get(url: string, key?: string) {
  return fetch(url, { headers: key ? { authorization: `Bearer ${key}` } : {} });
}

function isAlive(pid: number) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'sim-host-'));
  dir = join(root, 'opt', 'engramia');
  host = sim.createHost(dir);
});

afterEach(async () => {
  for (const c of closers) await c();
  closers = [];
  rmSync(root, { recursive: true, force: true });
});

describe('createHost', () => {
  it('lays out a healthy deploy dir', () => {
    const env = sim.readEnvFile(dir);
    expect(env).toContain('IMAGE_TAG=0.6.0\n');
    expect(env).toContain(`ENGRAMIA_API_KEYS=${host.apiKey}\n`);
    expect(env).toContain('ENGRAMIA_DATABASE_URL=postgresql://engramia:pw@pgvector/engramia');
    expect(env).toMatch(/STRIPE_SECRET_KEY=sk_test_\w+/);
    expect(env).toMatch(/OPENAI_API_KEY=sk-\w+/);
    expect(readFileSync(join(dir, 'docker-compose.prod.yml'), 'utf8')).toContain('ghcr.io/engramia/engramia:${IMAGE_TAG}');
    const s = sim.readState(dir);
    expect(sim.runningApiTag(dir)).toBe('0.6.0');
    expect(s.db.revision).toBe('031');
    expect(Object.fromEntries(Object.entries(s.registry.tags).map(([t, m]) => [t, m.head]))).toEqual({ '0.5.9': '030', '0.6.0': '031', '0.6.1': '032' });
    expect(sim.localApiTags(dir)).toEqual(['0.6.0']);
    expect(s.checks.redis?.status).toBe('not_configured');
    expect(sim.readCommandLog(dir)).toEqual([]);
  });

  it('supports CORE_TAG compose files and custom options', () => {
    const d2 = join(root, 'core');
    const h2 = sim.createHost(d2, { tagVariable: 'CORE_TAG', runningTag: '0.6.1', apiKey: 'k1', registryToken: 't1', dbRevision: '030' });
    expect(h2).toMatchObject({ deployPath: d2, apiKey: 'k1', registryToken: 't1' });
    expect(sim.readEnvFile(d2)).toContain('CORE_TAG=0.6.1\n');
    expect(readFileSync(join(d2, 'docker-compose.prod.yml'), 'utf8')).toContain('${CORE_TAG}');
    expect(sim.readState(d2).db.revision).toBe('030');
  });

  it('updateState is atomic and serialised across processes', async () => {
    const runs = Array.from({ length: 8 }, () => dockerAsync([...F, 'up', '-d', 'caddy']));
    const results = await Promise.all(runs.map((r) => r.done));
    expect(results.every((r) => r.code === 0)).toBe(true);
    const log = sim.readCommandLog(dir);
    expect(log.filter((r) => r.phase === 'end')).toHaveLength(8);
    expect(() => sim.readState(dir)).not.toThrow();
  });
});

describe('docker CLI basics', () => {
  it('refuses to run outside a deploy dir', () => {
    const r = docker(['version'], { cwd: root });
    expect(r.code).toBe(125);
    expect(r.stderr).toBe(`simulated docker: no .sim/state.json in ${root}\n`);
  });

  it('starts fast and answers version queries', () => {
    const t = Date.now();
    const r = docker(['--version']);
    expect(Date.now() - t).toBeLessThan(2000);
    expect(r.stdout).toMatch(/^Docker version 2\d\.\d+\.\d+, build \w+\n$/);
    expect(docker([...F, 'version']).stdout).toBe('Docker Compose version v2.29.1\n');
    expect(docker(['compose', 'version', '--short']).stdout).toBe('2.29.1\n');
    expect(docker(['version']).stdout).toContain('Server: Docker Engine - Community');
  });

  it('records every invocation without secrets', () => {
    docker(['version'], { env: { IMAGE_TAG: '0.6.1', ENGRAMIA_X: 'y', OTHER: 'z' } });
    docker(['frobnicate']);
    const log = sim.readCommandLog(dir);
    expect(log).toHaveLength(2);
    expect(log[0]).toMatchObject({ argv: ['version'], cwd: dir, exitCode: 0, phase: 'end', stdin: null, env: { IMAGE_TAG: '0.6.1', ENGRAMIA_X: 'y' } });
    expect(log[0]?.env).not.toHaveProperty('OTHER');
    expect(log[1]).toMatchObject({ argv: ['frobnicate'], exitCode: 1, env: { IMAGE_TAG: null } });
    expect(typeof log[0]?.pid).toBe('number');
    expect(typeof log[0]?.durationMs).toBe('number');
  });

  it('rejects unknown commands like docker does', () => {
    const r = docker(['frobnicate']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("docker: 'frobnicate' is not a docker command.");
    const c = docker([...F, 'frobnicate']);
    expect(c.code).toBe(1);
    expect(c.stderr).toContain('unknown docker command: "compose frobnicate"');
  });

  it('needs the compose file to exist', () => {
    const r = docker(['compose', '-f', 'docker-compose.yml', 'ps']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`open ${dir}/docker-compose.yml: no such file or directory\n`);
    expect(docker(['compose', 'ps']).stderr).toContain('no configuration file provided: not found');
  });
});

describe('docker login', () => {
  it('takes the token on stdin and records only its hash', () => {
    const bad = docker(['login', 'ghcr.io', '-u', 'engramia-bot', '--password-stdin'], { input: 'nope\n' });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('Error response from daemon: Get "https://ghcr.io/v2/": denied: denied');
    expect(sim.storedCredentials(join(root, '.docker'))).toEqual({});

    const ok = docker(['login', 'ghcr.io', '-u', 'engramia-bot', '--password-stdin'], { input: `${host.registryToken}\n` });
    expect(ok.code).toBe(0);
    expect(ok.stdout).toBe('Login Succeeded\n');
    // Where the real client stores it: ~/.docker/config.json, auths.<host>.auth = base64(user:token), mode 0600.
    expect(sim.storedCredentials(join(root, '.docker'))).toEqual({ 'ghcr.io': 'engramia-bot' });
    expect(JSON.parse(readFileSync(join(root, '.docker', 'config.json'), 'utf8')).auths['ghcr.io'].auth).toBe(Buffer.from(`engramia-bot:${host.registryToken}`).toString('base64'));
    expect(statSync(join(root, '.docker', 'config.json')).mode & 0o777).toBe(0o600);
    expect(ok.stderr).toContain(`stored unencrypted in ${join(root, '.docker', 'config.json')}`);

    const rec = sim.readCommandLog(dir)[1];
    const sha = (s: string) => createHash('sha256').update(s).digest('hex');
    expect(rec?.stdin).toEqual({ bytes: host.registryToken.length + 1, sha256: sha(`${host.registryToken}\n`), trimmedSha256: sha(host.registryToken) });
    expect(readFileSync(join(dir, '.sim', 'commands.jsonl'), 'utf8')).not.toContain(host.registryToken);
  });

  it('warns about -p and still records it', () => {
    const r = docker(['login', 'ghcr.io', '-u', 'x', '-p', host.registryToken]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('WARNING! Using --password via the CLI is insecure. Use --password-stdin.');
    expect(sim.readCommandLog(dir)[0]?.argv).toContain('-p');
  });

  it('stores the credential in $DOCKER_CONFIG when set; a pull sees only the config in effect; logout removes it', () => {
    const cfg = join(root, 'job-config');
    const T = { IMAGE_TAG: '0.6.1' };
    expect(docker(['login', 'ghcr.io', '-u', 'engramia-bot', '--password-stdin'], { input: host.registryToken, env: { DOCKER_CONFIG: cfg } }).code).toBe(0);
    expect(sim.storedCredentials(cfg)).toEqual({ 'ghcr.io': 'engramia-bot' });
    expect(sim.storedCredentials(join(root, '.docker'))).toEqual({});
    expect(statSync(cfg).mode & 0o777).toBe(0o700);
    const without = docker([...F, 'pull', 'engramia-api'], { env: T });
    expect(without.code).toBe(18);
    expect(without.stderr).toContain('Error response from daemon: Head "https://ghcr.io/v2/engramia/engramia/manifests/0.6.1": unauthorized');
    expect(docker([...F, 'pull', 'engramia-api'], { env: { ...T, DOCKER_CONFIG: cfg } }).code).toBe(0);
    expect(docker(['logout', 'ghcr.io'], { env: { DOCKER_CONFIG: cfg } }).stdout).toBe('Removing login credentials for ghcr.io\n');
    expect(sim.storedCredentials(cfg)).toEqual({});
    expect(docker(['logout', 'ghcr.io'], { env: { DOCKER_CONFIG: cfg } }).stdout).toBe('Not logged in to ghcr.io\n');
    sim.setRemoteTag(dir, '0.6.1', { digest: 'sha256:' + 'e'.repeat(64) });
    expect(docker([...F, 'pull', 'engramia-api'], { env: { ...T, DOCKER_CONFIG: cfg } }).stderr).toContain('unauthorized');
  });

  it('a compose installed only in ~/.docker/cli-plugins vanishes under another DOCKER_CONFIG unless linked in', () => {
    sim.setComposePlugin(dir, 'user');
    expect(docker([...F, 'ps']).stderr).toBe("docker: 'compose' is not a docker command.\nSee 'docker --help'\n");
    mkdirSync(join(root, '.docker', 'cli-plugins'), { recursive: true });
    writeFileSync(join(root, '.docker', 'cli-plugins', 'docker-compose'), '');
    expect(docker([...F, 'ps']).code).toBe(0);
    const cfg = join(root, 'job-config');
    mkdirSync(cfg);
    expect(docker([...F, 'ps'], { env: { DOCKER_CONFIG: cfg } }).code).toBe(1);
    symlinkSync(join(root, '.docker', 'cli-plugins'), join(cfg, 'cli-plugins'));
    expect(docker([...F, 'ps'], { env: { DOCKER_CONFIG: cfg } }).code).toBe(0);
  });

  it('cannot prompt without a TTY', () => {
    const r = docker(['login', 'ghcr.io', '-u', 'x']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('Cannot perform an interactive login from a non TTY device');
  });
});

describe('docker compose pull / up', () => {
  const login = () => docker(['login', 'ghcr.io', '-u', 'bot', '--password-stdin'], { input: `${host.registryToken}\n` });

  it('pull needs a login and a published tag; a failed compose pull exits 18, as Compose 2.26 does', () => {
    const unauth = docker([...F, 'pull', 'engramia-api'], { env: { IMAGE_TAG: '0.6.1' } });
    expect(unauth.code).toBe(18);
    expect(unauth.stderr).toContain('Error response from daemon: Head "https://ghcr.io/v2/engramia/engramia/manifests/0.6.1": unauthorized');
    login();
    const unknown = docker([...F, 'pull', 'engramia-api'], { env: { IMAGE_TAG: '9.9.9' } });
    expect(unknown.code).toBe(18);
    expect(unknown.stderr).toContain('Error response from daemon: manifest for ghcr.io/engramia/engramia:9.9.9 not found: manifest unknown: manifest unknown');
    const ok = docker([...F, 'pull', 'engramia-api'], { env: { IMAGE_TAG: '0.6.1' } });
    expect(ok.code).toBe(0);
    expect(ok.stderr).toContain('engramia-api Pulled');
    expect(sim.localApiTags(dir).sort()).toEqual(['0.6.0', '0.6.1']);
  });

  it('takes the tag from the environment first, then .env, and warns when unset', () => {
    login();
    expect(docker([...F, 'up', '-d', 'engramia-api'], { env: { IMAGE_TAG: '0.6.1' } }).code).toBe(0);
    expect(sim.runningApiTag(dir)).toBe('0.6.1');
    // A fresh shell without the export falls back to .env: the classic rollback-by-accident.
    const r = docker([...F, 'up', '-d', 'engramia-api']);
    expect(r.stderr).toContain('Container engramia-api  Recreated');
    expect(sim.runningApiTag(dir)).toBe('0.6.0');

    sim.setEnvVar(dir, 'IMAGE_TAG', null);
    const unset = docker([...F, 'up', '-d', 'engramia-api']);
    expect(unset.code).toBe(1);
    expect(unset.stderr).toContain('WARN[0000] The "IMAGE_TAG" variable is not set. Defaulting to a blank string.');
    expect(unset.stderr).toContain('invalid reference format');
  });

  it('up pulls a missing image (needs login), recreates on image or env change, refuses attach', () => {
    const noLogin = docker([...F, 'up', '-d', 'engramia-api'], { env: { IMAGE_TAG: '0.6.1' } });
    expect(noLogin.code).toBe(1);
    expect(noLogin.stderr).toContain('unauthorized');
    expect(sim.runningApiTag(dir)).toBe('0.6.0');

    login();
    const up = docker([...F, 'up', '-d', 'engramia-api', 'caddy'], { env: { IMAGE_TAG: '0.6.1' } });
    expect(up.code).toBe(0);
    expect(up.stderr).toContain('Container engramia-api  Recreated');
    expect(up.stderr).toContain('Container engramia-api  Started');
    expect(up.stderr).toContain('Container caddy  Running');
    const c1 = sim.readState(dir).containers['engramia-api'];

    const again = docker([...F, 'up', '-d', 'engramia-api'], { env: { IMAGE_TAG: '0.6.1' } });
    expect(again.stderr).toContain('Container engramia-api  Running');
    expect(sim.readState(dir).containers['engramia-api']?.id).toBe(c1?.id);

    appendFileSync(join(dir, '.env'), 'ENGRAMIA_MAINTENANCE=true\n');
    const maint = docker([...F, 'up', '-d', 'engramia-api'], { env: { IMAGE_TAG: '0.6.1' } });
    expect(maint.stderr).toContain('Container engramia-api  Recreated');
    expect(sim.readState(dir).containers['engramia-api']?.env.ENGRAMIA_MAINTENANCE).toBe('true');

    const attached = docker([...F, 'up', 'engramia-api'], { env: { IMAGE_TAG: '0.6.1' } });
    expect(attached.code).toBe(1);
  });

  it('restart does not pick up .env changes; stop/start work', () => {
    appendFileSync(join(dir, '.env'), 'ENGRAMIA_MAINTENANCE=true\n');
    expect(docker([...F, 'restart', 'engramia-api']).code).toBe(0);
    expect(sim.readState(dir).containers['engramia-api']?.env.ENGRAMIA_MAINTENANCE).toBeUndefined();
    docker([...F, 'stop', 'engramia-api']);
    expect(sim.readState(dir).containers['engramia-api']?.state).toBe('exited');
    docker([...F, 'start', 'engramia-api']);
    expect(sim.readState(dir).containers['engramia-api']?.state).toBe('running');
  });

  it('an image that crashes on start leaves an exited container and logs', () => {
    login();
    sim.setRemoteTag(dir, '0.6.2', { head: '032', crashOnStart: { exitCode: 3, logs: ['boom: ENGRAMIA_DATABASE_URL not set'] } });
    const up = docker([...F, 'up', '-d', 'engramia-api'], { env: { IMAGE_TAG: '0.6.2' } });
    expect(up.code).toBe(0);
    expect(sim.readState(dir).containers['engramia-api']).toMatchObject({ state: 'exited', exitCode: 3 });
    expect(docker([...F, 'logs', '--tail', '1', 'engramia-api']).stdout).toBe('\x1b[2Kengramia-api-1  | boom: ENGRAMIA_DATABASE_URL not set\n');
    const waited = docker([...F, 'up', '-d', '--wait', 'engramia-api'], { env: { IMAGE_TAG: '0.6.2' } });
    expect(waited.code).toBe(1);
  });
});

describe('a crash-looping release', () => {
  it('shows restarting in ps, refuses exec like the daemon, still runs one-off containers of its image, and the API is down', async () => {
    sim.crashLoop(dir, '0.6.0');
    const ps = JSON.parse(docker([...F, 'ps', '--format', 'json', 'engramia-api']).stdout);
    expect(ps).toMatchObject({ State: 'restarting', Status: expect.stringMatching(/^Restarting \(1\) .+ ago$/) });
    const id = sim.readState(dir).containers['engramia-api']!.id;
    const exec = docker([...F, 'exec', '-T', 'engramia-api', 'alembic', 'current']);
    expect(exec.code).toBe(1);
    expect(exec.stderr).toBe(`Error response from daemon: Container ${id} is restarting, wait until the container is running\n`);
    const run = docker([...F, 'run', '--rm', '--no-deps', '-T', 'engramia-api', 'alembic', 'current'], { env: { IMAGE_TAG: '0.6.0' } });
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('031 (head)');
    // Re-created on the same image, it crash-loops again.
    expect(docker([...F, 'up', '-d', '--force-recreate', 'engramia-api'], { env: { IMAGE_TAG: '0.6.0' } }).code).toBe(0);
    expect(sim.readState(dir).containers['engramia-api']?.state).toBe('restarting');
    const a = await api();
    expect((await fetch(`${a.url}/v1/health`)).status).toBe(502);
  });
});

describe('a crash loop caught in the second it runs (as real Docker often shows it)', () => {
  it('ps says running, docker inspect counts the restarts, an exec dies with the container (137, first INFO line only, nothing done), and Caddy answers 502', async () => {
    sim.crashLoop(dir, '0.6.0', undefined, { runningWindow: true });
    const ps = JSON.parse(docker([...F, 'ps', '--format', 'json', 'engramia-api']).stdout);
    expect(ps).toMatchObject({ State: 'running', Status: expect.stringMatching(/^Up /) });
    expect(docker(['inspect', '--format', '{{.RestartCount}} {{.State.Status}}', ps.ID])).toMatchObject({ code: 0, stdout: '3 running\n' });
    const revision = sim.readState(dir).db.revision;
    const exec = docker([...F, 'exec', '-T', 'engramia-api', 'alembic', 'downgrade', '030']);
    expect(exec).toMatchObject({ code: 137, stdout: '', stderr: 'INFO  [alembic.runtime.migration] Context impl PostgresqlImpl.\n' });
    expect(sim.readState(dir).db.revision).toBe(revision);
    // It died with the exec; the daemon is restarting it now.
    expect(docker(['inspect', '--format', '{{.RestartCount}} {{.State.Status}}', ps.ID]).stdout).toBe('4 restarting\n');
    expect(docker(['inspect', 'nosuchcontainer'])).toMatchObject({ code: 1, stderr: 'Error: No such object: nosuchcontainer\n' });
    const a = await api();
    expect((await fetch(`${a.url}/v1/health`)).status).toBe(502);
  });
});

describe('docker compose up / exec with a tag from the environment or an edited .env', () => {
  const login = () => docker(['login', 'ghcr.io', '-u', 'bot', '--password-stdin'], { input: `${host.registryToken}\n` });
  /** Run a plain shell command in the deploy dir, as the bot does over SSH. */
  const sh = (line: string) => spawnSync('sh', ['-c', line], { cwd: dir, env: shellEnv(), encoding: 'utf8' });

  it('up -d engramia-api caddy with IMAGE_TAG=x re-creates the API on x and leaves caddy running', () => {
    login();
    const before = sim.readState(dir);
    const up = docker([...F, 'up', '-d', 'engramia-api', 'caddy'], { env: { IMAGE_TAG: '0.6.1' } });
    expect(up.code).toBe(0);
    expect(up.stderr).toContain('Container engramia-api  Recreated');
    expect(up.stderr).toContain('Container caddy  Running');
    const after = sim.readState(dir);
    expect(sim.runningApiTag(dir)).toBe('0.6.1');
    expect(after.containers['engramia-api']).toMatchObject({ state: 'running', image: 'ghcr.io/engramia/engramia:0.6.1' });
    expect(after.containers['engramia-api']?.id).not.toBe(before.containers['engramia-api']?.id);
    expect(after.containers.caddy).toEqual(before.containers.caddy);
    expect(after.containers.pgvector).toEqual(before.containers.pgvector);
    // .env still pins the old tag: only the shell variable moved the API.
    expect(sim.readEnvFile(dir)).toContain('IMAGE_TAG=0.6.0\n');
  });

  it('exec -T engramia-api alembic upgrade head with IMAGE_TAG=x uses the running container', () => {
    login();
    const T = { IMAGE_TAG: '0.6.1' };
    // Still on 0.6.0: the exported tag does not change which container exec reaches.
    const early = docker([...F, 'exec', '-T', 'engramia-api', 'alembic', 'upgrade', 'head'], { env: T });
    expect(early.code).toBe(0);
    expect(early.stderr).not.toContain('Running upgrade');
    expect(sim.readState(dir).db.revision).toBe('031');

    expect(docker([...F, 'up', '-d', 'engramia-api'], { env: T }).code).toBe(0);
    const mig = docker([...F, 'exec', '-T', 'engramia-api', 'alembic', 'upgrade', 'head'], { env: T });
    expect(mig.code).toBe(0);
    expect(mig.stderr).toContain('Running upgrade 031 -> 032, admin auth');
    expect(sim.readState(dir).db.revision).toBe('032');
    expect(sim.readCommandLog(dir).at(-1)).toMatchObject({ argv: [...F, 'exec', '-T', 'engramia-api', 'alembic', 'upgrade', 'head'], env: { IMAGE_TAG: '0.6.1' }, exitCode: 0 });
  });

  it('.env edited with awk/grep and `cat tmp > .env` is picked up by the next up -d', () => {
    login();
    const set = sh(
      `awk -v k=IMAGE_TAG -v v=0.6.1 'BEGIN{FS=OFS="="} $1==k{print k"="v; f=1; next} {print} END{if(!f) print k"="v}' .env > .env.tmp ` +
        `&& cat .env.tmp > .env && rm -f .env.tmp`,
    );
    expect(set.status).toBe(0);
    expect(sh(`awk 'BEGIN{print "ENGRAMIA_MAINTENANCE=true"} {print}' .env > .env.tmp && cat .env.tmp > .env && rm -f .env.tmp`).status).toBe(0);
    expect(sim.readEnvFile(dir)).toMatch(/^ENGRAMIA_MAINTENANCE=true\n(.|\n)*IMAGE_TAG=0\.6\.1\n/);

    const up = docker([...F, 'up', '-d', 'engramia-api']);
    expect(up.code).toBe(0);
    expect(up.stderr).toContain('Container engramia-api  Recreated');
    expect(sim.runningApiTag(dir)).toBe('0.6.1');
    expect(sim.readState(dir).containers['engramia-api']?.env).toMatchObject({ IMAGE_TAG: '0.6.1', ENGRAMIA_MAINTENANCE: 'true' });

    // Removing a line with grep -v works the same way.
    expect(sh(`grep -v '^ENGRAMIA_MAINTENANCE=' .env > .env.tmp; cat .env.tmp > .env && rm -f .env.tmp`).status).toBe(0);
    expect(docker([...F, 'up', '-d', 'engramia-api']).stderr).toContain('Container engramia-api  Recreated');
    const c = sim.readState(dir).containers['engramia-api'];
    expect(c?.env.ENGRAMIA_MAINTENANCE).toBeUndefined();
    expect(c?.image).toBe('ghcr.io/engramia/engramia:0.6.1');
    expect(docker([...F, 'up', '-d', 'engramia-api']).stderr).toContain('Container engramia-api  Running');
  });
});

describe('docker compose run (one-off containers)', () => {
  const login = () => docker(['login', 'ghcr.io', '-u', 'bot', '--password-stdin'], { input: `${host.registryToken}\n` });
  const run = (args: string[], env: Record<string, string> = {}) => docker([...F, 'run', ...args], { env });
  const HEADS = ['engramia-api', 'alembic', 'heads'];

  it('alembic heads of the running tag: the image is local, no login needed, flags in any order', () => {
    const before = sim.readState(dir);
    for (const flags of [['--rm', '--no-deps', '-T'], ['-T', '--rm', '--no-deps'], ['--no-deps', '-T', '--rm']]) {
      const r = run([...flags, ...HEADS]);
      expect(r).toMatchObject({ code: 0, stdout: '031 (head)\n', stderr: '' });
    }
    const v = run(['--rm', '--no-deps', '-T', ...HEADS, '--verbose']);
    expect(v.code).toBe(0);
    expect(v.stdout.startsWith('Rev: 031 (head)\nParent: 030\nPath: /app/engramia/db/migrations/versions/031_')).toBe(true);
    expect(v.stdout).toContain('    Revision ID: 031\n    Revises: 030\n');
    const after = sim.readState(dir);
    expect(after.containers).toEqual(before.containers);
    expect(after.images).toEqual(before.images);
    expect(after.db).toEqual(before.db);
    expect(sim.oneOffContainers(dir)).toEqual([]);
  });

  it('heads of a newer tag: pulled on demand, running container and DB untouched', () => {
    const T = { IMAGE_TAG: '0.6.1' };
    const unauth = run(['--rm', '--no-deps', '-T', ...HEADS], T);
    expect(unauth.code).toBe(1);
    expect(unauth.stdout).toBe('');
    expect(unauth.stderr).toContain('Error response from daemon: Head "https://ghcr.io/v2/engramia/engramia/manifests/0.6.1": unauthorized');

    login();
    const before = sim.readState(dir);
    const r = run(['--rm', '--no-deps', '-T', ...HEADS], T);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('032 (head)\n');
    expect(r.stderr).toContain(' engramia-api Pulling \n');
    expect(r.stderr).toContain(' engramia-api Pulled \n');
    expect(sim.localApiTags(dir).sort()).toEqual(['0.6.0', '0.6.1']);
    const after = sim.readState(dir);
    expect(after.containers).toEqual(before.containers);
    expect(sim.runningApiTag(dir)).toBe('0.6.0');
    expect(after.db.revision).toBe('031');
    expect(sim.oneOffContainers(dir)).toEqual([]);

    // Now local: no second pull.
    const again = run(['--rm', '--no-deps', '-T', ...HEADS], T);
    expect(again).toMatchObject({ code: 0, stdout: '032 (head)\n', stderr: '' });

    // History of the image, newest first, like exec's.
    const hist = run(['--rm', '--no-deps', '-T', 'engramia-api', 'alembic', 'history'], T).stdout.trim().split('\n');
    expect(hist[0]).toBe('031 -> 032 (head), admin auth');
    expect(hist[1]).toBe('030 -> 031, audit log actor user id');
    expect(hist.at(-1)).toBe('<base> -> 001, initial schema');
    // The running 0.6.0 container still knows only up to 031.
    expect(docker([...F, 'exec', '-T', 'engramia-api', 'alembic', 'heads']).stdout).toBe('031 (head)\n');

    const recs = sim.readCommandLog(dir).filter((x) => x.argv.includes('run'));
    expect(recs.map((x) => [x.argv.join(' '), x.env.IMAGE_TAG, x.exitCode])).toContainEqual([
      'compose -f docker-compose.prod.yml run --rm --no-deps -T engramia-api alembic heads',
      '0.6.1',
      0,
    ]);
    expect(sim.readState(dir).db.revision).toBe('031');
  });

  it('takes the tag from the environment first, then .env', () => {
    login();
    sim.setEnvVar(dir, 'IMAGE_TAG', '0.5.9');
    expect(run(['--rm', '--no-deps', '-T', ...HEADS]).stdout).toBe('030 (head)\n');
    expect(run(['--rm', '--no-deps', '-T', ...HEADS], { IMAGE_TAG: '0.6.1' }).stdout).toBe('032 (head)\n');
    sim.setEnvVar(dir, 'IMAGE_TAG', null);
    const unset = run(['--rm', '--no-deps', '-T', ...HEADS]);
    expect(unset.code).toBe(1);
    expect(unset.stderr).toContain('WARN[0000] The "IMAGE_TAG" variable is not set. Defaulting to a blank string.');
    expect(unset.stderr).toContain('invalid reference format');
  });

  it('an unknown tag fails like pull and changes nothing', () => {
    login();
    const before = sim.readState(dir);
    const r = run(['--rm', '--no-deps', '-T', ...HEADS], { IMAGE_TAG: '9.9.9' });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('Error response from daemon: manifest for ghcr.io/engramia/engramia:9.9.9 not found: manifest unknown: manifest unknown');
    expect(sim.readState(dir)).toEqual(before);
  });

  it('without --no-deps pgvector is brought up first; alembic current reads the DB', () => {
    sim.stopContainer(dir, 'pgvector');
    const down = run(['--rm', '--no-deps', '-T', 'engramia-api', 'alembic', 'current']);
    expect(down.code).toBe(1);
    expect(down.stderr).toContain('could not translate host name "pgvector"');
    const r = run(['--rm', '-T', 'engramia-api', 'alembic', 'current']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('031 (head)\n');
    expect(r.stderr).toContain('Container pgvector  Started');
    expect(sim.readState(dir).containers.pgvector?.state).toBe('running');
  });

  it('without --rm a stopped one-off container stays behind, listed by ps -a and pinning its image', () => {
    login();
    const before = sim.readState(dir).containers;
    const r = run(['--no-deps', '-T', ...HEADS], { IMAGE_TAG: '0.6.1' });
    expect(r).toMatchObject({ code: 0, stdout: '032 (head)\n' });
    const left = sim.oneOffContainers(dir);
    expect(left).toHaveLength(1);
    expect(left[0]).toMatchObject({ service: 'engramia-api', image: 'ghcr.io/engramia/engramia:0.6.1', state: 'exited', exitCode: 0, oneOff: true, command: 'alembic heads' });
    expect(left[0]?.name).toMatch(/^engramia-engramia-api-run-[0-9a-f]{12}$/);
    expect(sim.readState(dir).containers).toEqual(before);

    const ps = docker([...F, 'ps', '-a', '--format', 'json', 'engramia-api']).stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(ps.map((x) => [x.Name, x.State])).toEqual([
      ['engramia-api', 'running'],
      [left[0]?.name, 'exited'],
    ]);
    expect(ps[1].Labels).toContain('com.docker.compose.oneoff=True');
    expect(docker([...F, 'ps', '--format', 'json', 'engramia-api']).stdout.trim().split('\n')).toHaveLength(1);

    docker(['image', 'prune', '-a', '-f']);
    expect(sim.localApiTags(dir).sort()).toEqual(['0.6.0', '0.6.1']);
  });

  it('refuses what real compose would refuse or fail on', () => {
    const tty = run(['--rm', '--no-deps', ...HEADS]);
    expect(tty).toMatchObject({ code: 1, stderr: 'the input device is not a TTY\n' });
    const pg = run(['--rm', '--no-deps', '-T', 'pgvector', 'alembic', 'heads']);
    expect(pg.code).toBe(1);
    expect(pg.stderr).toContain('exec: "alembic": executable file not found in $PATH');
    const nope = run(['--rm', '--no-deps', '-T', 'nope', 'alembic', 'heads']);
    expect(nope).toMatchObject({ code: 1, stderr: 'no such service: nope\n' });
    const noCmd = run(['--rm', '--no-deps', '-T', 'engramia-api']);
    expect(noCmd.code).toBe(1);
    expect(run(['--rm', '--no-deps', '-T', '--bogus', ...HEADS]).stderr).toBe('unknown flag: --bogus\n');
    expect(sim.oneOffContainers(dir)).toEqual([]);
  });

  it('faults apply to run like to any command', () => {
    sim.setFault(dir, { match: ['run', 'alembic heads'], exitCode: 1, stderr: 'Error response from daemon: i/o timeout\n', times: 1 });
    const r = run(['--rm', '--no-deps', '-T', ...HEADS]);
    expect(r).toMatchObject({ code: 1, stdout: '', stderr: 'Error response from daemon: i/o timeout\n' });
    expect(sim.readState(dir).faults).toEqual([]);
    expect(run(['--rm', '--no-deps', '-T', ...HEADS]).stdout).toBe('031 (head)\n');

    sim.setFault(dir, { match: ['run', 'alembic heads'], delayMs: 200, stderr: 'WARN noise\n' });
    const t = Date.now();
    const slow = run(['--rm', '--no-deps', '-T', ...HEADS]);
    expect(Date.now() - t).toBeGreaterThanOrEqual(200);
    expect(slow).toMatchObject({ code: 0, stdout: '031 (head)\n', stderr: 'WARN noise\n' });
    expect(sim.readCommandLog(dir).slice(-2).map((x) => x.phase)).toEqual(['start', 'end']);
  });

  it('a hanging run can be killed', async () => {
    sim.setFault(dir, { match: ['run', 'alembic'], hang: true });
    const { child, done } = dockerAsync([...F, 'run', '--rm', '--no-deps', '-T', ...HEADS]);
    for (let i = 0; i < 100 && !sim.readCommandLog(dir).some((x) => x.phase === 'start'); i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill('SIGTERM');
    expect((await done).signal).toBe('SIGTERM');
  });
});

describe('docker compose ps / logs', () => {
  it('ps --format json prints one object per line; stopped containers need -a', () => {
    sim.stopContainer(dir, 'engramia-api', 137);
    const r = docker([...F, 'ps', '--format', 'json']);
    expect(r.code).toBe(0);
    const rows = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(rows.map((x) => x.Service).sort()).toEqual(['caddy', 'pgvector']);
    const all = docker([...F, 'ps', '-a', '--format', 'json', 'engramia-api']).stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(all).toHaveLength(1);
    expect(all[0]).toMatchObject({ Name: 'engramia-api', Service: 'engramia-api', Image: 'ghcr.io/engramia/engramia:0.6.0', State: 'exited', ExitCode: 137, Project: 'engramia', Health: '' });
    expect(all[0].Status).toMatch(/^Exited \(137\) /);
    const pg = JSON.parse(docker([...F, 'ps', '--format', 'json', 'pgvector']).stdout);
    expect(pg).toMatchObject({ State: 'running', Health: 'healthy' });
    expect(pg.Status).toMatch(/^Up .* \(healthy\)$/);
    expect(docker([...F, 'ps']).stdout).toMatch(/^NAME\s+IMAGE\s+COMMAND\s+SERVICE\s+CREATED\s+STATUS\s+PORTS\n/);
    expect(docker([...F, 'ps', 'nope']).stderr).toContain('no such service: nope');
  });

  it('logs --tail N and --tail=N', () => {
    sim.setLogs(dir, 'engramia-api', ['one', 'two', 'three']);
    expect(docker([...F, 'logs', '--tail', '2', 'engramia-api']).stdout).toBe('\x1b[2Kengramia-api-1  | two\n\x1b[2Kengramia-api-1  | three\n');
    expect(docker([...F, 'logs', '--tail=1', '--no-log-prefix', 'engramia-api']).stdout).toBe('\x1b[2Kthree\n');
    expect(docker([...F, 'logs', '--tail=100', 'pgvector']).stdout).toContain('database system is ready to accept connections');
  });
});

describe('docker compose exec', () => {
  const exec = (args: string[], env: Record<string, string> = {}) => docker([...F, 'exec', '-T', ...args], { env });

  it('needs -T without a TTY and a running container', () => {
    const r = docker([...F, 'exec', 'engramia-api', 'alembic', 'current']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('the input device is not a TTY\n');
    sim.stopContainer(dir, 'engramia-api');
    const s = exec(['engramia-api', 'alembic', 'current']);
    expect(s.code).toBe(1);
    expect(s.stderr).toBe('service "engramia-api" is not running\n');
    expect(exec(['pgvector', 'nosuchprog']).code).toBe(126);
  });

  it('alembic current / history', () => {
    const cur = exec(['engramia-api', 'alembic', 'current']);
    expect(cur.stdout).toBe('031 (head)\n');
    expect(cur.stderr).toContain('INFO  [alembic.runtime.migration] Context impl PostgresqlImpl.');
    sim.setDbRevision(dir, '030');
    expect(exec(['engramia-api', 'alembic', 'current']).stdout).toBe('030\n');

    const hist = exec(['engramia-api', 'alembic', 'history']).stdout.trim().split('\n');
    expect(hist[0]).toBe('030 -> 031 (head), audit log actor user id');
    expect(hist).toContain('006 -> 008, billing');
    expect(hist.at(-1)).toBe('<base> -> 001, initial schema');
    expect(hist.some((l) => l.includes('007'))).toBe(false);
    const verbose = exec(['engramia-api', 'alembic', 'history', '--verbose']).stdout;
    expect(verbose.startsWith('Rev: 031 (head)\nParent: 030\nPath: ')).toBe(true);
    expect(verbose).toContain('    Revision ID: 008\n    Revises: 006\n');
  });

  it('alembic upgrade head / downgrade -1 / REV / base', () => {
    sim.setDbRevision(dir, '029');
    const up = exec(['engramia-api', 'alembic', 'upgrade', 'head']);
    expect(up.code).toBe(0);
    expect(up.stderr).toContain('INFO  [alembic.runtime.migration] Running upgrade 029 -> 030, waitlist active unique index\n');
    expect(up.stderr).toContain('Running upgrade 030 -> 031, audit log actor user id');
    expect(sim.readState(dir).db.revision).toBe('031');

    exec(['engramia-api', 'alembic', 'downgrade', '-1']);
    const d2 = exec(['engramia-api', 'alembic', 'downgrade', '-1']);
    // A downgrade step is named after the migration it reverts.
    expect(d2.stderr).toContain('Running downgrade 030 -> 029, waitlist active unique index');
    expect(sim.readState(dir).db.revision).toBe('029');

    expect(exec(['engramia-api', 'alembic', 'downgrade', '008']).stderr).toContain('Running downgrade 009 -> 008, scope key uniqueness');
    expect(exec(['engramia-api', 'alembic', 'downgrade', '006']).stderr).toContain('Running downgrade 008 -> 006, billing');
    expect(exec(['engramia-api', 'alembic', 'downgrade', '006']).code).toBe(0);
    expect(sim.readState(dir).db.revision).toBe('006');
    const past = exec(['engramia-api', 'alembic', 'downgrade', '012']);
    expect(past.code).toBe(255);
    expect(past.stdout).toContain('FAILED: Destination 012 is not a valid downgrade target');

    const base = exec(['engramia-api', 'alembic', 'downgrade', 'base']);
    expect(base.stderr).toContain('Running downgrade 001 -> , initial schema');
    expect(sim.readState(dir).db.revision).toBeNull();
    expect(exec(['engramia-api', 'alembic', 'current']).stdout).toBe('');
  });

  it('an image older than the database cannot locate the revision', () => {
    sim.setDbRevision(dir, '032'); // 0.6.0 only ships migrations up to 031
    const r = exec(['engramia-api', 'alembic', 'current']);
    expect(r.code).toBe(255);
    expect(r.stdout).toBe("FAILED: Can't locate revision identified by '032'\n");
  });

  it('a failing migration rolls back the whole upgrade', () => {
    sim.setDbRevision(dir, '030');
    sim.setMigrationFailure(dir, { upgradeTo: '031' });
    const r = exec(['engramia-api', 'alembic', 'upgrade', 'head']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('sqlalchemy.exc.ProgrammingError');
    expect(sim.readState(dir).db.revision).toBe('030');
  });

  it('pg_dump -Fc is deterministic binary; psql and pg_isready answer', () => {
    const d = exec(['pgvector', 'pg_dump', '-U', 'engramia', 'engramia', '-Fc']);
    expect(d.code).toBe(0);
    expect(d.raw.subarray(0, 5).toString('latin1')).toBe('PGDMP');
    expect(Buffer.compare(d.raw, sim.expectedPgDump(dir))).toBe(0);
    expect(() => new TextDecoder('utf-8', { fatal: true }).decode(d.raw)).toThrow();
    expect(d.raw.includes(Buffer.from('version_num=031'))).toBe(true);
    sim.setDbRevision(dir, '030');
    expect(Buffer.compare(exec(['pgvector', 'pg_dump', '-U', 'engramia', 'engramia', '-Fc']).raw, d.raw)).not.toBe(0);

    expect(exec(['pgvector', 'pg_dump', 'engramia', '-Fc']).stderr).toContain('FATAL:  role "root" does not exist');
    const v = exec(['pgvector', 'psql', '-U', 'engramia', '-c', 'SELECT version();']);
    expect(v.stdout).toMatch(/^\s+version\s*\n-+\n PostgreSQL 16\.\d+ .*\n\(1 row\)\n\n$/);
    expect(exec(['pgvector', 'pg_isready']).stdout).toBe('/var/run/postgresql:5432 - accepting connections\n');
  });
});

describe('docker image prune', () => {
  it('-f removes dangling images only; -a removes every unused image', () => {
    const first = docker(['image', 'prune', '-f']);
    expect(first.stdout).toMatch(/^Deleted Images:\n(untagged|deleted): /);
    expect(first.stdout).toMatch(/\nTotal reclaimed space: [\d.]+MB\n$/);
    expect(docker(['image', 'prune', '-f']).stdout).toBe('Total reclaimed space: 0B\n');

    docker(['login', 'ghcr.io', '-u', 'bot', '--password-stdin'], { input: host.registryToken });
    docker([...F, 'up', '-d', 'engramia-api'], { env: { IMAGE_TAG: '0.6.1' } });
    docker(['image', 'prune', '-f']);
    expect(sim.localApiTags(dir).sort()).toEqual(['0.6.0', '0.6.1']);
    const all = docker(['image', 'prune', '-a', '-f']);
    expect(all.stdout).toContain('untagged: ghcr.io/engramia/engramia:0.6.0');
    expect(sim.localApiTags(dir)).toEqual(['0.6.1']);
  });
});

describe('faults', () => {
  it('replaces a command with a given exit code and output, `times` times', () => {
    sim.setFault(dir, { match: ['compose', 'pull'], exitCode: 18, stderr: 'net/http: TLS handshake timeout\n', times: 1 });
    const r = docker([...F, 'pull', 'engramia-api']);
    expect(r).toMatchObject({ code: 18, stderr: 'net/http: TLS handshake timeout\n' });
    expect(sim.readState(dir).faults).toEqual([]);
    expect(docker([...F, 'pull', 'engramia-api']).stderr).toContain('unauthorized');
  });

  it('delayMs slows a command down and logs its start', () => {
    sim.setFault(dir, { match: 'ps', delayMs: 300 });
    const t = Date.now();
    const r = docker([...F, 'ps']);
    expect(Date.now() - t).toBeGreaterThanOrEqual(300);
    expect(r.code).toBe(0);
    const log = sim.readCommandLog(dir);
    expect(log.map((x) => x.phase)).toEqual(['start', 'end']);
    expect(log[0]?.pid).toBe(log[1]?.pid);
  });

  it('hang keeps the process alive until it is killed', async () => {
    sim.setFault(dir, { match: 'alembic upgrade', hang: true });
    const { child, done } = dockerAsync([...F, 'exec', '-T', 'engramia-api', 'alembic', 'upgrade', 'head']);
    let start: sim.CommandRecord | undefined;
    for (let i = 0; i < 100 && !start; i++) {
      await new Promise((r) => setTimeout(r, 50));
      start = sim.readCommandLog(dir).find((x) => x.phase === 'start');
    }
    expect(start?.pid).toBe(child.pid);
    expect(isAlive(start!.pid)).toBe(true);
    child.kill('SIGTERM');
    const res = await done;
    expect(res.signal).toBe('SIGTERM');
    expect(isAlive(start!.pid)).toBe(false);
    expect(sim.readCommandLog(dir).filter((x) => x.phase === 'end')).toEqual([]);
  });

  it('hangAfter applies the command, then hangs (outcome unknown to the caller)', async () => {
    sim.setDbRevision(dir, '030');
    sim.setFault(dir, { match: 'alembic upgrade', hangAfter: true });
    const { child, done } = dockerAsync([...F, 'exec', '-T', 'engramia-api', 'alembic', 'upgrade', 'head']);
    for (let i = 0; i < 100 && !sim.readCommandLog(dir).some((x) => x.phase === 'executed'); i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(sim.readState(dir).db.revision).toBe('031');
    child.kill('SIGKILL');
    await done;
  });
});

describe('Engramia API', () => {
  it('serves version without auth and health with a bearer key', async () => {
    const a = await api();
    const v = await get(`${a.url}/v1/version`);
    expect(v.status).toBe(200);
    expect(await body(v)).toMatchObject({ app_version: '0.6.0', api_version: 'v1' });

    const none = await get(`${a.url}/v1/health`);
    expect(none.status).toBe(401);
    expect(await body(none)).toMatchObject({ error_code: 'UNAUTHORIZED' });
    expect((await get(`${a.url}/v1/health/deep`, 'wrong')).status).toBe(401);

    const h = await get(`${a.url}/v1/health`, host.apiKey);
    expect(await body(h)).toEqual({ status: 'ok', storage: 'postgres', pattern_count: 1234 });
    const nf = await get(`${a.url}/v1/nope`, host.apiKey);
    expect(nf.status).toBe(404);
    expect(await body(nf)).toEqual({ detail: 'Not Found' });
    expect(a.requests.map((r) => r.auth)).toEqual(['n/a', 'none', 'invalid', 'valid', 'n/a']);
  });

  it('deep health: ok, degraded, error and the computed migration check', async () => {
    const a = await api();
    const ok = await get(`${a.url}/v1/health/deep`, host.apiKey);
    expect(ok.status).toBe(200);
    const deepOk = await body(ok);
    expect(deepOk).toMatchObject({ status: 'ok', version: '0.6.0' });
    expect(deepOk.uptime_seconds).toBeGreaterThan(3600);
    expect(Object.keys(deepOk.checks)).toEqual(['storage', 'llm', 'embedding', 'redis', 'stripe', 'migration']);
    expect(deepOk.checks.redis).toEqual({ status: 'not_configured', latency_ms: null, error: null });
    expect(deepOk.checks.migration).toMatchObject({ status: 'ok', current_revision: '031', expected_revision: '031' });

    sim.setDeepCheck(dir, 'stripe', { status: 'error', error: 'AuthenticationError' });
    const deg = await get(`${a.url}/v1/health/deep`, host.apiKey);
    expect(deg.status).toBe(200);
    expect((await body(deg)).status).toBe('degraded');

    sim.setDeepHealth(dir, 'ok');
    sim.setDbRevision(dir, '030');
    const mig = await body(get(`${a.url}/v1/health/deep`, host.apiKey));
    expect(mig.status).toBe('degraded');
    expect(mig.checks.migration).toMatchObject({ status: 'error', current_revision: '030', expected_revision: '031' });

    sim.setDeepHealth(dir, 'error');
    const err = await get(`${a.url}/v1/health/deep`, host.apiKey);
    expect(err.status).toBe(503);
    expect((await body(err)).status).toBe('error');
  });

  it('maintenance comes from the container env: 503 everywhere except the health paths', async () => {
    const a = await api();
    appendFileSync(join(dir, '.env'), 'ENGRAMIA_MAINTENANCE=TRUE\n');
    expect((await get(`${a.url}/v1/version`)).status).toBe(200); // .env alone changes nothing
    docker([...F, 'up', '-d', 'engramia-api']);
    const v = await get(`${a.url}/v1/version`);
    expect(v.status).toBe(503);
    expect(v.headers.get('retry-after')).toBe('3600');
    expect(await body(v)).toEqual({
      error_code: 'SERVICE_UNAVAILABLE',
      detail: 'Service is under scheduled maintenance. Please try again later.',
      error_context: { retry_after: 3600 },
    });
    expect((await get(`${a.url}/v1/health`, host.apiKey)).status).toBe(200);
    expect((await get(`${a.url}/v1/health/deep`, host.apiKey)).status).toBe(200);
    expect((await get(`${a.url}/v1/health/`, host.apiKey)).status).toBe(503);
    sim.setMaintenance(dir, false);
    expect((await get(`${a.url}/v1/version`)).status).toBe(200);
    expect(sim.readEnvFile(dir)).not.toContain('ENGRAMIA_MAINTENANCE');
  });

  it('a stopped container or setApi({down}) gives Caddy 502; delay and rate limit', async () => {
    const a = await api();
    sim.stopContainer(dir, 'engramia-api');
    const r = await get(`${a.url}/v1/version`);
    expect(r.status).toBe(502);
    expect(await r.text()).toBe('');
    sim.startContainer(dir, 'engramia-api');
    expect((await get(`${a.url}/v1/version`)).status).toBe(200);
    sim.setApi(dir, { down: true });
    expect((await get(`${a.url}/v1/version`)).status).toBe(502);
    sim.setApi(dir, { down: false, delayMs: 200 });
    const t = Date.now();
    expect((await get(`${a.url}/v1/version`)).status).toBe(200);
    expect(Date.now() - t).toBeGreaterThanOrEqual(190);
  });

  it('rate-limits per path in one-minute windows, in memory per API process', async () => {
    sim.setApi(dir, { rateLimitPerMinute: 2 });
    const a = await api();
    const statuses: number[] = [];
    let limited: Response | undefined;
    // Fixed windows: a minute boundary can reset the count once, so allow a few extra tries.
    for (let i = 0; i < 6 && !limited; i++) {
      const r = await get(`${a.url}/v1/version`);
      statuses.push(r.status);
      if (r.status === 429) limited = r;
    }
    expect(statuses.slice(0, 2)).toEqual([200, 200]);
    expect(limited?.headers.get('retry-after')).toBe('60');
    expect(limited && (await body(limited))).toEqual({
      error_code: 'RATE_LIMITED',
      detail: 'Rate limit exceeded. Max 2 requests per minute.',
      error_context: { retry_after: 60 },
    });
    expect((await get(`${a.url}/v1/health`, host.apiKey)).status).toBe(200); // other path, own bucket
  });

  it('pgvector down breaks storage and migration checks', async () => {
    const a = await api();
    sim.stopContainer(dir, 'pgvector');
    expect((await get(`${a.url}/v1/health`, host.apiKey)).status).toBe(503);
    const deep = await body(get(`${a.url}/v1/health/deep`, host.apiKey));
    expect(deep.checks.storage.status).toBe('error');
    expect(deep.checks.migration.status).toBe('error');
    expect(deep.status).toBe('degraded');
  });
});

describe('the runbook end to end (each command in a fresh shell)', () => {
  it('deploys 0.6.1 with maintenance and migrations', async () => {
    const a = await api();
    // 3. maintenance on
    appendFileSync(join(dir, '.env'), 'ENGRAMIA_MAINTENANCE=true\n');
    expect(docker([...F, 'up', '-d', 'engramia-api']).code).toBe(0);
    expect((await get(`${a.url}/v1/version`)).status).toBe(503);
    // 4. login + pull
    expect(docker(['login', 'ghcr.io', '-u', 'engramia-bot', '--password-stdin'], { input: `${host.registryToken}\n` }).code).toBe(0);
    const T = { IMAGE_TAG: '0.6.1' };
    expect(docker([...F, 'pull', 'engramia-api'], { env: T }).code).toBe(0);
    // 5. restart on the new image
    expect(docker([...F, 'up', '-d', 'engramia-api', 'caddy'], { env: T }).code).toBe(0);
    const before = await body(get(`${a.url}/v1/health/deep`, host.apiKey));
    expect(before.checks.migration).toMatchObject({ status: 'error', current_revision: '031', expected_revision: '032' });
    // 6. migrate
    const mig = docker([...F, 'exec', '-T', 'engramia-api', 'alembic', 'upgrade', 'head'], { env: T });
    expect(mig.stderr).toContain('Running upgrade 031 -> 032, admin auth');
    // 7. maintenance off (keeping the tag this time) and pin the tag in .env
    writeFileSync(join(dir, '.env'), sim.readEnvFile(dir).replace(/^ENGRAMIA_MAINTENANCE.*\n/m, '').replace(/^IMAGE_TAG=.*$/m, 'IMAGE_TAG=0.6.1'));
    expect(docker([...F, 'up', '-d', 'engramia-api']).code).toBe(0);
    // 8. prune
    expect(docker(['image', 'prune', '-f']).code).toBe(0);

    expect(await body(get(`${a.url}/v1/version`))).toMatchObject({ app_version: '0.6.1' });
    const deep = await body(get(`${a.url}/v1/health/deep`, host.apiKey));
    expect(deep).toMatchObject({ status: 'ok', version: '0.6.1' });
    expect(deep.uptime_seconds).toBeLessThan(60);
    const argvs = sim.readCommandLog(dir).map((r) => r.argv.join(' '));
    expect(argvs).toContain('compose -f docker-compose.prod.yml exec -T engramia-api alembic upgrade head');
  });
});
