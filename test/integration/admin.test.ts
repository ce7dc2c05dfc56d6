// Less exposure: the public PORT answers /healthz with a verdict only; /metrics and the detailed
// /healthz live on the admin listener (ADMIN_HOST:ADMIN_PORT), which every role serves.
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { readEnvOptions } from '../../src/config/env.js';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/logger.js';
import { startBot, type Bot } from '../../src/runtime.js';
import { prepareWorld, startWorld, type PreparedWorld, type World } from './harness.js';
import { until } from './faults.js';

let world: World | undefined;
let prepared: PreparedWorld | undefined;
const bots: Bot[] = [];

afterEach(async () => {
  for (const b of bots.splice(0)) await b.close();
  await world?.close();
  world = undefined;
  await prepared?.close();
  prepared = undefined;
});

/** Resolves true when something accepts a TCP connection at host:port, false when refused. */
function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

describe('the public PORT', { timeout: 60_000 }, () => {
  it('answers /healthz with {"status":"ok"} and nothing else, and has no /metrics', async () => {
    world = await startWorld();
    const w = world;
    // Ready once a worker has beaten: the body is then the verdict alone, byte for byte.
    const hz = await until(async () => {
      const r = await fetch(`${w.botUrl}/healthz`);
      return r.status === 200 ? r : undefined;
    }, 'the public /healthz to answer 200');
    expect(hz.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await hz.text()).toBe('{"status":"ok"}');

    const metrics = await fetch(`${w.botUrl}/metrics`);
    expect(metrics.status).toBe(404);
    expect(await metrics.text()).not.toContain('chatops_');
  });

  it('answers 503 {"status":"error"} without saying why when no worker runs', async () => {
    world = await startWorld({ role: 'app' });
    const w = world;
    // The detailed report, once Redis and Slack are checked, says why; the public one must not.
    await until(async () => {
      const d = (await (await fetch(`${w.adminUrl}/healthz`)).json()) as Record<string, unknown>;
      return d.redis === 'ok' && d.slack === 'ok' && d.workers === 0;
    }, 'the admin /healthz to report no worker');
    const hz = await fetch(`${w.botUrl}/healthz`);
    expect(hz.status).toBe(503);
    expect(await hz.text()).toBe('{"status":"error"}');
  });
});

describe('the admin listener', { timeout: 60_000 }, () => {
  it('serves /metrics (Prometheus text) and the detailed /healthz, logs its bound port, and 404s anything else', async () => {
    world = await startWorld();
    const w = world;
    expect(w.bot.adminPort).toBeGreaterThan(0);
    expect(w.bot.adminPort).not.toBe(w.bot.port);
    const logged = w.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'admin listener (/metrics, /healthz) listening');
    expect(logged).toMatchObject({ adminHost: '127.0.0.1', adminPort: w.bot.adminPort });

    const metrics = await fetch(`${w.adminUrl}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await metrics.text()).toMatch(/^# HELP chatops_/m);

    const hz = await until(async () => {
      const r = await fetch(`${w.adminUrl}/healthz`);
      return r.status === 200 ? ((await r.json()) as Record<string, unknown>) : undefined;
    }, 'the admin /healthz to answer 200');
    expect(hz).toEqual({ status: 'ok', redis: 'ok', slack: 'ok', workers: expect.any(Number), version: expect.stringMatching(/^\d+\.\d+\.\d+/) });

    expect((await fetch(`${w.adminUrl}/slack/events`, { method: 'POST', body: 'x' })).status).toBe(405);
    expect((await fetch(`${w.adminUrl}/nothing`)).status).toBe(404);
  });

  it('binds ADMIN_HOST only, and a worker-only process serves it too (no PORT at all)', async () => {
    prepared = await prepareWorld();
    const env = { ...prepared.processEnv, ADMIN_HOST: '127.0.0.2' };
    const bot = await startBot({ env: readEnvOptions(env), config: loadConfig(prepared.configPath), role: 'worker', log: createLogger({ level: 'silent' }), processEnv: env });
    bots.push(bot);
    expect(bot.port).toBeUndefined();
    const port = bot.adminPort!;
    expect(port).toBeGreaterThan(0);
    // Another loopback address of the same machine: nothing listens there for it.
    expect(await accepts('127.0.0.1', port)).toBe(false);
    expect(await accepts('127.0.0.2', port)).toBe(true);

    const metrics = await fetch(`http://127.0.0.2:${port}/metrics`);
    expect(metrics.status).toBe(200);
    // The worker's own counters are what a split deployment scrapes it for.
    expect(await metrics.text()).toMatch(/^# TYPE chatops_jobs_total counter$/m);
    const hz = await until(async () => {
      const r = await fetch(`http://127.0.0.2:${port}/healthz`);
      const body = (await r.json()) as Record<string, unknown>;
      return r.status === 200 ? body : undefined;
    }, 'the worker\'s admin /healthz to count itself');
    expect(hz).toMatchObject({ status: 'ok', redis: 'ok', slack: 'ok', workers: 1 });
  });

  it('a port already taken stops the start, before any worker runs, with a message naming ADMIN_PORT', async () => {
    world = await startWorld();
    const env = { ...world.processEnv, ADMIN_PORT: String(world.bot.adminPort) };
    await expect(startBot({ env: readEnvOptions(env), config: loadConfig(world.configPath), role: 'worker', log: createLogger({ level: 'silent' }), processEnv: env })).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringMatching(new RegExp(`admin listener cannot bind 127\\.0\\.0\\.1:${world.bot.adminPort}: EADDRINUSE.*ADMIN_PORT`)),
    });
    // Only the world's own worker ever beat: the refused one never started.
    await new Promise((r) => setTimeout(r, 500));
    expect(await world.bot.producer.workerCount()).toBe(1);
  });
});
