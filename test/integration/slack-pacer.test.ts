// The Slack pacer against the test world's real Redis: the budget is per method (per channel for chat.postMessage),
// shared by every pacer on the same Redis and prefix (worker processes), and kept when Redis goes away. Then the
// outbox with a pacer against the fake Slack: many calls at once meet no 429.
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { createLogger } from '../../src/logger.js';
import { createWebClient, SlackOutbox } from '../../src/slack/outbox.js';
import { SlackPacer, type SlackPacingOptions } from '../../src/slack/pacer.js';
import { startFakeSlack, type FakeSlack } from '../world/fake-slack.js';

const logs: string[] = [];
const log = createLogger({ level: 'debug', destination: { write: (s: string) => void logs.push(s) } });
const pacers: SlackPacer[] = [];
let fake: FakeSlack | undefined;

afterEach(async () => {
  await Promise.all(pacers.splice(0).map((p) => p.close()));
  await fake?.close();
  fake = undefined;
  logs.length = 0;
});

/** 100 ms between calls, 3 at once after a quiet spell: fast enough to time, slow enough to see. */
const FAST: SlackPacingOptions['rules'] = {
  'chat.update': { perMinute: 600, burst: 3 },
  'chat.postMessage': { perMinute: 600, burst: 2 },
};

async function pacer(opts: SlackPacingOptions & { prefix?: string; redisUrl?: string } = {}): Promise<SlackPacer> {
  const p = new SlackPacer({ rules: FAST, log, redisUrl: inject('redisUrl'), prefix: `tpace${randomBytes(4).toString('hex')}`, ...opts });
  pacers.push(p);
  if (opts.shared !== false && opts.redisUrl === undefined) {
    const end = Date.now() + 5000;
    while (!p.shared) {
      if (Date.now() > end) throw new Error('the pacer never connected to Redis');
      await new Promise((r) => setTimeout(r, 10));
    }
  }
  return p;
}

/** How long the caller waits for the slot it reserved. */
async function wait(p: SlackPacer, method: 'chat.update' | 'chat.postMessage', channel: string, opts: { maxWaitMs?: number } = {}): Promise<number | undefined> {
  const slot = await p.reserve(method, channel, opts);
  return slot.reserved ? slot.waitMs : undefined;
}

const reserveAll = (p: SlackPacer, n: number, method: 'chat.update' | 'chat.postMessage' = 'chat.update', channel = 'C0A') =>
  Promise.all(Array.from({ length: n }, () => wait(p, method, channel)));

describe('SlackPacer', () => {
  it('lets a burst through at once, then one call per interval, in the order asked', async () => {
    const p = await pacer();
    const waits = await reserveAll(p, 6);
    expect(waits.slice(0, 3)).toEqual([0, 0, 0]);
    // Redis's clock moves on a little between the calls; the slots stay 100 ms apart.
    for (const [i, want] of [[3, 100], [4, 200], [5, 300]] as const) {
      expect(waits[i]).toBeGreaterThan(want - 25);
      expect(waits[i]).toBeLessThanOrEqual(want);
    }
  });

  it('counts chat.update across every channel, and chat.postMessage per channel', async () => {
    const p = await pacer();
    const updates = [await wait(p, 'chat.update', 'C0A'), await wait(p, 'chat.update', 'C0B'), await wait(p, 'chat.update', 'C0C'), await wait(p, 'chat.update', 'C0D')];
    expect(updates.slice(0, 3)).toEqual([0, 0, 0]);
    expect(updates[3]).toBeGreaterThan(50);
    // Two posts at once per channel, whatever the other channels do.
    expect(await reserveAll(p, 2, 'chat.postMessage', 'C0A')).toEqual([0, 0]);
    expect(await reserveAll(p, 2, 'chat.postMessage', 'C0B')).toEqual([0, 0]);
    expect(await wait(p, 'chat.postMessage', 'C0A')).toBeGreaterThan(50);
  });

  it('is one budget for every pacer on the same Redis and prefix (worker processes), and only for those', async () => {
    const a = await pacer();
    const prefix = `tpace${randomBytes(4).toString('hex')}`;
    const [b, c, other] = await Promise.all([pacer({ prefix }), pacer({ prefix }), pacer({ prefix: `${prefix}x` })]);
    expect(await reserveAll(b, 3)).toEqual([0, 0, 0]);
    expect(await wait(c, 'chat.update', 'C0A')).toBeGreaterThan(50);
    expect(await wait(other, 'chat.update', 'C0A')).toBe(0);
    expect(await wait(a, 'chat.update', 'C0A')).toBe(0);
  });

  it('reserves nothing past maxWaitMs; a refund gives a slot back; a hold stops every call for its time', async () => {
    const p = await pacer();
    await reserveAll(p, 3);
    expect(await wait(p, 'chat.update', 'C0A', { maxWaitMs: 20 })).toBeUndefined();
    // Not reserved: the next slot is still the first one after the burst.
    const next = await wait(p, 'chat.update', 'C0A');
    expect(next).toBeGreaterThan(50);
    expect(next).toBeLessThanOrEqual(100);
    await p.refund('chat.update', 'C0A');
    await p.refund('chat.update', 'C0A');
    expect(await wait(p, 'chat.update', 'C0A')).toBe(0);

    await p.hold('chat.postMessage', 'C0H', 400);
    const held = await wait(p, 'chat.postMessage', 'C0H');
    expect(held).toBeGreaterThan(350);
    expect(held).toBeLessThanOrEqual(400);
    // The burst is spent too, as Slack's is after a 429: the next goes an interval later.
    expect(await wait(p, 'chat.postMessage', 'C0H')).toBeGreaterThan(450);
  });

  it('gives a progress call only a slot free now with the spare left; an urgent one queues for the spare', async () => {
    // chat.update here: burst 3, spare 1 (half the burst, rounded down).
    const p = await pacer();
    expect(await p.reserve('chat.update', 'C0A', { progress: true })).toEqual({ reserved: true, waitMs: 0 });
    expect(await p.reserve('chat.update', 'C0B', { progress: true })).toEqual({ reserved: true, waitMs: 0 });
    const refused = await p.reserve('chat.update', 'C0C', { progress: true });
    expect(refused.reserved).toBe(false);
    expect(refused.waitMs).toBeGreaterThan(50);
    expect(refused.waitMs).toBeLessThanOrEqual(100);
    // The spare is for a card's outcome: it goes now, and the next urgent one queues behind it.
    expect(await wait(p, 'chat.update', 'C0C')).toBe(0);
    expect(await wait(p, 'chat.update', 'C0D')).toBeGreaterThan(50);
    // With urgent calls queued, progress gets nothing until they have gone.
    const later = await p.reserve('chat.update', 'C0A', { progress: true });
    expect(later.reserved).toBe(false);
    expect(later.waitMs).toBeGreaterThan(150);
  });

  it('paces alone, with the same rules, when Redis does not answer', async () => {
    const p = await pacer({ redisUrl: 'redis://127.0.0.1:1' });
    expect(p.shared).toBe(false);
    const waits = await reserveAll(p, 4);
    expect(waits.slice(0, 3)).toEqual([0, 0, 0]);
    expect(waits[3]).toBeGreaterThan(80);
    const unshared = await pacer({ shared: false });
    expect(await reserveAll(unshared, 3)).toEqual([0, 0, 0]);
  });
});

describe('SlackOutbox with a pacer', () => {
  it('twelve card updates at once in four channels, against a tight Tier 3: no 429, spaced as the budget says', async () => {
    fake = await startFakeSlack({
      channels: ['C0P1', 'C0P2', 'C0P3', 'C0P4'].map((id) => ({ id })),
      limits: { tiers: { 3: { perMinute: 600, burst: 4 } } },
    });
    const p = await pacer();
    const client = createWebClient({ token: fake.botToken, slackApiUrl: fake.apiUrl, log });
    const outbox = new SlackOutbox(client, log, [], undefined, client, p);
    const origins = ['C0P1', 'C0P2', 'C0P3', 'C0P4'].map((channel) => ({ transport: 'slack' as const, channel, user: 'U01ALICE' }));
    const cards = await Promise.all(origins.map((o) => outbox.post(o, { summary: 'card', parts: [{ type: 'section', text: 'card' }] })));
    const started = Date.now();
    await Promise.all(cards.flatMap((ref) => [1, 2, 3].map((i) => outbox.update(ref, { summary: `v${i}`, parts: [{ type: 'section', text: `v${i}` }] }))));
    expect(fake.rateLimited()).toBe(0);
    expect(fake.callsTo('chat.update').filter((c) => c.status === 200)).toHaveLength(12);
    // 3 at once, then one per 100 ms: about 900 ms for the other nine.
    expect(Date.now() - started).toBeGreaterThan(800);
  });

  it('without a pacer the same burst meets 429s (what the pacer is for)', async () => {
    fake = await startFakeSlack({ channels: [{ id: 'C0P1' }], limits: { tiers: { 3: { perMinute: 600, burst: 4 } } } });
    const client = createWebClient({ token: fake.botToken, slackApiUrl: fake.apiUrl, log });
    const outbox = new SlackOutbox(client, log, [], undefined, client);
    const ref = await outbox.post({ transport: 'slack', channel: 'C0P1', user: 'U01ALICE' }, { summary: 'card', parts: [{ type: 'section', text: 'card' }] });
    await Promise.allSettled(Array.from({ length: 12 }, (_, i) => outbox.update(ref, { summary: `v${i}`, parts: [{ type: 'section', text: `v${i}` }] })));
    expect(fake.rateLimited()).toBeGreaterThan(0);
  });
});
