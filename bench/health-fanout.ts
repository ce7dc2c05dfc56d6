// Benchmark: `/engramia health` fan-out. 20 environments, each its own simulated host (deploy dir, API
// server, sshd) with zero latency; 20 `health envNN` slash commands sent at once, timed until all 20
// answers are in the channel, against the slowest single-environment `health` of the same round (each
// environment alone, one after another). The point is concurrency, so Slack's rate limits are off in the
// counted rounds (20 answers in one channel would otherwise wait on chat.postMessage's 1 per second);
// one extra fan-out with the limits on (the fake's and the bot's own pacer, shipped settings) shows what they do.
//
// Series, interleaved (one warm-up round each, which also opens the 20 SSH connections):
//   c8      worker concurrency 8 (the default before it was raised to 32);
//   c20     concurrency 20 (the default of 32 behaves the same here), so every read job of the fan-out runs at once;
//   light   concurrency 20 against light hosts (light-host.ts): the same sshds, hosts and API servers, but the
//           `docker compose ps` each probe runs costs one bash process instead of a Node program, so the 20
//           hosts need far less of this machine's CPU, and what is left is mostly the bot's own work;
//   light300, light1000   the same with that `ps` taking 300 ms / 1 s of waiting (a sleep, not CPU), as a real
//           one waits on the Docker daemon: the fan-out should then cost the slowest probe plus the CPU floor;
//   direct  no bot: the same host work (the `docker compose ps` and `grep` a health job runs, and the three
//           API requests) run from this process, one environment vs all 20 at once: how far this 2-core
//           machine lets the simulated hosts themselves scale, whoever drives them.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Bot } from '../src/runtime.js';
import { DOCKER_SHIM } from '../test/world/sim/host.mjs';
import { startMultiEnv, hostActivity, type BenchEnv, type MultiEnv } from './envs.js';
import { lightHost } from './light-host.js';
import { stats, type Stats } from './deploy.js';
import { answers, sendHealth, waitForAnswers } from './read-jobs.js';
import { sleep, startInProcessBot } from './util.js';
import { benchProcessEnv, type BenchWorld } from './world.js';

export const FANOUT_ENVS = 20;
export type FanoutSeries = 'c8' | 'c20' | 'light' | 'light300' | 'light1000' | 'direct';
const ALL_SERIES: readonly FanoutSeries[] = ['c8', 'c20', 'light', 'light300', 'light1000', 'direct'];
/** How long a light host's `ps` waits (a sleep), per light series. */
export const LIGHT_WAIT_MS = { light: 0, light300: 300, light1000: 1000 } as const satisfies Partial<Record<FanoutSeries, number>>;
export const LIGHT_SERIES = Object.keys(LIGHT_WAIT_MS) as (keyof typeof LIGHT_WAIT_MS)[];
/** BENCH_FANOUT_SERIES=light,direct runs only those (to profile one). */
const SERIES: readonly FanoutSeries[] = process.env.BENCH_FANOUT_SERIES ? ALL_SERIES.filter((n) => process.env.BENCH_FANOUT_SERIES!.split(',').includes(n)) : ALL_SERIES;
type BotSeries = 'c8' | 'c20';
const CONCURRENCY: Record<BotSeries, number | undefined> = { c8: 8, c20: FANOUT_ENVS };
/** Which bot serves a series. */
const BOT_OF: Record<Exclude<FanoutSeries, 'direct'>, BotSeries> = { c8: 'c8', c20: 'c20', light: 'c20', light300: 'c20', light1000: 'c20' };

export interface FanoutRound {
  series: FanoutSeries;
  /** Each environment alone, ms from the command to its answer (direct: to the last probe's end). */
  singles: Record<string, number>;
  slowestSingleMs: number;
  /** All at once: from the first command sent to the last answer posted. */
  fanoutMs: number;
  ratio: number;
  /** Slowest Bolt answer to the 20 commands sent at once. */
  maxAckMs?: number;
}

export interface HealthFanoutBenchResult {
  environments: number;
  rounds: number;
  series: Record<FanoutSeries, FanoutRound[]>;
  stats: Record<FanoutSeries, { fanoutMs: Stats; slowestSingleMs: Stats; ratio: Stats; singleMs: Stats }>;
  /** One fan-out with Slack's rate limits on (default concurrency). */
  withSlackLimits: { answered: number; lastAnswerMs: number; failedJobs: number; rateLimited: number; waitedMs: number };
  /** Every fan-out ran each environment's probes exactly once (one `compose ps`, one deep-health request). */
  probesRanOnce: boolean;
}

// ------------------------------------------------------------------------------------------------
// Without the bot: the same host work, from a small helper process (see direct-probe.mjs)

const DIRECT_PROBE = fileURLToPath(new URL('./direct-probe.mjs', import.meta.url));

/** Each environment alone, then all at once (or the reverse); `times` lists each environment that often in the all-at-once run only. */
export function direct(w: BenchWorld, envs: BenchEnv[], opts: { singlesFirst?: boolean; fanoutOnly?: boolean; times?: number } = {}): Promise<{ singles: Record<string, number>; fanoutMs: number }> {
  const list = Array.from({ length: opts.times ?? 1 }, () => envs).flat();
  const input = { envs: list.map((e) => ({ name: e.name, deployPath: e.deployPath, apiUrl: e.apiUrl })), apiKey: w.apiKey, dockerShim: DOCKER_SHIM, singlesFirst: opts.singlesFirst ?? true, fanoutOnly: opts.fanoutOnly ?? false };
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [DIRECT_PROBE, JSON.stringify(input)], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (out += d.toString('utf8')));
    child.once('error', reject);
    child.once('close', (code) => {
      if (code !== 0) return reject(new Error(`direct probes failed (exit ${code}): ${out.slice(-2000)}`));
      resolve(JSON.parse(out.trim().split('\n').at(-1)!));
    });
  });
}

// ------------------------------------------------------------------------------------------------

async function botSingles(w: BenchWorld, url: string, multi: MultiEnv): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const e of multi.envs) {
    w.slack.reset();
    w.slack.setRateLimits(false);
    const sent = await sendHealth(w, url, e.name);
    const [a] = await waitForAnswers(w, [sent]);
    out[e.name] = a!.answeredAt - a!.sentAt;
  }
  return out;
}

async function botFanout(w: BenchWorld, url: string, multi: MultiEnv, limits: boolean, timeoutMs = 120_000): Promise<{ ms: number; maxAckMs: number; ranOnce: boolean }> {
  await multi.freshHosts();
  w.slack.reset();
  w.slack.setRateLimits(limits ? {} : false);
  const t0 = Date.now();
  const sent = await Promise.all(multi.envs.map((e) => sendHealth(w, url, e.name)));
  const got = await waitForAnswers(w, sent, timeoutMs);
  const ms = Math.max(...got.map((a) => a.answeredAt)) - t0;
  // Let stragglers (a duplicate answer would be one) arrive before counting.
  await sleep(200);
  const dup = [...answers(w).values()].some((list) => list.length > 1);
  const ranOnce = !dup && multi.envs.every((e) => {
    const h = hostActivity(e);
    return h.docker.filter((c) => c.includes(' ps ')).length === 1 && h.api.filter((r) => r.startsWith('GET /v1/health/deep ')).length === 1;
  });
  return { ms, maxAckMs: Math.max(...sent.map((s) => s.ackMs)), ranOnce };
}

export async function runHealthFanoutBench(w: BenchWorld, opts: { rounds?: number; progress?: (line: string) => void } = {}): Promise<HealthFanoutBenchResult> {
  const rounds = opts.rounds ?? 3;
  const progress = opts.progress ?? (() => undefined);
  progress(`health-fanout: starting ${FANOUT_ENVS} simulated hosts (own sshd and API each)`);
  const light = lightHost(join(w.root, 'fanout-light'));
  const multi = await startMultiEnv(w, FANOUT_ENVS, { dirName: 'fanout', binDir: light.binDir });
  light.capture(multi.envs.map((e) => e.deployPath));
  const configPath = join(w.root, 'chatops-fanout.yml');
  writeFileSync(configPath, multi.configYaml());
  const bots: Partial<Record<BotSeries, { bot: Bot; url: string }>> = {};
  const series = Object.fromEntries(ALL_SERIES.map((n) => [n, []])) as unknown as HealthFanoutBenchResult['series'];
  let probesRanOnce = true;
  let withSlackLimits: HealthFanoutBenchResult['withSlackLimits'] | undefined;
  let pacedBot: { bot: Bot; url: string } | undefined;
  try {
    for (const name of ['c8', 'c20'] as const) {
      const c = CONCURRENCY[name];
      // Slack's limits off on both sides: the bot's pacer would otherwise hold 20 answers in one channel to one a
      // second (as Slack does, see the limits-on run below), and the series would measure that instead of concurrency.
      bots[name] = await startInProcessBot(configPath, benchProcessEnv(w, configPath, `bench-fanout-${name}`), { workerOptions: { slackPacing: false, ...(c ? { concurrency: c } : {}) } });
    }

    const one = async (name: FanoutSeries, i: number, keep: boolean): Promise<void> => {
      const singlesFirst = i % 2 === 0;
      let singles: Record<string, number> = {};
      let fan: { ms: number; maxAckMs?: number; ranOnce: boolean } | undefined;
      const url = name === 'direct' ? '' : bots[BOT_OF[name]]!.url;
      const wait = (LIGHT_WAIT_MS as Partial<Record<FanoutSeries, number>>)[name];
      light.use(wait === undefined ? 'simulated' : 'light');
      light.setWait(wait ?? 0);
      const doSingles = async () => {
        await multi.freshHosts();
        singles = await botSingles(w, url, multi);
      };
      const doFan = async () => {
        fan = await botFanout(w, url, multi, false);
      };
      if (name === 'direct') {
        await multi.freshHosts();
        const d = await direct(w, multi.envs, { singlesFirst });
        singles = d.singles;
        fan = { ms: d.fanoutMs, ranOnce: true };
      } else if (singlesFirst) {
        await doSingles();
        await doFan();
      } else {
        await doFan();
        await doSingles();
      }
      const slowest = Math.max(...Object.values(singles));
      const r: FanoutRound = { series: name, singles, slowestSingleMs: slowest, fanoutMs: fan!.ms, ratio: fan!.ms / slowest, ...(fan!.maxAckMs !== undefined ? { maxAckMs: fan!.maxAckMs } : {}) };
      if (!fan!.ranOnce) probesRanOnce = false;
      progress(
        `${keep ? `round ${i + 1}/${rounds}` : 'warm-up   '} ${name.padEnd(6)} ${FANOUT_ENVS} at once ${Math.round(r.fanoutMs)} ms, slowest single ${Math.round(slowest)} ms → ${r.ratio.toFixed(2)}×${r.maxAckMs !== undefined ? ` (slowest Bolt ack ${Math.round(r.maxAckMs)} ms)` : ''}${fan!.ranOnce ? '' : ' PROBES NOT RUN EXACTLY ONCE'}`,
      );
      if (keep) series[name].push(r);
    };

    for (const name of SERIES) await one(name, 0, false);
    for (let i = 0; i < rounds; i++) {
      const order = SERIES.map((_, k) => SERIES[(k + i) % SERIES.length]!);
      for (const name of order) await one(name, i, true);
    }

    // With Slack's limits on: 20 answers in one channel meet chat.postMessage's 1 per second (burst 4).
    // Shipped settings: the pacer on, the default concurrency.
    const bot = await startInProcessBot(configPath, benchProcessEnv(w, configPath, 'bench-fanout-paced'));
    pacedBot = bot;
    light.use('simulated');
    await multi.freshHosts();
    w.slack.reset();
    w.slack.setRateLimits({});
    const t0 = Date.now();
    const sent = await Promise.all(multi.envs.map((e) => sendHealth(w, bot.url, e.name)));
    const waitedMs = 60_000;
    const deadline = t0 + waitedMs;
    let failedJobs = 0;
    for (;;) {
      const a = answers(w);
      const states = await Promise.all(sent.map(async (s) => (await bot.bot.producer!.getJob(s.jobId))?.getState()));
      failedJobs = states.filter((s) => s === 'failed').length;
      const settled = states.every((s) => s === 'completed' || s === 'failed');
      if ((settled && sent.every((s) => a.has(s.jobId) || states[sent.indexOf(s)] === 'failed')) || Date.now() > deadline) break;
      await sleep(50);
    }
    const a = answers(w);
    // A job that failed posts a failure notice with its id too: only real health answers count.
    const got = sent.filter((s) => a.get(s.jobId)?.some((c) => String(c.args.text ?? '').startsWith(`${s.env}: healthy`))).map((s) => a.get(s.jobId)!.find((c) => String(c.args.text ?? '').startsWith(`${s.env}: healthy`))!.at);
    withSlackLimits = { answered: got.length, lastAnswerMs: got.length ? Math.max(...got) - t0 : NaN, failedJobs, rateLimited: w.slack.calls.filter((c) => c.status === 429).length, waitedMs };
    progress(`Slack limits on: ${got.length}/${sent.length} answers posted, last at ${withSlackLimits.lastAnswerMs} ms; ${failedJobs} jobs failed; ${withSlackLimits.rateLimited} × 429`);
  } finally {
    await Promise.allSettled([...Object.values(bots), ...(pacedBot ? [pacedBot] : [])].map((b) => b!.bot.close()));
    w.slack.setRateLimits({});
    await multi.close();
  }

  const st = (rs: FanoutRound[]) => ({
    fanoutMs: stats(rs.map((r) => r.fanoutMs)),
    slowestSingleMs: stats(rs.map((r) => r.slowestSingleMs)),
    ratio: stats(rs.map((r) => r.ratio)),
    singleMs: stats(rs.flatMap((r) => Object.values(r.singles))),
  });
  return {
    environments: FANOUT_ENVS,
    rounds,
    series,
    stats: Object.fromEntries(ALL_SERIES.map((n) => [n, st(series[n])])) as HealthFanoutBenchResult['stats'],
    withSlackLimits: withSlackLimits!,
    probesRanOnce,
  };
}
