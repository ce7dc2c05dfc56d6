// The test releases themselves, checked by hand over SSH before the bot is trusted with them:
// real alembic history and downgrades that really change the schema, a release whose deep health
// answers `error`, and one that crash-loops under `restart: unless-stopped`.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Secret } from '../../src/config/secret.js';
import { API_SERVICE, createDeployFolder, DB_SERVICE, type DeployFolder } from './deploy-host.js';
import { bringUp, connectVm, eventually, type Vm, type VmResult } from './vm.js';

const host = inject('realHost');
let vm: Vm;
let deploy: DeployFolder;

beforeAll(async () => {
  deploy = await createDeployFolder({ registryAddress: host.registry.address, tag: '0.6.2', name: 'engramia-releases' });
  vm = connectVm({ sshd: host.sshd, deploy });
  await bringUp(vm, host.registry, '0.6.2');
}, 600_000);
afterAll(async () => {
  await vm?.compose(['down', '-v'], { timeoutMs: 120_000 });
  await vm?.close();
});

function ok(r: VmResult): VmResult {
  expect(r.code, r.output).toBe(0);
  return r;
}

const alembic = (...args: string[]) => vm.compose(['exec', '-T', API_SERVICE, 'alembic', ...args]);
const psql = (sql: string) => vm.compose(['exec', '-T', DB_SERVICE, 'psql', '-U', 'engramia', '-d', 'engramia', '-At', '-c', sql]);
const columns = async () => ok(await psql("SELECT column_name FROM information_schema.columns WHERE table_name = 'patterns' ORDER BY ordinal_position")).stdout.trim().split('\n');

/** Pulls `tag` (login and logout around it) and re-creates the API on it. */
async function switchTo(tag: string): Promise<void> {
  ok(await vm.exec({ argv: ['docker', 'login', host.registry.address, '-u', host.registry.username, '--password-stdin'] }, { stdin: new Secret(`${host.registry.password}\n`, 'registry password') }));
  ok(await vm.compose(['pull', API_SERVICE], { env: { IMAGE_TAG: tag }, timeoutMs: 300_000 }));
  ok(await vm.exec({ argv: ['docker', 'logout', host.registry.address] }));
  ok(await vm.compose(['up', '-d', API_SERVICE], { env: { IMAGE_TAG: tag }, timeoutMs: 300_000 }));
}

async function deepHealth(): Promise<{ status: number; body: { status: string; version: string } }> {
  const res = await fetch(`${deploy.apiUrl}/v1/health/deep`, { headers: { authorization: `Bearer ${deploy.apiKey}` }, signal: AbortSignal.timeout(5_000) });
  return { status: res.status, body: (await res.json()) as { status: string; version: string } };
}

describe('the test releases on the real host', () => {
  it('alembic history lists the real chain newest first, with the (head) marker and the skipped 030', async () => {
    const history = ok(await alembic('history')).stdout.trim().split('\n');
    expect(history).toEqual([
      '032 -> 033 (head), add patterns.embedding_model',
      '031 -> 032, create pattern_feedback',
      '029 -> 031, add patterns.quality_score',
      '<base> -> 029, create patterns',
    ]);
    expect(ok(await alembic('heads')).stdout.trim()).toBe('033 (head)');
  });

  it('downgrades really undo the schema, and upgrade head redoes it', async () => {
    expect(await columns()).toContain('embedding_model');
    const down = ok(await alembic('downgrade', '031'));
    expect(down.stderr).toContain('Running downgrade 033 -> 032, add patterns.embedding_model');
    expect(down.stderr).toContain('Running downgrade 032 -> 031, create pattern_feedback');
    // Below this image's head: no "(head)" marker.
    expect(ok(await alembic('current')).stdout.trim()).toBe('031');
    expect(await columns()).toEqual(['id', 'tenant_id', 'body', 'created_at', 'quality_score']);
    expect(ok(await psql("SELECT to_regclass('public.pattern_feedback') IS NULL")).stdout.trim()).toBe('t');

    ok(await alembic('upgrade', 'head'));
    expect(ok(await alembic('current')).stdout.trim()).toBe('033 (head)');
    expect(await columns()).toContain('embedding_model');
  });

  it('0.6.3 answers deep health `error` with HTTP 503 although the database is at its head', async () => {
    await switchTo('0.6.3');
    const deep = await eventually('deep health of 0.6.3', async () => {
      const d = await deepHealth();
      return d.body.version === '0.6.3' ? d : undefined;
    });
    expect(deep.status).toBe(503);
    expect(deep.body.status).toBe('error');
  });

  it('0.7.0 crash-loops under restart: unless-stopped, and cannot be exec-ed into', async () => {
    await switchTo('0.7.0');
    const state = await eventually('engramia-api restarting', async () => {
      const ps = ok(await vm.compose(['ps', '-a', '--format', 'json', API_SERVICE])).stdout.trim();
      const row = JSON.parse(ps.split('\n')[0] ?? '{}') as { State?: string };
      return row.State === 'restarting' ? row.State : undefined;
    });
    expect(state).toBe('restarting');
    // Two real outcomes, by timing: the daemon refuses while the container waits to restart, or
    // the exec starts in the second the container runs (python's imports) and is killed with it:
    // 137, after printing whatever it got to (alembic's first INFO lines, seen here), so a
    // command exec-ed into a crash-looping container can run partway.
    const exec = await alembic('current');
    if (exec.code !== 137) {
      expect(exec.code).toBe(1);
      expect(exec.output).toMatch(/^Error response from daemon: Container [0-9a-f]{64} is restarting, wait until the container is running\n$/);
    }
    const logs = ok(await vm.compose(['logs', '--tail', '20', API_SERVICE])).output;
    expect(logs).toContain('Application startup failed. Exiting.');
  });
});
