/**
 * Send requests to the bot (a Bolt app in HTTP mode) exactly as Slack does: same content types,
 * same field sets and payload shapes, signed with the app's signing secret (v0 scheme).
 *
 * Bolt's receiver compares `Content-Type` to `application/x-www-form-urlencoded` exactly, verifies
 * `X-Slack-Signature` over the raw body and rejects timestamps older than 5 minutes, so getting these
 * details right is what lets a test exercise the real request path instead of a shortcut.
 *
 * https://docs.slack.dev/authentication/verifying-requests-from-slack
 */
import { createHmac, randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import {
  DEFAULT_BOT_USER_ID,
  DEFAULT_CHANNEL,
  FAKE_APP_ID,
  FAKE_BOT_ID,
  FAKE_TEAM_DOMAIN,
  FAKE_TEAM_ID,
  type Block,
  type FakeMessage,
  type Json,
} from './fake-slack.js';

/** The deprecated verification token Slack still sends in every payload; Bolt ignores it. */
export const FAKE_VERIFICATION_TOKEN = 'FakeVerificationToken00001';
export const DEFAULT_USER_ID = 'U0FAKEUSR1';
export const DEFAULT_USER_NAME = 'alice';
export const DEFAULT_COMMAND = '/engramia';
const SLACK_USER_AGENT = 'Slackbot 1.0 (+https://api.slack.com/robots)';

// ---------------------------------------------------------------------------------------------
// Signing
// ---------------------------------------------------------------------------------------------

export interface SlackSignatureHeaders {
  'X-Slack-Signature': string;
  'X-Slack-Request-Timestamp': string;
}

/** Slack's v0 request signature: `v0=` + hex HMAC-SHA256 of `v0:${timestamp}:${rawBody}`. */
export function signSlackBody(secret: string, rawBody: string, timestampSec: number = Math.floor(Date.now() / 1000)): SlackSignatureHeaders {
  const digest = createHmac('sha256', secret).update(`v0:${timestampSec}:${rawBody}`).digest('hex');
  return { 'X-Slack-Signature': `v0=${digest}`, 'X-Slack-Request-Timestamp': String(timestampSec) };
}

// ---------------------------------------------------------------------------------------------
// Sending
// ---------------------------------------------------------------------------------------------

export interface SendOptions {
  /** Signature timestamp (default now). Set it > 5 minutes in the past to test stale-request rejection. */
  timestampSec?: number;
  /** Sign with a wrong secret, so the signature doesn't verify. */
  badSignature?: boolean;
  /** Send no signature headers at all. */
  unsigned?: boolean;
  /** Simulate a Slack retry: adds `X-Slack-Retry-Num` (and `X-Slack-Retry-Reason`). */
  retryNum?: number;
  /** Default `http_timeout` when `retryNum` is set. */
  retryReason?: string;
  /** Abort the request after this long (default 10 s; Slack itself gives up after 3 s). */
  timeoutMs?: number;
  /** Extra headers. */
  headers?: Record<string, string>;
}

export interface SlackHttpResult {
  status: number;
  /** Parsed JSON if the body is JSON, else the text ('' for Bolt's empty ack). */
  body: Json;
  text: string;
  headers: Record<string, string>;
  /** Time to the full response. Slack treats > 3000 ms as a failure ("operation_timeout"). */
  elapsedMs: number;
}

/** POST a raw body signed like Slack. The building block of the helpers below. */
export async function sendSignedRequest(url: string, secret: string, rawBody: string, contentType: string, opts: SendOptions = {}): Promise<SlackHttpResult> {
  const headers: Record<string, string> = { 'Content-Type': contentType, 'User-Agent': SLACK_USER_AGENT, Accept: '*/*' };
  if (!opts.unsigned) {
    const signingSecret = opts.badSignature ? `${secret}-wrong` : secret;
    Object.assign(headers, signSlackBody(signingSecret, rawBody, opts.timestampSec));
  }
  if (opts.retryNum !== undefined) {
    headers['X-Slack-Retry-Num'] = String(opts.retryNum);
    headers['X-Slack-Retry-Reason'] = opts.retryReason ?? 'http_timeout';
  }
  Object.assign(headers, opts.headers);
  const started = performance.now();
  const res = await fetch(url, { method: 'POST', headers, body: rawBody, signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000) });
  const text = await res.text();
  const elapsedMs = performance.now() - started;
  let body: Json = text;
  if (text.length > 0) {
    try {
      body = JSON.parse(text);
    } catch {
      // Not JSON: keep the text.
    }
  }
  return { status: res.status, body, text, headers: Object.fromEntries(res.headers.entries()), elapsedMs };
}

/** Slack-shaped ids, unique per call. */
export function makeTriggerId(): string {
  return `${Date.now()}.${Math.floor(Math.random() * 1e9)}.${randomBytes(16).toString('hex')}`;
}

export function makeActionTs(): string {
  const micros = Date.now() * 1000 + Math.floor(Math.random() * 1000);
  return `${Math.floor(micros / 1e6)}.${String(micros % 1e6).padStart(6, '0')}`;
}

/** A response_url shaped like Slack's. Point tests at `fake.responseUrl()` instead when the bot will use it. */
function placeholderResponseUrl(kind: 'commands' | 'actions'): string {
  return `https://hooks.slack.com/${kind}/${FAKE_TEAM_ID}/${Math.floor(Math.random() * 1e12)}/${randomBytes(12).toString('hex')}`;
}

// ---------------------------------------------------------------------------------------------
// Slash commands
// ---------------------------------------------------------------------------------------------

/**
 * Fields of a slash-command request. Anything omitted (or undefined) gets a realistic default; set a
 * field to `null` to leave it out of the form entirely.
 */
export interface SlashCommandFields {
  text?: string | null;
  user_id?: string | null;
  user_name?: string | null;
  channel_id?: string | null;
  channel_name?: string | null;
  command?: string | null;
  response_url?: string | null;
  trigger_id?: string | null;
  team_id?: string | null;
  team_domain?: string | null;
  api_app_id?: string | null;
  token?: string | null;
  is_enterprise_install?: string | null;
  enterprise_id?: string | null;
  enterprise_name?: string | null;
  [extra: string]: string | null | undefined;
}

/**
 * The urlencoded body Slack POSTs for a slash command, fields in Slack's order
 * (token, team, channel, user, command, text, app, enterprise flag, response_url, trigger_id).
 */
export function slashCommandForm(fields: SlashCommandFields = {}): string {
  const defaults: Record<string, string> = {
    token: FAKE_VERIFICATION_TOKEN,
    team_id: FAKE_TEAM_ID,
    team_domain: FAKE_TEAM_DOMAIN,
    channel_id: DEFAULT_CHANNEL.id,
    channel_name: DEFAULT_CHANNEL.name,
    user_id: DEFAULT_USER_ID,
    user_name: DEFAULT_USER_NAME,
    command: DEFAULT_COMMAND,
    text: '',
    api_app_id: FAKE_APP_ID,
    is_enterprise_install: 'false',
    response_url: placeholderResponseUrl('commands'),
    trigger_id: makeTriggerId(),
  };
  const form = new URLSearchParams();
  const order = [...Object.keys(defaults), ...Object.keys(fields).filter((k) => !(k in defaults))];
  for (const key of order) {
    const given = fields[key];
    // undefined → default; null → leave the field out.
    const value = given === undefined ? defaults[key] : given;
    if (value === null || value === undefined) continue;
    form.append(key, value);
  }
  return form.toString();
}

/** POST a slash command to the bot's request URL (e.g. `http://127.0.0.1:PORT/slack/events`). */
export function sendSlashCommand(url: string, secret: string, fields: SlashCommandFields = {}, opts: SendOptions = {}): Promise<SlackHttpResult> {
  return sendSignedRequest(url, secret, slashCommandForm(fields), 'application/x-www-form-urlencoded', opts);
}

// ---------------------------------------------------------------------------------------------
// Interactivity (block_actions, view_submission)
// ---------------------------------------------------------------------------------------------

/** Interactivity requests are a form with one field, `payload`, holding the JSON. */
export function interactivityForm(payload: unknown): string {
  return new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
}

export interface FoundButton {
  block_id?: string;
  element: Block;
}

/** Find the button with `action_id` in a message's blocks (actions blocks, section accessories, anywhere). */
export function findButton(blocks: Block[] | undefined, actionId: string): FoundButton | undefined {
  for (const block of blocks ?? []) {
    let found: Block | undefined;
    const walk = (node: Json): void => {
      if (found || !node || typeof node !== 'object') return;
      if (Array.isArray(node)) return node.forEach(walk);
      if (node.type === 'button' && node.action_id === actionId) {
        found = node;
        return;
      }
      for (const v of Object.values(node)) walk(v);
    };
    walk(block);
    if (found) return { ...(typeof block.block_id === 'string' ? { block_id: block.block_id } : {}), element: found };
  }
  return undefined;
}

export interface BlockActionInput {
  action_id: string;
  /** Button value. Default: the value of the button with `action_id` in `message.blocks`. */
  value?: string;
  /** Default: the block_id of the block holding that button, else a random one (Slack generates one). */
  block_id?: string;
  /** Clicking user: an ID, or `{id, username}`. */
  user?: string | { id: string; username?: string; name?: string };
  channel?: string | { id: string; name?: string };
  /** ts of the message the button is on (default `message.ts`). */
  message_ts?: string;
  /**
   * The message as the bot posted it (e.g. `fake.findMessage(ch, ts)`): Slack echoes it back in the payload,
   * and the button's value/block_id are read from it. Omit for ephemeral messages (Slack omits it too).
   */
  message?: Pick<FakeMessage, 'ts' | 'text'> & Partial<Pick<FakeMessage, 'blocks' | 'thread_ts' | 'user'>>;
  /** Whether the message was ephemeral (`container.is_ephemeral`; no `message` in the payload). */
  ephemeral?: boolean;
  response_url?: string;
  trigger_id?: string;
  action_ts?: string;
  /** `state.values` of input elements in the message (default empty). */
  state?: Record<string, Record<string, Json>>;
  team_id?: string;
  api_app_id?: string;
}

const asUser = (u: BlockActionInput['user']): { id: string; username: string; name: string; team_id: string } => {
  const id = typeof u === 'string' ? u : (u?.id ?? DEFAULT_USER_ID);
  const username = (typeof u === 'object' ? (u.username ?? u.name) : undefined) ?? (id === DEFAULT_USER_ID ? DEFAULT_USER_NAME : id.toLowerCase());
  return { id, username, name: username, team_id: FAKE_TEAM_ID };
};

/** The `block_actions` payload Slack sends when a user clicks a button. */
export function blockActionPayload(input: BlockActionInput): Json {
  const channel = typeof input.channel === 'object' ? input.channel : { id: input.channel ?? DEFAULT_CHANNEL.id };
  const channelName = channel.name ?? (channel.id === DEFAULT_CHANNEL.id ? DEFAULT_CHANNEL.name : channel.id.toLowerCase());
  const messageTs = input.message_ts ?? input.message?.ts;
  if (!messageTs) throw new Error('blockActionPayload: give message_ts or message');
  const found = findButton(input.message?.blocks, input.action_id);
  if (input.message?.blocks && !found && input.value === undefined) {
    // A click on a button that isn't in the message can't happen in Slack: fail the test loudly.
    throw new Error(`blockActionPayload: no button with action_id ${JSON.stringify(input.action_id)} in the message's blocks`);
  }
  const value = input.value ?? (found?.element.value as string | undefined);
  const text = found?.element.text ?? { type: 'plain_text', text: input.action_id, emoji: true };
  const team = input.team_id ?? FAKE_TEAM_ID;
  const ephemeral = input.ephemeral ?? false;
  return {
    type: 'block_actions',
    user: asUser(input.user),
    api_app_id: input.api_app_id ?? FAKE_APP_ID,
    token: FAKE_VERIFICATION_TOKEN,
    container: { type: 'message', message_ts: messageTs, channel_id: channel.id, is_ephemeral: ephemeral },
    trigger_id: input.trigger_id ?? makeTriggerId(),
    team: { id: team, domain: FAKE_TEAM_DOMAIN },
    enterprise: null,
    is_enterprise_install: false,
    channel: { id: channel.id, name: channelName },
    ...(ephemeral
      ? {}
      : {
          message: {
            user: input.message?.user ?? DEFAULT_BOT_USER_ID,
            type: 'message',
            ts: messageTs,
            bot_id: FAKE_BOT_ID,
            app_id: FAKE_APP_ID,
            text: input.message?.text ?? '',
            team: team,
            ...(input.message?.blocks ? { blocks: input.message.blocks } : {}),
            ...(input.message?.thread_ts ? { thread_ts: input.message.thread_ts } : {}),
          },
        }),
    state: { values: input.state ?? {} },
    response_url: input.response_url ?? placeholderResponseUrl('actions'),
    actions: [
      {
        action_id: input.action_id,
        block_id: input.block_id ?? found?.block_id ?? randomBytes(3).toString('base64url'),
        text,
        ...(value !== undefined ? { value } : {}),
        ...(found?.element.style ? { style: found.element.style } : {}),
        type: 'button',
        action_ts: input.action_ts ?? makeActionTs(),
      },
    ],
  };
}

export function sendBlockAction(url: string, secret: string, input: BlockActionInput, opts: SendOptions = {}): Promise<SlackHttpResult> {
  return sendSignedRequest(url, secret, interactivityForm(blockActionPayload(input)), 'application/x-www-form-urlencoded', opts);
}

export interface ViewSubmissionInput {
  user?: BlockActionInput['user'];
  /** The view as opened (e.g. `fake.views.at(-1).view`): id, blocks, callback_id, private_metadata are taken from it. */
  view?: Json;
  callback_id?: string;
  private_metadata?: string;
  /**
   * `state.values`: block_id → action_id → element state. A plain string is shorthand for a
   * plain_text_input's `{type:'plain_text_input', value}`.
   */
  values?: Record<string, Record<string, string | Json>>;
  trigger_id?: string;
  team_id?: string;
  api_app_id?: string;
}

/** The `view_submission` payload Slack sends when a user submits a modal. */
export function viewSubmissionPayload(input: ViewSubmissionInput): Json {
  const base: Json = input.view ?? {};
  const id = base.id ?? `V0FAKE${randomBytes(3).toString('hex').toUpperCase()}`;
  const values: Record<string, Record<string, Json>> = {};
  for (const [blockId, actions] of Object.entries(input.values ?? {})) {
    values[blockId] = Object.fromEntries(
      Object.entries(actions).map(([actionId, v]) => [actionId, typeof v === 'string' ? { type: 'plain_text_input', value: v } : v]),
    );
  }
  const team = input.team_id ?? FAKE_TEAM_ID;
  return {
    type: 'view_submission',
    team: { id: team, domain: FAKE_TEAM_DOMAIN },
    user: asUser(input.user),
    api_app_id: input.api_app_id ?? FAKE_APP_ID,
    token: FAKE_VERIFICATION_TOKEN,
    trigger_id: input.trigger_id ?? makeTriggerId(),
    view: {
      id,
      team_id: team,
      type: base.type ?? 'modal',
      blocks: base.blocks ?? [],
      private_metadata: input.private_metadata ?? base.private_metadata ?? '',
      callback_id: input.callback_id ?? base.callback_id ?? '',
      state: { values },
      hash: base.hash ?? `${Math.floor(Date.now() / 1000)}.${randomBytes(4).toString('hex')}`,
      title: base.title ?? { type: 'plain_text', text: 'Modal', emoji: true },
      clear_on_close: base.clear_on_close ?? false,
      notify_on_close: base.notify_on_close ?? false,
      close: base.close ?? null,
      submit: base.submit ?? null,
      previous_view_id: null,
      root_view_id: base.root_view_id ?? id,
      app_id: input.api_app_id ?? FAKE_APP_ID,
      external_id: base.external_id ?? '',
      app_installed_team_id: team,
      bot_id: FAKE_BOT_ID,
    },
    response_urls: [],
    is_enterprise_install: false,
    enterprise: null,
  };
}

export function sendViewSubmission(url: string, secret: string, input: ViewSubmissionInput, opts: SendOptions = {}): Promise<SlackHttpResult> {
  return sendSignedRequest(url, secret, interactivityForm(viewSubmissionPayload(input)), 'application/x-www-form-urlencoded', opts);
}

// ---------------------------------------------------------------------------------------------
// Events API
// ---------------------------------------------------------------------------------------------

/** An Events API `event_callback` envelope around `event` (e.g. `{type:'app_mention', text, user, channel}`). */
export function eventCallbackPayload(event: Json, opts: { event_id?: string; team_id?: string; api_app_id?: string } = {}): Json {
  const eventTs = event.event_ts ?? event.ts ?? makeActionTs();
  const team = opts.team_id ?? FAKE_TEAM_ID;
  return {
    token: FAKE_VERIFICATION_TOKEN,
    team_id: team,
    context_team_id: team,
    api_app_id: opts.api_app_id ?? FAKE_APP_ID,
    event: { ...event, event_ts: eventTs },
    type: 'event_callback',
    event_id: opts.event_id ?? `Ev0FAKE${randomBytes(4).toString('hex').toUpperCase()}`,
    event_time: Math.floor(Date.now() / 1000),
    authorizations: [{ enterprise_id: null, team_id: team, user_id: DEFAULT_BOT_USER_ID, is_bot: true, is_enterprise_install: false }],
    is_ext_shared_channel: false,
  };
}

/** Events are JSON, unlike commands and interactivity. Use `opts.retryNum` for Slack's redeliveries. */
export function sendEvent(url: string, secret: string, event: Json, opts: SendOptions & { event_id?: string } = {}): Promise<SlackHttpResult> {
  const payload = eventCallbackPayload(event, opts.event_id ? { event_id: opts.event_id } : {});
  return sendSignedRequest(url, secret, JSON.stringify(payload), 'application/json', opts);
}
