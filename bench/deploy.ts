// Benchmark: a full standard deploy (`deploy 0.6.1 --no-maintenance`, 0.6.0 → 0.6.1) through the
// real bot, against the same host commands typed into one plain OpenSSH session.
//
//   bot          signed slash command → Bolt → BullMQ → worker → SSH → simulated host, timed until
//                the deploy card in the fake Slack shows the outcome (the final chat.update), with
//                the fake's default rate limits on (what Slack does) …
//   botNoLimits  … and the same with the fake's rate limits off;
//   baseline     `ssh … bash -s < script`, the script generated from the bot's own command builders
//                (src/runbooks/commands.ts via renderCommand), so the host runs the same commands.
//
// Every round gets a fresh host at 0.6.0; series are interleaved (rotating order) so machine noise
// hits each alike; one warm-up round of each is not counted.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Job } from 'bullmq';
import { loadConfig } from '../src/config/load.js';
import type { EnvironmentConfig } from '../src/config/schema.js';
import { compose } from '../src/engramia/compose.js';
import type { JobData } from '../src/jobs/job-data.js';
import * as cmd from '../src/runbooks/commands.js';
import type { RunbookData } from '../src/runbooks/kernel/types.js';
import type { Bot } from '../src/runtime.js';
import { renderCommand, shellQuote, type RemoteCommand } from '../src/ssh/quote.js';
import type { Call } from '../test/world/fake-slack.js';
import { configYaml } from '../test/world/config.js';
import { findBinary } from '../test/world/requirements.js';
import { sendSlashCommand } from '../test/world/slack-requests.js';
import { readCommandLog, readEnvFile, readState, runningApiTag } from '../test/world/sim/host.mjs';
import { restSlackBudget, startInProcessBot } from './util.js';
import { commandLabel, installTracing, now, tracer, type Span } from './trace.js';
import { ALICE, OPS_CHANNEL, type BenchWorld, benchProcessEnv } from './world.js';

export const FROM_VERSION = '0.6.0';
export const TO_VERSION = '0.6.1';
export const COMMAND_TEXT = `deploy ${TO_VERSION} --no-maintenance`;
/** A deadline only: the simulated API answers with the new version as soon as the container is re-created. */
export const VERIFY_SETTLE_SECONDS = 5;

export type SeriesName = 'bot' | 'botNoLimits' | 'baseline';
export const SERIES: readonly SeriesName[] = ['bot', 'baseline', 'botNoLimits'];

export interface Stats {
  n: number;
  median: number;
  min: number;
  max: number;
}

export interface BotRound {
  ms: number;
  jobId: string;
  /** Waited before the round for the channel's Slack budget to refill (not counted). */
  restMs: number;
  /** Bolt's HTTP answer to the slash command. */
  ackMs: number;
  /** Until the job ended, i.e. every thread reply was delivered too. */
  jobDoneMs: number;
  /** HTTP requests the fake Slack answered, by method (429s included). */
  calls: Record<string, number>;
  rateLimited: number;
  /** Thread replies Slack accepted. */
  repliesDelivered: number;
  /** Log lines of the bot saying a Slack message was given up on. */
  undelivered: number;
  /** Critical-path segments, ms from sending the request. */
  segments: Record<string, number>;
  steps: { id: string; ms: number }[];
  /** Bot-side SSH exec round trips: label → ms. */
  execs: { label: string; ms: number; start: number }[];
  /** Bot-side API probes (verify step). */
  http: { label: string; ms: number; start: number }[];
  sshConnects: number;
  sshConnectMs: number;
  redis: { count: number; ms: number };
  slackAwaitedByJob: { label: string; ms: number }[];
  slackCalls: { method: string; at: number; status: number }[];
  hostCommands: string[];
}

export interface BaselineRound {
  ms: number;
  /** From spawning `ssh` to the first command of the script (TCP, key exchange, auth, session, bash). */
  connectMs: number;
  /** In-session time per command, from `$EPOCHREALTIME` markers. */
  commands: { label: string; ms: number }[];
  hostCommands: string[];
}

export interface DeployBenchResult {
  command: string;
  rounds: number;
  warmupRounds: number;
  httpClient: string;
  verifySettleSeconds: number;
  series: { bot: BotRound[]; botNoLimits: BotRound[]; baseline: BaselineRound[] };
  /** The uncounted first round of each series (the bot's first deploy opens its SSH connection). */
  warmup: { bot?: BotRound; botNoLimits?: BotRound; baseline?: BaselineRound };
  stats: Record<SeriesName, Stats>;
  ratio: { botVsBaseline: number; botNoLimitsVsBaseline: number };
  slack: Record<'bot' | 'botNoLimits', { callsByMethod: Record<string, number>; rateLimitedPerDeploy: number[]; jobDone: Stats }>;
  /** Host commands (docker, as the sim recorded them) of the last bot and baseline rounds match as multisets. */
  identicalHostCommands: boolean;
  hostCommandDiff?: { botOnly: string[]; baselineOnly: string[] };
  breakdown: Record<'bot' | 'botNoLimits', Record<string, number>>;
  perCommand: { label: string; bot: number; baseline: number }[];
  baselineConnect: Stats;
  script: string;
}

export function stats(values: number[]): Stats {
  const s = [...values].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return { n: 0, median: NaN, min: NaN, max: NaN };
  const median = n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
  return { n, median, min: s[0]!, max: s[n - 1]! };
}

const median = (values: number[]): number => stats(values).median;

// ------------------------------------------------------------------------------------------------
// The bot

export function benchConfig(w: BenchWorld): string {
  return configYaml({ deployPath: w.deployPath, apiUrl: w.apiUrl, sshd: w.sshd, envExtra: { verifySettleSeconds: VERIFY_SETTLE_SECONDS } });
}

/** What the simulated docker ran, as "IMAGE_TAG=x argv…" lines, sorted (the bot runs some probes in parallel). */
export function hostCommands(deployPath: string): string[] {
  return readCommandLog(deployPath)
    .filter((r) => r.phase !== 'start')
    .map((r) => `${r.env?.IMAGE_TAG ? `IMAGE_TAG=${r.env.IMAGE_TAG} ` : ''}${r.argv.join(' ')}`)
    .sort();
}

export function assertDeployed(deployPath: string, who: string): void {
  const tag = runningApiTag(deployPath);
  const env = readEnvFile(deployPath);
  const pins = env.match(/^IMAGE_TAG=.*$/gm) ?? [];
  const rev = readState(deployPath).db.revision;
  if (tag !== TO_VERSION || pins.join() !== `IMAGE_TAG=${TO_VERSION}` || rev !== '032' || env.includes('ENGRAMIA_MAINTENANCE')) {
    throw new Error(`${who}: the host is not deployed: running ${tag}, .env pins ${pins.join(', ') || 'nothing'}, db at ${rev}`);
  }
}

const API_LABEL: Record<string, string> = { version: 'GET /v1/version', health: 'GET /v1/health', deepHealth: 'GET /v1/health/deep' };
const cardText = (c: Call) => (typeof c.args.text === 'string' ? c.args.text : '');
const OUTCOME_RE = new RegExp(`^Deploy ${TO_VERSION.replace(/\./g, '\\.')} to production: (.+)$`);

export async function botRound(w: BenchWorld, bot: Bot, botUrl: string, limits: boolean, logs: string[]): Promise<BotRound> {
  await w.freshHost();
  // Back to back, rounds in one channel would run at Slack's sustained 1 post/s (two posts a deploy) and
  // measure that limit, not a deploy: each round starts, as an on-call deploy does, in a rested channel.
  const restMs = await restSlackBudget(w.redis.url);
  w.slack.reset();
  w.slack.setRateLimits(limits ? {} : false);
  tracer.reset();
  const responseUrl = w.slack.responseUrl({ channel: OPS_CHANNEL, user: ALICE });
  const logMark = logs.length;

  const t0 = Date.now();
  const ack = await sendSlashCommand(`${botUrl}/slack/events`, w.signingSecret, { text: COMMAND_TEXT, user_id: ALICE, channel_id: OPS_CHANNEL, response_url: responseUrl });
  const jobId = /\(job (deploy-[^)\s]+)\)/.exec(typeof ack.body === 'object' ? String(ack.body?.text ?? '') : ack.text)?.[1];
  if (ack.status !== 200 || !jobId) throw new Error(`bot: the slash command was not accepted: HTTP ${ack.status} ${ack.text.slice(0, 500)}`);

  // The final card: the first successful chat.update whose text states an outcome other than running/waiting.
  const final = await w.slack.waitFor(
    () =>
      w.slack.calls.find((c) => {
        if (c.method !== 'chat.update' || c.status !== 200 || c.response?.ok !== true) return false;
        const m = OUTCOME_RE.exec(cardText(c));
        return m && !/^(running|waiting)/.test(m[1]!);
      }),
    { timeoutMs: 180_000, intervalMs: 5, description: 'the final deploy card' },
  );
  const outcome = OUTCOME_RE.exec(cardText(final))![1]!;
  const ms = final.at - t0;

  // Let the job end (the thread's rate-limited replies) before the next round starts.
  let job: Job<JobData> | undefined;
  const deadline = Date.now() + 180_000;
  for (;;) {
    job = await bot.producer!.getJob(jobId);
    if (job?.finishedOn) break;
    if (Date.now() > deadline) throw new Error(`bot: job ${jobId} did not finish`);
    await new Promise((r) => setTimeout(r, 25));
  }
  if (outcome !== 'succeeded') {
    throw new Error(`bot: the deploy ended "${outcome}":\n${JSON.stringify(final.args.blocks).slice(0, 2000)}\n--- bot log ---\n${logs.slice(logMark).join('').slice(-4000)}`);
  }
  assertDeployed(w.deployPath, 'bot');

  const calls: Record<string, number> = {};
  for (const c of w.slack.calls) calls[c.method] = (calls[c.method] ?? 0) + 1;
  const state = (job.data as RunbookData).state!;
  const steps = state.steps.map((s) => ({ id: s.id, ms: Date.parse(s.endedAt ?? '') - Date.parse(s.startedAt ?? '') }));
  const firstStart = Date.parse(state.steps[0]!.startedAt!);
  const lastEnd = Date.parse(state.steps.at(-1)!.endedAt!);
  let gaps = 0;
  for (let i = 1; i < state.steps.length; i++) gaps += Date.parse(state.steps[i]!.startedAt!) - Date.parse(state.steps[i - 1]!.endedAt!);
  const cardPost = w.slack.calls.find((c) => c.method === 'chat.postMessage' && c.status === 200 && !c.args.thread_ts);

  const spans: Span[] = tracer.spans;
  const of = (kind: string) => spans.filter((s) => s.kind === kind);
  const flush = of('reporter.flush').at(-1);
  const connects = of('ssh.connect');
  const redis = of('redis');
  // The final card's chat.update as the job saw it: from handing it to the outbox to Slack's answer.
  const finalUpdate = of('slack.update').filter((x) => x.ok).at(-1);
  const firstLimited = w.slack.calls.find((c) => c.status === 429);
  const segments: Record<string, number> = {
    'request → Bolt ack': ack.elapsedMs,
    'request → job enqueued': job.timestamp - t0,
    'enqueued → worker picked it up': (job.processedOn ?? NaN) - job.timestamp,
    'picked up → card posted': (cardPost?.at ?? NaN) - (job.processedOn ?? NaN),
    'card posted → first step starts': firstStart - (cardPost?.at ?? NaN),
    'steps (sum of step durations)': steps.reduce((a, s) => a + s.ms, 0),
    'between steps (saves, card scheduling)': gaps,
    'last step ends → final card shown': final.at - lastEnd,
    'final card: outbox.update → answered (queue wait incl.)': finalUpdate ? finalUpdate.end - finalUpdate.start : NaN,
    'first 429 (ms from request; NaN = none)': firstLimited ? firstLimited.at - t0 : NaN,
    'final flush (card + thread), start → end': flush ? flush.end - flush.start : NaN,
    'final card shown → job done (thread tail)': job.finishedOn - final.at,
  };
  for (const s of steps) segments[`step ${s.id}`] = s.ms;
  return {
    ms,
    jobId,
    restMs,
    ackMs: ack.elapsedMs,
    jobDoneMs: job.finishedOn - t0,
    calls,
    rateLimited: w.slack.calls.filter((c) => c.status === 429).length,
    repliesDelivered: w.slack.calls.filter((c) => c.method === 'chat.postMessage' && c.status === 200 && c.args.thread_ts).length,
    undelivered: logs.slice(logMark).filter((l) => /not delivered|still pending/.test(l)).length,
    segments,
    steps,
    execs: of('ssh.exec').map((s) => ({ label: s.label, ms: s.end - s.start, start: s.start - t0 })),
    http: of('http.api').map((s) => ({ label: API_LABEL[s.label] ?? s.label, ms: s.end - s.start, start: s.start - t0 })),
    sshConnects: connects.length,
    sshConnectMs: connects.reduce((a, s) => a + (s.end - s.start), 0),
    redis: { count: redis.length, ms: redis.reduce((a, s) => a + (s.end - s.start), 0) },
    slackAwaitedByJob: [...of('reporter.start'), ...of('reporter.flush')].map((s) => ({ label: s.label, ms: s.end - s.start })),
    slackCalls: w.slack.calls.map((c) => ({ method: c.method, at: c.at - t0, status: c.status })),
    hostCommands: hostCommands(w.deployPath),
  };
}

// ------------------------------------------------------------------------------------------------
// The baseline: one plain ssh session running what an operator pastes from the runbook

type HttpClient = 'curl' | 'wget' | 'node';

export function pickHttpClient(): HttpClient {
  if (findBinary('curl')) return 'curl';
  if (findBinary('wget')) return 'wget';
  return 'node';
}

function httpGet(client: HttpClient, url: string, bearer?: string): string {
  const auth = bearer ? `Authorization: Bearer ${bearer}` : undefined;
  if (client === 'curl') return `curl -sf -w '\\n' ${auth ? `-H ${shellQuote(auth)} ` : ''}${shellQuote(url)}`;
  if (client === 'wget') return `wget -qO- ${auth ? `--header=${shellQuote(auth)} ` : ''}${shellQuote(url)}; echo`;
  const js = `fetch(process.argv[1],{headers:process.argv[2]?{authorization:process.argv[2]}:{}}).then(async r=>{console.log(await r.text());process.exit(r.ok?0:22)})`;
  return `node -e ${shellQuote(js)} ${shellQuote(url)} ${auth ? shellQuote(auth) : "''"}`;
}

/** Names the baselines' docker config folder, as a job id names the bot's. */
export const BENCH_JOB_ID = 'bench-deploy';

/** The read-only probes a deploy starts (and its verification ends) with: what runs, and what .env pins. */
export function probeCommands(env: EnvironmentConfig): RemoteCommand[] {
  return [compose(env, ['ps', '-a', '--format', 'json']), cmd.readEnvFlags(env)];
}

/** The deploy's commands after the registry login, in the bot's order: what both baselines (ssh, Ansible) run. */
export function deployCommands(env: EnvironmentConfig): RemoteCommand[] {
  return [
    cmd.pull(env, TO_VERSION, BENCH_JOB_ID),
    cmd.registryLogout(env),
    cmd.imageHeads(env, TO_VERSION),
    cmd.alembic(env, FROM_VERSION, ['current']),
    cmd.up(env, TO_VERSION, [cmd.API, 'caddy']),
    cmd.alembic(env, TO_VERSION, ['upgrade', 'head']),
    cmd.setEnvVar(env, env.tagVariable, TO_VERSION),
    cmd.prune(env),
  ];
}

export interface OperatorScript {
  script: string;
  labels: string[];
}

/**
 * The runbook as an operator pastes it: cd once, then the very commands the bot builds (rendered by
 * the same quoting function, minus the per-command `cd`), each with stdin from /dev/null so none of
 * them eats the rest of the script `bash -s` is reading, except the login, which gets the token.
 */
export function operatorScript(env: EnvironmentConfig, o: { registryToken: string; apiKey: string; http: HttpClient }): OperatorScript {
  const line = (c: RemoteCommand) => renderCommand({ ...c, cwd: undefined });
  const run = (c: RemoteCommand) => ({ label: commandLabel(c), text: `${line(c)} </dev/null` });
  const probe = probeCommands(env).map(run);
  const base = env.apiBaseUrl.replace(/\/+$/, '');
  const steps: { label: string; text: string }[] = [
    // Preflight: what runs now, and what .env pins.
    ...probe,
    { label: commandLabel(cmd.registryLogin(env, BENCH_JOB_ID)), text: `echo "$TOKEN" | ${line(cmd.registryLogin(env, BENCH_JOB_ID))}` },
    ...deployCommands(env).map(run),
    { label: 'GET /v1/version', text: httpGet(o.http, `${base}/v1/version`) },
    { label: 'GET /v1/health', text: httpGet(o.http, `${base}/v1/health`, o.apiKey) },
    { label: 'GET /v1/health/deep', text: httpGet(o.http, `${base}/v1/health/deep`, o.apiKey) },
    // The bot's verify step reads the host too (containers, .env pin): so does the operator.
    ...probe.map((p) => ({ ...p, label: `${p.label} (verify)` })),
  ];
  const mark = (label: string) => `printf '@@T %s %s\\n' "$EPOCHREALTIME" ${shellQuote(label)} >&2`;
  const script = [
    'set -euo pipefail',
    `cd ${shellQuote(env.deployPath)}`,
    `TOKEN=${shellQuote(o.registryToken)}`,
    ...steps.flatMap((s) => [mark(s.label), s.text]),
    mark('end'),
    '',
  ].join('\n');
  return { script, labels: steps.map((s) => s.label) };
}

export function sshArgs(w: BenchWorld): string[] {
  return [
    '-F', '/dev/null', // this machine's ~/.ssh/config must not change what is measured
    '-i', w.sshd.privateKeyPath,
    '-p', String(w.sshd.port),
    '-o', `UserKnownHostsFile=${w.knownHostsPath}`,
    '-o', 'StrictHostKeyChecking=yes',
    '-o', 'BatchMode=yes',
    '-o', 'LogLevel=ERROR',
    `${w.sshd.username}@127.0.0.1`,
    'bash', '-s',
  ];
}

export async function baselineRound(w: BenchWorld, s: OperatorScript): Promise<BaselineRound> {
  await w.freshHost();
  const t0 = now();
  const { code, stdout, stderr, end } = await new Promise<{ code: number | null; stdout: string; stderr: string; end: number }>((resolve, reject) => {
    const child = spawn('ssh', sshArgs(w), { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
    child.once('error', reject);
    child.once('close', (c) => resolve({ code: c, stdout: out, stderr: err, end: now() }));
    child.stdin.end(s.script);
  });
  const ms = end - t0;
  if (code !== 0) throw new Error(`baseline: ssh exited with ${code}\n--- stderr ---\n${stderr.slice(-3000)}\n--- stdout ---\n${stdout.slice(-2000)}`);
  if (!stdout.includes(`"app_version":"${TO_VERSION}"`)) throw new Error(`baseline: /v1/version did not report ${TO_VERSION}:\n${stdout.slice(-2000)}`);
  assertDeployed(w.deployPath, 'baseline');

  const marks = [...stderr.matchAll(/^@@T (\d+[.,]\d+) (.*)$/gm)].map((m) => ({ t: Number(m[1]!.replace(',', '.')) * 1000, label: m[2]! }));
  if (marks.length !== s.labels.length + 1) throw new Error(`baseline: expected ${s.labels.length + 1} timing marks, got ${marks.length} (bash without $EPOCHREALTIME?)`);
  const commands = marks.slice(0, -1).map((m, i) => ({ label: m.label, ms: marks[i + 1]!.t - m.t }));
  return { ms, connectMs: marks[0]!.t - t0, commands, hostCommands: hostCommands(w.deployPath) };
}

// ------------------------------------------------------------------------------------------------

export interface DeployBenchOptions {
  rounds?: number;
  progress?: (line: string) => void;
}

export async function runDeployBench(w: BenchWorld, opts: DeployBenchOptions = {}): Promise<DeployBenchResult> {
  const rounds = opts.rounds ?? 7;
  const progress = opts.progress ?? (() => undefined);
  installTracing();

  const configPath = join(w.root, 'chatops.yml');
  writeFileSync(configPath, benchConfig(w));
  const config = loadConfig(configPath);
  const env = config.environments.production!;
  const processEnv = benchProcessEnv(w, configPath, 'bench');
  const http = pickHttpClient();
  const script = operatorScript(env, { registryToken: w.registryToken, apiKey: w.apiKey, http });

  const logs: string[] = [];
  // Production settings: no test-only worker options (the card interval stays at its default). It returns once
  // the worker has registered: a deploy sent before that would measure start-up.
  const { bot, url: botUrl } = await startInProcessBot(configPath, processEnv, { logs });
  const series: DeployBenchResult['series'] = { bot: [], botNoLimits: [], baseline: [] };
  const warmup: DeployBenchResult['warmup'] = {};
  try {
    const runOne = async (name: SeriesName, label: string): Promise<void> => {
      if (name === 'baseline') {
        const r = await baselineRound(w, script);
        progress(`${label} baseline      ${r.ms.toFixed(0).padStart(6)} ms (ssh session setup ${r.connectMs.toFixed(0)} ms)`);
        if (label.startsWith('warm')) warmup.baseline = r;
        else series.baseline.push(r);
      } else {
        const r = await botRound(w, bot, botUrl, name === 'bot', logs);
        progress(
          `${label} ${name === 'bot' ? 'bot (limits)  ' : 'bot (no limit)'} ${r.ms.toFixed(0).padStart(6)} ms (job done at ${r.jobDoneMs} ms, ${r.rateLimited} × 429, ${r.repliesDelivered} replies${r.undelivered ? `, ${r.undelivered} NOT DELIVERED` : ''})`,
        );
        if (label.startsWith('warm')) warmup[name] = r;
        else series[name].push(r);
      }
    };

    for (const name of SERIES) await runOne(name, 'warm-up  ');
    for (let i = 0; i < rounds; i++) {
      // Rotate the order each round so no series always runs first (or right after the same neighbour).
      const order = SERIES.map((_, k) => SERIES[(k + i) % SERIES.length]!);
      for (const name of order) await runOne(name, `round ${String(i + 1).padStart(2)}/${rounds}`);
    }
  } finally {
    await bot.close();
  }

  const st = {
    bot: stats(series.bot.map((r) => r.ms)),
    botNoLimits: stats(series.botNoLimits.map((r) => r.ms)),
    baseline: stats(series.baseline.map((r) => r.ms)),
  };

  const slackSummary = (rs: BotRound[]) => {
    const methods = [...new Set(rs.flatMap((r) => Object.keys(r.calls)))].sort();
    return {
      callsByMethod: Object.fromEntries(methods.map((m) => [m, median(rs.map((r) => r.calls[m] ?? 0))])),
      rateLimitedPerDeploy: rs.map((r) => r.rateLimited),
      jobDone: stats(rs.map((r) => r.jobDoneMs)),
    };
  };

  const breakdownOf = (rs: BotRound[]): Record<string, number> => {
    const keys = Object.keys(rs[0]?.segments ?? {});
    const out: Record<string, number> = Object.fromEntries(keys.map((k) => [k, median(rs.map((r) => r.segments[k]!))]));
    out['ssh exec count'] = median(rs.map((r) => r.execs.length));
    out['ssh exec time (sum, incl. parallel)'] = median(rs.map((r) => r.execs.reduce((a, e) => a + e.ms, 0)));
    out['ssh connects per deploy'] = median(rs.map((r) => r.sshConnects));
    out['redis calls awaited by the job'] = median(rs.map((r) => r.redis.count));
    out['redis time awaited by the job (sum)'] = median(rs.map((r) => r.redis.ms));
    return out;
  };

  const labels = [...new Set([...series.bot.flatMap((r) => r.execs.map((e) => e.label)), ...series.baseline.flatMap((r) => r.commands.map((c) => c.label.replace(/ \(verify\)$/, '')))])];
  const perCommand = labels.map((label) => ({
    label,
    bot: median(series.bot.flatMap((r) => [...r.execs, ...r.http].filter((e) => e.label === label).map((e) => e.ms))),
    baseline: median(series.baseline.flatMap((r) => r.commands.filter((c) => c.label.replace(/ \(verify\)$/, '') === label).map((c) => c.ms))),
  }));

  const lastBot = series.bot.at(-1)?.hostCommands ?? [];
  const lastBase = series.baseline.at(-1)?.hostCommands ?? [];
  const diff = (a: string[], b: string[]) => {
    const rest = [...b];
    return a.filter((x) => {
      const i = rest.indexOf(x);
      if (i === -1) return true;
      rest.splice(i, 1);
      return false;
    });
  };
  const botOnly = diff(lastBot, lastBase);
  const baselineOnly = diff(lastBase, lastBot);

  return {
    command: COMMAND_TEXT,
    rounds,
    warmupRounds: 1,
    httpClient: http,
    verifySettleSeconds: VERIFY_SETTLE_SECONDS,
    series,
    warmup,
    stats: st,
    ratio: { botVsBaseline: st.bot.median / st.baseline.median, botNoLimitsVsBaseline: st.botNoLimits.median / st.baseline.median },
    slack: { bot: slackSummary(series.bot), botNoLimits: slackSummary(series.botNoLimits) },
    identicalHostCommands: botOnly.length === 0 && baselineOnly.length === 0,
    ...(botOnly.length || baselineOnly.length ? { hostCommandDiff: { botOnly, baselineOnly } } : {}),
    breakdown: { bot: breakdownOf(series.bot), botNoLimits: breakdownOf(series.botNoLimits) },
    perCommand,
    baselineConnect: stats(series.baseline.map((r) => r.connectMs)),
    script: script.script.replace(w.registryToken, '<registry token>').replace(w.apiKey, '<api key>').replaceAll(w.apiKey, '<api key>'),
  };
}
