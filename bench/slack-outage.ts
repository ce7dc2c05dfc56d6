// Benchmark: what a Slack outage costs a deploy. The same standard deploy (`deploy 0.6.1 --no-maintenance`)
// through the real bot, with Slack answering normally, and with every Web API call answered HTTP 500 for
// `outageMs` (60 s) from the moment the command is sent. Measured per round, from sending the command:
//
//   host done    the deploy finished on the host (its history entry is written, the lock freed);
//   card right   the card in the channel shows the final outcome (posted or updated, whichever it took);
//   thread done  every step reply is in the card's thread;
//   job done     the worker finished the job (its final flush waits at most 60 s for Slack).
//
// The claim it checks: the outage adds no more than itself to "card right", i.e. the deploy does not wait on
// Slack, and once Slack answers the card is right within about one retry interval.
import type { Job } from 'bullmq';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { JobData } from '../src/jobs/job-data.js';
import type { Bot } from '../src/runtime.js';
import { sendSlashCommand } from '../test/world/slack-requests.js';
import { runningApiTag } from '../test/world/sim/host.mjs';
import { COMMAND_TEXT, TO_VERSION, benchConfig, stats, type Stats } from './deploy.js';
import { startInProcessBot } from './util.js';
import { ALICE, OPS_CHANNEL, type BenchWorld, benchProcessEnv } from './world.js';

export interface OutageRound {
  outageMs: number;
  hostDoneMs: number;
  cardRightMs: number;
  threadDoneMs: number;
  jobDoneMs: number;
  /** Web API calls the fake answered during the round, failed ones included. */
  calls: number;
  failedCalls: number;
}

export interface SlackOutageBenchResult {
  command: string;
  outageMs: number;
  normal: OutageRound[];
  outage: OutageRound[];
  stats: { normal: Record<'hostDoneMs' | 'cardRightMs' | 'threadDoneMs' | 'jobDoneMs', Stats>; outage: Record<'hostDoneMs' | 'cardRightMs' | 'threadDoneMs' | 'jobDoneMs', Stats> };
  /** Median card-right time with the outage minus without it. */
  addedMs: number;
  /** addedMs minus the outage: ≤ 0 means the outage cost the deploy no more than its own length. */
  beyondOutageMs: number;
}

const STEP_TITLES = ['Check the host', 'Log in to the registry', `Pull ${TO_VERSION}`, 'Check for database migrations', `Start ${TO_VERSION}`, 'Run database migrations', `Pin ${TO_VERSION}`, 'Prune old images', `Verify ${TO_VERSION}`];
const FINAL_RE = new RegExp(`^Deploy ${TO_VERSION.replace(/\./g, '\\.')} to production: (succeeded|failed|cancelled)`);

async function round(w: BenchWorld, bot: Bot, botUrl: string, outageMs: number): Promise<OutageRound> {
  await w.freshHost();
  w.slack.reset();
  const responseUrl = w.slack.responseUrl({ channel: OPS_CHANNEL, user: ALICE });
  if (outageMs > 0) w.slack.injectFault({ method: '*', status: 500, times: Infinity });
  const t0 = Date.now();
  const heal = outageMs > 0 ? setTimeout(() => w.slack.clearFaults(), outageMs) : undefined;
  try {
    const ack = await sendSlashCommand(`${botUrl}/slack/events`, w.signingSecret, { text: COMMAND_TEXT, user_id: ALICE, channel_id: OPS_CHANNEL, response_url: responseUrl });
    const jobId = /\(job (deploy-[^)\s]+)\)/.exec(typeof ack.body === 'object' ? String(ack.body?.text ?? '') : ack.text)?.[1];
    if (ack.status !== 200 || !jobId) throw new Error(`the slash command was not accepted: HTTP ${ack.status} ${ack.text.slice(0, 300)}`);

    const marks: Partial<Record<'host' | 'card' | 'thread' | 'job', number>> = {};
    const deadline = t0 + outageMs + 180_000;
    let job: Job<JobData> | undefined;
    while (!(marks.host && marks.card && marks.thread && marks.job)) {
      if (Date.now() > deadline) throw new Error(`round did not finish: ${JSON.stringify(marks)}`);
      const now = Date.now();
      if (!marks.host && (await bot.producer!.store.readHistory('production')).some((h) => h.jobId === jobId)) marks.host = now;
      // A parent message carries thread_ts = its own ts once it has replies.
      const card = w.slack.messagesIn(OPS_CHANNEL).find((m) => (!m.thread_ts || m.thread_ts === m.ts) && FINAL_RE.test(m.text));
      if (!marks.card && card) {
        const outcome = FINAL_RE.exec(card.text)![1];
        if (outcome !== 'succeeded') throw new Error(`the deploy ended ${outcome}`);
        marks.card = now;
      }
      if (!marks.thread && card) {
        const thread = w.slack.threadReplies(OPS_CHANNEL, card.ts).map((m) => JSON.stringify(m.blocks ?? m.text)).join('\n');
        if (STEP_TITLES.every((t) => thread.includes(t))) marks.thread = now;
      }
      if (!marks.job) {
        job = await bot.producer!.getJob(jobId);
        if (job?.finishedOn) marks.job = job.finishedOn;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    if (runningApiTag(w.deployPath) !== TO_VERSION) throw new Error(`the host runs ${runningApiTag(w.deployPath)}, not ${TO_VERSION}`);
    const api = w.slack.calls.filter((c) => !c.method.startsWith('@'));
    return {
      outageMs,
      hostDoneMs: marks.host! - t0,
      cardRightMs: marks.card! - t0,
      threadDoneMs: marks.thread! - t0,
      jobDoneMs: marks.job! - t0,
      calls: api.length,
      failedCalls: api.filter((c) => c.status !== 200).length,
    };
  } finally {
    clearTimeout(heal);
    w.slack.clearFaults();
  }
}

export async function runSlackOutageBench(w: BenchWorld, opts: { rounds?: number; outageMs?: number; progress?: (line: string) => void } = {}): Promise<SlackOutageBenchResult> {
  const rounds = opts.rounds ?? 3;
  const outageMs = opts.outageMs ?? 60_000;
  const progress = opts.progress ?? (() => undefined);
  const configPath = join(w.root, 'chatops-outage.yml');
  writeFileSync(configPath, benchConfig(w));
  // Production settings (default card interval, default retry policy), with Slack's rate limits on.
  const { bot, url: botUrl } = await startInProcessBot(configPath, benchProcessEnv(w, configPath, 'bench-outage'));
  const normal: OutageRound[] = [];
  const outage: OutageRound[] = [];
  const show = (label: string, r: OutageRound) =>
    progress(`${label} host done ${r.hostDoneMs} ms, card right ${r.cardRightMs} ms, thread done ${r.threadDoneMs} ms, job done ${r.jobDoneMs} ms (${r.calls} Slack calls, ${r.failedCalls} failed)`);
  try {
    // Warm-up: the SSH connection, and Bolt's one auth.test, so neither lands in a measured round.
    show('warm-up              ', await round(w, bot, botUrl, 0));
    for (let i = 0; i < rounds; i++) {
      const r = await round(w, bot, botUrl, 0);
      normal.push(r);
      show(`normal ${i + 1}/${rounds}           `, r);
    }
    const r = await round(w, bot, botUrl, outageMs);
    outage.push(r);
    show(`Slack down ${outageMs / 1000} s       `, r);
  } finally {
    await bot.close();
  }
  const keys = ['hostDoneMs', 'cardRightMs', 'threadDoneMs', 'jobDoneMs'] as const;
  const of = (rs: OutageRound[]) => Object.fromEntries(keys.map((k) => [k, stats(rs.map((x) => x[k]))])) as Record<(typeof keys)[number], Stats>;
  const st = { normal: of(normal), outage: of(outage) };
  const addedMs = st.outage.cardRightMs.median - st.normal.cardRightMs.median;
  return { command: COMMAND_TEXT, outageMs, normal, outage, stats: st, addedMs, beyondOutageMs: addedMs - outageMs };
}
