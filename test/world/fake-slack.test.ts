/**
 * The fake Slack and the request helpers are test infrastructure every Slack-facing test relies on,
 * so they are checked against the real clients: `@slack/web-api`'s WebClient drives the fake, and a
 * real Bolt app (HTTP mode) receives the helpers' requests.
 */
import { createHmac } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { App, HTTPReceiver, LogLevel } from '@slack/bolt';
import { ErrorCode, LogLevel as WebLogLevel, WebClient, type WebAPIHTTPError, type WebAPIPlatformError, type WebAPIRateLimitedError } from '@slack/web-api';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_CHANNEL, type FakeSlack, startFakeSlack, validateBlocks } from './fake-slack.js';
import { blockActionPayload, sendBlockAction, sendSlashCommand, sendViewSubmission, signSlackBody, slashCommandForm } from './slack-requests.js';

const CH = DEFAULT_CHANNEL.id;
const section = (text: string) => ({ type: 'section', text: { type: 'mrkdwn', text } });

/** Await a rejected promise and return its error, failing if it resolves. */
async function rejection<E = Error>(p: Promise<unknown>): Promise<E> {
  try {
    await p;
  } catch (err) {
    return err as E;
  }
  throw new Error('expected the call to fail, but it succeeded');
}

let fake: FakeSlack;
let client: WebClient;

/** A client like the bot's, but failing fast so error paths are visible. */
function makeClient(extra: ConstructorParameters<typeof WebClient>[1] = {}, token = fake.botToken): WebClient {
  return new WebClient(token, { slackApiUrl: fake.apiUrl, retryConfig: { retries: 0 }, logLevel: WebLogLevel.ERROR, ...extra });
}

afterEach(async () => {
  await fake?.close();
});

describe('fake Slack Web API', () => {
  beforeEach(async () => {
    fake = await startFakeSlack({
      channels: [DEFAULT_CHANNEL, { id: 'C0NOTMEMB1', name: 'secret', member: false }],
      userGroups: { S0ONCALL01: ['U0FAKEUSR1', 'U0FAKEUSR2'] },
      // Rate limits get their own tests below; here they'd only make call counts matter.
      limits: false,
    });
    client = makeClient();
  });

  it('answers auth.test with the bot identity', async () => {
    const res = await client.auth.test();
    expect(res).toMatchObject({ ok: true, user_id: fake.botUserId, bot_id: expect.any(String), team_id: expect.any(String) });
  });

  it('posts a valid message and records it', async () => {
    const blocks = [section('*Runbook* `restart-api` started'), { type: 'divider' }];
    const res = await client.chat.postMessage({ channel: CH, text: 'Runbook started', blocks });
    expect(res.ok).toBe(true);
    expect(res.channel).toBe(CH);
    expect(res.ts).toMatch(/^\d{10}\.\d{6}$/);
    expect(res.message).toMatchObject({ text: 'Runbook started', user: fake.botUserId, ts: res.ts });

    const [msg] = fake.messagesIn(CH);
    expect(msg).toMatchObject({ ts: res.ts, text: 'Runbook started', blocks, user: fake.botUserId });
    // WebClient sends blocks as a JSON string in a urlencoded form; the fake parses it back.
    const call = fake.callsTo('chat.postMessage')[0];
    expect(call?.args.blocks).toEqual(blocks);
    expect(fake.invalidBlockCalls()).toEqual([]);
  });

  it('gives unique, increasing ts values', async () => {
    const tss: string[] = [];
    for (let i = 0; i < 4; i++) tss.push((await client.chat.postMessage({ channel: CH, text: `m${i}` })).ts as string);
    expect(new Set(tss).size).toBe(4);
    expect([...tss].sort()).toEqual(tss);
  });

  it('accepts JSON bodies with a Bearer token, like Slack', async () => {
    const res = await fetch(`${fake.apiUrl}chat.postMessage`, {
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=utf-8', authorization: `Bearer ${fake.botToken}` },
      body: JSON.stringify({ channel: CH, text: 'json', blocks: [section('json')] }),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ ok: true, channel: CH });
  });

  it('threads replies under the parent', async () => {
    const parent = await client.chat.postMessage({ channel: CH, text: 'parent' });
    const reply = await client.chat.postMessage({ channel: CH, text: 'step 1 ok', thread_ts: parent.ts as string });
    // A reply to a reply lands in the same thread, as in Slack.
    await client.chat.postMessage({ channel: CH, text: 'step 2 ok', thread_ts: reply.ts as string });

    const replies = fake.threadReplies(CH, parent.ts as string);
    expect(replies.map((m) => m.text)).toEqual(['step 1 ok', 'step 2 ok']);
    expect(fake.findMessage(CH, parent.ts as string)?.reply_count).toBe(2);
  });

  it('updates messages, keeping blocks that are not resent', async () => {
    const posted = await client.chat.postMessage({ channel: CH, text: 'running', blocks: [section('running')] });
    const ts = posted.ts as string;
    const res = await client.chat.update({ channel: CH, ts, text: 'done' });
    expect(res).toMatchObject({ ok: true, channel: CH, ts, text: 'done' });
    expect(fake.findMessage(CH, ts)).toMatchObject({ text: 'done', edited: true, blocks: [section('running')] });

    await client.chat.update({ channel: CH, ts, text: 'done', blocks: [section('*done*')] });
    expect(fake.findMessage(CH, ts)?.blocks).toEqual([section('*done*')]);
  });

  it('rejects updates to unknown or foreign messages', async () => {
    const missing = await rejection<WebAPIPlatformError>(client.chat.update({ channel: CH, ts: '1111111111.000001', text: 'x' }));
    expect(missing.data.error).toBe('message_not_found');

    const foreignTs = fake.addMessage(CH, { text: 'hi from a human', user: 'U0FAKEUSR1' });
    const foreign = await rejection<WebAPIPlatformError>(client.chat.update({ channel: CH, ts: foreignTs, text: 'x' }));
    expect(foreign.data.error).toBe('cant_update_message');
  });

  it('deletes messages', async () => {
    const posted = await client.chat.postMessage({ channel: CH, text: 'temp' });
    await client.chat.delete({ channel: CH, ts: posted.ts as string });
    expect(fake.messagesIn(CH)).toEqual([]);
  });

  it('rejects invalid blocks with Slack-style messages and records the call', async () => {
    const err = await rejection<WebAPIPlatformError>(
      client.chat.postMessage({ channel: CH, text: 'x', blocks: [{ type: 'section', text: { type: 'mrkdwn', text: '' } }] }),
    );
    expect(err.code).toBe(ErrorCode.PlatformError);
    expect(err.data.error).toBe('invalid_blocks');
    expect(err.data.response_metadata?.messages).toContainEqual(expect.stringMatching(/^\[ERROR\] .*\[json-pointer:\/blocks\/0\/text\/text\]$/));
    expect(fake.messagesIn(CH)).toEqual([]);
    expect(fake.invalidBlockCalls()).toHaveLength(1);
    expect(fake.invalidBlockCalls()[0]?.method).toBe('chat.postMessage');
  });

  it('enforces Slack limits: 50 blocks, 3000-char section text, 2000-char button value, 40000-char text', async () => {
    const tooMany = await rejection<WebAPIPlatformError>(
      client.chat.postMessage({ channel: CH, text: 'x', blocks: Array.from({ length: 51 }, () => ({ type: 'divider' })) }),
    );
    expect(tooMany.data.error).toBe('invalid_blocks');
    expect(tooMany.data.response_metadata?.messages?.[0]).toContain('no more than 50 items');
    // 50 is fine.
    await client.chat.postMessage({ channel: CH, text: 'x', blocks: Array.from({ length: 50 }, () => ({ type: 'divider' })) });

    const longSection = await rejection<WebAPIPlatformError>(client.chat.postMessage({ channel: CH, text: 'x', blocks: [section('a'.repeat(3001))] }));
    expect(longSection.data.error).toBe('invalid_blocks');

    const button = { type: 'button', text: { type: 'plain_text', text: 'Approve' }, action_id: 'approve', value: 'v'.repeat(2001) } as const;
    const longValue = await rejection<WebAPIPlatformError>(client.chat.postMessage({ channel: CH, text: 'x', blocks: [{ type: 'actions', elements: [button] }] }));
    expect(longValue.data.response_metadata?.messages?.join('\n')).toContain('/blocks/0/elements/0/value');

    const longText = await rejection<WebAPIPlatformError>(client.chat.postMessage({ channel: CH, text: 'x'.repeat(40_001) }));
    expect(longText.data.error).toBe('msg_too_long');
    expect(fake.invalidBlockCalls()).toHaveLength(4);
  });

  it('exposes the validator for renderer tests', () => {
    expect(validateBlocks([section('ok')])).toEqual([]);
    expect(validateBlocks([{ type: 'sectoin' }])).toEqual(['unsupported type: "sectoin" [json-pointer:/blocks/0/type]']);
  });

  it('needs text or blocks', async () => {
    const err = await rejection<WebAPIPlatformError>(client.chat.postMessage({ channel: CH } as never));
    expect(err.data.error).toBe('no_text');
  });

  it('checks the token: invalid_auth, not_authed', async () => {
    const wrong = await rejection<WebAPIPlatformError>(makeClient({}, 'xoxb-wrong').auth.test());
    expect(wrong.data.error).toBe('invalid_auth');

    const res = await fetch(`${fake.apiUrl}auth.test`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: false, error: 'not_authed' });

    // The legacy form field works too.
    const viaForm = await fetch(`${fake.apiUrl}auth.test`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: fake.botToken }).toString(),
    });
    expect(await viaForm.json()).toMatchObject({ ok: true });
  });

  it('knows channels: channel_not_found, not_in_channel, conversations.info', async () => {
    const unknown = await rejection<WebAPIPlatformError>(client.chat.postMessage({ channel: 'C0NOSUCH01', text: 'x' }));
    expect(unknown.data.error).toBe('channel_not_found');
    const notMember = await rejection<WebAPIPlatformError>(client.chat.postMessage({ channel: 'C0NOTMEMB1', text: 'x' }));
    expect(notMember.data.error).toBe('not_in_channel');

    const info = await client.conversations.info({ channel: CH });
    expect(info.channel).toMatchObject({ id: CH, name: DEFAULT_CHANNEL.name, is_member: true });
  });

  it('serves users.info and usergroups.users.list', async () => {
    const user = await client.users.info({ user: 'U0FAKEUSR1' });
    expect(user.user?.id).toBe('U0FAKEUSR1');
    const group = await client.usergroups.users.list({ usergroup: 'S0ONCALL01' });
    expect(group.users).toEqual(['U0FAKEUSR1', 'U0FAKEUSR2']);
    const missing = await rejection<WebAPIPlatformError>(client.usergroups.users.list({ usergroup: 'S0NOSUCH01' }));
    expect(missing.data.error).toBe('no_such_subteam');
  });

  it('posts ephemerals', async () => {
    const res = await client.chat.postEphemeral({ channel: CH, user: 'U0FAKEUSR1', text: 'only you', blocks: [section('only you')] });
    expect(res.message_ts).toMatch(/^\d+\.\d{6}$/);
    expect(fake.ephemerals).toEqual([expect.objectContaining({ channel: CH, user: 'U0FAKEUSR1', text: 'only you', via: 'chat.postEphemeral' })]);
  });

  it('answers unknown methods with HTTP 404 unknown_method', async () => {
    const res = await fetch(`${fake.apiUrl}chat.postMesage`, { method: 'POST', headers: { authorization: `Bearer ${fake.botToken}` } });
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ ok: false, error: 'unknown_method' });
  });

  it('opens views, validating the view and the trigger', async () => {
    const view = {
      type: 'modal' as const,
      callback_id: 'confirm_run',
      title: { type: 'plain_text' as const, text: 'Confirm' },
      submit: { type: 'plain_text' as const, text: 'Run' },
      blocks: [{ type: 'input', block_id: 'reason', label: { type: 'plain_text', text: 'Reason' }, element: { type: 'plain_text_input', action_id: 'value' } }],
    };
    const trigger = fake.triggerId();
    const res = await client.views.open({ trigger_id: trigger, view });
    expect(res.view?.id).toMatch(/^V/);
    expect(fake.views[0]?.view.callback_id).toBe('confirm_run');

    const reused = await rejection<WebAPIPlatformError>(client.views.open({ trigger_id: trigger, view }));
    expect(reused.data.error).toBe('exchanged_trigger_id');

    const late = fake.triggerId();
    fake.advanceClock(3_500);
    const expired = await rejection<WebAPIPlatformError>(client.views.open({ trigger_id: late, view }));
    expect(expired.data.error).toBe('expired_trigger_id');

    // Slack reports invalid views as invalid_arguments with json-pointers into /view.
    const { submit: _submit, ...noSubmit } = view;
    const invalid = await rejection<WebAPIPlatformError>(client.views.open({ trigger_id: fake.triggerId(), view: noSubmit }));
    expect(invalid.data.error).toBe('invalid_arguments');
    expect(invalid.data.response_metadata?.messages?.join('\n')).toContain("required property 'submit'");
    expect(fake.invalidBlockCalls().map((c) => c.method)).toEqual(['views.open']);
  });

  describe('rate limits', () => {
    beforeEach(async () => {
      await fake.close();
      fake = await startFakeSlack({ limits: { postMessagePerChannel: { perMinute: 60, burst: 2 } } });
      client = makeClient();
    });

    it('answers 429 with Retry-After once a channel burst is used up', async () => {
      const strict = makeClient({ rejectRateLimitedCalls: true });
      await strict.chat.postMessage({ channel: CH, text: '1' });
      await strict.chat.postMessage({ channel: CH, text: '2' });
      const err = await rejection<WebAPIRateLimitedError>(strict.chat.postMessage({ channel: CH, text: '3' }));
      expect(err.code).toBe(ErrorCode.RateLimitedError);
      expect(err.retryAfter).toBe(1);
      expect(fake.rateLimited()).toBe(1);
      expect(fake.callsTo('chat.postMessage').at(-1)).toMatchObject({ status: 429, response: { ok: false, error: 'ratelimited' } });

      // Raw wire format: HTTP 429, Retry-After header.
      const raw = await fetch(`${fake.apiUrl}chat.postMessage`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Bearer ${fake.botToken}` },
        body: new URLSearchParams({ channel: CH, text: '4' }).toString(),
      });
      expect(raw.status).toBe(429);
      expect(raw.headers.get('retry-after')).toBe('1');

      // The limit is per channel, and it refills with time.
      fake.addChannel({ id: 'C0OTHER001', name: 'other' });
      await strict.chat.postMessage({ channel: 'C0OTHER001', text: 'elsewhere' });
      fake.advanceClock(1_000);
      await strict.chat.postMessage({ channel: CH, text: 'later' });
    });

    it('has default limits: a short burst per channel, then 1 per second', async () => {
      await fake.close();
      fake = await startFakeSlack();
      const strict = makeClient({ rejectRateLimitedCalls: true });
      for (let i = 0; i < 4; i++) await strict.chat.postMessage({ channel: CH, text: String(i) });
      const err = await rejection<WebAPIRateLimitedError>(strict.chat.postMessage({ channel: CH, text: 'one too many' }));
      expect(err.retryAfter).toBe(1);
      expect(fake.rateLimited()).toBe(1);
    });

    it('counts a Tier per method across the whole workspace, and chat.postMessage per channel, as Slack does', async () => {
      fake.setRateLimits({ tiers: { 3: { perMinute: 60, burst: 2 } }, postMessagePerChannel: { perMinute: 60, burst: 2 } });
      fake.addChannel({ id: 'C0OTHER001', name: 'other' });
      const strict = makeClient({ rejectRateLimitedCalls: true });
      const a = await strict.chat.postMessage({ channel: CH, text: 'a' });
      const b = await strict.chat.postMessage({ channel: 'C0OTHER001', text: 'b' });
      // Two channels, one chat.update budget: a bot spreading its updates over channels gains nothing.
      await strict.chat.update({ channel: CH, ts: a.ts as string, text: 'a2' });
      await strict.chat.update({ channel: 'C0OTHER001', ts: b.ts as string, text: 'b2' });
      const err = await rejection<WebAPIRateLimitedError>(strict.chat.update({ channel: 'C0OTHER001', ts: b.ts as string, text: 'b3' }));
      expect(err.code).toBe(ErrorCode.RateLimitedError);
      // Another method's bucket, and each channel's posts, are their own.
      await strict.chat.postMessage({ channel: CH, text: 'a again' });
      await strict.chat.postMessage({ channel: 'C0OTHER001', text: 'b again' });
      expect(fake.rateLimited()).toBe(1);
    });

    it('lets a default WebClient recover by honouring Retry-After', async () => {
      fake.injectFault({ method: 'chat.update', status: 429, retryAfterSec: 1 });
      const patient = new WebClient(fake.botToken, { slackApiUrl: fake.apiUrl, logLevel: WebLogLevel.ERROR });
      const posted = await patient.chat.postMessage({ channel: CH, text: 'x' });
      const started = Date.now();
      await patient.chat.update({ channel: CH, ts: posted.ts as string, text: 'y' });
      expect(Date.now() - started).toBeGreaterThanOrEqual(900);
      expect(fake.callsTo('chat.update').map((c) => c.status)).toEqual([429, 200]);
    });

    it('can be switched off', async () => {
      fake.setRateLimits(false);
      for (let i = 0; i < 10; i++) await client.chat.postMessage({ channel: CH, text: String(i) });
      expect(fake.rateLimited()).toBe(0);
    });
  });

  describe('injected faults', () => {
    it('returns a 500 HTML page', async () => {
      fake.injectFault({ method: 'chat.postMessage', status: 500 });
      const err = await rejection<WebAPIHTTPError>(client.chat.postMessage({ channel: CH, text: 'x' }));
      expect(err.code).toBe(ErrorCode.HTTPError);
      expect(err.statusCode).toBe(500);
      expect(fake.callsTo('chat.postMessage')[0]).toMatchObject({ status: 500, fault: true });
      // One-shot by default: the next call works.
      await client.chat.postMessage({ channel: CH, text: 'x' });
    });

    it('returns Slack errors as HTTP 200 ok:false, `times` in a row', async () => {
      fake.injectFault({ method: 'chat.update', error: 'channel_not_found', times: 2 });
      const posted = await client.chat.postMessage({ channel: CH, text: 'x' });
      for (let i = 0; i < 2; i++) {
        const err = await rejection<WebAPIPlatformError>(client.chat.update({ channel: CH, ts: posted.ts as string, text: 'y' }));
        expect(err.data.error).toBe('channel_not_found');
      }
      await client.chat.update({ channel: CH, ts: posted.ts as string, text: 'y' });
    });

    it('clears faults', async () => {
      fake.injectFault({ method: '*', status: 503, times: Number.POSITIVE_INFINITY });
      fake.clearFaults();
      await client.auth.test();
    });
  });

  it('round-trips filesUploadV2 into a thread', async () => {
    const parent = await client.chat.postMessage({ channel: CH, text: 'run' });
    const res = await client.filesUploadV2({
      channel_id: CH,
      thread_ts: parent.ts as string,
      filename: 'restart-api.log',
      title: 'Run log',
      content: 'line 1\nline 2\n',
      initial_comment: 'Full log',
    });
    expect(res.ok).toBe(true);
    expect(fake.callsTo('files.getUploadURLExternal')).toHaveLength(1);
    expect(fake.callsTo('@upload')).toHaveLength(1);
    expect(fake.callsTo('files.completeUploadExternal')).toHaveLength(1);

    const [file] = fake.files;
    expect(file).toMatchObject({ filename: 'restart-api.log', title: 'Run log', channel_id: CH, thread_ts: parent.ts, completed: true });
    expect(file?.content?.toString('utf8')).toBe('line 1\nline 2\n');
    // Slack shares the file with a message in the thread.
    const [share] = fake.threadReplies(CH, parent.ts as string);
    expect(share).toMatchObject({ text: 'Full log', files: [expect.objectContaining({ id: file?.id })] });
  });

  describe('response_url', () => {
    const post = (url: string, body: unknown) =>
      fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

    it('allows 5 uses, then 404 used_url', async () => {
      const url = fake.responseUrl({ channel: CH, user: 'U0FAKEUSR1' });
      for (let i = 0; i < 5; i++) expect((await post(url, { text: `update ${i}` })).status).toBe(200);
      const sixth = await post(url, { text: 'too many' });
      expect(sixth.status).toBe(404);
      expect(await sixth.json()).toMatchObject({ ok: false, error: 'used_url' });
      expect(fake.ephemerals.filter((e) => e.via === 'response_url')).toHaveLength(5);
    });

    it('expires after 30 minutes', async () => {
      const url = fake.responseUrl();
      fake.advanceClock(30 * 60_000 + 1);
      const res = await post(url, { text: 'late' });
      expect(res.status).toBe(404);
      expect(await res.json()).toMatchObject({ error: 'expired_url' });
    });

    it('replaces the original message, validates blocks, posts in_channel', async () => {
      const posted = await client.chat.postMessage({ channel: CH, text: 'Approve?', blocks: [section('Approve?')] });
      const url = fake.responseUrl({ channel: CH, user: 'U0FAKEUSR1', messageTs: posted.ts as string });

      expect((await post(url, { replace_original: true, text: 'Approved', blocks: [section('Approved by <@U0FAKEUSR1>')] })).status).toBe(200);
      expect(fake.findMessage(CH, posted.ts as string)).toMatchObject({ text: 'Approved', edited: true });

      const bad = await post(url, { text: 'x', blocks: [{ type: 'section' }] });
      expect(bad.status).toBe(400);
      expect(await bad.json()).toMatchObject({ ok: false, error: 'invalid_blocks' });
      expect(fake.invalidBlockCalls().map((c) => c.method)).toEqual(['@response_url']);

      await post(url, { response_type: 'in_channel', text: 'Run finished' });
      expect(fake.messagesIn(CH).map((m) => m.text)).toEqual(['Approved', 'Run finished']);
      expect(fake.responseUrlPosts.map((p) => p.effect)).toEqual(['replaced', 'rejected', 'in_channel']);
    });
  });

  it('waitFor resolves with the value, and times out listing recent calls', async () => {
    setTimeout(() => void client.chat.postMessage({ channel: CH, text: 'later' }), 50);
    const call = await fake.waitForCall('chat.postMessage', (c) => c.args.text === 'later');
    expect(call.status).toBe(200);

    const err = await rejection(fake.waitFor(() => fake.callsTo('chat.update')[0], { timeoutMs: 100, description: 'an update' }));
    expect(err.message).toContain('waiting for an update');
    expect(err.message).toContain('chat.postMessage → 200 ok');
  });
});

describe('Slack request signing', () => {
  // The worked example from Slack's "Verifying requests from Slack" documentation.
  const docSecret = '8f742231b10e8888abcd99yyyzzz85a5';
  const docTimestamp = 1531420618;
  const docBody =
    'token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c';

  it("matches Slack's documented example", () => {
    expect(signSlackBody(docSecret, docBody, docTimestamp)).toEqual({
      'X-Slack-Signature': 'v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503',
      'X-Slack-Request-Timestamp': '1531420618',
    });
  });

  it('matches a hand-computed HMAC', () => {
    const expected = createHmac('sha256', 's3cret').update('v0:1700000000:a=1&b=2').digest('hex');
    expect(signSlackBody('s3cret', 'a=1&b=2', 1700000000)['X-Slack-Signature']).toBe(`v0=${expected}`);
  });

  it("encodes slash commands like Slack's example body", () => {
    const body = slashCommandForm({
      token: 'xyzz0WbapA4vBCDEFasx0q6G',
      team_id: 'T1DC2JH3J',
      team_domain: 'testteamnow',
      channel_id: 'G8PSS9T3V',
      channel_name: 'foobar',
      user_id: 'U2CERLKJA',
      user_name: 'roadrunner',
      command: '/webhook-collect',
      text: '',
      api_app_id: null,
      is_enterprise_install: null,
      response_url: 'https://hooks.slack.com/commands/T1DC2JH3J/397700885554/96rGlfmibIGlgcZRskXaIFfN',
      trigger_id: '398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c',
    });
    expect(body).toBe(docBody);
  });

  it('sends every field Slack sends with a slash command', () => {
    const form = new URLSearchParams(slashCommandForm({ text: 'run restart-api', user_id: 'U0FAKEUSR2' }));
    expect([...form.keys()]).toEqual([
      'token', 'team_id', 'team_domain', 'channel_id', 'channel_name', 'user_id', 'user_name',
      'command', 'text', 'api_app_id', 'is_enterprise_install', 'response_url', 'trigger_id',
    ]);
    expect(form.get('command')).toBe('/engramia');
    expect(form.get('text')).toBe('run restart-api');
    expect(form.get('is_enterprise_install')).toBe('false');
  });

  it('builds block_actions payloads from the posted message', () => {
    const blocks = [
      { type: 'actions', block_id: 'approval', elements: [{ type: 'button', action_id: 'approve', value: 'run-42', style: 'primary', text: { type: 'plain_text', text: 'Approve' } }] },
    ];
    const payload = blockActionPayload({ action_id: 'approve', user: 'U0FAKEUSR2', channel: CH, message: { ts: '1732600000.000100', text: 'Approve?', blocks } });
    expect(payload).toMatchObject({
      type: 'block_actions',
      user: { id: 'U0FAKEUSR2' },
      channel: { id: CH },
      container: { type: 'message', message_ts: '1732600000.000100', channel_id: CH, is_ephemeral: false },
      message: { ts: '1732600000.000100', blocks },
      actions: [{ action_id: 'approve', block_id: 'approval', value: 'run-42', type: 'button', style: 'primary', action_ts: expect.any(String) }],
    });
    expect(() => blockActionPayload({ action_id: 'reject', message: { ts: '1.0', text: '', blocks } })).toThrow(/no button/);
  });
});

describe('requests against a real Bolt app', () => {
  const secret = 'test-signing-secret';
  let app: App;
  let url: string;
  const seen: { kind: string; body: Record<string, unknown>; retryNum?: number | undefined }[] = [];

  beforeEach(async () => {
    fake = await startFakeSlack({ limits: false });
    seen.length = 0;
    const receiver = new HTTPReceiver({ signingSecret: secret, logLevel: LogLevel.ERROR });
    app = new App({ token: fake.botToken, receiver, clientOptions: { slackApiUrl: fake.apiUrl }, logLevel: LogLevel.ERROR });
    app.command('/engramia', async ({ command, ack, respond, context }) => {
      await ack();
      seen.push({ kind: 'command', body: command as unknown as Record<string, unknown>, retryNum: context.retryNum });
      await respond({ text: `running ${command.text}` });
    });
    app.action('approve', async ({ ack, body, respond }) => {
      await ack();
      seen.push({ kind: 'action', body: body as unknown as Record<string, unknown> });
      await respond({ replace_original: true, text: 'Approved' });
    });
    app.view('confirm_run', async ({ ack, view }) => {
      seen.push({ kind: 'view', body: view.state.values as unknown as Record<string, unknown> });
      await ack({ response_action: 'errors', errors: { reason: 'too short' } });
    });
    const server = await app.start(0);
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/slack/events`;
  });

  afterEach(async () => {
    await app.stop();
  });

  it('delivers a signed slash command and the bot responds via response_url', async () => {
    const res = await sendSlashCommand(url, secret, { text: 'restart-api', response_url: fake.responseUrl({ channel: CH, user: 'U0FAKEUSR1' }) }, { retryNum: 1 });
    expect(res.status).toBe(200);
    expect(res.elapsedMs).toBeLessThan(3_000);
    const post = await fake.waitFor(() => fake.responseUrlPosts[0]);
    expect(post).toMatchObject({ status: 200, effect: 'ephemeral', body: { text: 'running restart-api' } });
    expect(seen[0]).toMatchObject({ kind: 'command', body: { command: '/engramia', text: 'restart-api', channel_id: CH }, retryNum: 1 });
  });

  it('rejects a bad signature or a stale timestamp (401)', async () => {
    expect((await sendSlashCommand(url, secret, { text: 'x' }, { badSignature: true })).status).toBe(401);
    const staleSec = Math.floor(Date.now() / 1000) - 6 * 60;
    expect((await sendSlashCommand(url, secret, { text: 'x' }, { timestampSec: staleSec })).status).toBe(401);
    expect(seen).toEqual([]);
  });

  it('delivers a button click on a posted message', async () => {
    const blocks = [{ type: 'actions', block_id: 'approval', elements: [{ type: 'button', action_id: 'approve', value: 'run-42', text: { type: 'plain_text', text: 'Approve' } }] }];
    const posted = await app.client.chat.postMessage({ channel: CH, text: 'Approve?', blocks });
    const message = fake.findMessage(CH, posted.ts as string);
    if (!message) throw new Error('message not recorded');
    const res = await sendBlockAction(url, secret, {
      action_id: 'approve',
      user: 'U0FAKEUSR2',
      channel: CH,
      message,
      response_url: fake.responseUrl({ channel: CH, user: 'U0FAKEUSR2', messageTs: message.ts }),
    });
    expect(res.status).toBe(200);
    await fake.waitFor(() => fake.findMessage(CH, message.ts)?.text === 'Approved');
    expect(seen[0]?.body).toMatchObject({ actions: [{ action_id: 'approve', value: 'run-42' }] });
  });

  it('delivers a view submission and returns the ack body', async () => {
    const res = await sendViewSubmission(url, secret, { callback_id: 'confirm_run', user: 'U0FAKEUSR1', values: { reason: { value: 'because' } } });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ response_action: 'errors', errors: { reason: 'too short' } });
    expect(seen[0]?.body).toEqual({ reason: { value: { type: 'plain_text_input', value: 'because' } } });
  });
});
