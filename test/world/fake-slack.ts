/**
 * A local fake of Slack's Web API for tests (the test machine has no internet).
 *
 * It speaks the same wire protocol as https://slack.com/api/ closely enough that an unmodified
 * `@slack/web-api` WebClient (and therefore Bolt's `client`) works against it when given
 * `slackApiUrl: fake.apiUrl`:
 *   - urlencoded (WebClient's default, with `blocks` etc. as JSON strings), JSON and multipart bodies;
 *   - token from `Authorization: Bearer …` or the form field `token`;
 *   - Slack-level errors are HTTP 200 `{ok:false,error}`; unknown methods are HTTP 404; rate limits are
 *     HTTP 429 with `Retry-After`;
 *   - every `blocks` array is validated against the vendored Block Kit JSON Schema plus the limits Slack
 *     enforces server-side, so a test fails the same way production would.
 *
 * It also serves the two non-API URLs a bot talks to: `response_url`s (see `responseUrl()`) and the
 * upload URLs handed out by `files.getUploadURLExternal` (the flow of WebClient's `filesUploadV2`).
 *
 * Everything is recorded (`calls`, `messages`, `ephemerals`, `responseUrlPosts`, `files`, `views`) so
 * tests can assert on what the bot did, and `injectFault()` lets a test make Slack misbehave.
 *
 * Socket Mode (https://docs.slack.dev/apis/events-api/using-socket-mode) is served on the same port:
 *   - `apps.connections.open` takes only the app-level token (`xapp-…`, see `appToken`): a bot token gets
 *     `not_allowed_token_type`, an unknown one `invalid_auth` (and the app token gets `not_allowed_token_type`
 *     on bot methods, like Slack). It answers `{ok:true, url:'ws://127.0.0.1:PORT/link/?ticket=…&app_id=…'}`;
 *     a ticket is good for one connection.
 *   - on the WebSocket the fake sends `hello`, answers pings with pongs (and pings the client itself), sends
 *     envelopes (`sendSlashCommandOverSocket`, `sendInteractiveOverSocket`, `sendEnvelopeOverSocket`) and
 *     resolves with the client's ack `{envelope_id, payload?}`, or rejects after 3 s like Slack gives up;
 *   - `disconnectSocket()` sends `{type:'disconnect', reason:'refresh_requested'}`, `dropSocket()` cuts the
 *     TCP connection, `setSocketPongs(false)` makes the link look dead.
 * It is not rate limited unless a test asks (`limits.methods['apps.connections.open']`; Slack lists it as Tier 1).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import ajvModule from 'ajv/dist/2020.js';
import type { ErrorObject, ValidateFunction } from 'ajv/dist/2020.js';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
// A cycle (slack-requests imports this module's constants), but neither module uses the other at load time.
import { slashCommandForm, type SlashCommandFields } from './slack-requests.js';

// `ajv/dist/2020.js` is CommonJS; under NodeNext the default import is `module.exports`, whose
// `.default` is the class (TypeScript types it the same way).
const Ajv2020 = ajvModule.default;

// ---------------------------------------------------------------------------------------------
// Identities. Exported so request helpers and tests agree with the fake on IDs.
// ---------------------------------------------------------------------------------------------

export const FAKE_TEAM_ID = 'T0FAKETEAM';
export const FAKE_TEAM_DOMAIN = 'engramia-test';
export const FAKE_TEAM_NAME = 'Engramia Test';
export const FAKE_APP_ID = 'A0FAKEAPP1';
export const FAKE_BOT_ID = 'B0FAKEBOT1';
export const DEFAULT_BOT_USER_ID = 'U0FAKEBOT1';
export const DEFAULT_BOT_TOKEN = 'xoxb-1000000001-2000000002-FakeSlackBotToken0001';
/** App-level token (Socket Mode), shaped like Slack's `xapp-1-<app id>-<digits>-<64 hex>`. */
export const DEFAULT_APP_TOKEN = `xapp-1-A0FAKEAPP1-3000000000003-${'0123456789abcdef'.repeat(4)}`;
/** The channel the fake knows when `channels` is not given (the bot is a member). */
export const DEFAULT_CHANNEL = { id: 'C0FAKEOPS1', name: 'ops', member: true } as const;

// ---------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------

/** Slack payloads are loosely typed JSON; `any` keeps test assertions (`msg.blocks[0].text.text`) terse. */
export type Json = any;
export type Block = Record<string, Json>;

export interface FakeChannelSpec {
  id: string;
  name?: string;
  /** Whether the bot is in the channel (default true). `false` → `not_in_channel` on posting. */
  member?: boolean;
  is_private?: boolean;
  /** Archived channels reject posts with `is_archived`. */
  is_archived?: boolean;
}

export interface FakeUserSpec {
  id: string;
  name?: string;
  real_name?: string;
  is_bot?: boolean;
  deleted?: boolean;
  tz?: string;
  email?: string;
}

/** A token bucket: `burst` calls at once, refilled at `perMinute`. */
export interface RateRule {
  perMinute: number;
  burst: number;
}

export type Tier = 1 | 2 | 3 | 4;

export interface RateLimitOptions {
  /** chat.postMessage, keyed per channel ("1 per second per channel, short bursts allowed"). */
  postMessagePerChannel?: RateRule;
  /** Slack's published tiers, keyed per method across every channel (a single workspace and app), as Slack counts them. */
  tiers?: Partial<Record<Tier, RateRule>>;
  /** Per-method override, wins over everything else. */
  methods?: Record<string, RateRule>;
}

export interface FakeSlackOptions {
  botToken?: string;
  botUserId?: string;
  channels?: FakeChannelSpec[];
  users?: FakeUserSpec[];
  /** usergroup ID (S…) → member user IDs, served by usergroups.users.list. */
  userGroups?: Record<string, string[]>;
  /** Rate limits are on by default; `false` turns them off. Partial options are merged with the defaults. */
  limits?: RateLimitOptions | false;
  /** Validate Block Kit payloads (default true). */
  validateBlocks?: boolean;
  /** Port to listen on (default: a free one). */
  port?: number;
  /** The app-level token (`xapp-…`) apps.connections.open accepts (default `DEFAULT_APP_TOKEN`). */
  appToken?: string;
  socketMode?: SocketModeOptions;
}

export interface SocketModeOptions {
  /** How long `send…OverSocket` waits for the client's ack (default 3000 ms: Slack's limit). */
  ackTimeoutMs?: number;
  /** The fake pings each connection this often, as Slack does (default 10 000 ms; 0 = never). */
  pingIntervalMs?: number;
  /** Answer the client's pings with pongs (default true; see `setSocketPongs`). */
  answerPings?: boolean;
}

/** One Socket Mode WebSocket connection (live object: it changes as traffic flows). */
export interface SocketConnection {
  /** `ws1`, `ws2`, … in connection order. */
  id: string;
  /** The path and query the client connected with (`/link/?ticket=…&app_id=…`). */
  path: string;
  /** `debug_info.host` in its hello (Slack's names look like `applink-…`). */
  host: string;
  /** Fake-clock epoch ms. */
  openedAt: number;
  /** False once the WebSocket is closed, whoever closed it. */
  open: boolean;
  closedAt?: number;
  closeCode?: number;
  closeReason?: string;
  /** Messages the fake sent (hello, envelopes, disconnect), in order. */
  sent: Json[];
  /** Text frames the client sent, JSON-parsed (`{raw}` if they weren't JSON). */
  received: Json[];
  pingsReceived: number;
  pongsSent: number;
  pingsSent: number;
  pongsReceived: number;
}

export type SocketEnvelopeType = 'slash_commands' | 'interactive' | 'events_api';

export interface SocketSendOptions {
  /** Send on this connection (default: the newest open one). */
  connectionId?: string;
  /** Override the ack deadline (default `socketMode.ackTimeoutMs`, 3000 ms). */
  ackTimeoutMs?: number;
  /** Override `accepts_response_payload` (default: true for slash commands, view submissions and options). */
  acceptsResponsePayload?: boolean;
  /** events_api only: `retry_attempt` / `retry_reason` (default 0 / ''). */
  retryAttempt?: number;
  retryReason?: string;
}

/** The client's answer to an envelope. */
export interface SocketAck {
  envelope_id: string;
  /** What the app put in its ack (Bolt sends `{}` for a bare `ack()`); absent if the client sent none. */
  payload?: Json;
  /** The envelope the fake sent. */
  envelope: Json;
  connectionId: string;
  /** From sending the envelope to receiving the ack. */
  elapsedMs: number;
  /** Block Kit problems in `payload.blocks` (Slack would not show such a response). */
  invalidBlocks?: string[];
}

/** One HTTP request the fake answered, in completion order. */
export interface Call {
  /**
   * Web API method name (`chat.postMessage`), or a pseudo-method for the non-API URLs:
   * `@response_url` (a POST to a response_url) and `@upload` (bytes POSTed to an upload URL).
   */
  method: string;
  /** Parsed args (form or JSON; `blocks`/`attachments`/`view`/`files`/`metadata` JSON-parsed). `token` removed. */
  args: Record<string, Json>;
  /** Fake-clock epoch milliseconds when answered. */
  at: number;
  status: number;
  /** The response body (parsed object; a string for non-JSON bodies like injected 5xx pages). */
  response: Json;
  /** Set when the call was rejected for its Block Kit payload (or `msg_too_long`): the reasons. */
  invalidBlocks?: string[];
  /** Set when the answer came from `injectFault()`. */
  fault?: boolean;
}

export interface FakeMessage {
  type: 'message';
  channel: string;
  ts: string;
  thread_ts?: string;
  text: string;
  blocks?: Block[];
  attachments?: Json[];
  /** Author. The bot's messages have the bot user ID. */
  user: string;
  bot_id?: string;
  edited?: boolean;
  reply_count?: number;
  metadata?: Json;
  /** Files shared with this message (files.completeUploadExternal). */
  files?: { id: string; name: string; title: string }[];
}

export interface FakeEphemeral {
  channel: string;
  user: string;
  ts: string;
  thread_ts?: string;
  text: string;
  blocks?: Block[];
  via: 'chat.postEphemeral' | 'response_url';
}

export interface ResponseUrlContext {
  /** Channel the interaction happened in (where `in_channel` responses go). */
  channel?: string;
  /** User who interacted (who sees `ephemeral` responses). */
  user?: string;
  /** The message a block action came from: what `replace_original` / `delete_original` act on. */
  messageTs?: string;
}

export interface ResponseUrlPost {
  id: string;
  at: number;
  status: number;
  body: Json;
  response: Json;
  /** What the fake did with it. */
  effect: 'ephemeral' | 'in_channel' | 'replaced' | 'deleted' | 'rejected';
  invalidBlocks?: string[];
}

export interface FakeFile {
  id: string;
  filename: string;
  /** `length` declared to files.getUploadURLExternal. */
  length: number;
  title?: string;
  alt_text?: string;
  snippet_type?: string;
  /** Bytes POSTed to the upload URL (undefined until uploaded). */
  content?: Buffer;
  completed: boolean;
  channel_id?: string;
  thread_ts?: string;
  initial_comment?: string;
  /** ts of the message that shared the file, once completed into a channel. */
  shared_ts?: string;
}

export interface FakeView {
  id: string;
  /** The view as Slack stores it (with id, state, hash, …). */
  view: Json;
  trigger_id?: string;
  openedBy: 'views.open' | 'views.push';
}

export interface Fault {
  /** Method to fail, or `'*'` for any Web API method. */
  method: string;
  /** HTTP status: 500/502/503 send an HTML page like Slack's edge does; 429 sends `ratelimited` with Retry-After. */
  status?: number;
  /** A Slack error code returned as HTTP 200 `{ok:false,error}` (e.g. `channel_not_found`). */
  error?: string;
  /** How many matching calls to fail (default 1; `Infinity` for all until `clearFaults()`). */
  times?: number;
  /** Retry-After seconds for a 429 (default 1). */
  retryAfterSec?: number;
  /** Delay before answering (alone: a slow but otherwise normal answer). */
  delayMs?: number;
  /** Override the response body for `status` faults. */
  body?: string;
}

export interface WaitOptions {
  timeoutMs?: number;
  intervalMs?: number;
  /** Shown in the timeout error. */
  description?: string;
}

export interface FakeSlack {
  /** `http://127.0.0.1:PORT/api/` — the bot's SLACK_API_URL / WebClient `slackApiUrl`. */
  readonly apiUrl: string;
  /** `http://127.0.0.1:PORT/` */
  readonly baseUrl: string;
  readonly botToken: string;
  /** The app-level token (`xapp-…`) for Socket Mode: the bot's SLACK_APP_TOKEN. */
  readonly appToken: string;
  readonly botUserId: string;
  readonly calls: Call[];
  /** channel ID → current messages (posts, minus deletes, with updates applied), oldest first. */
  readonly messages: Map<string, FakeMessage[]>;
  readonly ephemerals: FakeEphemeral[];
  readonly responseUrlPosts: ResponseUrlPost[];
  readonly files: FakeFile[];
  readonly views: FakeView[];

  callsTo(method: string): Call[];
  /** Messages currently in a channel (top-level and replies), oldest first. */
  messagesIn(channel: string): FakeMessage[];
  /** Replies in a thread (excluding the parent), oldest first. */
  threadReplies(channel: string, threadTs: string): FakeMessage[];
  findMessage(channel: string, ts: string): FakeMessage | undefined;
  /** Seed a message as if someone else posted it (e.g. to test `cant_update_message`). Returns its ts. */
  addMessage(channel: string, msg: { text: string; user: string; thread_ts?: string; blocks?: Block[] }): string;
  /** Add or replace a channel. */
  addChannel(channel: FakeChannelSpec): void;

  /**
   * Poll `predicate` (every 20 ms by default) until it returns something other than undefined/null/false,
   * and resolve with that. On timeout (default 5 s) throws an error listing the recent calls. An exception
   * thrown by the predicate propagates immediately.
   */
  waitFor<T>(predicate: () => T | undefined | null | false, opts?: WaitOptions): Promise<Exclude<T, undefined | null | false>>;
  /** First call (from index `opts.since`, default 0) to `method` matching `predicate`. */
  waitForCall(method: string, predicate?: (call: Call) => boolean, opts?: WaitOptions & { since?: number }): Promise<Call>;

  injectFault(fault: Fault): void;
  clearFaults(): void;

  /** Number of HTTP 429 answers so far (rate limits and injected). */
  rateLimited(): number;
  setRateLimits(limits: RateLimitOptions | false): void;
  /** Calls (including response_url posts) rejected for their Block Kit payload. */
  invalidBlockCalls(): Call[];

  /**
   * A response_url on the fake. Like Slack's: usable 5 times within 30 minutes, then 404
   * `used_url` / `expired_url`. Pass the interaction context so `replace_original`,
   * `delete_original` and `in_channel` act on the right channel/message.
   */
  responseUrl(idOrContext?: string | (ResponseUrlContext & { id?: string })): string;
  /** A trigger_id the fake tracks: views.open rejects it after 3 s (`expired_trigger_id`) or on reuse. */
  triggerId(): string;

  /** Move the fake's clock forward (rate-limit refills, response_url and trigger expiry) without sleeping. */
  advanceClock(ms: number): void;
  /** Forget recorded traffic, messages, files, views, faults and rate-limit state (keeps channels/users). */
  reset(): void;
  /** Stop the server (idempotent). */
  close(): Promise<void>;

  // --- Socket Mode ---------------------------------------------------------------------------

  /** Every WebSocket connection so far (open and closed), oldest first. */
  socketConnections(): SocketConnection[];
  /**
   * Wait for an open connection (the fake sends `hello` as it opens), from index `opts.since` of
   * `socketConnections()` (default 0): pass the current count to wait for a *new* one, e.g. a reconnect.
   */
  waitForSocket(opts?: WaitOptions & { since?: number }): Promise<SocketConnection>;
  /**
   * Send an envelope (`{envelope_id, payload, type, accepts_response_payload}`) and resolve with the client's
   * ack. Rejects if there is no open connection, if the connection closes first, or after the ack timeout.
   */
  sendEnvelopeOverSocket(type: SocketEnvelopeType, payload: Json, opts?: SocketSendOptions): Promise<SocketAck>;
  /**
   * A `slash_commands` envelope whose payload has the same fields as the HTTP form (`slashCommandForm`),
   * as a JSON object of strings. `response_url` and `trigger_id` default to ones this fake tracks.
   */
  sendSlashCommandOverSocket(fields?: SlashCommandFields, opts?: SocketSendOptions): Promise<SocketAck>;
  /** An `interactive` envelope around `payload` (e.g. `blockActionPayload(…)`, `viewSubmissionPayload(…)`). */
  sendInteractiveOverSocket(payload: Json, opts?: SocketSendOptions): Promise<SocketAck>;
  /**
   * Send `{type:'disconnect', reason}` (default `refresh_requested`) on one connection or all open ones,
   * as Slack does before recycling a server; a well-behaved client closes and reconnects. With
   * `closeAfterMs` the fake closes the connection itself if the client hasn't by then.
   */
  disconnectSocket(opts?: { reason?: string; connectionId?: string; closeAfterMs?: number }): SocketConnection[];
  /** Cut connections without a close handshake (a network failure): the client sees code 1006. */
  dropSocket(connectionId?: string): SocketConnection[];
  /** Stop (false) or resume (true) answering the client's pings: a link that looks dead to the client. */
  setSocketPongs(enabled: boolean): void;
}

// ---------------------------------------------------------------------------------------------
// Rate limits
// ---------------------------------------------------------------------------------------------

/**
 * Defaults modelled on https://docs.slack.dev/apis/web-api/rate-limits: Tier 1 1+/min, Tier 2 20+/min,
 * Tier 3 50+/min, Tier 4 100+/min, "occasional bursts" allowed; chat.postMessage 1/s per channel with
 * short bursts. Slack doesn't publish burst sizes; these are deliberately small so a bot that hammers
 * chat.update (e.g. once per output line) meets 429s in a test, as it would in production.
 */
export const DEFAULT_RATE_LIMITS: Required<RateLimitOptions> = {
  postMessagePerChannel: { perMinute: 60, burst: 4 },
  tiers: {
    1: { perMinute: 1, burst: 1 },
    2: { perMinute: 20, burst: 5 },
    3: { perMinute: 50, burst: 10 },
    4: { perMinute: 100, burst: 20 },
  },
  methods: {},
};

/** Tier per method, as documented by Slack. chat.postMessage is "special" (per channel, above). */
const METHOD_TIERS: Record<string, Tier> = {
  'auth.test': 4, // "special", generous
  'chat.update': 3,
  'chat.delete': 3,
  'chat.postEphemeral': 4,
  'chat.getPermalink': 4,
  'conversations.info': 3,
  'users.info': 4,
  'usergroups.users.list': 2,
  'views.open': 4,
  'views.push': 4,
  'views.update': 4,
  'files.getUploadURLExternal': 4,
  'files.completeUploadExternal': 4,
};

class TokenBucket {
  private tokens: number;
  private last: number;
  constructor(
    private readonly rule: RateRule,
    now: number,
  ) {
    this.tokens = rule.burst;
    this.last = now;
  }
  /** Take a token; returns 0 if allowed, else the whole seconds until one is available (≥ 1). */
  take(now: number): number {
    const perMs = this.rule.perMinute / 60_000;
    this.tokens = Math.min(this.rule.burst, this.tokens + Math.max(0, now - this.last) * perMs);
    this.last = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - this.tokens) / perMs / 1000));
  }
}

function mergeLimits(limits: RateLimitOptions | false | undefined): Required<RateLimitOptions> | false {
  if (limits === false) return false;
  return {
    postMessagePerChannel: limits?.postMessagePerChannel ?? DEFAULT_RATE_LIMITS.postMessagePerChannel,
    tiers: { ...DEFAULT_RATE_LIMITS.tiers, ...limits?.tiers },
    methods: { ...DEFAULT_RATE_LIMITS.methods, ...limits?.methods },
  };
}

// ---------------------------------------------------------------------------------------------
// Block Kit validation (exported: renderer unit tests can use it without a server)
// ---------------------------------------------------------------------------------------------

const BLOCK_KIT_SCHEMA_URL = new URL('../schemas/slack-block-kit.schema.json', import.meta.url);

/** Slack's own limits for a message's blocks (views allow 100). */
export const MAX_MESSAGE_BLOCKS = 50;
export const MAX_VIEW_BLOCKS = 100;
export const MAX_TEXT_CHARS = 40_000;

interface BlockKitSchema {
  ajv: InstanceType<typeof Ajv2020>;
  id: string;
  root: ValidateFunction;
  /** block `type` → validator for that block's definition. */
  byType: Map<string, ValidateFunction>;
  /** element/composition-object `type` (button, mrkdwn, …) → validator, where the type names one definition. */
  nestedByType: Map<string, ValidateFunction>;
  views: { modal: ValidateFunction; home: ValidateFunction };
}

let schemaCache: BlockKitSchema | undefined;

/** Compile once per process: the schema is ~68 KB and compiling it takes a noticeable moment. */
function blockKitSchema(): BlockKitSchema {
  if (schemaCache) return schemaCache;
  const schema = JSON.parse(readFileSync(BLOCK_KIT_SCHEMA_URL, 'utf8')) as {
    $id: string;
    $defs: Record<string, { oneOf?: { $ref: string }[]; properties?: { type?: { const?: string } } }>;
  };
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  // Button/image URLs use `format: uri`. Without ajv-formats Ajv would ignore the keyword; Slack
  // does reject malformed URLs, so check that the string parses as an absolute URL.
  ajv.addFormat('uri', (s: string) => URL.canParse(s));
  ajv.addSchema(schema);
  const get = (ref: string): ValidateFunction => {
    const fn = ajv.getSchema(`${schema.$id}${ref}`);
    if (!fn) throw new Error(`slack-block-kit schema: cannot resolve ${ref}`);
    return fn;
  };
  // Map each block type to its definition via the schema's own `block` union, so per-block errors
  // come from the one branch that applies instead of all 21 `oneOf` branches.
  const byType = new Map<string, ValidateFunction>();
  for (const branch of schema.$defs.block?.oneOf ?? []) {
    const defName = branch.$ref.replace('#/$defs/', '');
    const typeConst = schema.$defs[defName]?.properties?.type?.const;
    if (typeConst) byType.set(typeConst, get(`#/$defs/${defName}`));
  }
  // Nested objects (elements, text objects) are discriminated by `type` too. Where a type names two
  // definitions (`image` block vs element), a nested one is the non-block definition.
  const candidates = new Map<string, string[]>();
  for (const [defName, def] of Object.entries(schema.$defs)) {
    const t = def.properties?.type?.const;
    if (typeof t === 'string') candidates.set(t, [...(candidates.get(t) ?? []), defName]);
  }
  const nestedByType = new Map<string, ValidateFunction>();
  for (const [t, defs] of candidates) {
    const nested = defs.length === 1 ? defs : defs.filter((d) => !d.endsWith('_block'));
    if (nested.length === 1 && nested[0]) nestedByType.set(t, get(`#/$defs/${nested[0]}`));
  }
  schemaCache = {
    ajv,
    id: schema.$id,
    root: get(''),
    byType,
    nestedByType,
    views: { modal: get('#/$defs/modal_view'), home: get('#/$defs/home_view') },
  };
  return schemaCache;
}

function describeAjvError(e: ErrorObject, pointerPrefix: string): string {
  const p = e.params as Record<string, unknown>;
  let msg = e.message ?? 'is invalid';
  if (e.keyword === 'additionalProperties') msg = `must NOT have additional property '${String(p.additionalProperty)}'`;
  else if (e.keyword === 'enum') msg = `must be one of ${JSON.stringify(p.allowedValues)}`;
  else if (e.keyword === 'const') msg = `must be ${JSON.stringify(p.allowedValue)}`;
  return `${msg} [json-pointer:${pointerPrefix}${e.instancePath}]`;
}

function valueAt(root: Json, instancePath: string): Json {
  let node = root;
  for (const seg of instancePath.split('/').slice(1)) {
    if (node === null || typeof node !== 'object') return undefined;
    node = node[seg.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return node;
}

/**
 * Validate `instance` and describe the failures. A `oneOf` over element types reports every branch's
 * complaints (dozens of "must be \"checkboxes\"" lines for one bad button); where the failing object
 * names its `type`, re-validate it against that type's definition alone and report only that.
 */
function explainErrors(s: BlockKitSchema, validate: ValidateFunction, instance: Json, pointer: string): string[] {
  if (validate(instance)) return [];
  const errors = [...(validate.errors ?? [])];
  // Outermost `oneOf` failures on typed objects (not the root: that is already the typed definition).
  const retargeted: { path: string; node: Json; fn: ValidateFunction }[] = [];
  const oneOfPaths = [...new Set(errors.filter((e) => e.keyword === 'oneOf' && e.instancePath !== '').map((e) => e.instancePath))];
  oneOfPaths.sort((a, b) => a.length - b.length);
  for (const path of oneOfPaths) {
    if (retargeted.some((r) => path.startsWith(`${r.path}/`))) continue;
    const node = valueAt(instance, path);
    const fn = node && typeof node === 'object' && typeof node.type === 'string' ? s.nestedByType.get(node.type) : undefined;
    if (fn) retargeted.push({ path, node, fn });
  }
  const under = (p: string, root: string): boolean => p === root || p.startsWith(`${root}/`);
  const out = errors.filter((e) => !retargeted.some((r) => under(e.instancePath, r.path))).map((e) => describeAjvError(e, pointer));
  for (const r of retargeted) {
    const own = explainErrors(s, r.fn, r.node, `${pointer}${r.path}`);
    // Valid as its own type but still failing the union: that type isn't allowed in this position.
    out.push(...(own.length ? own : [`type ${JSON.stringify(r.node.type)} is not allowed here [json-pointer:${pointer}${r.path}/type]`]));
  }
  return [...new Set(out)];
}

function textLength(v: unknown): number {
  return typeof v === 'string' ? v.length : 0;
}

/**
 * Limits Slack enforces whatever a schema says. The vendored schema covers most of these too; checking
 * them explicitly gives one clear message instead of a wall of `oneOf` noise.
 */
function explicitBlockLimits(blocks: Json[], maxBlocks: number, ptr: string): string[] {
  const out: string[] = [];
  if (blocks.length > maxBlocks) out.push(`must provide an array of no more than ${maxBlocks} items [json-pointer:${ptr}]`);
  blocks.forEach((block, i) => {
    if (!block || typeof block !== 'object') return;
    const bp = `${ptr}/${i}`;
    if (block.type === 'section') {
      if (textLength(block.text?.text) > 3000) out.push(`must be less than 3001 characters [json-pointer:${bp}/text/text]`);
      if (Array.isArray(block.fields)) {
        block.fields.forEach((f: Json, j: number) => {
          if (textLength(f?.text) > 2000) out.push(`must be less than 2001 characters [json-pointer:${bp}/fields/${j}/text]`);
        });
      }
    }
    if (block.type === 'header' && textLength(block.text?.text) > 150) {
      out.push(`must be less than 151 characters [json-pointer:${bp}/text/text]`);
    }
    // Buttons can sit in actions blocks, section accessories and newer containers: walk everything.
    const walk = (node: Json, path: string): void => {
      if (Array.isArray(node)) return node.forEach((n, k) => walk(n, `${path}/${k}`));
      if (!node || typeof node !== 'object') return;
      if (node.type === 'button') {
        if (textLength(node.value) > 2000) out.push(`must be less than 2001 characters [json-pointer:${path}/value]`);
        if (textLength(node.text?.text) > 75) out.push(`must be less than 76 characters [json-pointer:${path}/text/text]`);
      }
      for (const [k, v] of Object.entries(node)) if (v && typeof v === 'object') walk(v, `${path}/${k}`);
    };
    walk(block, bp);
  });
  return out;
}

export interface ValidateBlocksOptions {
  /** Default 50 (a message). Use 100 for views. */
  maxBlocks?: number;
  /** JSON pointer of the array in the request, for messages (default `/blocks`). */
  pointer?: string;
}

const MAX_REPORTED_ERRORS = 40;

/**
 * Validate a Block Kit `blocks` array like Slack does. Returns Slack-style messages
 * (`must … [json-pointer:/blocks/0/text]`); empty means valid.
 */
export function validateBlocks(blocks: unknown, opts: ValidateBlocksOptions = {}): string[] {
  const ptr = opts.pointer ?? '/blocks';
  if (!Array.isArray(blocks)) return [`must be an array [json-pointer:${ptr}]`];
  const s = blockKitSchema();
  const out = explicitBlockLimits(blocks, opts.maxBlocks ?? MAX_MESSAGE_BLOCKS, ptr);
  const reported = new Set(out.map((m) => m.slice(m.lastIndexOf('[json-pointer:'))));
  const add = (m: string): void => {
    const key = m.slice(m.lastIndexOf('[json-pointer:'));
    if (!reported.has(key) && !out.includes(m)) out.push(m);
  };
  let perBlockErrors = 0;
  blocks.forEach((block: Json, i) => {
    const bp = `${ptr}/${i}`;
    if (!block || typeof block !== 'object' || Array.isArray(block)) {
      add(`must be object [json-pointer:${bp}]`);
      perBlockErrors++;
      return;
    }
    const validate = s.byType.get(block.type);
    if (!validate) {
      add(`unsupported type: ${JSON.stringify(block.type)} [json-pointer:${bp}/type]`);
      perBlockErrors++;
      return;
    }
    const problems = explainErrors(s, validate, block, bp);
    if (problems.length) {
      perBlockErrors++;
      problems.forEach(add);
    }
  });
  // The schema's root is the authority; if it disagrees with the per-block pass (it shouldn't), say so.
  // Skip root `maxItems` (100): the message/view limit was checked above.
  if (perBlockErrors === 0 && !s.root(blocks)) {
    for (const e of s.root.errors ?? []) if (!(e.keyword === 'maxItems' && e.instancePath === '')) add(describeAjvError(e, ptr));
  }
  return out.slice(0, MAX_REPORTED_ERRORS);
}

/** Validate a view (views.open / views.push / views.update). Returns Slack-style messages; empty means valid. */
export function validateView(view: unknown, pointer = '/view'): string[] {
  if (!view || typeof view !== 'object' || Array.isArray(view)) return [`must be object [json-pointer:${pointer}]`];
  const v = view as Json;
  const s = blockKitSchema();
  const validate = v.type === 'modal' ? s.views.modal : v.type === 'home' ? s.views.home : undefined;
  if (!validate) return [`unsupported view type: ${JSON.stringify(v.type)} [json-pointer:${pointer}/type]`];
  const out: string[] = [];
  if (!validate(v)) {
    // Block errors are reported by validateBlocks below, one branch at a time.
    for (const e of validate.errors ?? []) {
      if (e.instancePath.startsWith('/blocks/')) continue;
      if (e.instancePath === '/blocks' && e.keyword === 'maxItems') continue; // reported by validateBlocks
      out.push(describeAjvError(e, pointer));
    }
  }
  if (Array.isArray(v.blocks)) {
    out.push(...validateBlocks(v.blocks, { maxBlocks: MAX_VIEW_BLOCKS, pointer: `${pointer}/blocks` }));
  }
  return [...new Set(out)].slice(0, MAX_REPORTED_ERRORS);
}

// ---------------------------------------------------------------------------------------------
// HTTP plumbing
// ---------------------------------------------------------------------------------------------

/** Args WebClient JSON-encodes into form fields; parsed back so tests see objects. */
const JSON_FIELDS = ['blocks', 'attachments', 'view', 'files', 'metadata'] as const;

type Args = Record<string, Json>;

interface Outcome {
  status?: number;
  body: Json;
  headers?: Record<string, string>;
  invalidBlocks?: string[];
  fault?: boolean;
}

const ok = (body: Args = {}): Outcome => ({ body: { ok: true, ...body } });
const slackError = (error: string, extra: Args = {}): Outcome => ({ body: { ok: false, error, ...extra } });
const invalidArguments = (...messages: string[]): Outcome =>
  slackError('invalid_arguments', { response_metadata: { messages: messages.map((m) => `[ERROR] ${m}`) } });

function blocksError(error: string, messages: string[]): Outcome {
  return {
    body: { ok: false, error, errors: messages, response_metadata: { messages: messages.map((m) => `[ERROR] ${m}`) } },
    invalidBlocks: messages,
  };
}

const truthy = (v: unknown): boolean => v === true || v === 'true' || v === '1' || v === 1;
const str = (v: unknown): string | undefined => (v === undefined || v === null ? undefined : String(v));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Multipart parsing via the WHATWG Request in Node ≥ 18 (no extra dependency). */
async function parseMultipart(contentType: string, raw: Buffer): Promise<FormData> {
  return new Request('http://fake.invalid/', { method: 'POST', headers: { 'content-type': contentType }, body: raw }).formData();
}

type ParsedArgs = { args: Args; formToken?: string } | { error: 'invalid_json' | 'invalid_form_data' };

async function parseArgs(contentType: string, raw: Buffer, query: URLSearchParams): Promise<ParsedArgs> {
  const args: Args = Object.fromEntries(query.entries());
  let formToken: string | undefined;
  const ct = contentType.split(';')[0]?.trim().toLowerCase() ?? '';
  if (raw.length > 0) {
    if (ct === 'application/json') {
      try {
        const parsed = JSON.parse(raw.toString('utf8')) as unknown;
        if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return { error: 'invalid_json' };
        Object.assign(args, parsed);
      } catch {
        return { error: 'invalid_json' };
      }
      // Slack ignores a token in a JSON body: JSON callers must use the Authorization header.
    } else if (ct === 'multipart/form-data') {
      try {
        const form = await parseMultipart(contentType, raw);
        for (const [k, v] of form.entries()) args[k] = typeof v === 'string' ? v : Buffer.from(await v.arrayBuffer());
      } catch {
        return { error: 'invalid_form_data' };
      }
      formToken = str(args.token);
    } else {
      // application/x-www-form-urlencoded (and text/plain, which Slack also parses as a form).
      for (const [k, v] of new URLSearchParams(raw.toString('utf8'))) args[k] = v;
      formToken = str(args.token);
    }
  } else {
    formToken = str(args.token);
  }
  delete args.token;
  for (const f of JSON_FIELDS) {
    if (typeof args[f] === 'string' && args[f] !== '') {
      try {
        args[f] = JSON.parse(args[f]);
      } catch {
        // Left as a string: the method answers e.g. `invalid_blocks_format`, like Slack.
      }
    }
  }
  return formToken === undefined ? { args } : { args, formToken };
}

/** Slack's 5xx pages come from its edge, not the API: HTML, not JSON. */
function errorPage(status: number): string {
  return `<html><head><title>${status}</title></head><body><h1>${status} Server Error</h1><p>Slack is having trouble right now (fake-slack injected fault).</p></body></html>`;
}

/** Epoch microseconds → Slack ts ("seconds.micros", six digits after the dot). */
function formatTs(micros: number): string {
  const whole = Math.floor(micros);
  return `${Math.floor(whole / 1e6)}.${String(whole % 1e6).padStart(6, '0')}`;
}

function summarizeCall(c: Call): string {
  const time = new Date(c.at).toISOString().slice(11, 23);
  const r = c.response;
  const outcome =
    r && typeof r === 'object' ? (r.ok ? 'ok' : String(r.error)) : String(r ?? '').slice(0, 40).replace(/\s+/g, ' ');
  const a = c.args;
  const bits: string[] = [];
  for (const k of ['channel', 'channel_id', 'ts', 'thread_ts', 'user', 'usergroup', 'file_id']) if (a[k] !== undefined) bits.push(`${k}=${String(a[k])}`);
  if (typeof a.text === 'string') bits.push(`text=${JSON.stringify(a.text.length > 60 ? `${a.text.slice(0, 60)}…` : a.text)}`);
  if (Array.isArray(a.blocks)) bits.push(`blocks=${a.blocks.length}`);
  if (c.invalidBlocks) bits.push(`invalid: ${c.invalidBlocks.slice(0, 2).join('; ')}`);
  return `  ${time} ${c.method} → ${c.status} ${outcome}${c.fault ? ' (fault)' : ''} ${bits.join(' ')}`.trimEnd();
}

// ---------------------------------------------------------------------------------------------
// The fake
// ---------------------------------------------------------------------------------------------

interface ChannelRecord {
  id: string;
  name: string;
  member: boolean;
  is_private: boolean;
  is_archived: boolean;
  is_im: boolean;
  user?: string;
  created: number;
}

interface ResponseUrlRecord {
  id: string;
  issuedAt: number;
  uses: number;
  ctx: ResponseUrlContext;
}

/** Slack's published response_url policy: "up to 5 times within 30 minutes". */
const RESPONSE_URL_MAX_USES = 5;
const RESPONSE_URL_TTL_MS = 30 * 60_000;
/** trigger_ids expire 3 seconds after they're issued. */
const TRIGGER_TTL_MS = 3_000;
const TRIGGER_ID_RE = /^\d+\.\d+\.[0-9a-f]+$/;
const USER_ID_RE = /^[UW][A-Z0-9]{2,}$/;
/** Methods that take the app-level token (and only it). */
const APP_TOKEN_METHODS = new Set(['apps.connections.open']);

interface SocketRecord {
  info: SocketConnection;
  ws: WebSocket;
  pingTimer?: NodeJS.Timeout;
  closeTimer?: NodeJS.Timeout;
}

interface PendingAck {
  socket: SocketRecord;
  envelope: Json;
  startedAt: number;
  timer: NodeJS.Timeout;
  resolve(ack: SocketAck): void;
  reject(err: Error): void;
}

function rawDataToBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

type Handler = (args: Args) => Outcome;

class FakeSlackServer implements FakeSlack {
  apiUrl = '';
  baseUrl = '';
  readonly botToken: string;
  readonly appToken: string;
  readonly botUserId: string;
  readonly calls: Call[] = [];
  readonly messages = new Map<string, FakeMessage[]>();
  readonly ephemerals: FakeEphemeral[] = [];
  readonly responseUrlPosts: ResponseUrlPost[] = [];
  readonly files: FakeFile[] = [];
  readonly views: FakeView[] = [];

  private readonly server: Server;
  private readonly channels = new Map<string, ChannelRecord>();
  private readonly users = new Map<string, FakeUserSpec>();
  private readonly userGroups: Record<string, string[]>;
  private readonly validate: boolean;
  private limits: Required<RateLimitOptions> | false;
  private buckets = new Map<string, TokenBucket>();
  private faults: (Fault & { remaining: number })[] = [];
  private responseUrls = new Map<string, ResponseUrlRecord>();
  private triggers = new Map<string, { issuedAt: number; used: boolean }>();
  private clockOffsetMs = 0;
  private lastTsMicros = 0;
  private counter = 0;
  private ratelimitedCount = 0;
  private readonly handlers: Record<string, Handler>;
  // Socket Mode
  private readonly wss: WebSocketServer;
  private readonly socketOpts: Required<SocketModeOptions>;
  /** The opaque `app_id` query parameter of link URLs (Slack's is hex, not the A… ID). */
  private readonly linkAppId = randomBytes(20).toString('hex');
  private readonly sockets: SocketRecord[] = [];
  private readonly socketTickets = new Map<string, { issuedAt: number; used: boolean }>();
  private readonly pendingAcks = new Map<string, PendingAck>();
  private socketCounter = 0;

  constructor(opts: FakeSlackOptions) {
    this.botToken = opts.botToken ?? DEFAULT_BOT_TOKEN;
    this.appToken = opts.appToken ?? DEFAULT_APP_TOKEN;
    this.socketOpts = { ackTimeoutMs: 3_000, pingIntervalMs: 10_000, answerPings: true, ...opts.socketMode };
    this.botUserId = opts.botUserId ?? DEFAULT_BOT_USER_ID;
    this.userGroups = { ...opts.userGroups };
    this.validate = opts.validateBlocks ?? true;
    this.limits = mergeLimits(opts.limits);
    for (const ch of opts.channels ?? [DEFAULT_CHANNEL]) this.addChannel(ch);
    this.users.set(this.botUserId, { id: this.botUserId, name: 'engramia', real_name: 'Engramia ChatOps', is_bot: true });
    for (const u of opts.users ?? []) this.users.set(u.id, u);
    if (this.validate) blockKitSchema(); // compile now rather than inside the first timed request

    this.handlers = {
      'auth.test': () => this.authTest(),
      'chat.postMessage': (a) => this.postMessage(a),
      'chat.update': (a) => this.update(a),
      'chat.delete': (a) => this.deleteMessage(a),
      'chat.postEphemeral': (a) => this.postEphemeral(a),
      'chat.getPermalink': (a) => this.getPermalink(a),
      'conversations.info': (a) => this.conversationsInfo(a),
      'users.info': (a) => this.usersInfo(a),
      'usergroups.users.list': (a) => this.usergroupUsers(a),
      'views.open': (a) => this.openView(a, 'views.open'),
      'views.push': (a) => this.openView(a, 'views.push'),
      'views.update': (a) => this.updateView(a),
      'files.getUploadURLExternal': (a) => this.getUploadURL(a),
      'files.completeUploadExternal': (a) => this.completeUpload(a),
      'apps.connections.open': () => this.openConnection(),
    };

    this.server = createServer((req, res) => {
      this.route(req, res).catch((err: unknown) => {
        // A bug in the fake must be loud, not look like a Slack outage the bot should retry.
        const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
        process.stderr.write(`fake-slack internal error: ${message}\n`);
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`fake-slack internal error: ${message}`);
      });
    });
    // Keep-alive sockets from undici would otherwise hold close() open.
    this.server.keepAliveTimeout = 1_000;
    // Socket Mode shares the port: WebSocket upgrades arrive on the same server. Pings are answered
    // by hand (not ws's autoPong) so a test can make the link look dead.
    this.wss = new WebSocketServer({ noServer: true, autoPong: false, clientTracking: false });
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.handleUpgrade(req, socket, head));
  }

  async listen(port = 0): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', () => resolve());
    });
    const { port: actual } = this.server.address() as AddressInfo;
    this.baseUrl = `http://127.0.0.1:${actual}/`;
    this.apiUrl = `${this.baseUrl}api/`;
  }

  // --- clock & ids --------------------------------------------------------------------------

  private now(): number {
    return Date.now() + this.clockOffsetMs;
  }

  advanceClock(ms: number): void {
    this.clockOffsetMs += ms;
  }

  /** Unique, strictly increasing Slack timestamps ("1732600000.000100"). */
  private nextTs(): string {
    const micros = Math.max(this.now() * 1000, this.lastTsMicros + 1);
    this.lastTsMicros = micros;
    return formatTs(micros);
  }

  private nextId(prefix: string): string {
    this.counter += 1;
    return `${prefix}0FAKE${String(this.counter).padStart(5, '0')}`;
  }

  triggerId(): string {
    this.counter += 1;
    // Slack's shape: "<digits>.<digits>.<hex>".
    const id = `${Math.floor(this.now() / 1000)}${this.counter}.${this.counter}.${randomBytes(16).toString('hex')}`;
    this.triggers.set(id, { issuedAt: this.now(), used: false });
    return id;
  }

  responseUrl(idOrContext?: string | (ResponseUrlContext & { id?: string })): string {
    const ctx = typeof idOrContext === 'object' ? idOrContext : {};
    const id = (typeof idOrContext === 'string' ? idOrContext : ctx.id) ?? randomBytes(12).toString('hex');
    const { id: _ignored, ...context } = ctx;
    this.responseUrls.set(id, { id, issuedAt: this.now(), uses: 0, ctx: context });
    return `${this.baseUrl}response/${encodeURIComponent(id)}`;
  }

  // --- state helpers ------------------------------------------------------------------------

  addChannel(spec: FakeChannelSpec): void {
    this.channels.set(spec.id, {
      id: spec.id,
      name: spec.name ?? spec.id.toLowerCase(),
      member: spec.member ?? true,
      is_private: spec.is_private ?? false,
      is_archived: spec.is_archived ?? false,
      is_im: spec.id.startsWith('D'),
      created: Math.floor(Date.now() / 1000) - 86_400,
    });
  }

  /** Channel by ID or name (`ops` / `#ops`); a user ID opens (or finds) the DM with that user, as Slack does. */
  private resolveChannel(raw: unknown): ChannelRecord | undefined {
    const v = str(raw)?.trim();
    if (!v) return undefined;
    const byId = this.channels.get(v);
    if (byId) return byId;
    const name = v.replace(/^#/, '');
    for (const ch of this.channels.values()) if (!ch.is_im && ch.name === name) return ch;
    if (USER_ID_RE.test(v)) {
      const dmId = `D${v.slice(1)}`;
      const existing = this.channels.get(dmId);
      if (existing) return existing;
      const dm: ChannelRecord = { id: dmId, name: dmId, member: true, is_private: true, is_archived: false, is_im: true, user: v, created: Math.floor(Date.now() / 1000) };
      this.channels.set(dmId, dm);
      return dm;
    }
    return undefined;
  }

  private channelMessages(channel: string): FakeMessage[] {
    let list = this.messages.get(channel);
    if (!list) {
      list = [];
      this.messages.set(channel, list);
    }
    return list;
  }

  messagesIn(channel: string): FakeMessage[] {
    return this.messages.get(channel) ?? [];
  }

  threadReplies(channel: string, threadTs: string): FakeMessage[] {
    return this.messagesIn(channel).filter((m) => m.thread_ts === threadTs && m.ts !== threadTs);
  }

  findMessage(channel: string, ts: string): FakeMessage | undefined {
    return this.messagesIn(channel).find((m) => m.ts === ts);
  }

  private storeMessage(channel: string, m: Omit<FakeMessage, 'type' | 'channel' | 'ts'>): FakeMessage {
    const ts = this.nextTs();
    const msg: FakeMessage = { type: 'message', channel, ts, ...m };
    if (msg.thread_ts !== undefined) {
      // Slack files a reply to a reply under the thread's parent.
      const parent = this.findMessage(channel, msg.thread_ts);
      if (parent?.thread_ts && parent.thread_ts !== parent.ts) msg.thread_ts = parent.thread_ts;
      const root = this.findMessage(channel, msg.thread_ts);
      if (root) {
        root.thread_ts = root.ts;
        root.reply_count = (root.reply_count ?? 0) + 1;
      }
    }
    this.channelMessages(channel).push(msg);
    return msg;
  }

  addMessage(channel: string, m: { text: string; user: string; thread_ts?: string; blocks?: Block[] }): string {
    const ch = this.resolveChannel(channel);
    if (!ch) throw new Error(`fake-slack addMessage: unknown channel ${channel}`);
    return this.storeMessage(ch.id, { text: m.text, user: m.user, ...(m.thread_ts ? { thread_ts: m.thread_ts } : {}), ...(m.blocks ? { blocks: m.blocks } : {}) }).ts;
  }

  /** The message object Slack returns in API responses. */
  private wireMessage(m: FakeMessage): Args {
    const { channel: _channel, edited, ...rest } = m;
    return {
      ...rest,
      ...(m.user === this.botUserId ? { bot_id: FAKE_BOT_ID, app_id: FAKE_APP_ID, team: FAKE_TEAM_ID } : {}),
      // Slack reports edits as {user, ts of the edit}; the wall clock is close enough (and doesn't consume a ts).
      ...(edited ? { edited: { user: this.botUserId, ts: formatTs(this.now() * 1000) } } : {}),
    };
  }

  // --- recording & queries ------------------------------------------------------------------

  callsTo(method: string): Call[] {
    return this.calls.filter((c) => c.method === method);
  }

  rateLimited(): number {
    return this.ratelimitedCount;
  }

  invalidBlockCalls(): Call[] {
    return this.calls.filter((c) => c.invalidBlocks !== undefined);
  }

  setRateLimits(limits: RateLimitOptions | false): void {
    this.limits = mergeLimits(limits);
    this.buckets.clear();
  }

  injectFault(fault: Fault): void {
    this.faults.push({ ...fault, remaining: fault.times ?? 1 });
  }

  clearFaults(): void {
    this.faults = [];
  }

  reset(): void {
    this.calls.length = 0;
    this.messages.clear();
    this.ephemerals.length = 0;
    this.responseUrlPosts.length = 0;
    this.files.length = 0;
    this.views.length = 0;
    this.faults = [];
    this.buckets.clear();
    this.responseUrls.clear();
    this.triggers.clear();
    this.ratelimitedCount = 0;
    // Open WebSockets stay connected (the client owns them); their traffic and closed ones are forgotten.
    this.socketTickets.clear();
    for (let i = this.sockets.length - 1; i >= 0; i--) if (!this.sockets[i]!.info.open) this.sockets.splice(i, 1);
    for (const s of this.sockets) {
      s.info.sent.length = 0;
      s.info.received.length = 0;
    }
  }

  private describeRecentCalls(n = 20): string {
    if (this.calls.length === 0) return 'fake-slack received no calls.';
    const recent = this.calls.slice(-n);
    const skipped = this.calls.length - recent.length;
    return [`fake-slack calls (${this.calls.length} total${skipped ? `, last ${recent.length} shown` : ''}):`, ...recent.map(summarizeCall)].join('\n');
  }

  async waitFor<T>(predicate: () => T | undefined | null | false, opts: WaitOptions = {}): Promise<Exclude<T, undefined | null | false>> {
    const timeoutMs = opts.timeoutMs ?? 5_000;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = predicate();
      if (v !== undefined && v !== null && v !== false) return v as Exclude<T, undefined | null | false>;
      if (Date.now() >= deadline) {
        const what = opts.description ? ` for ${opts.description}` : '';
        throw new Error(`fake-slack: timed out after ${timeoutMs} ms waiting${what}.\n${this.describeRecentCalls()}`);
      }
      await sleep(opts.intervalMs ?? 20);
    }
  }

  waitForCall(method: string, predicate?: (call: Call) => boolean, opts: WaitOptions & { since?: number } = {}): Promise<Call> {
    const since = opts.since ?? 0;
    return this.waitFor(() => this.calls.find((c, i) => i >= since && c.method === method && (!predicate || predicate(c))), {
      ...opts,
      description: opts.description ?? `a call to ${method}${predicate ? ' matching the predicate' : ''}`,
    });
  }

  // --- HTTP routing -------------------------------------------------------------------------

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.baseUrl || 'http://127.0.0.1/');
    const raw = await readBody(req);
    const contentType = req.headers['content-type'] ?? '';
    if (url.pathname.startsWith('/api/')) return this.handleApi(decodeURIComponent(url.pathname.slice(5)), req, res, raw, contentType, url.searchParams);
    if (url.pathname.startsWith('/response/') && req.method === 'POST') return this.handleResponseUrl(decodeURIComponent(url.pathname.slice(10)), res, raw, contentType);
    if (url.pathname.startsWith('/upload/v1/') && req.method === 'POST') return this.handleUpload(decodeURIComponent(url.pathname.slice(11)), res, raw, contentType);
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('Not Found');
  }

  private send(res: ServerResponse, call: Call, outcome: Outcome): void {
    const status = outcome.status ?? 200;
    const isText = typeof outcome.body === 'string';
    const payload = isText ? outcome.body : JSON.stringify(outcome.body);
    res.writeHead(status, {
      'content-type': isText ? 'text/html; charset=utf-8' : 'application/json; charset=utf-8',
      ...outcome.headers,
    });
    res.end(payload);
    call.status = status;
    call.response = outcome.body;
    call.at = this.now();
    if (outcome.invalidBlocks) call.invalidBlocks = outcome.invalidBlocks;
    if (outcome.fault) call.fault = true;
    if (status === 429) this.ratelimitedCount += 1;
    this.calls.push(call);
  }

  private takeFault(method: string): Fault | undefined {
    const f = this.faults.find((x) => x.remaining > 0 && (x.method === method || x.method === '*'));
    if (!f) return undefined;
    f.remaining -= 1;
    this.faults = this.faults.filter((x) => x.remaining > 0);
    return f;
  }

  private faultOutcome(f: Fault): Outcome | undefined {
    if (f.status === 429) {
      const retryAfter = f.retryAfterSec ?? 1;
      return { status: 429, headers: { 'retry-after': String(retryAfter) }, body: { ok: false, error: 'ratelimited' }, fault: true };
    }
    if (f.status !== undefined && f.status !== 200) return { status: f.status, body: f.body ?? errorPage(f.status), fault: true };
    if (f.error !== undefined) return { body: { ok: false, error: f.error }, fault: true };
    return undefined; // delay only
  }

  private rateLimit(method: string, args: Args): Outcome | undefined {
    if (!this.limits) return undefined;
    let rule = this.limits.methods[method];
    let key = method;
    if (!rule && method === 'chat.postMessage') {
      rule = this.limits.postMessagePerChannel;
      key = `${method}:${this.resolveChannel(args.channel)?.id ?? str(args.channel) ?? ''}`;
    }
    if (!rule) {
      const tier = METHOD_TIERS[method];
      rule = tier ? this.limits.tiers[tier] : undefined;
    }
    if (!rule) return undefined;
    let bucket = this.buckets.get(key);
    if (!bucket) {
      bucket = new TokenBucket(rule, this.now());
      this.buckets.set(key, bucket);
    }
    const retryAfter = bucket.take(this.now());
    if (retryAfter === 0) return undefined;
    return { status: 429, headers: { 'retry-after': String(retryAfter) }, body: { ok: false, error: 'ratelimited' } };
  }

  private async handleApi(method: string, req: IncomingMessage, res: ServerResponse, raw: Buffer, contentType: string, query: URLSearchParams): Promise<void> {
    const parsed = await parseArgs(contentType, raw, query);
    const args = 'args' in parsed ? parsed.args : {};
    const call: Call = { method, args, at: this.now(), status: 0, response: undefined };

    const fault = this.takeFault(method);
    if (fault?.delayMs) await sleep(fault.delayMs);
    const faulted = fault && this.faultOutcome(fault);
    if (faulted) return this.send(res, call, faulted);

    const handler = this.handlers[method];
    if (!handler) return this.send(res, call, { status: 404, body: { ok: false, error: 'unknown_method', req_method: method } });
    if ('error' in parsed) return this.send(res, call, slackError(parsed.error));

    const auth = req.headers.authorization;
    const token = auth?.startsWith('Bearer ') ? auth.slice(7).trim() : 'formToken' in parsed ? parsed.formToken : undefined;
    if (!token) return this.send(res, call, slackError('not_authed'));
    if (token !== this.botToken && token !== this.appToken) return this.send(res, call, slackError('invalid_auth'));
    // Slack keeps the token types apart: apps.connections.open wants the app-level token, the rest a bot token.
    if (APP_TOKEN_METHODS.has(method) !== (token === this.appToken)) return this.send(res, call, slackError('not_allowed_token_type'));

    const limited = this.rateLimit(method, args);
    if (limited) return this.send(res, call, limited);

    this.send(res, call, handler(args));
  }

  // --- shared checks ------------------------------------------------------------------------

  /** undefined = fine (or no blocks); otherwise the error to answer with. */
  private checkBlocks(raw: unknown, pointer = '/blocks'): Outcome | undefined {
    if (raw === undefined || raw === null || raw === '') return undefined;
    if (typeof raw === 'string' || !Array.isArray(raw)) return blocksError('invalid_blocks_format', [`must be a JSON array [json-pointer:${pointer}]`]);
    if (raw.length === 0 || !this.validate) return undefined;
    const problems = validateBlocks(raw, { maxBlocks: MAX_MESSAGE_BLOCKS, pointer });
    return problems.length ? blocksError('invalid_blocks', problems) : undefined;
  }

  private checkText(text: unknown): Outcome | undefined {
    if (typeof text === 'string' && text.length > MAX_TEXT_CHARS) {
      return blocksError('msg_too_long', [`text must be at most ${MAX_TEXT_CHARS} characters (got ${text.length}) [json-pointer:/text]`]);
    }
    return undefined;
  }

  /** Channel lookup + membership, for methods that write to a channel. */
  private writableChannel(raw: unknown): ChannelRecord | Outcome {
    const ch = this.resolveChannel(raw);
    if (!ch) return slackError('channel_not_found');
    if (ch.is_archived) return slackError('is_archived');
    if (!ch.member) return slackError('not_in_channel');
    return ch;
  }

  private hasContent(a: Args): boolean {
    const hasText = typeof a.text === 'string' ? a.text.length > 0 : a.text !== undefined && a.text !== null;
    return hasText || (Array.isArray(a.blocks) && a.blocks.length > 0) || (Array.isArray(a.attachments) && a.attachments.length > 0);
  }

  // --- methods ------------------------------------------------------------------------------

  private authTest(): Outcome {
    return ok({
      url: `https://${FAKE_TEAM_DOMAIN}.slack.com/`,
      team: FAKE_TEAM_NAME,
      user: 'engramia',
      team_id: FAKE_TEAM_ID,
      user_id: this.botUserId,
      bot_id: FAKE_BOT_ID,
      is_enterprise_install: false,
    });
  }

  private postMessage(a: Args): Outcome {
    const ch = this.writableChannel(a.channel);
    if (!('id' in ch)) return ch;
    const bad = this.checkBlocks(a.blocks) ?? this.checkText(a.text);
    if (bad) return bad;
    if (!this.hasContent(a)) return slackError('no_text');
    const msg = this.storeMessage(ch.id, {
      text: str(a.text) ?? '',
      user: this.botUserId,
      bot_id: FAKE_BOT_ID,
      ...(Array.isArray(a.blocks) && a.blocks.length ? { blocks: a.blocks } : {}),
      ...(Array.isArray(a.attachments) ? { attachments: a.attachments } : {}),
      ...(a.thread_ts ? { thread_ts: String(a.thread_ts) } : {}),
      ...(a.metadata ? { metadata: a.metadata } : {}),
    });
    return ok({ channel: ch.id, ts: msg.ts, message: this.wireMessage(msg) });
  }

  private update(a: Args): Outcome {
    const ch = this.resolveChannel(a.channel);
    if (!ch) return slackError('channel_not_found');
    const msg = a.ts ? this.findMessage(ch.id, String(a.ts)) : undefined;
    if (!msg) return slackError('message_not_found');
    if (msg.user !== this.botUserId) return slackError('cant_update_message');
    const bad = this.checkBlocks(a.blocks) ?? this.checkText(a.text);
    if (bad) return bad;
    if (a.text === undefined && a.blocks === undefined && a.attachments === undefined) return slackError('no_text');
    // Per Slack: omitted fields keep their previous value; `blocks: []` removes the blocks.
    if (a.text !== undefined) msg.text = String(a.text);
    if (Array.isArray(a.blocks)) {
      if (a.blocks.length) msg.blocks = a.blocks;
      else delete msg.blocks;
    }
    if (Array.isArray(a.attachments)) msg.attachments = a.attachments;
    if (a.metadata) msg.metadata = a.metadata;
    msg.edited = true;
    return ok({ channel: ch.id, ts: msg.ts, text: msg.text, message: this.wireMessage(msg) });
  }

  private deleteMessage(a: Args): Outcome {
    const ch = this.resolveChannel(a.channel);
    if (!ch) return slackError('channel_not_found');
    const list = this.messagesIn(ch.id);
    const idx = list.findIndex((m) => m.ts === str(a.ts));
    const msg = list[idx];
    if (!msg) return slackError('message_not_found');
    if (msg.user !== this.botUserId) return slackError('cant_delete_message');
    list.splice(idx, 1);
    return ok({ channel: ch.id, ts: msg.ts });
  }

  private postEphemeral(a: Args): Outcome {
    const ch = this.writableChannel(a.channel);
    if (!('id' in ch)) return ch;
    if (!a.user) return invalidArguments('missing required field: user');
    if (!USER_ID_RE.test(String(a.user))) return slackError('user_not_in_channel');
    const bad = this.checkBlocks(a.blocks) ?? this.checkText(a.text);
    if (bad) return bad;
    if (!this.hasContent(a)) return slackError('no_text');
    const ts = this.nextTs();
    this.ephemerals.push({
      channel: ch.id,
      user: String(a.user),
      ts,
      text: str(a.text) ?? '',
      ...(Array.isArray(a.blocks) && a.blocks.length ? { blocks: a.blocks } : {}),
      ...(a.thread_ts ? { thread_ts: String(a.thread_ts) } : {}),
      via: 'chat.postEphemeral',
    });
    return ok({ message_ts: ts });
  }

  private getPermalink(a: Args): Outcome {
    const ch = this.resolveChannel(a.channel);
    if (!ch) return slackError('channel_not_found');
    const msg = a.message_ts ? this.findMessage(ch.id, String(a.message_ts)) : undefined;
    if (!msg) return slackError('message_not_found');
    let permalink = `https://${FAKE_TEAM_DOMAIN}.slack.com/archives/${ch.id}/p${msg.ts.replace('.', '')}`;
    if (msg.thread_ts && msg.thread_ts !== msg.ts) permalink += `?thread_ts=${msg.thread_ts}&cid=${ch.id}`;
    return ok({ channel: ch.id, permalink });
  }

  private conversationsInfo(a: Args): Outcome {
    const ch = this.resolveChannel(a.channel);
    if (!ch) return slackError('channel_not_found');
    if (ch.is_im) return ok({ channel: { id: ch.id, created: ch.created, is_im: true, is_org_shared: false, user: ch.user, is_user_deleted: false } });
    return ok({
      channel: {
        id: ch.id,
        name: ch.name,
        name_normalized: ch.name,
        is_channel: !ch.is_private,
        is_group: ch.is_private,
        is_im: false,
        is_mpim: false,
        is_private: ch.is_private,
        is_archived: ch.is_archived,
        is_general: false,
        is_shared: false,
        is_ext_shared: false,
        is_org_shared: false,
        is_member: ch.member,
        created: ch.created,
        creator: 'U0FAKEADMN',
        context_team_id: FAKE_TEAM_ID,
        topic: { value: '', creator: '', last_set: 0 },
        purpose: { value: '', creator: '', last_set: 0 },
      },
    });
  }

  private usersInfo(a: Args): Outcome {
    const id = str(a.user);
    // Known users come from options; any other well-formed ID gets a plausible synthetic profile so
    // tests can use arbitrary user IDs, while malformed IDs fail like Slack.
    if (!id || !USER_ID_RE.test(id)) return slackError('user_not_found');
    const u = this.users.get(id) ?? { id };
    const name = u.name ?? id.toLowerCase();
    const realName = u.real_name ?? `User ${id}`;
    return ok({
      user: {
        id,
        team_id: FAKE_TEAM_ID,
        name,
        deleted: u.deleted ?? false,
        real_name: realName,
        tz: u.tz ?? 'Europe/Prague',
        tz_offset: 3600,
        is_admin: false,
        is_owner: false,
        is_bot: u.is_bot ?? false,
        is_app_user: false,
        updated: 1_700_000_000,
        profile: {
          real_name: realName,
          display_name: name,
          real_name_normalized: realName,
          display_name_normalized: name,
          ...(u.email ? { email: u.email } : {}),
          team: FAKE_TEAM_ID,
          ...(u.is_bot ? { bot_id: FAKE_BOT_ID } : {}),
        },
      },
    });
  }

  private usergroupUsers(a: Args): Outcome {
    const id = str(a.usergroup);
    if (!id) return invalidArguments('missing required field: usergroup');
    const members = this.userGroups[id];
    if (!members) return slackError('no_such_subteam');
    return ok({ users: [...members] });
  }

  /** Shared by views.open/views.push: trigger checks, then the view. */
  private checkTrigger(a: Args): Outcome | undefined {
    const trigger = str(a.trigger_id) ?? str(a.interactivity_pointer);
    if (!trigger) return invalidArguments('missing required field: trigger_id');
    if (!TRIGGER_ID_RE.test(trigger)) return slackError('invalid_trigger_id');
    const tracked = this.triggers.get(trigger);
    if (tracked) {
      if (tracked.used) return slackError('exchanged_trigger_id');
      if (this.now() - tracked.issuedAt > TRIGGER_TTL_MS) return slackError('expired_trigger_id');
      tracked.used = true;
    }
    return undefined;
  }

  /**
   * Parse and validate `view`. Slack answers an invalid view (blocks included) with
   * `invalid_arguments` plus `[ERROR] … [json-pointer:/view/…]` messages, not `invalid_blocks`.
   */
  private checkView(a: Args): Outcome | undefined {
    if (a.view === undefined || a.view === '') return invalidArguments('missing required field: view');
    if (typeof a.view !== 'object' || a.view === null || Array.isArray(a.view)) return invalidArguments('view must be a JSON object [json-pointer:/view]');
    if (!this.validate) return undefined;
    const problems = validateView(a.view);
    if (!problems.length) return undefined;
    return { ...invalidArguments(...problems), invalidBlocks: problems };
  }

  private storedView(view: Json, id: string): Json {
    return {
      id,
      team_id: FAKE_TEAM_ID,
      state: { values: {} },
      hash: `${Math.floor(this.now() / 1000)}.${randomBytes(4).toString('hex')}`,
      private_metadata: '',
      callback_id: '',
      external_id: '',
      clear_on_close: false,
      notify_on_close: false,
      close: null,
      submit: null,
      previous_view_id: null,
      root_view_id: id,
      app_id: FAKE_APP_ID,
      app_installed_team_id: FAKE_TEAM_ID,
      bot_id: FAKE_BOT_ID,
      ...view,
    };
  }

  private openView(a: Args, method: 'views.open' | 'views.push'): Outcome {
    const bad = this.checkView(a) ?? this.checkTrigger(a);
    if (bad) return bad;
    const view = this.storedView(a.view, this.nextId('V'));
    this.views.push({ id: view.id, view, openedBy: method, ...(a.trigger_id ? { trigger_id: String(a.trigger_id) } : {}) });
    return ok({ view });
  }

  private updateView(a: Args): Outcome {
    const bad = this.checkView(a);
    if (bad) return bad;
    const existing = this.views.find((v) => (a.view_id && v.id === a.view_id) || (a.external_id && v.view.external_id === a.external_id));
    if (!existing) return slackError('not_found');
    if (a.hash && a.hash !== existing.view.hash) return slackError('hash_conflict');
    existing.view = this.storedView(a.view, existing.id);
    return ok({ view: existing.view });
  }

  private getUploadURL(a: Args): Outcome {
    const filename = str(a.filename);
    const length = Number(a.length);
    if (!filename) return invalidArguments('missing required field: filename');
    if (a.length === undefined || !Number.isInteger(length) || length < 1) return invalidArguments('length must be a positive integer [json-pointer:/length]');
    const id = this.nextId('F');
    this.files.push({
      id,
      filename,
      length,
      ...(a.alt_text ? { alt_text: String(a.alt_text) } : {}),
      ...(a.snippet_type ? { snippet_type: String(a.snippet_type) } : {}),
      completed: false,
    });
    return ok({ upload_url: `${this.baseUrl}upload/v1/${id}`, file_id: id });
  }

  private completeUpload(a: Args): Outcome {
    const list = a.files;
    if (!Array.isArray(list) || list.length === 0) return invalidArguments('files must be a non-empty JSON array [json-pointer:/files]');
    const files: FakeFile[] = [];
    for (const entry of list as Json[]) {
      const f = this.files.find((x) => x.id === entry?.id);
      // Unknown IDs and files whose bytes never arrived both fail: the bot skipped a step.
      if (!f || f.content === undefined || f.completed) return slackError('file_not_found');
      files.push(f);
    }
    const channelArg = a.channel_id ?? a.channels;
    let ch: ChannelRecord | undefined;
    if (channelArg !== undefined) {
      const found = this.writableChannel(String(channelArg).split(',')[0]);
      if (!('id' in found)) return found;
      ch = found;
    }
    const bad = this.checkBlocks(a.blocks) ?? this.checkText(a.initial_comment);
    if (bad) return bad;
    (list as Json[]).forEach((entry, i) => {
      const f = files[i];
      if (!f) return;
      f.completed = true;
      f.title = str(entry?.title) ?? f.filename;
      if (ch) f.channel_id = ch.id;
      if (a.thread_ts) f.thread_ts = String(a.thread_ts);
      if (a.initial_comment) f.initial_comment = String(a.initial_comment);
    });
    if (ch) {
      // Slack shares the files with a message from the uploader in the channel/thread.
      const msg = this.storeMessage(ch.id, {
        text: str(a.initial_comment) ?? '',
        user: this.botUserId,
        bot_id: FAKE_BOT_ID,
        ...(a.thread_ts ? { thread_ts: String(a.thread_ts) } : {}),
        ...(Array.isArray(a.blocks) && a.blocks.length ? { blocks: a.blocks } : {}),
        files: files.map((f) => ({ id: f.id, name: f.filename, title: f.title ?? f.filename })),
      });
      for (const f of files) f.shared_ts = msg.ts;
    }
    return ok({
      files: files.map((f) => ({
        id: f.id,
        created: Math.floor(this.now() / 1000),
        timestamp: Math.floor(this.now() / 1000),
        name: f.filename,
        title: f.title,
        mimetype: 'text/plain',
        filetype: f.snippet_type ?? 'text',
        user: this.botUserId,
        size: f.content?.length ?? 0,
        url_private: `https://files.slack.com/files-pri/${FAKE_TEAM_ID}-${f.id}/${encodeURIComponent(f.filename)}`,
        permalink: `https://${FAKE_TEAM_DOMAIN}.slack.com/files/${this.botUserId}/${f.id}/${encodeURIComponent(f.filename)}`,
        channels: f.channel_id ? [f.channel_id] : [],
      })),
    });
  }

  // --- non-API URLs -------------------------------------------------------------------------

  private async handleUpload(fileId: string, res: ServerResponse, raw: Buffer, contentType: string): Promise<void> {
    const call: Call = { method: '@upload', args: { file_id: fileId, bytes: raw.length }, at: this.now(), status: 0, response: undefined };
    const f = this.files.find((x) => x.id === fileId);
    if (!f || f.completed) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('Not Found');
      Object.assign(call, { status: 404, response: 'Not Found' });
      this.calls.push(call);
      return;
    }
    // WebClient posts multipart with the bytes in a field; curl-style callers post raw bytes. Accept both.
    let content = raw;
    if (contentType.toLowerCase().startsWith('multipart/form-data')) {
      const form = await parseMultipart(contentType, raw);
      for (const [, v] of form.entries()) {
        if (typeof v !== 'string') {
          content = Buffer.from(await v.arrayBuffer());
          break;
        }
      }
    }
    f.content = content;
    call.args.bytes = content.length;
    const body = `OK - ${content.length}`;
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(body);
    Object.assign(call, { status: 200, response: body });
    this.calls.push(call);
  }

  private async handleResponseUrl(id: string, res: ServerResponse, raw: Buffer, contentType: string): Promise<void> {
    const parsed = await parseArgs(contentType.startsWith('application/x-www-form-urlencoded') || contentType.startsWith('multipart/') ? contentType : 'application/json', raw, new URLSearchParams());
    const body: Args = 'args' in parsed ? parsed.args : {};
    const call: Call = { method: '@response_url', args: { id, ...body }, at: this.now(), status: 0, response: undefined };
    const finish = (status: number, response: Json, effect: ResponseUrlPost['effect'], invalidBlocks?: string[]): void => {
      const post: ResponseUrlPost = { id, at: this.now(), status, body, response, effect, ...(invalidBlocks ? { invalidBlocks } : {}) };
      this.responseUrlPosts.push(post);
      this.send(res, call, { status, body: response, ...(invalidBlocks ? { invalidBlocks } : {}) });
    };

    const rec = this.responseUrls.get(id);
    if (!rec) return finish(404, { ok: false, error: 'invalid_url' }, 'rejected');
    if (this.now() - rec.issuedAt > RESPONSE_URL_TTL_MS) return finish(404, { ok: false, error: 'expired_url' }, 'rejected');
    if (rec.uses >= RESPONSE_URL_MAX_USES) return finish(404, { ok: false, error: 'used_url' }, 'rejected');
    if ('error' in parsed) return finish(400, { ok: false, error: parsed.error }, 'rejected');

    const deleteOriginal = truthy(body.delete_original);
    if (!deleteOriginal) {
      const bad = this.checkBlocks(body.blocks) ?? this.checkText(body.text);
      if (bad) return finish(400, bad.body, 'rejected', bad.invalidBlocks);
      if (!this.hasContent(body)) return finish(400, { ok: false, error: 'no_text' }, 'rejected');
    }
    rec.uses += 1;

    const { channel, user, messageTs } = rec.ctx;
    const blocks = Array.isArray(body.blocks) && body.blocks.length ? { blocks: body.blocks as Block[] } : {};
    const original = channel && messageTs ? this.findMessage(channel, messageTs) : undefined;
    if (deleteOriginal) {
      if (original) this.messagesIn(original.channel).splice(this.messagesIn(original.channel).indexOf(original), 1);
      return finish(200, { ok: true }, 'deleted');
    }
    if (truthy(body.replace_original) && original) {
      original.text = str(body.text) ?? '';
      if (blocks.blocks) original.blocks = blocks.blocks;
      else delete original.blocks;
      original.edited = true;
      return finish(200, { ok: true }, 'replaced');
    }
    if (body.response_type === 'in_channel' && channel) {
      this.storeMessage(channel, { text: str(body.text) ?? '', user: this.botUserId, bot_id: FAKE_BOT_ID, ...blocks, ...(body.thread_ts ? { thread_ts: String(body.thread_ts) } : {}) });
      return finish(200, { ok: true }, 'in_channel');
    }
    this.ephemerals.push({
      channel: channel ?? '',
      user: user ?? '',
      ts: this.nextTs(),
      text: str(body.text) ?? '',
      ...blocks,
      ...(body.thread_ts ? { thread_ts: String(body.thread_ts) } : {}),
      via: 'response_url',
    });
    return finish(200, { ok: true }, 'ephemeral');
  }

  // --- Socket Mode ----------------------------------------------------------------------------

  /** apps.connections.open: a one-time link URL on this server. */
  private openConnection(): Outcome {
    const ticket = randomUUID();
    this.socketTickets.set(ticket, { issuedAt: this.now(), used: false });
    const wsBase = this.baseUrl.replace(/^http/, 'ws');
    return ok({ url: `${wsBase}link/?ticket=${ticket}&app_id=${this.linkAppId}` });
  }

  private handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', this.baseUrl || 'http://127.0.0.1/');
    const ticket = url.searchParams.get('ticket') ?? '';
    const call: Call = { method: '@socket', args: { path: `${url.pathname}${url.search}` }, at: this.now(), status: 0, response: undefined };
    const refuse = (status: number, text: string): void => {
      // Before the upgrade it is plain HTTP: answer and hang up.
      socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`);
      Object.assign(call, { status, response: text });
      this.calls.push(call);
    };
    socket.on('error', () => undefined); // a client that vanishes mid-handshake is not the fake's problem
    if (url.pathname !== '/link/' && url.pathname !== '/link') return refuse(404, 'Not Found');
    const rec = this.socketTickets.get(ticket);
    // Unknown, reused or foreign tickets: the link is refused (Slack's own answer isn't documented).
    if (!rec || rec.used || url.searchParams.get('app_id') !== this.linkAppId) return refuse(401, 'Unauthorized');
    rec.used = true;
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      Object.assign(call, { status: 101, response: 'Switching Protocols' });
      this.calls.push(call);
      this.onSocket(ws, `${url.pathname}${url.search}`);
    });
  }

  private openSockets(): SocketRecord[] {
    return this.sockets.filter((s) => s.info.open);
  }

  private onSocket(ws: WebSocket, path: string): void {
    this.socketCounter += 1;
    const info: SocketConnection = {
      id: `ws${this.socketCounter}`,
      path,
      host: `applink-fake-${this.socketCounter}`,
      openedAt: this.now(),
      open: true,
      sent: [],
      received: [],
      pingsReceived: 0,
      pongsSent: 0,
      pingsSent: 0,
      pongsReceived: 0,
    };
    const rec: SocketRecord = { info, ws };
    this.sockets.push(rec);
    ws.on('message', (data: RawData, isBinary: boolean) => this.onSocketMessage(rec, data, isBinary));
    ws.on('ping', (data: Buffer) => {
      info.pingsReceived += 1;
      if (this.socketOpts.answerPings && ws.readyState === ws.OPEN) {
        ws.pong(data);
        info.pongsSent += 1;
      }
    });
    ws.on('pong', () => {
      info.pongsReceived += 1;
    });
    ws.on('close', (code: number, reason: Buffer) => this.onSocketClose(rec, code, reason.toString('utf8')));
    ws.on('error', () => undefined); // 'close' follows and says what happened
    if (this.socketOpts.pingIntervalMs > 0) {
      rec.pingTimer = setInterval(() => {
        if (ws.readyState !== ws.OPEN) return;
        ws.ping(Buffer.from(`ping from fake-slack ${Date.now()}`));
        info.pingsSent += 1;
      }, this.socketOpts.pingIntervalMs);
      rec.pingTimer.unref();
    }
    this.sendOnSocket(rec, {
      type: 'hello',
      num_connections: this.openSockets().length,
      debug_info: { host: info.host, build_number: 1, approximate_connection_time: 18060 },
      connection_info: { app_id: FAKE_APP_ID },
    });
  }

  private sendOnSocket(rec: SocketRecord, msg: Json): void {
    rec.info.sent.push(msg);
    rec.ws.send(JSON.stringify(msg));
  }

  private onSocketMessage(rec: SocketRecord, data: RawData, isBinary: boolean): void {
    const text = rawDataToBuffer(data).toString('utf8');
    let msg: Json;
    try {
      msg = isBinary ? { raw: text, binary: true } : JSON.parse(text);
    } catch {
      msg = { raw: text };
    }
    rec.info.received.push(msg);
    const id = msg && typeof msg === 'object' ? msg.envelope_id : undefined;
    const pending = typeof id === 'string' ? this.pendingAcks.get(id) : undefined;
    if (!pending) return; // a stray or late ack: recorded in `received`, nothing waits for it
    this.pendingAcks.delete(id);
    clearTimeout(pending.timer);
    const ack: SocketAck = {
      envelope_id: id,
      ...(msg.payload !== undefined ? { payload: msg.payload } : {}),
      envelope: pending.envelope,
      connectionId: rec.info.id,
      elapsedMs: performance.now() - pending.startedAt,
    };
    const blocks = msg.payload?.blocks;
    if (this.validate && blocks !== undefined && blocks !== null && !(Array.isArray(blocks) && blocks.length === 0)) {
      const problems = validateBlocks(blocks);
      if (problems.length) ack.invalidBlocks = problems;
    }
    pending.resolve(ack);
  }

  private onSocketClose(rec: SocketRecord, code: number, reason: string): void {
    Object.assign(rec.info, { open: false, closedAt: this.now(), closeCode: code, closeReason: reason });
    clearInterval(rec.pingTimer);
    clearTimeout(rec.closeTimer);
    for (const [id, pending] of this.pendingAcks) {
      if (pending.socket !== rec) continue;
      this.pendingAcks.delete(id);
      clearTimeout(pending.timer);
      pending.reject(new Error(`fake-slack: Socket Mode connection ${rec.info.id} closed (code ${code}) before the client acked ${pending.envelope.type} envelope ${id}.\n${this.describeSocket(rec)}`));
    }
  }

  private describeSocket(rec: SocketRecord): string {
    const i = rec.info;
    const last = i.received.slice(-5).map((m) => `  ← ${JSON.stringify(m).slice(0, 200)}`);
    return [
      `${i.id} (${i.open ? 'open' : `closed, code ${i.closeCode ?? '?'}`}): sent ${i.sent.length} message(s), received ${i.received.length}, pings in/out ${i.pingsReceived}/${i.pingsSent}`,
      ...(last.length ? [`last messages from the client:`, ...last] : ['the client sent nothing.']),
    ].join('\n');
  }

  socketConnections(): SocketConnection[] {
    return this.sockets.map((s) => s.info);
  }

  waitForSocket(opts: WaitOptions & { since?: number } = {}): Promise<SocketConnection> {
    const since = opts.since ?? 0;
    return this.waitFor(() => this.sockets.find((s, i) => i >= since && s.info.open)?.info, {
      ...opts,
      description: opts.description ?? `an open Socket Mode connection${since ? ` (index ≥ ${since})` : ''}`,
    });
  }

  private pickSocket(connectionId?: string): SocketRecord {
    if (connectionId !== undefined) {
      const s = this.sockets.find((x) => x.info.id === connectionId);
      if (!s) throw new Error(`fake-slack: no Socket Mode connection ${connectionId}`);
      if (!s.info.open) throw new Error(`fake-slack: Socket Mode connection ${connectionId} is closed`);
      return s;
    }
    const open = this.openSockets();
    const newest = open[open.length - 1];
    if (!newest) {
      const opened = this.callsTo('apps.connections.open');
      throw new Error(
        `fake-slack: no open Socket Mode connection to send on (${this.sockets.length} closed; apps.connections.open called ${opened.length} time(s)` +
          `${opened.length ? `, last answer ${JSON.stringify(opened[opened.length - 1]?.response)}` : ''}). Is the app in Socket Mode, and did it start? Use waitForSocket() first.`,
      );
    }
    return newest;
  }

  async sendEnvelopeOverSocket(type: SocketEnvelopeType, payload: Json, opts: SocketSendOptions = {}): Promise<SocketAck> {
    const rec = this.pickSocket(opts.connectionId);
    const envelopeId = randomUUID();
    const defaultAccepts = type === 'slash_commands' || (type === 'interactive' && (payload?.type === 'view_submission' || payload?.type === 'block_suggestion'));
    const envelope: Json = {
      envelope_id: envelopeId,
      payload,
      type,
      accepts_response_payload: opts.acceptsResponsePayload ?? defaultAccepts,
      ...(type === 'events_api' ? { retry_attempt: opts.retryAttempt ?? 0, retry_reason: opts.retryReason ?? '' } : {}),
    };
    const timeoutMs = opts.ackTimeoutMs ?? this.socketOpts.ackTimeoutMs;
    return new Promise<SocketAck>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pendingAcks.delete(envelopeId);
        reject(
          new Error(
            `fake-slack: no ack for ${type} envelope ${envelopeId} on ${rec.info.id} within ${timeoutMs} ms; Slack would give up ` +
              `(the user sees the command fail with operation_timeout).\n${this.describeSocket(rec)}`,
          ),
        );
      }, timeoutMs);
      this.pendingAcks.set(envelopeId, { socket: rec, envelope, startedAt: performance.now(), timer, resolve, reject });
      this.sendOnSocket(rec, envelope);
    });
  }

  sendSlashCommandOverSocket(fields: SlashCommandFields = {}, opts: SocketSendOptions = {}): Promise<SocketAck> {
    // Same fields, same defaults and order as the HTTP form; Socket Mode carries them as JSON strings.
    const payload: Record<string, string> = Object.fromEntries(new URLSearchParams(slashCommandForm(fields)));
    if (fields.response_url === undefined) payload.response_url = this.responseUrl({ ...(payload.channel_id ? { channel: payload.channel_id } : {}), ...(payload.user_id ? { user: payload.user_id } : {}) });
    if (fields.trigger_id === undefined) payload.trigger_id = this.triggerId();
    return this.sendEnvelopeOverSocket('slash_commands', payload, opts);
  }

  sendInteractiveOverSocket(payload: Json, opts: SocketSendOptions = {}): Promise<SocketAck> {
    return this.sendEnvelopeOverSocket('interactive', payload, opts);
  }

  disconnectSocket(opts: { reason?: string; connectionId?: string; closeAfterMs?: number } = {}): SocketConnection[] {
    const targets = opts.connectionId !== undefined ? [this.pickSocket(opts.connectionId)] : this.openSockets();
    for (const rec of targets) {
      this.sendOnSocket(rec, { type: 'disconnect', reason: opts.reason ?? 'refresh_requested', debug_info: { host: rec.info.host } });
      if (opts.closeAfterMs !== undefined) {
        clearTimeout(rec.closeTimer);
        rec.closeTimer = setTimeout(() => {
          if (rec.ws.readyState === rec.ws.OPEN) rec.ws.close(1001, 'server going away');
        }, opts.closeAfterMs);
        rec.closeTimer.unref();
      }
    }
    return targets.map((r) => r.info);
  }

  dropSocket(connectionId?: string): SocketConnection[] {
    const targets = connectionId !== undefined ? [this.pickSocket(connectionId)] : this.openSockets();
    for (const rec of targets) rec.ws.terminate();
    return targets.map((r) => r.info);
  }

  setSocketPongs(enabled: boolean): void {
    this.socketOpts.answerPings = enabled;
  }

  /** Idempotent, so tests can close in both a test and an afterEach. */
  close(): Promise<void> {
    // Upgraded sockets are no longer the HTTP server's: end them here or close() would wait on them.
    for (const rec of this.sockets) {
      clearInterval(rec.pingTimer);
      clearTimeout(rec.closeTimer);
      if (rec.ws.readyState !== rec.ws.CLOSED) rec.ws.terminate();
    }
    this.wss.close();
    if (!this.server.listening) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.server.close((err) => (err ? reject(err) : resolve()));
      this.server.closeAllConnections();
    });
  }
}

/** Start a fake Slack Web API on 127.0.0.1 (a free port unless `port` is given). */
export async function startFakeSlack(opts: FakeSlackOptions = {}): Promise<FakeSlack> {
  const fake = new FakeSlackServer(opts);
  await fake.listen(opts.port);
  return fake;
}
