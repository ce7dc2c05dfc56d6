/**
 * The real bot in Socket Mode (SLACK_APP_TOKEN set, no signing secret): Bolt's SocketModeReceiver
 * opens a WebSocket to the fake Slack and gets the slash command as an envelope, acking over the
 * socket; results still go out through the Web API; the public /healthz stays on PORT, /metrics and
 * the detailed /healthz are on the admin listener.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { readCommandLog } from '../world/sim/host.mjs';
import { ALICE, OPS_CHANNEL, prepareWorld, startWorld, type PreparedWorld, type World } from './harness.js';
import { blockText, type Block } from './blocks.js';



let world: World | undefined;
let prepared: PreparedWorld | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
  await prepared?.close();
  prepared = undefined;
});

async function healthResult(w: World, since = 0) {
  const call = await w.slack.waitForCall('chat.postMessage', (c) => c.args.channel === OPS_CHANNEL, { since, timeoutMs: 20_000 });
  expect(call.response?.ok, JSON.stringify(call.response)).toBe(true);
  return { call, text: blockText(call.args.blocks as Block[]), header: (call.args.blocks as Block[])[0]?.text?.text as string };
}

describe('Socket Mode: /engramia health over the WebSocket', () => {
  it('connects with the app token, acks the slash command with the ephemeral reply, and posts the health result', async () => {
    world = await startWorld({ socketMode: true });
    expect(world.processEnv.SLACK_SIGNING_SECRET).toBeUndefined();

    // Start-up opened exactly one connection, authenticated with the app-level token (the fake refuses others).
    const opened = world.slack.callsTo('apps.connections.open');
    expect(opened.map((c) => c.response.ok)).toEqual([true]);
    const [conn] = world.slack.socketConnections();
    expect(conn).toMatchObject({ id: 'ws1', open: true });

    const ack = await world.slack.sendSlashCommandOverSocket({ text: 'health', user_id: ALICE, channel_id: OPS_CHANNEL, channel_name: 'ops' });
    expect(ack.connectionId).toBe('ws1');
    expect(ack.elapsedMs).toBeLessThan(3000);
    expect(ack.payload.response_type).toBe('ephemeral');
    expect(ack.payload.text).toMatch(/Checking health of production \(job \d+\)/);
    expect(ack.invalidBlocks).toBeUndefined();
    // The ack frame as the bot sent it: {envelope_id, payload}.
    expect(conn!.received.at(-1)).toEqual({ envelope_id: ack.envelope_id, payload: ack.payload });

    const { call, text, header } = await healthResult(world);
    expect(header).toBe('🟢 production: healthy');
    for (const check of ['storage', 'llm', 'embedding', 'redis', 'stripe', 'migration']) expect(text).toContain(`*${check}*`);
    expect(text).toContain(`requested by <@${ALICE}>`);
    expect(call.args.text).toBe('production: healthy, version 0.6.0');
    expect(world.slack.invalidBlockCalls()).toEqual([]);
    const ran = readCommandLog(world.deployPath).filter((r: any) => r.phase !== 'start');
    expect(ran.map((r: any) => r.argv.join(' '))).toEqual(['compose -f docker-compose.prod.yml ps -a --format json']);
  });

  it('serves the public /healthz on PORT, /metrics on the admin listener, and has no HTTP events endpoint', async () => {
    world = await startWorld({ socketMode: true });
    const port = Number(world.processEnv.PORT);
    expect(port).toBeGreaterThan(0);
    expect(world.bot.port).toBe(port);

    // world.slash goes over the socket in Socket Mode.
    const ack = await world.slash('health');
    expect(ack.body.text).toMatch(/Checking health of production \(job \d+\)/);
    await healthResult(world);

    const hz = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(hz.status).toBe(200);
    expect(await hz.text()).toBe('{"status":"ok"}');
    expect((await fetch(`http://127.0.0.1:${port}/metrics`)).status).toBe(404);
    const detail = await fetch(`${world.adminUrl}/healthz`);
    const body = (await detail.json()) as Record<string, any>;
    expect(body).toMatchObject({ status: 'ok', redis: 'ok', slack: 'ok' });
    expect(body.workers).toBeGreaterThanOrEqual(1);

    const metrics = await fetch(`${world.adminUrl}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
    const m = await metrics.text();
    expect(m).toMatch(/chatops_commands_total\{command="health",outcome="queued"\} 1/);
    expect(m).toMatch(/chatops_jobs_total\{name="health",outcome="ok"\} 1/);

    // Nothing accepts Slack requests over HTTP in Socket Mode (there is no signing secret to check them with).
    const events = await fetch(`http://127.0.0.1:${port}/slack/events`, { method: 'POST', body: 'command=%2Fengramia&text=health' });
    expect(events.status).toBe(404);

    const everything = JSON.stringify(world.slack.calls) + JSON.stringify(world.slack.socketConnections()) + world.logs.join('');
    for (const secret of [world.apiKey, world.registryToken, world.processEnv.SLACK_APP_TOKEN!, world.processEnv.SLACK_BOT_TOKEN!]) {
      expect(everything).not.toContain(secret);
    }
  });

  it('reconnects when Slack asks it to (disconnect: refresh_requested) and keeps answering on the new connection', async () => {
    world = await startWorld({ socketMode: true });
    const first = await world.slack.waitForSocket();
    world.slack.disconnectSocket({ reason: 'refresh_requested' });
    // Bolt's client waits clientPingTimeout (5 s by default) before reconnecting.
    const second = await world.slack.waitForSocket({ since: 1, timeoutMs: 15_000 });
    expect(first.open).toBe(false);
    expect(world.slack.callsTo('apps.connections.open').map((c) => c.response.ok)).toEqual([true, true]);

    const ack = await world.slack.sendSlashCommandOverSocket({ text: 'health', user_id: ALICE, channel_id: OPS_CHANNEL, channel_name: 'ops' });
    expect(ack.connectionId).toBe(second.id);
    expect(ack.payload.text).toMatch(/Checking health of production \(job \d+\)/);
    await healthResult(world);
  });
});

describe('Socket Mode: a wrong app token', () => {
  it('makes the process exit 1 at start-up with invalid_auth on stderr, instead of hanging', async () => {
    prepared = await prepareWorld({ socketMode: true, appToken: 'xapp-1-A0FAKEAPP1-1-revokedtoken' });
    const main = fileURLToPath(new URL('../../src/main.ts', import.meta.url));
    // Run from source (tsx), so the test doesn't depend on a fresh `dist/` build.
    const child = spawn(process.execPath, ['--import', 'tsx', main], {
      env: { PATH: process.env.PATH, ...prepared.processEnv },
      cwd: fileURLToPath(new URL('../..', import.meta.url)),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
    clearTimeout(killer);

    expect(signal, `the bot hung and was killed.\nstdout: ${out}\nstderr: ${err}`).toBeNull();
    expect(code).toBe(1);
    expect(err).toContain('engramia-chatops: cannot start.');
    expect(err).toContain('invalid_auth');
    expect(out + err).not.toContain(prepared.processEnv.SLACK_APP_TOKEN!);
    expect(prepared.slack.callsTo('apps.connections.open').map((c) => c.response.error)).toEqual(['invalid_auth']);
    expect(prepared.slack.socketConnections()).toEqual([]);
  });
});
