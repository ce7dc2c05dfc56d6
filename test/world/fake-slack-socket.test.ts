/**
 * The fake's Socket Mode, driven by the real `@slack/socket-mode` client (the one Bolt's
 * SocketModeReceiver wraps), so the fake is checked against what the bot will actually run.
 */
import { LogLevel, SocketModeClient, type Logger } from '@slack/socket-mode';
import { LogLevel as WebLogLevel, WebClient, type WebAPIPlatformError } from '@slack/web-api';
import { WebSocket } from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_CHANNEL, FAKE_APP_ID, startFakeSlack, type FakeSlack, type FakeSlackOptions } from './fake-slack.js';
import { blockActionPayload, slashCommandForm } from './slack-requests.js';

let fake: FakeSlack | undefined;
const clients: SocketModeClient[] = [];
const rawSockets: WebSocket[] = [];

afterEach(async () => {
  // Clients first: a client whose server vanished would keep trying to reconnect.
  await Promise.allSettled(clients.splice(0).map((c) => c.disconnect()));
  for (const ws of rawSockets.splice(0)) ws.terminate();
  await fake?.close();
  fake = undefined;
});

async function start(opts: FakeSlackOptions = {}): Promise<FakeSlack> {
  fake = await startFakeSlack({ limits: false, ...opts });
  return fake;
}

/** The SDK's logger interface, kept quiet but recorded (for diagnosis and a few assertions). */
function captureLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const rec =
    (lvl: string) =>
    (...m: unknown[]) =>
      void lines.push(`${lvl} ${m.map(String).join(' ')}`);
  return { lines, debug: rec('debug'), info: rec('info'), warn: rec('warn'), error: rec('error'), setLevel: () => undefined, getLevel: () => LogLevel.DEBUG, setName: () => undefined };
}

function socketClient(f: FakeSlack, opts: Partial<ConstructorParameters<typeof SocketModeClient>[0]> = {}) {
  const logger = captureLogger();
  const client = new SocketModeClient({ appToken: f.appToken, logger, clientOptions: { slackApiUrl: f.apiUrl }, ...opts });
  clients.push(client);
  return Object.assign(client, { logLines: logger.lines });
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection, but it resolved');
}

/** A bare `ws` client on a link URL: resolves with the first message, or the HTTP status if refused. */
function rawConnect(url: string): Promise<{ first: any; ws: WebSocket } | { status: number }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    rawSockets.push(ws);
    ws.once('message', (data) => resolve({ first: JSON.parse(String(data)), ws }));
    ws.once('unexpected-response', (_req, res) => resolve({ status: res.statusCode ?? 0 }));
    ws.once('error', reject);
  });
}

describe('fake Slack: apps.connections.open', () => {
  it('wants the app-level token: xapp → a link URL, bot token → not_allowed_token_type, unknown → invalid_auth', async () => {
    const f = await start();
    const web = (token: string) => new WebClient(token, { slackApiUrl: f.apiUrl, retryConfig: { retries: 0 }, logLevel: WebLogLevel.ERROR });

    const res = await web(f.appToken).apps.connections.open();
    expect(res.ok).toBe(true);
    const port = new URL(f.baseUrl).port;
    expect(res.url).toMatch(new RegExp(`^ws://127\\.0\\.0\\.1:${port}/link/\\?ticket=[0-9a-f-]+&app_id=[0-9a-f]+$`));

    expect((await rejection(web(f.botToken).apps.connections.open())) as WebAPIPlatformError).toMatchObject({ data: { ok: false, error: 'not_allowed_token_type' } });
    expect((await rejection(web('xapp-1-A0FAKEAPP1-1-wrong').apps.connections.open())) as WebAPIPlatformError).toMatchObject({ data: { ok: false, error: 'invalid_auth' } });
    expect((await rejection(web('').apps.connections.open())) as WebAPIPlatformError).toMatchObject({ data: { ok: false, error: 'not_authed' } });
    // …and the app token is no good for posting, as in Slack.
    expect((await rejection(web(f.appToken).chat.postMessage({ channel: DEFAULT_CHANNEL.id, text: 'hi' }))) as WebAPIPlatformError).toMatchObject({ data: { error: 'not_allowed_token_type' } });
    expect(f.callsTo('apps.connections.open').map((c) => (c.response.ok ? 'ok' : c.response.error))).toEqual(['ok', 'not_allowed_token_type', 'invalid_auth', 'not_authed']);
  });

  it('sends hello on connect, counts connections, and accepts each ticket once', async () => {
    const f = await start();
    const web = new WebClient('', { slackApiUrl: f.apiUrl, headers: { Authorization: `Bearer ${f.appToken}` }, retryConfig: { retries: 0 }, logLevel: WebLogLevel.ERROR });
    const url1 = (await web.apps.connections.open()).url!;
    const url2 = (await web.apps.connections.open()).url!;
    expect(url1).not.toBe(url2);

    const a = await rawConnect(url1);
    expect(a).toHaveProperty('first');
    expect((a as { first: unknown }).first).toEqual({
      type: 'hello',
      num_connections: 1,
      debug_info: { host: expect.stringMatching(/^applink-/), build_number: 1, approximate_connection_time: 18060 },
      connection_info: { app_id: FAKE_APP_ID },
    });
    const b = await rawConnect(url2);
    expect((b as { first: any }).first.num_connections).toBe(2);
    expect(await rawConnect(url1)).toEqual({ status: 401 }); // reused ticket
    expect(await rawConnect(url1.replace(/ticket=[^&]+/, 'ticket=made-up'))).toEqual({ status: 401 });
    expect(await rawConnect(f.baseUrl.replace(/^http/, 'ws') + 'elsewhere')).toEqual({ status: 404 });

    expect(f.socketConnections().map((c) => [c.id, c.open])).toEqual([
      ['ws1', true],
      ['ws2', true],
    ]);
    expect(f.callsTo('@socket').map((c) => c.status)).toEqual([101, 101, 401, 401, 404]);
  });
});

describe('fake Slack: Socket Mode with the real SocketModeClient', () => {
  it('connects: apps.connections.open with the xapp token as Bearer, then hello', async () => {
    const f = await start();
    const client = socketClient(f);
    const connected = await client.start();
    expect(connected).toMatchObject({ ok: true, url: expect.stringContaining('/link/?ticket=') });
    const conn = await f.waitForSocket();
    expect(conn).toMatchObject({ id: 'ws1', open: true, path: expect.stringMatching(/^\/link\/\?ticket=/) });
    expect(conn.sent[0]).toMatchObject({ type: 'hello', num_connections: 1 });
    expect(f.callsTo('apps.connections.open')).toHaveLength(1);
  });

  it('delivers a slash command envelope with the HTTP form fields and resolves with the ack payload', async () => {
    const f = await start();
    const client = socketClient(f);
    let seen: any;
    client.on('slash_commands', async ({ ack, body }: { ack: (r?: unknown) => Promise<void>; body: any }) => {
      seen = body;
      await ack({ response_type: 'ephemeral', text: `ran ${body.text}` });
    });
    await client.start();

    const ack = await f.sendSlashCommandOverSocket({ text: 'health production', user_id: 'U01ALICE' });
    expect(ack.payload).toEqual({ response_type: 'ephemeral', text: 'ran health production' });
    expect(ack.elapsedMs).toBeLessThan(3000);
    expect(ack.invalidBlocks).toBeUndefined();

    // The envelope exactly as Slack frames it.
    const conn = f.socketConnections()[0]!;
    const envelope = conn.sent.at(-1);
    expect(envelope).toEqual({ envelope_id: ack.envelope_id, payload: seen, type: 'slash_commands', accepts_response_payload: true });
    expect(ack.envelope).toBe(envelope);
    expect(ack.envelope_id).toMatch(/^[0-9a-f-]{36}$/);
    // The client's ack as it arrived: {envelope_id, payload}.
    expect(conn.received.at(-1)).toEqual({ envelope_id: ack.envelope_id, payload: { response_type: 'ephemeral', text: 'ran health production' } });

    // Same field names and order as the HTTP slash command form; all strings.
    expect(Object.keys(seen)).toEqual([...new URLSearchParams(slashCommandForm({ text: 'x' })).keys()]);
    expect(Object.values(seen).every((v) => typeof v === 'string')).toBe(true);
    expect(seen).toMatchObject({ command: '/engramia', text: 'health production', user_id: 'U01ALICE', channel_id: DEFAULT_CHANNEL.id, api_app_id: FAKE_APP_ID });
    // response_url and trigger_id are ones the fake honours.
    expect(seen.response_url.startsWith(`${f.baseUrl}response/`)).toBe(true);
    const posted = await fetch(seen.response_url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text: 'later' }) });
    expect(posted.status).toBe(200);
    expect(f.ephemerals.at(-1)).toMatchObject({ channel: DEFAULT_CHANNEL.id, user: 'U01ALICE', text: 'later', via: 'response_url' });
  });

  it('delivers interactive payloads (accepts_response_payload false for block_actions) and flags invalid blocks in acks', async () => {
    const f = await start();
    const client = socketClient(f);
    client.on('interactive', async ({ ack }: { ack: (r?: unknown) => Promise<void> }) => ack());
    client.on('slash_commands', async ({ ack }: { ack: (r?: unknown) => Promise<void> }) => ack({ blocks: [{ type: 'section' }] }));
    await client.start();

    const payload = blockActionPayload({ action_id: 'approve', value: 'job-7', message_ts: '1700000000.000100', user: 'U02BOB' });
    const ack = await f.sendInteractiveOverSocket(payload);
    expect(ack.payload).toEqual({}); // a bare ack()
    expect(ack.envelope).toEqual({ envelope_id: ack.envelope_id, payload, type: 'interactive', accepts_response_payload: false });

    const bad = await f.sendSlashCommandOverSocket({ text: 'health' });
    expect(bad.invalidBlocks?.join('\n')).toMatch(/json-pointer:\/blocks\/0/);
  });

  it('rejects clearly when the client never acks (after 3 s, as Slack gives up) or when nobody is connected', async () => {
    const f = await start();
    expect((await rejection(f.sendSlashCommandOverSocket({ text: 'health' }))).message).toMatch(/no open Socket Mode connection/);

    const client = socketClient(f);
    client.on('slash_commands', () => undefined); // never acks
    await client.start();
    const started = Date.now();
    const err = await rejection(f.sendSlashCommandOverSocket({ text: 'health' }));
    expect(Date.now() - started).toBeGreaterThanOrEqual(2900);
    expect(err.message).toMatch(/no ack for slash_commands envelope [0-9a-f-]+ on ws1 within 3000 ms/);
    expect(err.message).toContain('the client sent nothing');
  });

  it('rejects a pending envelope at once when the connection drops before the ack', async () => {
    const f = await start();
    const client = socketClient(f, { clientPingTimeout: 300 });
    client.on('slash_commands', () => undefined);
    await client.start();
    const pending = f.sendSlashCommandOverSocket({ text: 'health' }, { ackTimeoutMs: 10_000 });
    f.dropSocket();
    expect((await rejection(pending)).message).toMatch(/ws1 closed \(code 1006\) before the client acked slash_commands envelope/);
  });

  it('answers pings with pongs and pings the client; with pongs off the client reconnects', async () => {
    const f = await start({ socketMode: { pingIntervalMs: 100 } });
    // The client pings every clientPingTimeout/3 and gives up on the link after clientPingTimeout without a pong.
    const client = socketClient(f, { clientPingTimeout: 600 });
    await client.start();
    const conn = await f.waitForSocket();
    await f.waitFor(() => conn.pingsReceived >= 2 && conn.pongsSent >= 2 && conn.pingsSent >= 2 && conn.pongsReceived >= 2, { description: 'pings and pongs both ways' });
    expect(conn.open).toBe(true);

    f.setSocketPongs(false);
    const next = await f.waitForSocket({ since: 1, timeoutMs: 10_000 });
    expect(conn.open).toBe(false);
    expect(next.id).toBe('ws2');
    expect(client.logLines.join('\n')).toMatch(/pong wasn't received/);
    f.setSocketPongs(true);
  });

  it('sends disconnect (refresh_requested): the client closes and reconnects on a new ticket, and envelopes go to the new connection', async () => {
    const f = await start();
    const client = socketClient(f, { clientPingTimeout: 300 }); // reconnect delay = clientPingTimeout
    client.on('slash_commands', async ({ ack, body }: { ack: (r?: unknown) => Promise<void>; body: any }) => ack({ text: body.text }));
    await client.start();
    const first = await f.waitForSocket();

    const told = f.disconnectSocket();
    expect(told.map((c) => c.id)).toEqual(['ws1']);
    expect(first.sent.at(-1)).toEqual({ type: 'disconnect', reason: 'refresh_requested', debug_info: { host: first.host } });
    const second = await f.waitForSocket({ since: 1, timeoutMs: 10_000 });
    expect(first).toMatchObject({ open: false, closeCode: 1000 }); // the client closed it cleanly
    expect(second.path).not.toBe(first.path);
    expect(f.callsTo('apps.connections.open')).toHaveLength(2);

    const ack = await f.sendSlashCommandOverSocket({ text: 'after reconnect' });
    expect(ack).toMatchObject({ connectionId: second.id, payload: { text: 'after reconnect' } });
  });

  it('reconnects after the connection is cut (code 1006)', async () => {
    const f = await start();
    const client = socketClient(f, { clientPingTimeout: 300 });
    await client.start();
    await f.waitForSocket();
    f.dropSocket();
    const next = await f.waitForSocket({ since: 1, timeoutMs: 10_000 });
    expect(f.socketConnections()[0]).toMatchObject({ open: false, closeCode: 1006 });
    expect(next.open).toBe(true);
  });

  it('start() fails at once on a wrong app token (invalid_auth is unrecoverable for the SDK)', async () => {
    const f = await start();
    const client = socketClient(f, { appToken: 'xapp-1-A0FAKEAPP1-1-revoked' });
    const started = Date.now();
    const err = (await rejection(client.start())) as WebAPIPlatformError;
    expect(err.data?.error).toBe('invalid_auth');
    expect(Date.now() - started).toBeLessThan(2000);
    expect(f.socketConnections()).toEqual([]);
  });

  it('a bot token in place of the app token gets not_allowed_token_type, which the SDK keeps retrying (it never settles)', async () => {
    // Documents a hazard rather than a feature: only the xapp- check on SLACK_APP_TOKEN stops the bot from hanging here.
    const f = await start();
    const client = socketClient(f, { appToken: f.botToken, clientPingTimeout: 100 });
    let settled = false;
    client.start().then(
      () => (settled = true),
      () => (settled = true),
    );
    await f.waitFor(() => f.callsTo('apps.connections.open').length >= 2, { description: 'a retry of apps.connections.open' });
    expect(f.callsTo('apps.connections.open').every((c) => c.response.error === 'not_allowed_token_type')).toBe(true);
    expect(settled).toBe(false);
    await client.disconnect(); // stops the retry loop before the fake goes away
  });

  it('close() ends open WebSockets; reset() forgets closed ones', async () => {
    const f = await start();
    const client = socketClient(f, { autoReconnectEnabled: false });
    await client.start();
    const conn = await f.waitForSocket();
    const disconnected = new Promise<void>((resolve) => client.once('disconnected', () => resolve()));
    await f.close();
    await disconnected;
    expect(conn.open).toBe(false);

    const g = await start();
    const c2 = socketClient(g, { clientPingTimeout: 300 });
    await c2.start();
    await g.waitForSocket();
    g.dropSocket();
    await g.waitForSocket({ since: 1, timeoutMs: 10_000 });
    g.reset();
    expect(g.socketConnections().map((c) => [c.id, c.open, c.sent.length])).toEqual([['ws2', true, 0]]);
  });
});
