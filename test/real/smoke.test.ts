// Smoke test of the real host: everything through SSH with the project's SshExecutor, checked
// with the real CLI, the real database and real HTTP, not with anyone's own words.
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Secret } from '../../src/config/secret.js';
import { API_SERVICE, createDeployFolder, DB_SERVICE, PROXY_SERVICE, type DeployFolder } from './deploy-host.js';
import { connectVm, eventually, type Vm } from './vm.js';

const host = inject('realHost');
let vm: Vm;
let deploy: DeployFolder;

beforeAll(async () => {
  deploy = await createDeployFolder({ registryAddress: host.registry.address, tag: '0.6.0', name: 'engramia-smoke' });
  vm = connectVm({ sshd: host.sshd, deploy });
});
afterAll(async () => {
  // Frees the two cores for the next file: containers, network and the database volume go.
  await vm?.compose(['down', '-v'], { timeoutMs: 120_000 });
  await vm?.close();
});

async function get(urlPath: string, headers: Record<string, string> = {}): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${deploy.apiUrl}${urlPath}`, { headers, signal: AbortSignal.timeout(5_000) });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as unknown) : null };
}

function sessionDockerConfig(): string {
  const file = path.join(host.sshd.home, '.docker', 'config.json');
  return existsSync(file) ? readFileSync(file, 'utf8') : '';
}

describe('real host smoke: compose, registry, PostgreSQL, alembic and the API over SSH', () => {
  it('refuses to pull without a login, in the registry\'s own words', async () => {
    // Test files share the VM user's HOME, and the bot's deploy leaves its registry login behind
    // (a known gap, see docs/real-host.md): start from no login.
    expect((await vm.exec({ argv: ['docker', 'logout', host.registry.address] })).code).toBe(0);
    expect(sessionDockerConfig()).not.toContain(host.registry.address);
    const r = await vm.compose(['pull', API_SERVICE]);
    // Compose 2.26.1 exits 18 for a failed pull (the simulation exits 1) and prints the daemon's
    // error twice: on the service's progress line and as the final error.
    expect(r.code).toBe(18);
    const head = `Head "http://${host.registry.address}/v2/engramia/engramia/manifests/0.6.0": no basic auth credentials`;
    expect(r.output).toContain(` engramia-api Error ${head}\n`);
    expect(r.output).toContain(`Error response from daemon: ${head}\n`);
  });

  it('logs in with the password on stdin, pulls 0.6.0 and starts it; the database is migrated to 0.6.0\'s head', async () => {
    const login = await vm.exec(
      { argv: ['docker', 'login', host.registry.address, '-u', host.registry.username, '--password-stdin'] },
      { stdin: new Secret(`${host.registry.password}\n`, 'registry password') },
    );
    expect(login.output).toContain('Login Succeeded');
    expect(login.code).toBe(0);

    const pull = await vm.compose(['pull'], { timeoutMs: 300_000 });
    expect(pull.code, pull.output).toBe(0);
    const images = await vm.exec({ argv: ['docker', 'image', 'ls', '--format', '{{.Repository}}:{{.Tag}}'] });
    expect(images.stdout).toContain(`${host.apiRepository}:0.6.0`);

    const up = await vm.compose(['up', '-d'], { timeoutMs: 300_000 });
    expect(up.code, up.output).toBe(0);

    // A fresh volume: initdb runs first; wait for the server the way the runbook says, over TCP
    // (a socket pg_isready also answers the socket-only server that creates the database).
    await eventually('pg_isready', async () => {
      const r = await vm.compose(['exec', '-T', DB_SERVICE, 'pg_isready', '-h', '127.0.0.1', '-U', 'engramia']);
      return r.code === 0 ? true : undefined;
    });
    const upgrade = await vm.compose(['exec', '-T', API_SERVICE, 'alembic', 'upgrade', 'head']);
    expect(upgrade.code, upgrade.output).toBe(0);
    expect(upgrade.stderr).toContain('Running upgrade  -> 029, create patterns');
    expect(upgrade.stderr).toContain('Running upgrade 029 -> 031, add patterns.quality_score');

    const current = await vm.compose(['exec', '-T', API_SERVICE, 'alembic', 'current']);
    expect(current.code, current.output).toBe(0);
    expect(current.stdout.trim()).toBe('031 (head)');

    // The schema really changed, read from PostgreSQL itself.
    const cols = await vm.compose([
      'exec', '-T', DB_SERVICE, 'psql', '-U', 'engramia', '-d', 'engramia', '-At', '-c',
      "SELECT column_name FROM information_schema.columns WHERE table_name = 'patterns' ORDER BY ordinal_position",
    ]);
    expect(cols.stdout.trim().split('\n')).toEqual(['id', 'tenant_id', 'body', 'created_at', 'quality_score']);
  });

  it('answers /v1/version 0.6.0 and a deep health that reads the real alembic_version, through the published port', async () => {
    const version = await eventually('GET /v1/version', async () => {
      const r = await get('/v1/version');
      return r.status === 200 ? r : undefined;
    });
    expect(version.body).toMatchObject({ app_version: '0.6.0', api_version: 'v1' });

    expect((await get('/v1/health')).status).toBe(401);
    const auth = { authorization: `Bearer ${deploy.apiKey}` };
    expect(await get('/v1/health', auth)).toEqual({ status: 200, body: { status: 'ok', storage: 'postgres', pattern_count: 0 } });
    const deep = await get('/v1/health/deep', auth);
    expect(deep.status).toBe(200);
    expect(deep.body).toMatchObject({
      status: 'ok',
      version: '0.6.0',
      checks: { storage: { status: 'ok' }, migration: { status: 'ok', current_revision: '031', expected_revision: '031' } },
    });
  });

  it('shows the running services in the real `docker compose ps` and takes a pg_dump -Fc that pg_restore can list', async () => {
    const ps = await vm.compose(['ps', '--format', 'json']);
    expect(ps.code, ps.output).toBe(0);
    const services = ps.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { Service: string; State: string; Image: string });
    expect(services.map((s) => [s.Service, s.State]).sort()).toEqual([
      [PROXY_SERVICE, 'running'],
      [API_SERVICE, 'running'],
      [DB_SERVICE, 'running'],
    ]);

    const dump = await vm.exec({
      // pg_restore from the database image, so the VM needs no PostgreSQL client of its own.
      argv: [
        'sh', '-c',
        'docker compose -f docker-compose.prod.yml exec -T "$1" pg_dump -U engramia engramia -Fc > smoke.dump && ' +
          'docker compose -f docker-compose.prod.yml exec -T "$1" pg_restore -l < smoke.dump',
        'sh', DB_SERVICE,
      ],
    });
    expect(dump.code, dump.output).toBe(0);
    expect(dump.stdout).toMatch(/TABLE public patterns /);
    expect(dump.stdout).toMatch(/TABLE public alembic_version /);
  });

  it('answers through Caddy: 502 with an empty body while the API is stopped, 0.6.0 again once it is back', async () => {
    const stop = await vm.compose(['stop', API_SERVICE]);
    expect(stop.code, stop.output).toBe(0);
    const res = await fetch(`${deploy.apiUrl}/v1/version`, { signal: AbortSignal.timeout(5_000) });
    expect(res.status).toBe(502);
    expect(res.headers.get('server')).toBe('Caddy');
    expect(await res.text()).toBe('');

    const start = await vm.compose(['start', API_SERVICE]);
    expect(start.code, start.output).toBe(0);
    const back = await eventually('GET /v1/version after start', async () => {
      const r = await get('/v1/version');
      return r.status === 200 ? r : undefined;
    });
    expect(back.body).toMatchObject({ app_version: '0.6.0' });
  });

  it('logs out, leaving no registry credential in the session user\'s docker config', async () => {
    expect(sessionDockerConfig()).toContain(host.registry.address);
    const out = await vm.exec({ argv: ['docker', 'logout', host.registry.address] });
    expect(out.code, out.output).toBe(0);
    expect(sessionDockerConfig()).not.toContain(host.registry.address);
  });
});
