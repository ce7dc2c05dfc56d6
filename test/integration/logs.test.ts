// `/engramia logs [ENV] [--tail N]`: the API's log tail over SSH, scrubbed, as a code block or a file.
import { afterEach, describe, expect, it } from 'vitest';
import { appendLogs, readCommandLog, setFault, setLogs } from '../world/sim/host.mjs';
import { OPS_CHANNEL, startWorld, type World } from './harness.js';
import { blockText, text, type Block } from './blocks.js';

let world: World | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

const STRIPE_LIVE = 'sk_live_51HxYzAbCdEfGhIjKlMnOpQr';
const DB_PASSWORD = 'pg-pass-9f8e7d6c';

/** The log lines that ran on the host, as the simulated docker recorded them. */
function logsCalls(w: World) {
  return readCommandLog(w.deployPath).filter((r: any) => r.argv.includes('logs') && r.phase !== 'start');
}

async function logsMessage(w: World) {
  return w.slack.waitFor(() => w.slack.messagesIn(OPS_CHANNEL).find((m) => text(m.blocks).includes('engramia-api logs')), { timeoutMs: 20_000 });
}

/** Everything the bot sent to Slack: every call's arguments, uploaded file bytes and ack bodies. */
function everythingSent(w: World, acks: unknown[] = []): string {
  return JSON.stringify(w.slack.calls.map((c) => c.args)) + w.slack.files.map((f) => f.content?.toString('utf8') ?? '').join('\n') + JSON.stringify(acks);
}

describe('/engramia logs', () => {
  it('posts the last N lines as a code block, secrets removed, from exactly `docker compose … logs --tail=N engramia-api`', async () => {
    const w = (world = await startWorld({ slackLimits: false }));
    appendLogs(w.deployPath, 'engramia-api', [
      'INFO:     startup complete',
      `DEBUG:    loaded ENGRAMIA_API_KEYS=${w.apiKey}`,
      `WARNING:  stripe call failed for key ${STRIPE_LIVE}`,
      `ERROR:    could not connect to postgresql://engramia:${DB_PASSWORD}@pgvector/engramia`,
      `INFO:     registry token ${w.registryToken} rejected; Authorization: Bearer ${w.apiKey}`,
      'INFO:     172.18.0.4:51234 - "GET /v1/health HTTP/1.1" 200 OK',
    ]);
    const ack = await w.slash('logs --tail 5');
    expect(ack.body.text).toMatch(/Reading the engramia-api logs of production/);
    const m = await logsMessage(w);
    const t = blockText(m.blocks as Block[]);

    // The last 5 of the 6 appended lines, the compose prefix gone.
    expect(t).not.toContain('startup complete');
    expect(t).toContain('WARNING:  stripe call failed for key [redacted]');
    expect(t).toContain('postgresql://engramia:[redacted]@pgvector/engramia');
    expect(t).toContain('"GET /v1/health HTTP/1.1" 200 OK');
    expect(t).not.toContain('engramia-api  |');
    expect(t).toContain('Last 5 lines of `engramia-api`');
    expect(t).toContain('`docker compose -f docker-compose.prod.yml logs --tail=5 engramia-api`');

    for (const secret of [w.apiKey, STRIPE_LIVE, DB_PASSWORD, w.registryToken]) expect(everythingSent(w, [ack.body])).not.toContain(secret);

    // The host ran exactly this, once, with no tag set (logs never re-creates a container).
    const calls = logsCalls(w);
    expect(calls.map((r: any) => r.argv)).toEqual([['compose', '-f', 'docker-compose.prod.yml', 'logs', '--tail=5', 'engramia-api']]);
    expect(calls[0]!.env.IMAGE_TAG ?? null).toBeNull();
    expect(calls[0]!.cwd).toBe(w.deployPath);
    expect(w.slack.files).toEqual([]);
    expect(w.slack.invalidBlockCalls()).toEqual([]);
  });

  it('asks for the last 100 lines by default, and takes ENV and --env', async () => {
    const w = (world = await startWorld({ slackLimits: false }));
    await w.slash('logs');
    await logsMessage(w);
    await w.slash('logs production --tail=7');
    await w.slack.waitFor(() => (logsCalls(w).length >= 2 ? true : undefined), { timeoutMs: 20_000 });
    expect(logsCalls(w).map((r: any) => r.argv[4])).toEqual(['--tail=100', '--tail=7']);
  });

  it('long output goes to the thread as a file, scrubbed; the message shows the last lines', async () => {
    const w = (world = await startWorld({ slackLimits: false }));
    const lines = Array.from({ length: 300 }, (_, i) => `INFO:     request ${String(i).padStart(3, '0')} handled in 12 ms by worker-${i % 4}`);
    lines[150] = `DEBUG:    retrying with api_key=${w.apiKey} and ${STRIPE_LIVE}`;
    setLogs(w.deployPath, 'engramia-api', lines);
    await w.slash('logs --tail 300');
    const m = await logsMessage(w);
    const t = blockText(m.blocks as Block[]);
    expect(t).toContain('Last 300 lines of `engramia-api`');
    expect(t).toContain('request 299 handled');
    expect(t).not.toContain('request 100 handled');
    expect(t).toMatch(/All 300 lines are in `engramia-api-production-\d{4}-\d\d-\d\dT\d{6}\.log`, in this message's thread/);

    const file = await w.slack.waitFor(() => w.slack.files.find((f) => f.completed), { timeoutMs: 20_000 });
    expect(file.thread_ts).toBe(m.ts);
    expect(file.channel_id).toBe(OPS_CHANNEL);
    const content = file.content!.toString('utf8');
    expect(content.trimEnd().split('\n')).toHaveLength(300);
    expect(content).toContain('request 000 handled');
    expect(content).toContain('api_key=[redacted] and [redacted]');
    for (const secret of [w.apiKey, STRIPE_LIVE]) expect(everythingSent(w)).not.toContain(secret);
    expect(w.slack.invalidBlockCalls()).toEqual([]);
  });

  it('an empty log says so', async () => {
    const w = (world = await startWorld({ slackLimits: false }));
    setLogs(w.deployPath, 'engramia-api', []);
    await w.slash('logs');
    const m = await logsMessage(w);
    expect(blockText(m.blocks as Block[])).toContain('The `engramia-api` log on');
    expect(blockText(m.blocks as Block[])).toContain('is empty');
  });

  it('a failing command is reported with its exit code and scrubbed output', async () => {
    const w = (world = await startWorld({ slackLimits: false }));
    setFault(w.deployPath, { match: ['logs', '--tail=5'], exitCode: 1, stderr: `Error response from daemon: auth ${STRIPE_LIVE} refused\n` });
    await w.slash('logs --tail 5');
    const m = await w.slack.waitFor(() => w.slack.messagesIn(OPS_CHANNEL).find((x) => text(x.blocks).includes('exited with 1')), { timeoutMs: 20_000 });
    const t = blockText(m.blocks as Block[]);
    expect(t).toContain('`docker compose -f docker-compose.prod.yml logs --tail=5 engramia-api` exited with 1');
    expect(t).toContain('Error response from daemon: auth [redacted] refused');
    expect(everythingSent(w)).not.toContain(STRIPE_LIVE);
  });

  it.each([
    ['0', /--tail "0" is not a line count: give a whole number of lines from 1 to 1000/],
    ['abc', /--tail "abc" is not a line count: give a whole number of lines from 1 to 1000/],
    ['99999', /--tail 99999 is more than `logs` shows \(at most 1000 lines\): give a whole number of lines from 1 to 1000/],
  ])('--tail %s is refused at once, saying what is wrong and what is right; nothing is queued or run', async (n, message) => {
    const w = (world = await startWorld({ slackLimits: false }));
    const ack = await w.slash(`logs --tail ${n}`);
    const t = blockText(ack.body.blocks as Block[]);
    expect(t).toMatch(message);
    expect(t).toContain('Usage: `/engramia logs [ENV] [--tail N]`');
    await new Promise((r) => setTimeout(r, 500));
    expect(w.slack.callsTo('chat.postMessage')).toEqual([]);
    expect(readCommandLog(w.deployPath)).toEqual([]);
    expect(w.logs.filter((l) => l.includes('"msg":"audit: command"'))).toEqual([]);
    expect(w.logs.some((l) => l.includes('"msg":"command refused"') && l.includes('COMMAND_INVALID'))).toBe(true);
  });
});
