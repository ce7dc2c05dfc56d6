// Guarantee 5: Slack down or rate-limiting does not stop a deploy. The whole chain is real (Bolt, BullMQ, the
// worker, SSH, the simulated host); only Slack is the fake, told to fail every Web API call for a while.
import { afterEach, describe, expect, it } from 'vitest';
import { findButton, sendBlockAction } from '../world/slack-requests.js';
import { readCommandLog, runningApiTag } from '../world/sim/host.mjs';
import type { FakeMessage } from '../world/fake-slack.js';
import type { RunbookData } from '../../src/runbooks/kernel/types.js';
import { GATE_SKIPPED_DEPLOY, NO_MAINTENANCE_DEPLOY, alongsideInOrder, OPS_CHANNEL, SIGNING_SECRET, startWorld, type World } from './harness.js';
import { until as waitUntil } from './faults.js';
import { BOB, blockText, text, type Block } from './blocks.js';

let world: World | undefined;
afterEach(async (ctx) => {
  // A test that failed mid-outage must not leave the job flushing into a dead Slack while the bot closes.
  world?.slack.clearFaults();
  if (ctx.task.result?.state === 'fail' && world) {
    console.error(`--- bot log (last 60) ---\n${world.logs.slice(-60).join('')}`);
    console.error(`--- slack calls ---\n${world.slack.calls.map((c) => `${c.method} ${c.status}${c.fault ? ' (fault)' : ''}`).join('\n')}`);
  }
  await world?.close();
  world = undefined;
});

const STEP_TITLES = ['Check the host', 'Log in to the registry', 'Pull 0.6.1', 'Check for database migrations', 'Start 0.6.1', 'Run database migrations', 'Pin 0.6.1', 'Prune old images', 'Verify 0.6.1'];

/** The host's own record of what docker ran (start markers of slow commands left out). */
function ran(w: World): { line: string; exitCode: number | null }[] {
  return readCommandLog(w.deployPath)
    .filter((r: any) => r.phase !== 'start')
    .map((r: any) => ({ line: `${r.env?.IMAGE_TAG ? `IMAGE_TAG=${r.env.IMAGE_TAG} ` : ''}${r.argv.join(' ')}`, exitCode: r.exitCode }));
}


function card(w: World): FakeMessage | undefined {
  return w.slack.messagesIn(OPS_CHANNEL).find((m) => (!m.thread_ts || m.thread_ts === m.ts) && text(m.blocks).includes('Deploy 0.6.1'));
}

function thread(w: World): string {
  const c = card(w);
  return c ? w.slack.threadReplies(OPS_CHANNEL, c.ts).map((m) => blockText(m.blocks as Block[])).join('\n') : '';
}

/** faults.ts's poll, with the description first, as these tests read best. */
const until = <T>(what: string, pred: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs: number): Promise<T> => waitUntil(pred, what, timeoutMs);

async function outageWorld(): Promise<World> {
  // The pacer on, as in production: calls an outage fails give their slot back, so Slack's return finds the budget whole.
  world = await startWorld({ slackLimits: false, slackPacing: {}, envExtra: { verifySettleSeconds: 5 } });
  // Bolt checks the token once (auth.test) and remembers it: done now, so the outage below hits only the bot's own calls.
  await world.slash('help');
  return world;
}

function jobIdOf(ack: { body: any; text: string }): string {
  const id = /\(job (deploy-[^)\s]+)\)/.exec(String(ack.body?.text ?? ack.text))?.[1];
  expect(id).toBeTruthy();
  return id!;
}

/** Slack failing from before the command until the deploy has finished on the host, then answering again. */
async function deployThroughOutage(w: World, fault: { status: number; retryAfterSec?: number }) {
  const since = w.slack.calls.length;
  w.slack.injectFault({ method: '*', times: Infinity, ...fault });
  const downAt = Date.now();
  const ack = await w.slash('deploy 0.6.1 --no-maintenance');
  expect(ack.status).toBe(200);

  // The deploy goes on: it finishes on the host, records its history and frees the lock, with Slack still down.
  const store = w.bot.producer!.store;
  const h = await until('the deploy to finish on the host', async () => (await store.readHistory('production')).find((e) => e.version === '0.6.1'), 20_000);
  expect(h).toMatchObject({ kind: 'deploy', outcome: 'succeeded' });
  expect(await store.readLock('production')).toBeUndefined();
  expect(runningApiTag(w.deployPath)).toBe('0.6.1');
  const commands = ran(w);
  expect(alongsideInOrder(commands.map((c) => c.line))).toEqual(NO_MAINTENANCE_DEPLOY);
  expect(commands.every((c) => c.exitCode === 0)).toBe(true);
  // Nothing reached the channel: Slack took no call at all so far.
  expect(w.slack.calls.slice(since).filter((c) => !c.method.startsWith('@') && !c.fault)).toEqual([]);
  // The bot tried: the job does not wait for the card, so with Retry-After honoured the host may be done before a second try.
  expect(w.slack.callsTo('chat.postMessage').length).toBeGreaterThanOrEqual(1);

  // Keep Slack down a little longer, so the bot is in its backoff when Slack comes back.
  await new Promise((r) => setTimeout(r, Math.max(0, downAt + 6000 - Date.now())));
  w.slack.clearFaults();
  const backAt = Date.now();

  const final = await until('the final card', () => {
    const c = card(w);
    return c && /succeeded/.test(blockText(c.blocks as Block[])) ? c : undefined;
  }, 10_000);
  const recoveryMs = Date.now() - backAt;
  const steps = blockText(final.blocks as Block[]);
  for (const t of STEP_TITLES) expect(steps).toContain(`✅ ${t}`);
  expect(steps).not.toMatch(/[⬜⏳❌]/u);
  // One card, posted once Slack answered, already showing the final state.
  expect(w.slack.callsTo('chat.postMessage').filter((c) => !c.fault && !c.args.thread_ts)).toHaveLength(1);

  const replies = await until('every step reply', () => {
    const all = thread(w);
    return STEP_TITLES.every((t) => all.includes(t)) ? all : undefined;
  }, 10_000);
  const order = STEP_TITLES.map((t) => replies.indexOf(t));
  expect(order).toEqual([...order].sort((a, b) => a - b));
  expect(w.slack.invalidBlockCalls()).toEqual([]);
  return { recoveryMs };
}

describe('Slack down or rate-limiting: the deploy goes on', () => {
  it('Slack answering 500 to every call: the host is deployed, then the card and the thread arrive in order', async () => {
    const w = await outageWorld();
    const { recoveryMs } = await deployThroughOutage(w, { status: 500 });
    // The bot notices Slack is back within its short retry interval, not minutes later.
    expect(recoveryMs).toBeLessThan(5000);
  }, 40_000);

  it('Slack answering 429 with Retry-After to every call: the same, with Retry-After honoured', async () => {
    const w = await outageWorld();
    await deployThroughOutage(w, { status: 429, retryAfterSec: 2 });
    // No call came sooner than Slack allowed: after each 429, the next call to that method waited Retry-After.
    const limited = w.slack.callsTo('chat.postMessage');
    for (let i = 1; i < limited.length; i++) {
      if (limited[i - 1]!.status === 429 && limited[i - 1]!.args.thread_ts === limited[i]!.args.thread_ts) expect(limited[i]!.at - limited[i - 1]!.at).toBeGreaterThanOrEqual(1900);
    }
  }, 40_000);

  it('a maintenance gate opened while Slack is down appears when Slack answers, and pressing it works', async () => {
    const w = await outageWorld();
    w.slack.injectFault({ method: '*', status: 500, times: Infinity });
    const ack = await w.slash('deploy 0.6.1');
    const jobId = jobIdOf(ack);
    const producer = w.bot.producer!;
    // The job reaches the gate and saves it, though Slack took nothing.
    await until('the maintenance gate to open', async () => ((await producer.getJob(jobId))?.data as RunbookData | undefined)?.state?.gates['maintenance'], 20_000);
    // Its message waits behind the card, which Slack keeps refusing.
    await new Promise((r) => setTimeout(r, 1500));
    expect(w.slack.messagesIn(OPS_CHANNEL)).toEqual([]);
    expect(w.slack.callsTo('chat.postMessage').every((c) => c.fault)).toBe(true);
    w.slack.clearFaults();

    const gate = await until('the gate message', () => w.slack.messagesIn(OPS_CHANNEL).find((m) => findButton(m.blocks as Block[], 'maintenance.skip')), 10_000);
    const c = card(w);
    expect(c).toBeDefined();
    expect(gate.thread_ts).toBe(c!.ts);
    const res = await sendBlockAction(`${w.botUrl}/slack/events`, SIGNING_SECRET, { user: BOB, channel: OPS_CHANNEL, message: gate, action_id: 'maintenance.skip' });
    expect(res.status).toBe(200);

    await until('the final card', () => /succeeded/.test(blockText(card(w)?.blocks as Block[])), 20_000);
    expect(runningApiTag(w.deployPath)).toBe('0.6.1');
    // Skipped: nothing re-created on the old version; every command ran once and succeeded.
    const commands = ran(w);
    expect(alongsideInOrder(commands.map((x) => x.line))).toEqual(GATE_SKIPPED_DEPLOY);
    expect(commands.every((x) => x.exitCode === 0)).toBe(true);
    // The resumed run learned where the late card and gate message landed, and saved them.
    const job = await producer.getJob(jobId);
    expect((job!.data as RunbookData).state?.card?.ts).toBe(c!.ts);
    expect((job!.data as RunbookData).state?.gates['maintenance']?.postedTs).toBe(gate.ts);
    expect(await producer.store.readLock('production')).toBeUndefined();
    expect(w.slack.invalidBlockCalls()).toEqual([]);
  }, 40_000);
});

/** Calls the fake Slack answered, by method (429s and faults included; none happen with limits off). */
function callsByMethod(w: World): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of w.slack.calls) if (!c.method.startsWith('@')) out[c.method] = (out[c.method] ?? 0) + 1;
  return out;
}

describe('Slack API calls of a standard deploy', () => {
  // Posts: 1 card, 1 per finished step and the health report (fewer when merged), 1 per gate. Updates: coalesced,
  // at most one per card change (2 per step) and far fewer in practice. 1 permalink for the history. The post bounds
  // are exact for the design; the totals leave room for timing. Measured counts are in the README.
  it('deploy --no-maintenance stays within its Slack budget', async () => {
    const w = (world = await startWorld({ slackLimits: false, slackPacing: {}, envExtra: { verifySettleSeconds: 5 } }));
    await w.slash('help');
    const before = w.slack.calls.length;
    await w.slash('deploy 0.6.1 --no-maintenance');
    await until('the final card', () => /succeeded/.test(blockText(card(w)?.blocks as Block[])), 20_000);
    await until('every step reply', () => STEP_TITLES.every((t) => thread(w).includes(t)), 10_000);
    await new Promise((r) => setTimeout(r, 500));
    w.slack.calls.splice(0, before);
    const by = callsByMethod(w);
    const total = Object.values(by).reduce((a, b) => a + b, 0);
    console.info(`slack calls, deploy --no-maintenance: ${total} ${JSON.stringify(by)}`);
    expect(by['chat.postMessage']).toBeLessThanOrEqual(1 + 11);
    expect(by['chat.getPermalink'] ?? 0).toBeLessThanOrEqual(1);
    expect(total).toBeLessThanOrEqual(40);
  }, 40_000);

  it('deploy with the maintenance gate stays within its Slack budget', async () => {
    const w = (world = await startWorld({ slackLimits: false, slackPacing: {}, envExtra: { verifySettleSeconds: 5 } }));
    await w.slash('help');
    const before = w.slack.calls.length;
    await w.slash('deploy 0.6.1');
    const gate = await until('the gate message', () => w.slack.messagesIn(OPS_CHANNEL).find((m) => findButton(m.blocks as Block[], 'maintenance.enable')), 20_000);
    await sendBlockAction(`${w.botUrl}/slack/events`, SIGNING_SECRET, { user: BOB, channel: OPS_CHANNEL, message: gate, action_id: 'maintenance.enable' });
    await until('the final card', () => /succeeded/.test(blockText(card(w)?.blocks as Block[])), 20_000);
    await until('every step reply', () => [...STEP_TITLES, 'Turn maintenance on', 'Turn maintenance off'].every((t) => thread(w).includes(t)), 10_000);
    await new Promise((r) => setTimeout(r, 500));
    w.slack.calls.splice(0, before);
    const by = callsByMethod(w);
    const total = Object.values(by).reduce((a, b) => a + b, 0);
    console.info(`slack calls, deploy with the maintenance gate: ${total} ${JSON.stringify(by)}`);
    expect(by['chat.postMessage']).toBeLessThanOrEqual(1 + 1 + 13);
    expect(total).toBeLessThanOrEqual(50);
  }, 40_000);
});
