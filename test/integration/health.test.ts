import { afterEach, describe, expect, inject, it } from 'vitest';
import { crashLoop, readCommandLog, setDeepCheck, setDeepHealth, setMaintenance, stopContainer } from '../world/sim/host.mjs';
import { blockText, type Block } from './blocks.js';
import { startRedis } from '../world/redis.js';
import { ALICE, OPS_CHANNEL, OTHER_CHANNEL, startWorld, type World } from './harness.js';



let world: World | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

async function resultMessage(w: World, since = 0) {
  const call = await w.slack.waitForCall('chat.postMessage', (c) => c.args.channel === OPS_CHANNEL, { since, timeoutMs: 20_000 });
  expect(call.response?.ok, JSON.stringify(call.response)).toBe(true);
  return { call, text: blockText(call.args.blocks as Block[]), header: (call.args.blocks as Block[])[0]?.text?.text as string };
}

function expectNoInvalidBlocks(w: World) {
  expect(w.slack.invalidBlockCalls()).toEqual([]);
}

describe('/engramia health through Slack → Bolt → BullMQ → worker → SSH → host', () => {
  it('acks at once and posts every deep-health check of a healthy host', async () => {
    world = await startWorld();
    const ack = await world.slash('health');
    expect(ack.status).toBe(200);
    expect(ack.elapsedMs).toBeLessThan(3000);
    expect(ack.body.response_type).toBe('ephemeral');
    expect(ack.body.text).toMatch(/Checking health of production \(job \d+\)/);

    const { call, text, header } = await resultMessage(world);
    expect(header).toBe('🟢 production: healthy');
    for (const check of ['storage', 'llm', 'embedding', 'redis', 'stripe', 'migration']) expect(text).toContain(`*${check}*`);
    expect(text).toContain('`0.6.0`');
    expect(text).toMatch(/\*redis\*\s+not configured/);
    expect(text).toContain('revision `031` (expected `031`)');
    expect(text).toContain(`requested by <@${ALICE}>`);
    expect(call.args.text).toBe('production: healthy, version 0.6.0');
    expectNoInvalidBlocks(world);

    // The host's own record: the bot read container state and two .env lines, nothing else.
    const ran = readCommandLog(world.deployPath).filter((r: any) => r.phase !== 'start');
    expect(ran.map((r: any) => r.argv.join(' '))).toEqual(['compose -f docker-compose.prod.yml ps -a --format json']);
    expect(ran[0]?.cwd).toBe(world.deployPath);
  });

  it('shows degraded as a warning with the failing check and its error', async () => {
    world = await startWorld();
    setDeepCheck(world.deployPath, 'stripe', { status: 'error', latency_ms: 145.2, error: 'AuthenticationError' });
    await world.slash('health');
    const { text, header } = await resultMessage(world);
    expect(header).toBe('🟡 production: degraded');
    expect(text).toMatch(/🔴 \*stripe\*\s+error · 145\.2 ms · `AuthenticationError`/);
    expect(text).toMatch(/🟢 \*storage\*/);
    expectNoInvalidBlocks(world);
  });

  it('reads the body of a 503 deep-health answer and reports error', async () => {
    world = await startWorld();
    setDeepHealth(world.deployPath, 'error');
    await world.slash('health production');
    const { text, header } = await resultMessage(world);
    expect(header).toBe('🔴 production: error');
    expect(text).toContain('deep: HTTP 503');
    expect(text).toContain('OperationalError: connection timed out');
    expectNoInvalidBlocks(world);
  });

  it('recognises maintenance: /v1/version answers 503 while health still answers', async () => {
    world = await startWorld();
    setMaintenance(world.deployPath, true);
    await world.slash('health --env production');
    const { text, call } = await resultMessage(world);
    expect(text).toContain('🚧 on');
    expect(text).toContain('hidden: /v1/version answers 503 in maintenance');
    expect(text).toMatch(/🟢 \*storage\*/);
    expect(call.args.text).toContain('maintenance on');
    expectNoInvalidBlocks(world);
  });

  it('says when maintenance is set in .env but the container was not re-created', async () => {
    world = await startWorld();
    setMaintenance(world.deployPath, false);
    const { setEnvVar } = await import('../world/sim/host.mjs');
    setEnvVar(world.deployPath, 'ENGRAMIA_MAINTENANCE', 'true');
    await world.slash('health');
    const { text } = await resultMessage(world);
    expect(text).toContain('set in .env but not active');
  });

  it('reports a wrong API key as a 401 naming the variable, never the key', async () => {
    world = await startWorld({ apiKey: 'engk_wrong_key_000000000000' });
    await world.slash('health');
    const { text } = await resultMessage(world);
    expect(text).toContain("The API rejected the bot's key (HTTP 401)");
    expect(text).toContain('ENGRAMIA_PROD_API_KEY');
    expect(JSON.stringify(world.slack.calls)).not.toContain('engk_wrong_key_000000000000');
    expectNoInvalidBlocks(world);
  });

  it('reports an unreachable API clearly, with no stack trace, and still shows the host', async () => {
    world = await startWorld({ apiUnreachable: true });
    await world.slash('health');
    const { text, header } = await resultMessage(world);
    expect(header).toBe('⚫ production: unknown (no deep health answer)');
    expect(text).toContain('Engramia API unreachable: connection refused');
    expect(text).not.toMatch(/\bat .+\.(js|ts):\d+/);
    expect(text).toMatch(/`engramia-api` running · `0\.6\.0`/);
    expectNoInvalidBlocks(world);
  });

  it('refuses an SSH host whose key does not match the pin, showing both fingerprints, and runs nothing', async () => {
    const wrong = 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
    world = await startWorld({ hostKeySha256: wrong });
    await world.slash('health');
    const { text } = await resultMessage(world);
    expect(text).toContain('the host key does not match the pinned fingerprint');
    expect(text).toContain(wrong);
    expect(text).toContain(inject('sshd').hostKeySha256);
    // The API part still answers: the operator gets what can be known.
    expect(text).toMatch(/🟢 \*storage\*/);
    expect(readCommandLog(world.deployPath)).toEqual([]);
  });

  it('a crash loop caught `running` by ps (as the real daemon shows it between restarts): never healthy, the container marked as not answering', async () => {
    world = await startWorld();
    crashLoop(world.deployPath, '0.6.0', undefined, { runningWindow: true });
    await world.slash('health');
    const { text, header } = await resultMessage(world);
    expect(header).toBe('⚫ production: unknown (no deep health answer)');
    expect(text).toMatch(/🔴 `engramia-api` running · `0\.6\.0` · Up [^\n]* · its API does not answer \(HTTP 502\)/);
  });

  it('shows a stopped API container from the host side and Caddy 502 from the API side', async () => {
    world = await startWorld();
    stopContainer(world.deployPath, 'engramia-api', 1);
    await world.slash('health');
    const { text } = await resultMessage(world);
    expect(text).toMatch(/🔴 `engramia-api` exited/);
    expect(text).toContain('HTTP 502');
    expect(text).toContain('engramia-api container is not running');
  });
});

describe('/engramia version', () => {
  it('reports the API version next to the image tag the host runs', async () => {
    world = await startWorld();
    const ack = await world.slash('version');
    expect(ack.body.text).toMatch(/Checking the version on production/);
    const { header, text } = await resultMessage(world);
    expect(header).toBe('production: version 0.6.0');
    expect(text).toMatch(/`engramia-api` running · `0\.6\.0`/);
    expect(text).toContain('pinned in .env: `0.6.0`');
    expectNoInvalidBlocks(world);
  });

  it('falls back to the host during maintenance, when /v1/version answers 503', async () => {
    world = await startWorld();
    setMaintenance(world.deployPath, true);
    await world.slash('version');
    const { header, text, call } = await resultMessage(world);
    expect(header).toBe('🚧 production: in maintenance');
    expect(text).toContain('the host runs image tag `0.6.0`');
    expect(call.args.text).toBe('production: version 0.6.0 (maintenance on)');
  });
});

describe('refusals at the door: nothing is queued, nothing runs on the host', () => {
  it('refuses bad input with the reason and the usage line', async () => {
    world = await startWorld();
    const ack = await world.slash('deploy 0.6.1;id');
    expect(ack.status).toBe(200);
    expect(ack.body.text).toContain('is not a valid image tag');
    expect(blockText(ack.body.blocks)).toContain('/engramia deploy VERSION [ENV]');
    const unknown = await world.slash('helth');
    expect(blockText(unknown.body.blocks)).toContain('Did you mean `health`?');
    const env = await world.slash('health --env staging');
    expect(blockText(env.body.blocks)).toContain('Known environments: `production`');
    await new Promise((r) => setTimeout(r, 300));
    expect(world.slack.callsTo('chat.postMessage')).toEqual([]);
    expect(readCommandLog(world.deployPath)).toEqual([]);
  });

  it('refuses commands from channels outside slack.allowedChannels, and DMs', async () => {
    world = await startWorld();
    const other = await world.slash('health', { channel_id: OTHER_CHANNEL });
    expect(blockText(other.body.blocks)).toContain('not accepted in this channel');
    expect(blockText(other.body.blocks)).toContain(`<#${OPS_CHANNEL}>`);
    const dm = await world.slash('health', { channel_id: 'D0DIRECT1' });
    expect(blockText(dm.body.blocks)).toContain('not accepted in direct messages');
    await new Promise((r) => setTimeout(r, 300));
    expect(readCommandLog(world.deployPath)).toEqual([]);
  });

  it('answers help with one line per command', async () => {
    world = await startWorld();
    const ack = await world.slash('help');
    const text = blockText(ack.body.blocks);
    for (const c of ['help', 'health', 'version', 'deploy', 'rollback', 'maintenance', 'migrations', 'migrate', 'status', 'logs', 'diagnose', 'history', 'cancel', 'unlock']) {
      expect(text).toContain(`/engramia ${c}`);
    }
  });

  it('rejects requests with a bad, missing or stale signature with 401', async () => {
    world = await startWorld();
    expect((await world.slash('health', {}, { badSignature: true })).status).toBe(401);
    expect((await world.slash('health', {}, { unsigned: true })).status).toBe(401);
    expect((await world.slash('health', {}, { timestampSec: Math.floor(Date.now() / 1000) - 6 * 60 })).status).toBe(401);
    await new Promise((r) => setTimeout(r, 300));
    expect(world.slack.callsTo('chat.postMessage')).toEqual([]);
    expect(readCommandLog(world.deployPath)).toEqual([]);
  });

  it('answers "queue unavailable" within Slack\'s 3 s when Redis is down', async () => {
    const redis = await startRedis();
    try {
      world = await startWorld({ redisUrl: redis.url, role: 'app' });
      await redis.kill();
      const ack = await world.slash('health');
      expect(ack.status).toBe(200);
      expect(ack.elapsedMs).toBeLessThan(3000);
      expect(ack.body.text).toContain('The job queue is unavailable, so nothing was queued and nothing ran on the host.');
      const hz = await fetch(`${world.botUrl}/healthz`);
      expect(hz.status).toBe(503);
      expect(await hz.json()).toEqual({ status: 'error' });
      const detail = await fetch(`${world.adminUrl}/healthz`);
      expect(detail.status).toBe(503);
      expect(await detail.json()).toMatchObject({ status: 'error', redis: 'down' });
      expect(readCommandLog(world.deployPath)).toEqual([]);
    } finally {
      await world?.close();
      world = undefined;
      await redis.stop().catch(() => undefined);
    }
  });
});

describe('operations endpoints and secret hygiene', () => {
  it('serves the detailed /healthz and /metrics on the admin listener, and no secret reaches Slack or the log', async () => {
    world = await startWorld();
    await world.slash('health');
    await resultMessage(world);
    const hz = await fetch(`${world.adminUrl}/healthz`);
    const body = (await hz.json()) as Record<string, any>;
    expect(hz.status).toBe(200);
    expect(body).toMatchObject({ status: 'ok', redis: 'ok', slack: 'ok' });
    expect(body.workers).toBeGreaterThanOrEqual(1);
    expect(body.version).toMatch(/^\d+\.\d+\.\d+/);

    const metrics = await (await fetch(`${world.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/chatops_commands_total\{command="health",outcome="queued"\} 1/);
    expect(metrics).toMatch(/chatops_jobs_total\{name="health",outcome="ok"\} 1/);

    const everything = JSON.stringify(world.slack.calls) + world.logs.join('');
    for (const secret of [world.apiKey, world.registryToken, world.processEnv.SLACK_SIGNING_SECRET!, world.processEnv.SLACK_BOT_TOKEN!]) {
      expect(everything).not.toContain(secret);
    }
  });
});
