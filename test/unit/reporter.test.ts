// The job reporter against a scripted Outbox: what reaches "Slack", in which order, and what happens when Slack
// fails for a while, refuses a message, or never comes back. Intervals are tens of milliseconds.
import { afterEach, describe, expect, it } from 'vitest';
import { ChatOpsError, ErrorCode } from '../../src/errors.js';
import { JobReporter, ReporterRegistry, type ReporterOptions } from '../../src/jobs/reporter.js';
import { classifySlackFailure } from '../../src/slack/failure.js';
import type { Origin, Outbox, PostedRef } from '../../src/jobs/types.js';
import { createLogger } from '../../src/logger.js';
import type { Msg } from '../../src/render/model.js';
import { gateMessageKey } from '../../src/runbooks/gates.js';

const origin: Origin = { transport: 'slack', channel: 'C0OPS', user: 'U01ALICE' };

const msg = (text: string): Msg => ({ summary: text, parts: [{ type: 'section', text }] });

function slackError(slackError: string, extra: Record<string, unknown> = {}): ChatOpsError {
  return new ChatOpsError(ErrorCode.SlackApiError, `chat.postMessage failed: ${slackError}`, { method: 'chat.postMessage', slackError, ...extra });
}
const down = () => slackError('slack_webapi_http_error', { status: 500 });

interface Call {
  method: 'post' | 'update' | 'upload';
  at: number;
  text: string;
  threadTs?: string;
  ts?: string;
  ok: boolean;
}

/** Records every call; `fault` decides, per call, whether Slack fails it. */
class ScriptedOutbox implements Outbox {
  calls: Call[] = [];
  // It fails the way Slack's outbox does, so it classifies the way Slack's outbox does.
  classify = classifySlackFailure;
  fault: (c: Omit<Call, 'ok'>) => Error | undefined = () => undefined;
  #n = 0;

  async post(o: Origin, m: Msg, opts: { threadTs?: string } = {}): Promise<PostedRef> {
    this.#record({ method: 'post', at: Date.now(), text: m.summary, ...(opts.threadTs ? { threadTs: opts.threadTs } : {}) });
    return { channel: o.channel, ts: `1700000000.${String(++this.#n).padStart(6, '0')}` };
  }
  async update(ref: PostedRef, m: Msg): Promise<void> {
    this.#record({ method: 'update', at: Date.now(), text: m.summary, ts: ref.ts });
  }
  async upload(_o: Origin, f: { threadTs?: string; title: string }): Promise<void> {
    this.#record({ method: 'upload', at: Date.now(), text: f.title, ...(f.threadTs ? { threadTs: f.threadTs } : {}) });
  }
  async permalink(): Promise<string | undefined> {
    return undefined;
  }
  #record(c: Omit<Call, 'ok'>): void {
    const err = this.fault(c);
    this.calls.push({ ...c, ok: !err });
    if (err) throw err;
  }
  ok(method?: Call['method']): Call[] {
    return this.calls.filter((c) => c.ok && (!method || c.method === method));
  }
}

const logs: string[] = [];
const log = createLogger({ level: 'debug', destination: { write: (s: string) => void logs.push(s) } });
const reporters: JobReporter[] = [];

function reporter(outbox: Outbox, opts: Partial<ReporterOptions> = {}): JobReporter {
  const r = new JobReporter(origin, { outbox, log, minUpdateIntervalMs: 30, startWaitMs: 50, retryMinMs: 10, retryFastMaxMs: 40, retryMaxMs: 80, ...opts });
  reporters.push(r);
  return r;
}

async function until<T>(pred: () => T | undefined | false, timeoutMs = 3000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = pred();
    if (v) return v;
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

afterEach(() => {
  for (const r of reporters.splice(0)) r.stop();
  logs.length = 0;
});

describe('JobReporter: order and coalescing', () => {
  it('posts the card first, then the replies in order in its thread; a file and a reply update keep their place', async () => {
    const out = new ScriptedOutbox();
    const r = reporter(out);
    const card = await r.start(msg('card v1'));
    expect(card?.ts).toBeTruthy();
    const own = r.reply(msg('gate'), { own: true, key: gateMessageKey('maintenance') });
    void r.reply(msg('step 1'));
    void r.replyFile('f.log', 'step 1 output', 'x');
    void r.reply(msg('step 2'));
    const gateRef = await own;
    void r.updateReply(gateRef!, msg('gate decided'));
    void r.reply(msg('step 3'));
    expect(await r.flush(2000)).toBe(true);
    expect(out.calls[0]).toMatchObject({ method: 'post', text: 'card v1' });
    const thread = out.calls.slice(1).map((c) => `${c.method} ${c.text}`).join(' | ');
    expect(thread).toBe('post gate | post step 1 | upload step 1 output | post step 2 | update gate decided | post step 3');
    expect(out.calls.filter((c) => c.method !== 'update').slice(1).every((c) => c.threadTs === card!.ts)).toBe(true);
    expect(r.delivered(gateMessageKey('maintenance'))).toEqual(gateRef);
  });

  it('coalesces card updates: the latest state wins, at most one update per interval', async () => {
    const out = new ScriptedOutbox();
    const r = reporter(out, { minUpdateIntervalMs: 100 });
    await r.start(msg('card 0'));
    for (let i = 1; i <= 20; i++) r.setCard(msg(`card ${i}`));
    await r.flush(2000);
    const updates = out.ok('update');
    expect(updates.length).toBeLessThanOrEqual(2);
    expect(updates.at(-1)!.text).toBe('card 20');
  });

  it('shows a quick change at once (a burst of updates, refilled per interval) and folds changes made together into one update', async () => {
    const out = new ScriptedOutbox();
    const r = reporter(out, { minUpdateIntervalMs: 1000, updateBurst: 3, updateSettleMs: 20 });
    await r.start(msg('card 0'));
    const t0 = Date.now();
    // A step ends and the next starts a moment later: one update, not two.
    r.setCard(msg('step 1 done'));
    r.setCard(msg('step 2 running'));
    await until(() => out.ok('update').length === 1);
    // The next change goes at once too (a token is left), not an interval later.
    r.setCard(msg('step 2 done'));
    await until(() => out.ok('update').length === 2);
    expect(Date.now() - t0).toBeLessThan(500);
    expect(out.ok('update').map((c) => c.text)).toEqual(['step 2 running', 'step 2 done']);
  });

  it('merges replies held back by a failure into one message, in order', async () => {
    const out = new ScriptedOutbox();
    const r = reporter(out);
    await r.start(msg('card'));
    let failing = true;
    out.fault = (c) => (failing && c.method === 'post' ? down() : undefined);
    for (let i = 1; i <= 5; i++) void r.reply(msg(`step ${i}`));
    await until(() => out.calls.length >= 3);
    failing = false;
    await r.flush(2000);
    const posts = out.ok('post').slice(1);
    expect(posts).toHaveLength(1);
    expect(posts[0]!.text).toBe('step 1; step 2; step 3; step 4; step 5');
  });
});

describe('JobReporter: Slack down', () => {
  it('does not make start wait on a dead Slack; the newest card is posted when Slack answers, replies behind it in order', async () => {
    const out = new ScriptedOutbox();
    let failing = true;
    out.fault = () => (failing ? down() : undefined);
    // A long bound: start returns at the first failed try, not at the bound.
    const r = reporter(out, { startWaitMs: 5000 });
    const t0 = Date.now();
    expect(await r.start(msg('card: running'))).toBeUndefined();
    expect(Date.now() - t0).toBeLessThan(500);
    const replies = [1, 2, 3].map((i) => r.reply(msg(`step ${i}`)));
    r.setCard(msg('card: succeeded'));
    expect(await r.flush(100)).toBe(false);
    // Nothing went to the thread while there was no card to thread under.
    expect(out.calls.every((c) => !c.threadTs)).toBe(true);
    const state: { card?: PostedRef; gates: Record<string, { id: string; postedTs?: string }> } = { gates: {} };
    r.recordInto(state, gateMessageKey);
    expect(state.card).toBeUndefined();

    failing = false;
    const refs = await Promise.all(replies);
    expect(await r.flush(2000)).toBe(true);
    const ok = out.ok();
    expect(ok[0]).toMatchObject({ method: 'post', text: 'card: succeeded' });
    expect(ok.slice(1).map((c) => c.text).join(' ')).toBe('step 1; step 2; step 3');
    // One merged message: every reply resolves to it.
    expect(new Set(refs.map((ref) => ref?.ts)).size).toBe(1);
    expect(refs[0]?.ts).toBeTruthy();
    r.recordInto(state, gateMessageKey);
    expect(state.card).toEqual(r.card);
    expect(out.ok('post').filter((c) => !c.threadTs)).toHaveLength(1);
  });

  it('retries a card update until delivered, backing off (no fixed limit of tries)', async () => {
    const out = new ScriptedOutbox();
    const r = reporter(out);
    await r.start(msg('card 0'));
    let failures = 0;
    out.fault = (c) => (c.method === 'update' && failures++ < 8 ? down() : undefined);
    r.setCard(msg('card final'));
    expect(await r.flush(3000)).toBe(true);
    const updates = out.calls.filter((c) => c.method === 'update');
    expect(updates).toHaveLength(9);
    expect(updates.at(-1)).toMatchObject({ ok: true, text: 'card final' });
    // Waits grow (10, 20, 40 ms…) up to the cap; the clock is coarse, so compare the first against the last.
    const gaps = updates.slice(1).map((u, i) => u.at - updates[i]!.at);
    expect(gaps.at(-1)!).toBeGreaterThanOrEqual(35);
    expect(Math.max(...gaps)).toBeLessThan(500);
  });

  it("honours a 429's Retry-After", async () => {
    const out = new ScriptedOutbox();
    const r = reporter(out);
    await r.start(msg('card'));
    let limited = true;
    out.fault = (c) => (c.method === 'post' && limited ? ((limited = false), slackError('ratelimited', { retryAfterSec: 0.3 })) : undefined);
    void r.reply(msg('step 1'));
    await r.flush(2000);
    const [first, second] = out.calls.filter((c) => c.threadTs);
    expect(first!.ok).toBe(false);
    expect(second!.ok).toBe(true);
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(290);
  });

  it('a delivery on one lane ends the other lane\u2019s backoff: Slack is back', async () => {
    const out = new ScriptedOutbox();
    // Long backoff, so only the wake-up can explain a quick retry.
    const r = reporter(out, { retryMinMs: 5000, retryFastMaxMs: 5000 });
    await r.start(msg('card 0'));
    let threadDown = true;
    out.fault = (c) => (c.threadTs && threadDown ? down() : undefined);
    void r.reply(msg('step 1'));
    await until(() => out.calls.some((c) => c.threadTs && !c.ok));
    threadDown = false;
    const t = Date.now();
    r.setCard(msg('card 1'));
    await until(() => out.ok('post').some((c) => c.threadTs));
    expect(Date.now() - t).toBeLessThan(1000);
  });

  it('drops what Slack refuses (invalid_blocks, channel_not_found) with a warning, and goes on with the rest', async () => {
    const out = new ScriptedOutbox();
    const r = reporter(out);
    await r.start(msg('card'));
    out.fault = (c) => (c.text === 'bad' ? slackError('invalid_blocks') : undefined);
    const bad = r.reply(msg('bad'), { own: true });
    const good = r.reply(msg('good'));
    expect(await bad).toBeUndefined();
    expect((await good)?.ts).toBeTruthy();
    expect(out.calls.filter((c) => c.text === 'bad')).toHaveLength(1);
    expect(logs.join('')).toMatch(/thread message not delivered: Slack refused it.*|invalid_blocks/);
  });

  it('a merged message Slack refuses is split: each reply goes alone', async () => {
    const out = new ScriptedOutbox();
    const r = reporter(out);
    await r.start(msg('card'));
    let failing = true;
    out.fault = (c) => (c.text.includes(';') ? slackError('msg_too_long') : failing && c.threadTs ? down() : undefined);
    for (let i = 1; i <= 3; i++) void r.reply(msg(`step ${i}`));
    await until(() => out.calls.length >= 3);
    failing = false;
    await r.flush(2000);
    expect(out.ok('post').slice(1).map((c) => c.text)).toEqual(['step 1', 'step 2', 'step 3']);
  });

  it('gives up after the max age, so nothing retries forever, and says so', async () => {
    const out = new ScriptedOutbox();
    out.fault = () => down();
    const r = reporter(out, { maxAgeMs: 300 });
    await r.start(msg('card'));
    const reply = r.reply(msg('step 1'));
    const t0 = Date.now();
    expect(await reply).toBeUndefined();
    expect(Date.now() - t0).toBeLessThan(1500);
    expect(await r.flush(1500)).toBe(true);
    const n = out.calls.length;
    await new Promise((res) => setTimeout(res, 200));
    expect(out.calls.length).toBe(n);
    expect(r.idle).toBe(true);
    expect(logs.join('')).toContain('card not delivered: Slack failed for too long');
    expect(logs.join('')).toContain('thread message not delivered: Slack failed for too long');
  });

  it('stop() settles every promise and ends the retries', async () => {
    const out = new ScriptedOutbox();
    out.fault = () => down();
    const r = reporter(out);
    await r.start(msg('card'));
    const pending = [r.reply(msg('a')), r.replyFile('a.log', 'a', 'x'), r.updateReply({ channel: 'C0OPS', ts: '1.2' }, msg('u'))];
    const flushing = r.flush(10_000);
    r.stop();
    await Promise.all(pending);
    expect(await flushing).toBe(false);
    const n = out.calls.length;
    await new Promise((res) => setTimeout(res, 150));
    expect(out.calls.length).toBe(n);
    expect(logs.join('')).toContain('the worker stopped before Slack took them');
  });
});

describe('recordInto and the registry', () => {
  it('writes the card and late gate messages into the job state, without overwriting what it has', () => {
    const out = new ScriptedOutbox();
    const r = reporter(out);
    const state = { gates: { maintenance: { id: 'maintenance' }, rollback: { id: 'rollback', postedTs: '9.9' } } as Record<string, { id: string; postedTs?: string }> };
    r.recordInto(state, gateMessageKey);
    expect(state).toEqual({ gates: { maintenance: { id: 'maintenance' }, rollback: { id: 'rollback', postedTs: '9.9' } } });
  });

  it('a gate message delivered after the job parked reaches the state of the run that resumes', async () => {
    const out = new ScriptedOutbox();
    let failing = true;
    out.fault = () => (failing ? down() : undefined);
    const r = reporter(out);
    await r.start(msg('card'));
    void r.reply(msg('gate'), { own: true, key: gateMessageKey('maintenance') });
    // The first run parks with neither the card nor the gate message delivered.
    const parked = { gates: { maintenance: { id: 'maintenance' } } as Record<string, { id: string; postedTs?: string }> };
    r.recordInto(parked, gateMessageKey);
    expect(parked).toEqual({ gates: { maintenance: { id: 'maintenance' } } });
    failing = false;
    await r.flush(2000);
    // The resumed run reads the state saved at park, and its first save records both.
    const resumed = structuredClone(parked) as { card?: PostedRef; gates: Record<string, { id: string; postedTs?: string }> };
    r.recordInto(resumed, gateMessageKey);
    expect(resumed.card).toEqual(r.card);
    expect(resumed.gates['maintenance']!.postedTs).toBe(r.delivered(gateMessageKey('maintenance'))!.ts);
    expect(out.ok('post').map((c) => c.text)).toEqual(['card', 'gate']);
  });

  it('gives a resumed job the same reporter, and closing it stops everything', async () => {
    const out = new ScriptedOutbox();
    const registry = new ReporterRegistry({ outbox: out, minUpdateIntervalMs: 10, retryMinMs: 10, retryFastMaxMs: 20 });
    const a = registry.acquire('deploy-1', origin, log);
    expect(registry.acquire('deploy-1', origin, log)).toBe(a);
    expect(registry.acquire('deploy-2', origin, log)).not.toBe(a);
    out.fault = () => down();
    await a.start(msg('card'), undefined, 10);
    void a.reply(msg('step'), { key: gateMessageKey('g') });
    await registry.close(50);
    expect(registry.size).toBe(0);
    const n = out.calls.length;
    await new Promise((res) => setTimeout(res, 100));
    expect(out.calls.length).toBe(n);
  });
});

/** An outbox with Slack's shared budget: `slot` decides each reservation; calls record whether they came with one. */
class PacedOutbox extends ScriptedOutbox {
  reservations: { method: string; progress: boolean; at: number }[] = [];
  paced: boolean[] = [];
  slot: (method: string, progress: boolean) => { reserved: boolean; waitMs: number } = () => ({ reserved: true, waitMs: 0 });

  async reserve(method: 'chat.postMessage' | 'chat.update', _channel: string, opts: { progress?: boolean } = {}): Promise<{ reserved: boolean; waitMs: number }> {
    this.reservations.push({ method, progress: Boolean(opts.progress), at: Date.now() });
    return this.slot(method, Boolean(opts.progress));
  }
  override async post(o: Origin, m: Msg, opts: { threadTs?: string; paced?: boolean } = {}): Promise<PostedRef> {
    this.paced.push(Boolean(opts.paced));
    return super.post(o, m, opts);
  }
  override async update(ref: PostedRef, m: Msg, opts: { paced?: boolean } = {}): Promise<void> {
    this.paced.push(Boolean(opts.paced));
    return super.update(ref, m);
  }
}

describe("JobReporter: Slack's shared budget", () => {
  it('waits for its slot while newer card states replace the pending one: the wait costs no call', async () => {
    const out = new PacedOutbox();
    const r = reporter(out, { minUpdateIntervalMs: 10, updateSettleMs: 0 });
    await r.start(msg('card 0'));
    // Other jobs hold the next 300 ms of chat.update.
    out.slot = (method) => ({ reserved: true, waitMs: method === 'chat.update' ? 300 : 0 });
    r.setCard(msg('card 1'));
    for (let i = 2; i <= 10; i++) {
      await new Promise((res) => setTimeout(res, 20));
      r.setCard(msg(`card ${i}`));
    }
    await until(() => out.ok('update').length === 1);
    await new Promise((res) => setTimeout(res, 100));
    expect(out.ok('update').map((c) => c.text)).toEqual(['card 10']);
    // One slot asked for, one call made with it: the lane never queues calls behind the pacer.
    expect(out.reservations.filter((x) => x.method === 'chat.update')).toHaveLength(1);
    expect(out.paced.every(Boolean)).toBe(true);
  });

  it('merges the replies queued while the thread waits for its slot into one message', async () => {
    const out = new PacedOutbox();
    const r = reporter(out);
    await r.start(msg('card'));
    out.slot = (method) => ({ reserved: true, waitMs: method === 'chat.postMessage' ? 150 : 0 });
    const replies = [1, 2, 3, 4].map((i) => r.reply(msg(`step ${i}`)));
    await Promise.all(replies);
    const posts = out.ok('post').slice(1);
    expect(posts.map((c) => c.text)).toEqual(['step 1; step 2; step 3; step 4']);
  });

  it('asks again later when no slot is spare for progress, but queues for one at once for the final card (flush)', async () => {
    const out = new PacedOutbox();
    const r = reporter(out, { minUpdateIntervalMs: 10, updateSettleMs: 0 });
    await r.start(msg('card 0'));
    out.slot = (_m, progress) => (progress ? { reserved: false, waitMs: 60_000 } : { reserved: true, waitMs: 50 });
    r.setCard(msg('step 1 running'));
    await until(() => out.reservations.some((x) => x.progress));
    await new Promise((res) => setTimeout(res, 100));
    // Refused: nothing sent, and it does not ask again before the time the pacer gave.
    expect(out.ok('update')).toHaveLength(0);
    expect(out.reservations.filter((x) => x.progress)).toHaveLength(1);
    r.setCard(msg('card: succeeded'));
    const t0 = Date.now();
    expect(await r.flush(2000)).toBe(true);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(out.ok('update').map((c) => c.text)).toEqual(['card: succeeded']);
    expect(out.reservations.at(-1)).toMatchObject({ method: 'chat.update', progress: false });
  });

  it('a pacer that fails does not hold the card back', async () => {
    const out = new PacedOutbox();
    const r = reporter(out, { minUpdateIntervalMs: 10, updateSettleMs: 0 });
    await r.start(msg('card 0'));
    out.slot = () => {
      throw new Error('pacer broke');
    };
    r.setCard(msg('card 1'));
    expect(await r.flush(1000)).toBe(true);
    expect(out.ok('update').map((c) => c.text)).toEqual(['card 1']);
  });
});

describe('classifySlackFailure', () => {
  it.each([
    [slackError('slack_webapi_http_error', { status: 500 }), true],
    [slackError('slack_webapi_http_error', { status: 503 }), true],
    [slackError('slack_webapi_http_error', { status: 404 }), false],
    [slackError('slack_webapi_request_error'), true],
    [slackError('ratelimited', { retryAfterSec: 3 }), true],
    [slackError('internal_error'), true],
    [slackError('http_502'), true],
    [slackError('invalid_blocks'), false],
    [slackError('channel_not_found'), false],
    [slackError('not_authed'), false],
    [slackError('msg_too_long'), false],
    [new Error('a bug while rendering'), false],
  ])('%s → transient %s', (err, transient) => {
    expect(classifySlackFailure(err).transient).toBe(transient);
  });

  it('carries Retry-After in milliseconds', () => {
    expect(classifySlackFailure(slackError('ratelimited', { retryAfterSec: 3 })).retryAfterMs).toBe(3000);
  });
});
