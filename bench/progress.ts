// Benchmark: progress latency. For each step of a deploy (`deploy 0.6.1 --no-maintenance`), the time from
// the host finishing the step's last command to the first version of the Slack card that shows the step ✅.
//
//   host end   from the simulated host's own records: a docker command's record (start `ts` + `durationMs`),
//              the simulated API's answer times (verify), and the mtime of .env (the pin: `sh -c awk …`,
//              which the docker shim does not see). A step without any host action (the maintenance
//              decision when --no-maintenance says it) is not counted.
//   shown      when the fake Slack answered the first card call (the card's chat.postMessage or a
//              chat.update of it) whose blocks carry "✅ <step title>".
//
// Series, interleaved round by round (one warm-up round each, not counted):
//   limits     zero-latency host, the fake's default Slack rate limits (as real Slack);
//   noLimits   the same with the fake's rate limits off;
//   paced      limits on, and host commands slowed to a plausible production pace (login 0.3 s, pull 3 s,
//              alembic heads 0.5 s, up 1.5 s, migrations 1 s), so steps end spread out over several card-update
//              intervals, as in a real deploy: this is where the card's update interval shows.
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Job } from 'bullmq';
import type { JobData } from '../src/jobs/job-data.js';
import type { RunbookData } from '../src/runbooks/kernel/types.js';
import type { Bot } from '../src/runtime.js';
import type { Call } from '../test/world/fake-slack.js';
import { sendSlashCommand } from '../test/world/slack-requests.js';
import { readCommandLog, setFault } from '../test/world/sim/host.mjs';
import { COMMAND_TEXT, assertDeployed, benchConfig } from './deploy.js';
import { percentile, startInProcessBot, until } from './util.js';
import { ALICE, OPS_CHANNEL, type BenchWorld, benchProcessEnv } from './world.js';

export type ProgressSeries = 'limits' | 'noLimits' | 'paced';
export const PROGRESS_SERIES: readonly ProgressSeries[] = ['limits', 'noLimits', 'paced'];

/** Host-side slowdowns of the paced series: [what the command line contains, ms]. */
const PACE: [string | string[], number][] = [
  ['login ghcr.io', 300],
  [' pull ', 3000],
  ['alembic heads', 500],
  ['up -d', 1500],
  ['upgrade head', 1000],
];

export interface StepLatency {
  step: string;
  hostEndAt: number;
  shownAt: number;
  latencyMs: number;
}

export interface ProgressRound {
  series: ProgressSeries;
  deployMs: number;
  steps: StepLatency[];
  /** Steps done without any host action (not counted). */
  uncounted: string[];
  cardCalls: number;
  rateLimited: number;
  /** Each card call Slack took, ms from the command, with the steps it showed done; host step ends likewise. */
  timeline: { at: number; method: string; done: string[] }[];
  hostEnds: Record<string, number>;
}

export interface ProgressSummary {
  n: number;
  p50: number;
  p95: number;
  max: number;
  /** Per step: median latency over the rounds. */
  perStep: Record<string, number>;
}

export interface ProgressBenchResult {
  command: string;
  rounds: number;
  warmupRounds: number;
  pace: { match: string | string[]; delayMs: number }[];
  series: Record<ProgressSeries, ProgressRound[]>;
  summary: Record<ProgressSeries, ProgressSummary>;
}

const escText = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

async function round(w: BenchWorld, bot: Bot, botUrl: string, series: ProgressSeries): Promise<ProgressRound> {
  const host = await w.freshHost();
  if (series === 'paced') setFault(host.deployPath, PACE.map(([match, delayMs]) => ({ match, delayMs, times: 1 })));
  w.slack.reset();
  w.slack.setRateLimits(series === 'noLimits' ? false : {});
  const t0 = Date.now();
  const ack = await sendSlashCommand(`${botUrl}/slack/events`, w.signingSecret, {
    text: COMMAND_TEXT,
    user_id: ALICE,
    channel_id: OPS_CHANNEL,
    response_url: w.slack.responseUrl({ channel: OPS_CHANNEL, user: ALICE }),
  });
  const jobId = /\(job (deploy-[^)\s]+)\)/.exec(typeof ack.body === 'object' ? String(ack.body?.text ?? '') : ack.text)?.[1];
  if (ack.status !== 200 || !jobId) throw new Error(`progress: the slash command was not accepted: HTTP ${ack.status} ${ack.text.slice(0, 300)}`);
  const job = await until(async () => {
    const j = await bot.producer!.getJob(jobId);
    return j?.finishedOn ? j : undefined;
  }, `deploy job ${jobId} to finish`, 180_000, 20) as Job<JobData>;
  const state = (job.data as RunbookData).state!;
  if (state.outcome !== 'succeeded') throw new Error(`progress: the deploy ended ${state.outcome}`);
  assertDeployed(host.deployPath, 'progress');

  // The card: the first top-level post; then every chat.update of it, in the order Slack answered.
  const ok = (c: Call) => c.status === 200 && c.response?.ok === true;
  const post = w.slack.calls.find((c) => c.method === 'chat.postMessage' && ok(c) && !c.args.thread_ts);
  if (!post) throw new Error('progress: no card was posted');
  const cardTs = String(post.response.ts);
  const cardCalls = [post, ...w.slack.calls.filter((c) => c.method === 'chat.update' && ok(c) && c.args.ts === cardTs)].sort((a, b) => a.at - b.at);
  const shownAt = (title: string) => cardCalls.find((c) => JSON.stringify(c.args.blocks ?? []).includes(`✅ ${escText(title)}`))?.at;

  // Host events with their end time, each given to the step that had started last before it began.
  const events: { start: number; end: number; step?: string }[] = readCommandLog(host.deployPath)
    .filter((r) => r.phase === 'end')
    .map((r) => ({ start: Date.parse(r.ts), end: Date.parse(r.ts) + r.durationMs }));
  for (const r of host.requests) events.push({ start: Date.parse(r.ts), end: Date.parse(r.ts) });
  const steps = state.steps;
  const starts = steps.map((s) => Date.parse(s.startedAt ?? ''));
  for (const e of events) {
    let idx = -1;
    for (let i = 0; i < steps.length; i++) if (Number.isFinite(starts[i]) && starts[i]! <= e.start) idx = i;
    if (idx >= 0) e.step = steps[idx]!.id;
  }
  const pin = steps.find((s) => s.id === 'pin');
  if (pin?.status === 'done') {
    const m = statSync(join(host.deployPath, '.env')).mtimeMs;
    events.push({ start: m, end: m, step: 'pin' });
  }

  const out: StepLatency[] = [];
  const uncounted: string[] = [];
  for (const s of steps) {
    if (s.status !== 'done') continue;
    const mine = events.filter((e) => e.step === s.id);
    if (mine.length === 0) {
      uncounted.push(s.id);
      continue;
    }
    const hostEndAt = Math.max(...mine.map((e) => e.end));
    const at = shownAt(s.title);
    if (at === undefined) throw new Error(`progress: the card never showed "${s.title}" done`);
    out.push({ step: s.id, hostEndAt, shownAt: at, latencyMs: at - hostEndAt });
  }
  const final = cardCalls.at(-1)!;
  const timeline = cardCalls.map((c) => ({ at: c.at - t0, method: c.method, done: steps.filter((s) => JSON.stringify(c.args.blocks ?? []).includes(`✅ ${escText(s.title)}`)).map((s) => s.id) }));
  return {
    timeline,
    hostEnds: Object.fromEntries(out.map((s) => [s.step, s.hostEndAt - t0])),
    series,
    deployMs: final.at - t0,
    steps: out,
    uncounted,
    cardCalls: cardCalls.length,
    rateLimited: w.slack.calls.filter((c) => c.status === 429).length,
  };
}

function summarize(rounds: ProgressRound[]): ProgressSummary {
  const all = rounds.flatMap((r) => r.steps.map((s) => s.latencyMs));
  const ids = [...new Set(rounds.flatMap((r) => r.steps.map((s) => s.step)))];
  return {
    n: all.length,
    p50: percentile(all, 50),
    p95: percentile(all, 95),
    max: percentile(all, 100),
    perStep: Object.fromEntries(ids.map((id) => [id, percentile(rounds.flatMap((r) => r.steps.filter((s) => s.step === id).map((s) => s.latencyMs)), 50)])),
  };
}

export async function runProgressBench(w: BenchWorld, opts: { rounds?: number; progress?: (line: string) => void } = {}): Promise<ProgressBenchResult> {
  const rounds = opts.rounds ?? 5;
  const progress = opts.progress ?? (() => undefined);
  const configPath = join(w.root, 'chatops-progress.yml');
  writeFileSync(configPath, benchConfig(w));
  // Production settings: the card's update interval and every other worker option at their defaults.
  const { bot, url } = await startInProcessBot(configPath, benchProcessEnv(w, configPath, 'bench-progress'));
  const series: ProgressBenchResult['series'] = { limits: [], noLimits: [], paced: [] };
  try {
    const one = async (name: ProgressSeries, label: string, keep: boolean) => {
      const r = await round(w, bot, url, name);
      const lat = r.steps.map((s) => s.latencyMs);
      progress(`${label} ${name.padEnd(8)} deploy ${String(r.deployMs).padStart(5)} ms, step → ✅ on the card: median ${Math.round(percentile(lat, 50))} ms, max ${Math.round(percentile(lat, 100))} ms (${r.cardCalls} card calls, ${r.rateLimited} × 429)`);
      if (keep) series[name].push(r);
    };
    for (const name of PROGRESS_SERIES) await one(name, 'warm-up   ', false);
    for (let i = 0; i < rounds; i++) {
      const order = PROGRESS_SERIES.map((_, k) => PROGRESS_SERIES[(k + i) % PROGRESS_SERIES.length]!);
      for (const name of order) await one(name, `round ${String(i + 1).padStart(2)}/${rounds}`, true);
    }
  } finally {
    await bot.close();
  }
  return {
    command: COMMAND_TEXT,
    rounds,
    warmupRounds: 1,
    pace: PACE.map(([match, delayMs]) => ({ match, delayMs })),
    series,
    summary: { limits: summarize(series.limits), noLimits: summarize(series.noLimits), paced: summarize(series.paced) },
  };
}
