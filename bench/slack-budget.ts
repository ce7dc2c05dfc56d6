// Benchmark: the Slack Web API budget of deploys, against the fake Slack with its default limits on (as Slack:
// Tier 3 chat.update about 50 a minute per method for the whole workspace, burst 10; chat.postMessage about one a
// second per channel, burst 4).
//
//   single    one `deploy 0.6.1 --no-maintenance` alone: the calls one standard deploy makes, method by method;
//   unpaced   10 environments (each its own simulated host, API and sshd), each deploy sent from its own channel,
//             all 10 at once, one worker (concurrency 10), with the bot's Slack pacer off: what the limits do to
//             a bot that only reacts to 429s;
//   paced     the same with the pacer on (the shipped default);
//   paced2    the same over two workers (concurrency 5 each) sharing one Redis: the budget is shared through it;
//   local2    two workers whose pacers do not share (`shared: false`): each keeps to the budget alone, together
//             they do not.
//
// Each round: fresh hosts at 0.6.0, the fake's counters reset, the commands sent together, then until every job
// is done and every card shows the outcome. Times are from sending the commands.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Job } from 'bullmq';
import type { JobData } from '../src/jobs/job-data.js';
import type { RunbookData } from '../src/runbooks/kernel/types.js';
import { readEnvOptions } from '../src/config/env.js';
import { loadConfig } from '../src/config/load.js';
import { createLogger } from '../src/logger.js';
import { startBot, type Bot, type BotOptions } from '../src/runtime.js';
import type { Call } from '../test/world/fake-slack.js';
import { sendSlashCommand } from '../test/world/slack-requests.js';
import { assertDeployed, stats, TO_VERSION, VERIFY_SETTLE_SECONDS, type Stats } from './deploy.js';
import { envName, startMultiEnv, type MultiEnv } from './envs.js';
import { table } from './report.js';
import { sleep, startInProcessBot, until, ms } from './util.js';
import { ALICE, benchProcessEnv, type BenchWorld } from './world.js';

export const BUDGET_DEPLOYS = 10;
export const budgetChannel = (i: number) => `C0BUDGET${String(i + 1).padStart(2, '0')}`;

export type BudgetSeries = 'single' | 'unpaced' | 'paced' | 'paced2' | 'local2';

interface SeriesSpec {
  deploys: number;
  workers: number;
  pacing: NonNullable<BotOptions['workerOptions']>['slackPacing'];
  label: string;
}

export const BUDGET_SERIES: Record<BudgetSeries, SeriesSpec> = {
  single: { deploys: 1, workers: 1, pacing: undefined, label: '1 deploy alone, pacer on' },
  unpaced: { deploys: BUDGET_DEPLOYS, workers: 1, pacing: false, label: `${BUDGET_DEPLOYS} at once, 1 worker, pacer off` },
  paced: { deploys: BUDGET_DEPLOYS, workers: 1, pacing: undefined, label: `${BUDGET_DEPLOYS} at once, 1 worker, pacer on` },
  paced2: { deploys: BUDGET_DEPLOYS, workers: 2, pacing: undefined, label: `${BUDGET_DEPLOYS} at once, 2 workers, shared pacer` },
  local2: { deploys: BUDGET_DEPLOYS, workers: 2, pacing: { shared: false }, label: `${BUDGET_DEPLOYS} at once, 2 workers, pacers not shared` },
};

/**
 * The fixed budget of one standard deploy (`deploy VERSION --no-maintenance`), in calls Slack answers (429s count):
 * the card posted once; one thread message per step reply and the health report at most (11), fewer when replies
 * are merged while they wait for the channel's turn; card updates at most the card's own burst (3), one per 1.2 s
 * while the deploy runs, and the final one; one permalink for the history. README "Performance" states it.
 */
export function deployBudget(runMs: number): Record<string, number> {
  return { 'chat.postMessage': 1 + 11, 'chat.update': 3 + Math.floor(runMs / 1200) + 1, 'chat.getPermalink': 1, 'files.getUploadURLExternal': 0, 'files.completeUploadExternal': 0 };
}

/** The Web API methods a deploy makes, in the order they appear in tables. */
const METHODS = ['chat.postMessage', 'chat.update', 'chat.getPermalink', 'files.getUploadURLExternal', 'files.completeUploadExternal'];

export interface BudgetRound {
  series: BudgetSeries;
  deploys: number;
  workers: number;
  /** Every Web API call the fake answered, by method (429s included; auth.test from Bolt too). */
  calls: Record<string, number>;
  rateLimited: number;
  /** Per deploy (its channel), by method, 429s included. */
  perDeploy: Record<string, number>[];
  perDeployTotal: number[];
  /** Of those, thread replies (chat.postMessage with thread_ts). */
  perDeployReplies: number[];
  /** Each deploy kept to `deployBudget` for the time it ran. */
  withinBudget: boolean[];
  /** Last deploy done on its host (history written, lock freed). */
  hostDoneMs: number;
  /** Every card shows the outcome (the first card call Slack took with it). */
  cardsFinalMs: number;
  cardFinalMs: number[];
  /** Every job returned: its final flush found the card and the thread delivered. */
  jobsDoneMs: number;
}

export interface SlackBudgetBenchResult {
  command: string;
  rounds: Record<BudgetSeries, number>;
  series: Record<BudgetSeries, BudgetRound[]>;
  summary: Record<BudgetSeries, { perDeploy: Record<string, { min: number; max: number }>; perDeployTotal: Stats; rateLimited: Stats; hostDoneMs: Stats; cardsFinalMs: Stats; jobsDoneMs: Stats; calls: Record<string, Stats> }>;
}

const ok = (c: Call) => c.status === 200 && c.response?.ok === true;

async function round(w: BenchWorld, multi: MultiEnv, configPath: string, name: BudgetSeries): Promise<BudgetRound> {
  const spec = BUDGET_SERIES[name];
  await multi.freshHosts();
  w.slack.reset();
  w.slack.setRateLimits({});
  const prefix = `bench-budget-${name}-${randomBytes(3).toString('hex')}`;
  const env = benchProcessEnv(w, configPath, prefix);
  const concurrency = Math.ceil(spec.deploys / spec.workers);
  const workerOptions: NonNullable<BotOptions['workerOptions']> = { concurrency, ...(spec.pacing !== undefined ? { slackPacing: spec.pacing } : {}) };
  const bots: Bot[] = [];
  try {
    const first = await startInProcessBot(configPath, env, { workerOptions });
    bots.push(first.bot);
    // More workers on the same Redis and prefix, each with its own connections and pacer, as separate processes have.
    for (let i = 1; i < spec.workers; i++) {
      const log = createLogger({ level: 'info', destination: { write: () => undefined } });
      bots.push(await startBot({ env: readEnvOptions(env), config: loadConfig(configPath), role: 'worker', log, processEnv: env, workerOptions }));
    }
    const producer = first.bot.producer!;
    await until(async () => (await producer.workerCount().catch(() => 0)) >= spec.workers, `${spec.workers} workers to register`, 20_000, 50);
    const since = w.slack.calls.length;

    const t0 = Date.now();
    const acks = await Promise.all(
      Array.from({ length: spec.deploys }, (_, i) =>
        sendSlashCommand(`${first.url}/slack/events`, w.signingSecret, {
          text: `deploy ${TO_VERSION} ${envName(i)} --no-maintenance`,
          user_id: ALICE,
          channel_id: budgetChannel(i),
          response_url: w.slack.responseUrl({ channel: budgetChannel(i), user: ALICE }),
        }),
      ),
    );
    const jobIds = acks.map((a, i) => {
      const id = /\(job (deploy-[^)\s]+)\)/.exec(typeof a.body === 'object' ? String(a.body?.text ?? '') : a.text)?.[1];
      if (a.status !== 200 || !id) throw new Error(`slack-budget: deploy ${envName(i)} was not accepted: HTTP ${a.status} ${a.text.slice(0, 300)}`);
      return id;
    });
    const jobs = (await until(
      async () => {
        const all = await Promise.all(jobIds.map((id) => producer.getJob(id)));
        return all.every((j) => j?.finishedOn) ? all : undefined;
      },
      `${spec.deploys} deploy jobs to finish`,
      240_000,
      20,
    )) as Job<JobData>[];
    const jobsDoneMs = Math.max(...jobs.map((j) => j.finishedOn!)) - t0;
    const finalCall = (i: number) =>
      w.slack.calls.find((c) => ok(c) && c.args.channel === budgetChannel(i) && (c.method === 'chat.update' || (c.method === 'chat.postMessage' && !c.args.thread_ts)) && String(c.args.text ?? '').startsWith(`Deploy ${TO_VERSION} to ${envName(i)}: `) && String(c.args.text).endsWith('succeeded'));
    await until(() => Array.from({ length: spec.deploys }, (_, i) => finalCall(i)).every(Boolean), 'every card to show the outcome', 120_000, 20);
    // A late duplicate or a stray retry would show by now.
    await sleep(500);

    const hostDone: number[] = [];
    const runMs: number[] = [];
    for (let i = 0; i < spec.deploys; i++) {
      const data = jobs[i]!.data as RunbookData;
      if (data.state?.outcome !== 'succeeded') throw new Error(`slack-budget: ${envName(i)} ended ${data.state?.outcome}`);
      assertDeployed(multi.envs[i]!.deployPath, `slack-budget ${envName(i)}`);
      const h = (await producer.store.readHistory(envName(i))).find((e) => e.jobId === jobIds[i]);
      if (!h) throw new Error(`slack-budget: no history entry for ${envName(i)}`);
      hostDone.push(Date.parse(h.endedAt) - t0);
      runMs.push(Date.parse(h.endedAt) - jobs[i]!.processedOn!);
      // The card as it stands in the channel: one, final, every step done.
      const cards = w.slack.messagesIn(budgetChannel(i)).filter((m) => !m.thread_ts || m.thread_ts === m.ts);
      const text = JSON.stringify(cards[0]?.blocks ?? []);
      if (cards.length !== 1 || !String(cards[0]!.text).endsWith('succeeded') || /[⬜⏳❌]/u.test(text)) throw new Error(`slack-budget: the card in ${budgetChannel(i)} is not right: ${cards.length} card(s), "${cards[0]?.text}"`);
    }

    const calls = w.slack.calls.slice(since).filter((c) => !c.method.startsWith('@'));
    const by: Record<string, number> = {};
    for (const c of calls) by[c.method] = (by[c.method] ?? 0) + 1;
    const perDeploy = Array.from({ length: spec.deploys }, (_, i) => {
      const mine: Record<string, number> = {};
      // Upload calls carry the channel as channel_id (or, for the URL, nothing): a standard deploy makes none.
      for (const c of calls) if (c.args.channel === budgetChannel(i) || c.args.channel_id === budgetChannel(i)) mine[c.method] = (mine[c.method] ?? 0) + 1;
      return mine;
    });
    return {
      series: name,
      deploys: spec.deploys,
      workers: spec.workers,
      calls: by,
      rateLimited: calls.filter((c) => c.status === 429).length,
      perDeploy,
      perDeployTotal: perDeploy.map((m) => Object.values(m).reduce((a, b) => a + b, 0)),
      perDeployReplies: Array.from({ length: spec.deploys }, (_, i) => calls.filter((c) => c.method === 'chat.postMessage' && c.args.channel === budgetChannel(i) && c.args.thread_ts).length),
      withinBudget: perDeploy.map((m, i) => Object.entries(m).every(([method, n]) => n <= (deployBudget(runMs[i]!)[method] ?? Infinity))),
      hostDoneMs: Math.max(...hostDone),
      cardFinalMs: Array.from({ length: spec.deploys }, (_, i) => finalCall(i)!.at - t0),
      cardsFinalMs: Math.max(...Array.from({ length: spec.deploys }, (_, i) => finalCall(i)!.at - t0)),
      jobsDoneMs,
    };
  } finally {
    // Workers first: the app's close waits for nothing of theirs.
    for (const b of bots.slice().reverse()) await b.close();
  }
}

function summarize(rounds: BudgetRound[]): SlackBudgetBenchResult['summary'][BudgetSeries] {
  const perDeploy: Record<string, { min: number; max: number }> = {};
  const methods = [...new Set(rounds.flatMap((r) => r.perDeploy.flatMap((m) => Object.keys(m))))];
  for (const m of methods) {
    const v = rounds.flatMap((r) => r.perDeploy.map((d) => d[m] ?? 0));
    perDeploy[m] = { min: Math.min(...v), max: Math.max(...v) };
  }
  const allMethods = [...new Set(rounds.flatMap((r) => Object.keys(r.calls)))];
  return {
    perDeploy,
    perDeployTotal: stats(rounds.flatMap((r) => r.perDeployTotal)),
    rateLimited: stats(rounds.map((r) => r.rateLimited)),
    hostDoneMs: stats(rounds.map((r) => r.hostDoneMs)),
    cardsFinalMs: stats(rounds.map((r) => r.cardsFinalMs)),
    jobsDoneMs: stats(rounds.map((r) => r.jobsDoneMs)),
    calls: Object.fromEntries(allMethods.map((m) => [m, stats(rounds.map((r) => r.calls[m] ?? 0))])),
  };
}

export async function runSlackBudgetBench(w: BenchWorld, opts: { rounds?: number; progress?: (line: string) => void } = {}): Promise<SlackBudgetBenchResult> {
  const progress = opts.progress ?? (() => undefined);
  const names = Object.keys(BUDGET_SERIES) as BudgetSeries[];
  const rounds: Record<BudgetSeries, number> = Object.fromEntries(names.map((n) => [n, opts.rounds ?? (n === 'single' ? 3 : 2)])) as Record<BudgetSeries, number>;
  const multi = await startMultiEnv(w, BUDGET_DEPLOYS, { dirName: 'slack-budget' });
  const channels = Array.from({ length: BUDGET_DEPLOYS }, (_, i) => budgetChannel(i));
  for (const [i, id] of channels.entries()) w.slack.addChannel({ id, name: `team-${i + 1}`, member: true });
  const configPath = join(w.root, 'chatops-slack-budget.yml');
  writeFileSync(configPath, multi.configYaml({ verifySettleSeconds: VERIFY_SETTLE_SECONDS }, { allowedChannels: channels }));
  const series = Object.fromEntries(names.map((n) => [n, [] as BudgetRound[]])) as Record<BudgetSeries, BudgetRound[]>;
  try {
    // One warm-up of the busiest shape: SSH connections, modules, the first Redis scripts.
    const warm = await round(w, multi, configPath, 'paced');
    progress(`warm-up     paced: ${warm.rateLimited} × 429, cards final ${warm.cardsFinalMs} ms`);
    const most = Math.max(...Object.values(rounds));
    for (let k = 0; k < most; k++) {
      for (const n of names) {
        if (k >= rounds[n]) continue;
        const r = await round(w, multi, configPath, n);
        series[n].push(r);
        progress(
          `round ${k + 1}/${rounds[n]} ${n.padEnd(8)} ${r.deploys} deploy(s): ${r.rateLimited} × 429; calls ${METHODS.filter((m) => r.calls[m]).map((m) => `${m} ${r.calls[m]}`).join(', ')}; ` +
            `host done ${r.hostDoneMs} ms, cards final ${r.cardsFinalMs} ms, jobs done ${r.jobsDoneMs} ms; per deploy [${r.perDeployTotal.join(', ')}]`,
        );
      }
    }
  } finally {
    w.slack.setRateLimits({});
    await multi.close();
  }
  return {
    command: `deploy ${TO_VERSION} ENV --no-maintenance`,
    rounds,
    series,
    summary: Object.fromEntries(names.map((n) => [n, summarize(series[n])])) as SlackBudgetBenchResult['summary'],
  };
}

const range = (s: { min: number; max: number } | undefined) => (!s ? '0' : s.min === s.max ? String(s.min) : `${s.min}–${s.max}`);

export function printSlackBudget(r: SlackBudgetBenchResult): void {
  const names = Object.keys(r.series) as BudgetSeries[];
  console.log(`\nSlack Web API budget (${r.command}, each deploy from its own channel to its own environment; fake Slack with Slack's limits: chat.update 50/min burst 10 for the workspace, chat.postMessage 60/min burst 4 per channel; medians over rounds):`);
  const rows: string[][] = [['series', 'rounds', '429s', 'calls / deploy', 'within budget', 'host done', 'cards final', 'jobs done']];
  for (const n of names) {
    const s = r.summary[n];
    const within = r.series[n].flatMap((x) => x.withinBudget);
    rows.push([BUDGET_SERIES[n].label, String(r.rounds[n]), `${s.rateLimited.median} (max ${s.rateLimited.max})`, `${s.perDeployTotal.min}–${s.perDeployTotal.max}`, `${within.filter(Boolean).length}/${within.length}`, ms(s.hostDoneMs.median), ms(s.cardsFinalMs.median), ms(s.jobsDoneMs.median)]);
  }
  console.log(table(rows));
  console.log('budget of one deploy, 429s included: chat.postMessage ≤ 12 (the card, ≤ 11 thread messages), chat.update ≤ 4 + 1 per 1.2 s it runs, chat.getPermalink 1, no file');
  console.log('\nCalls per deploy, by method (min–max over every deploy of every round; 429s included):');
  const methods = METHODS.filter((m) => names.some((n) => r.summary[n].perDeploy[m]));
  console.log(table([['series', ...methods], ...names.map((n) => [BUDGET_SERIES[n].label, ...methods.map((m) => range(r.summary[n].perDeploy[m]))])]));
  console.log('\nCalls per round, all deploys together (median):');
  const all = [...new Set(names.flatMap((n) => Object.keys(r.summary[n].calls)))].sort();
  console.log(table([['series', ...all], ...names.map((n) => [BUDGET_SERIES[n].label, ...all.map((m) => String(r.summary[n].calls[m]?.median ?? 0))])]));
}
