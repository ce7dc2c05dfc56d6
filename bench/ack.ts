// Benchmark: how fast a slash command is acked. 200 signed `/engramia` commands, 20 in flight at a time,
// sent to the bot (`node dist/main.js --role app`, shipped settings, LOG_LEVEL info) and to a bare Bolt app
// with the same HTTPReceiver whose handler only calls ack() (bench/bare-bolt.mjs). Rounds alternate
// between the two (3 warm-up rounds each, then bot/bare, bare/bot, …) so machine noise hits both alike;
// each side is its own process and the load comes from this one, so neither the client nor the other side
// shares an event loop with the side measured. Latency is from writing the request to the last byte of the
// answer, over keep-alive connections (a fresh pool per round). Each side's CPU time per command (from
// /proc) is reported too: with 20 in flight and no pause between requests both sides are CPU-bound, so an
// ack mostly waits for the commands ahead of it and the latency ratio follows the CPU ratio.
//
// The bot's requests are what an incident sends: mostly `health`, then status, version, logs, diagnose,
// migrations, history, help, typos refused at parsing, and ten `deploy 0.6.1` of which one takes the
// environment lock and nine are refused as locked (the lock is cleared between rounds). Every request has
// a fresh trigger_id, or the replay check would refuse it. Role app only: no worker runs the queued jobs,
// so what is measured is the ack path and nothing else competing for the bot's event loop.
// BENCH_BOT_NODE_ARGS / BENCH_BARE_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") pass node flags to
// either side, to see where its CPU goes.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { QUEUE_NAME } from '../src/jobs/queue.js';
import { OpsStore } from '../src/jobs/store.js';
import { makeTriggerId, signSlackBody, slashCommandForm } from '../test/world/slack-requests.js';
import { benchConfig, stats, type Stats } from './deploy.js';
import { percentile, requireBuild, sleep, spawnBot, until, type BotProcess, ms1, x } from './util.js';
import { ALICE, OPS_CHANNEL, benchProcessEnv, type BenchWorld } from './world.js';

export const ACK_REQUESTS = 200;
export const ACK_CONCURRENCY = 20;
const ENV = 'production';
const WARMUP_ROUNDS = 3;
const BARE_BOLT = fileURLToPath(new URL('./bare-bolt.mjs', import.meta.url));

/** Per 200 requests. */
export const ACK_MIX: ReadonlyArray<[text: string, count: number]> = [
  ['health', 104],
  ['status', 24],
  ['version', 16],
  ['logs --tail 200', 12],
  ['diagnose', 12],
  ['migrations', 6],
  ['history', 6],
  ['deploy 0.6.1', 10],
  ['help', 4],
  ['helth', 6],
];

export type AckSeries = 'bot' | 'bare';

export interface AckRound {
  series: AckSeries;
  p50: number;
  p99: number;
  max: number;
  mean: number;
  /** First request sent → last answer in. */
  wallMs: number;
  /** CPU time (user + system, /proc/PID/stat) of the side's process for the round, per request; 10 ms ticks. */
  cpuMsPerRequest: number;
  /** redis-server's CPU time for the round, per request (INFO cpu): it runs on the same cores. */
  redisCpuMsPerRequest: number;
  /** What the bot answered, by kind (bare: all "empty ack"). */
  outcomes: Record<string, number>;
}

export interface AckBenchResult {
  requests: number;
  concurrency: number;
  rounds: number;
  warmupRounds: number;
  mix: Record<string, number>;
  series: Record<AckSeries, AckRound[]>;
  stats: Record<AckSeries, { p50: Stats; p99: Stats; max: Stats; cpuMsPerRequest: Stats; redisCpuMsPerRequest: Stats }>;
  /** Median over rounds of the bot's p99 / the same of the bare app's. */
  p99Ratio: number;
  p50Ratio: number;
  /** Per round, bot p99 / bare p99 of the same round. */
  roundP99Ratios: number[];
  /** Sequential PINGs from this process to the same Redis: the cost of one round trip the ack might wait on. */
  redisPingMs: { p50: number; p99: number };
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The mix in an order of its own per round, the same for both sides of the round. */
function texts(round: number): string[] {
  const list = ACK_MIX.flatMap(([t, n]) => Array.from({ length: Math.round((n * ACK_REQUESTS) / 200) }, () => t));
  const rnd = mulberry32(0xac1 + round);
  for (let i = list.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [list[i], list[j]] = [list[j]!, list[i]!];
  }
  return list;
}

interface Answer {
  status: number;
  text: string;
  ms: number;
}

function post(agent: http.Agent, port: number, body: string, secret: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers = { 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(Buffer.byteLength(body)), 'user-agent': 'Slackbot 1.0 (+https://api.slack.com/robots)', accept: '*/*', ...signSlackBody(secret, body) };
    const t0 = performance.now();
    const req = http.request({ host: '127.0.0.1', port, path: '/slack/events', method: 'POST', agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), ms: performance.now() - t0 }));
      res.on('error', reject);
    });
    req.setTimeout(10_000, () => req.destroy(new Error('no answer within 10 s')));
    req.on('error', reject);
    req.end(body);
  });
}

/** What kind of answer the bot gave; anything unexpected is kept by its first words so it shows in the table. */
function outcome(a: Answer, text: string): string {
  if (a.status !== 200) return `HTTP ${a.status}`;
  if (a.text === '') return 'empty ack';
  let said = '';
  try {
    said = String((JSON.parse(a.text) as { text?: unknown }).text ?? '');
  } catch {
    return `not JSON: ${a.text.slice(0, 40)}`;
  }
  if (/^Deploying /.test(said)) return 'deploy queued';
  if (/is locked by/.test(said)) return 'deploy refused: locked';
  if (/^(Checking|Reading|Diagnosing) .*\(job [^)]+\)$/.test(said)) return 'read job queued';
  if (/: (no deploys recorded|last \d+ deploys)/.test(said)) return 'history read';
  if (text === 'help' && said !== '') return 'help';
  if (text === 'helth') return 'refused: bad input';
  return said.slice(0, 60);
}

/** User + system CPU of a process so far, ms (clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

async function redisCpuMs(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const field = (k: string) => Number(new RegExp(`^${k}:([\\d.]+)`, 'm').exec(info)?.[1] ?? NaN);
  return (field('used_cpu_sys') + field('used_cpu_user')) * 1000;
}

async function oneRound(series: AckSeries, port: number, pid: number, redis: Redis, secret: string, list: string[]): Promise<AckRound> {
  // A fresh trigger_id per request: the bot refuses a second sighting as a replay.
  const bodies = list.map((text) => slashCommandForm({ text, user_id: ALICE, channel_id: OPS_CHANNEL, trigger_id: makeTriggerId() }));
  const agent = new http.Agent({ keepAlive: true, maxSockets: ACK_CONCURRENCY });
  const ms: number[] = new Array(bodies.length);
  const outcomes: Record<string, number> = {};
  let next = 0;
  const cpu0 = cpuMs(pid);
  const redisCpu0 = await redisCpuMs(redis);
  const t0 = performance.now();
  try {
    await Promise.all(
      Array.from({ length: ACK_CONCURRENCY }, async () => {
        for (let i = next++; i < bodies.length; i = next++) {
          const a = await post(agent, port, bodies[i]!, secret);
          ms[i] = a.ms;
          const k = outcome(a, list[i]!);
          outcomes[k] = (outcomes[k] ?? 0) + 1;
        }
      }),
    );
  } finally {
    agent.destroy();
  }
  const wallMs = performance.now() - t0;
  // The audit write and log lines that follow the last acks belong to the round too.
  await sleep(100);
  const cpuMsPerRequest = (cpuMs(pid) - cpu0) / bodies.length;
  const redisCpuMsPerRequest = ((await redisCpuMs(redis)) - redisCpu0) / bodies.length;
  return { series, p50: percentile(ms, 50), p99: percentile(ms, 99), max: Math.max(...ms), mean: ms.reduce((a, b) => a + b, 0) / ms.length, wallMs, cpuMsPerRequest, redisCpuMsPerRequest, outcomes };
}

function startBare(w: BenchWorld): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [...(process.env.BENCH_BARE_NODE_ARGS ?? '').split(' ').filter(Boolean), BARE_BOLT], {
    env: { PATH: process.env.PATH, SLACK_SIGNING_SECRET: w.signingSecret, SLACK_BOT_TOKEN: w.slack.botToken, SLACK_API_URL: w.slack.apiUrl },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString('utf8')));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString('utf8')));
  return until(() => {
    if (child.exitCode !== null) return Promise.reject(new Error(`the bare Bolt app exited:\n${out.slice(-2000)}`));
    const m = /\{"port":(\d+)\}/.exec(out);
    return m ? { child, port: Number(m[1]) } : undefined;
  }, 'the bare Bolt app to listen', 20_000, 20);
}

async function pingMs(redis: Redis, n = 500): Promise<{ p50: number; p99: number }> {
  const v: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await redis.ping();
    v.push(performance.now() - t);
  }
  return { p50: percentile(v, 50), p99: percentile(v, 99) };
}

export async function runAckBench(w: BenchWorld, opts: { rounds?: number; progress?: (line: string) => void } = {}): Promise<AckBenchResult> {
  const rounds = opts.rounds ?? 5;
  const progress = opts.progress ?? (() => undefined);
  requireBuild(progress);
  const configPath = join(w.root, 'chatops-ack.yml');
  writeFileSync(configPath, benchConfig(w));
  const prefix = 'bench-ack';
  const redis = new Redis(w.redis.url);
  const store = new OpsStore(redis, prefix);
  const queue = new Queue(QUEUE_NAME, { connection: redis, prefix });
  let bot: BotProcess | undefined;
  let bare: ChildProcess | undefined;
  const series: AckBenchResult['series'] = { bot: [], bare: [] };
  try {
    bot = spawnBot('app', benchProcessEnv(w, configPath, prefix), (process.env.BENCH_BOT_NODE_ARGS ?? '').split(' ').filter(Boolean));
    const b = bot;
    const botPort = await until(() => /"port":(\d+)[^\n]*engramia-chatops started/.exec(b.output())?.[1] ?? (b.child.exitCode !== null ? Promise.reject(new Error(`the bot exited:\n${b.output().slice(-3000)}`)) : undefined), 'the bot to start', 30_000, 20);
    const started = await startBare(w);
    bare = started.child;
    const ports: Record<AckSeries, number> = { bot: Number(botPort), bare: started.port };
    const pids: Record<AckSeries, number> = { bot: b.pid, bare: started.child.pid! };

    const one = async (s: AckSeries, i: number, keep: boolean) => {
      if (s === 'bot') {
        // Every round starts alike: no lock held, no queued jobs from the round before.
        await store.forceUnlock(ENV);
        await queue.drain(true);
      }
      const r = await oneRound(s, ports[s], pids[s], redis, w.signingSecret, texts(i));
      const seen = Object.entries(r.outcomes).map(([k, n]) => `${k} ${n}`).join(', ');
      progress(`${keep ? `round ${i + 1}/${rounds}` : 'warm-up   '} ${s.padEnd(4)} p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms, max ${r.max.toFixed(1)} ms, all ${Math.round(r.wallMs)} ms, CPU ${r.cpuMsPerRequest.toFixed(2)} ms/request (Redis ${r.redisCpuMsPerRequest.toFixed(3)})  [${seen}]`);
      if (s === 'bot' && (r.outcomes['deploy queued'] !== 1 || Object.keys(r.outcomes).some((k) => !['deploy queued', 'deploy refused: locked', 'read job queued', 'history read', 'help', 'refused: bad input'].includes(k)))) {
        throw new Error(`ack: the bot answered something unexpected: ${seen}`);
      }
      if (s === 'bare' && r.outcomes['empty ack'] !== ACK_REQUESTS) throw new Error(`ack: the bare app answered something unexpected: ${seen}`);
      if (keep) series[s].push(r);
    };
    // V8 is still optimising the hot paths over the first few hundred requests, the bot's more than Bolt's.
    for (let i = 0; i < WARMUP_ROUNDS; i++) {
      await one('bot', i, false);
      await one('bare', i, false);
    }
    for (let i = 0; i < rounds; i++) {
      const order: AckSeries[] = i % 2 === 0 ? ['bare', 'bot'] : ['bot', 'bare'];
      for (const s of order) await one(s, i, true);
    }
    const redisPingMs = await pingMs(redis);
    const st = (rs: AckRound[]) => ({ p50: stats(rs.map((r) => r.p50)), p99: stats(rs.map((r) => r.p99)), max: stats(rs.map((r) => r.max)), cpuMsPerRequest: stats(rs.map((r) => r.cpuMsPerRequest)), redisCpuMsPerRequest: stats(rs.map((r) => r.redisCpuMsPerRequest)) });
    const s = { bot: st(series.bot), bare: st(series.bare) };
    return {
      requests: ACK_REQUESTS,
      concurrency: ACK_CONCURRENCY,
      rounds,
      warmupRounds: WARMUP_ROUNDS,
      mix: Object.fromEntries(ACK_MIX),
      series,
      stats: s,
      p99Ratio: s.bot.p99.median / s.bare.p99.median,
      p50Ratio: s.bot.p50.median / s.bare.p50.median,
      roundP99Ratios: series.bot.map((r, i) => r.p99 / series.bare[i]!.p99),
      redisPingMs,
    };
  } finally {
    if (bare && bare.exitCode === null && bare.signalCode === null) {
      bare.kill('SIGTERM');
      await once(bare, 'exit');
    }
    await bot?.stop();
    await queue.close();
    redis.disconnect();
  }
}


export function printAck(r: AckBenchResult, table: (rows: string[][]) => string): void {
  const { bot, bare } = r.stats;
  console.log(`\nSlash-command ack: ${r.requests} signed commands, ${r.concurrency} in flight, per round; ${r.rounds} rounds per side + ${r.warmupRounds} warm-up, alternating; medians over rounds; baseline = bare Bolt app (same receiver) that only acks:`);
  console.log(
    table([
      ['measure', 'bot', 'bare Bolt', 'ratio'],
      ['ack p50: median of rounds', ms1(bot.p50.median), ms1(bare.p50.median), x(r.p50Ratio)],
      ['ack p99: median of rounds', ms1(bot.p99.median), ms1(bare.p99.median), x(r.p99Ratio)],
      ['ack p99: min / max of rounds', `${ms1(bot.p99.min)} / ${ms1(bot.p99.max)}`, `${ms1(bare.p99.min)} / ${ms1(bare.p99.max)}`, ''],
      ['ack p99: median of per-round ratios', '', '', x(stats(r.roundP99Ratios).median)],
      ['slowest ack: median of rounds', ms1(bot.max.median), ms1(bare.max.median), x(bot.max.median / bare.max.median)],
      ['server CPU per command: median of rounds', `${bot.cpuMsPerRequest.median.toFixed(2)} ms`, `${bare.cpuMsPerRequest.median.toFixed(2)} ms`, x(bot.cpuMsPerRequest.median / bare.cpuMsPerRequest.median)],
      ['redis-server CPU per command (same cores)', `${bot.redisCpuMsPerRequest.median.toFixed(3)} ms`, `${bare.redisCpuMsPerRequest.median.toFixed(3)} ms`, ''],
    ]),
  );
  const all: Record<string, number> = {};
  for (const round of r.series.bot) for (const [k, n] of Object.entries(round.outcomes)) all[k] = (all[k] ?? 0) + n;
  console.log(`mix per round: ${Object.entries(r.mix).map(([t, n]) => `${t} ×${n}`).join(', ')}`);
  console.log(`the bot's answers over the counted rounds: ${Object.entries(all).map(([k, n]) => `${k} ${n}`).join(', ')}`);
  console.log(`one Redis round trip (PING from the bench, sequential): p50 ${r.redisPingMs.p50.toFixed(3)} ms, p99 ${r.redisPingMs.p99.toFixed(3)} ms. Target: bot p99 within 1.1× of the bare app's, and far under Slack's 3 s.`);
}
