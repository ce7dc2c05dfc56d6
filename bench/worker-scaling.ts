// Benchmark: worker scaling. 40 `health` jobs against 4 environments (10 each; every environment its own
// simulated host, API and sshd) are queued while no worker runs (the app role, in this process, takes the
// slash commands); then 1, 2 or 4 worker processes (`node dist/main.js --role worker`, shipped settings) are
// started on the same Redis, and the time until all 40 answers are posted is taken from their start.
// Slack's rate limits are off, and each command comes from a channel of its own: 40 answers in one channel
// would otherwise measure chat.postMessage's 1 per second per channel (which the workers' Slack pacer keeps
// to, as Slack does), not the workers.
//
// Each round also runs the 40 jobs' host work alone (direct-probe.mjs: the simulated docker, grep and API
// requests, all at once, no bot and no SSH): the most this machine's simulated hosts can do, whoever drives them.
//
// Checked each run: every answer posted once, every job started once (the workers' "job started" log
// lines), and on each host one `docker compose ps` and one deep-health request per job.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Bot } from '../src/runtime.js';
import { startMultiEnv, hostActivity, type MultiEnv } from './envs.js';
import { direct } from './health-fanout.js';
import { stats, type Stats } from './deploy.js';
import { answers, sendHealth, waitForAnswers, type SentCommand } from './read-jobs.js';
import { requireBuild, sleep, spawnBot, startInProcessBot, type BotProcess } from './util.js';
import { benchProcessEnv, type BenchWorld } from './world.js';

export const SCALING_ENVS = 4;
export const SCALING_JOBS = 40;
export const WORKER_COUNTS = [1, 2, 4] as const;

export interface ScalingRun {
  workers: number;
  /** From starting the worker processes to the last answer posted. */
  totalMs: number;
  jobsPerSec: number;
  /** From the first job a worker picked up to the last answer posted: throughput without start-up. */
  windowMs: number;
  windowJobsPerSec: number;
  /** From starting the processes to the first job picked up (process start, Redis, first SSH connect). */
  startupMs: number;
  /** Jobs started per worker process. */
  perWorker: number[];
  /** Every job started exactly once, answered exactly once, and ran its host probes once. */
  ranOnce: boolean;
  problems: string[];
}

export interface WorkerScalingBenchResult {
  environments: number;
  jobs: number;
  rounds: number;
  runs: ScalingRun[];
  stats: Record<string, { totalMs: Stats; jobsPerSec: Stats; windowJobsPerSec: Stats; startupMs: Stats }>;
  /** The 40 jobs' host work without any bot (simulated docker, grep, API requests), all at once, per round: this machine's ceiling. */
  hostWorkMs: Stats;
  hostWorkJobsPerSec: Stats;
  allRanOnce: boolean;
}

/** One channel per command (C0SCALE01 … C0SCALE40). */
const SCALING_CHANNELS = Array.from({ length: SCALING_JOBS }, (_, i) => `C0SCALE${String(i + 1).padStart(2, '0')}`);

async function enqueueAll(w: BenchWorld, app: { url: string }, multi: MultiEnv): Promise<SentCommand[]> {
  const sent: SentCommand[] = [];
  // In batches of 4 (one per environment), as people would type them, not all 40 in one burst.
  for (let i = 0; i < SCALING_JOBS / SCALING_ENVS; i++) sent.push(...(await Promise.all(multi.envs.map((e, k) => sendHealth(w, app.url, e.name, SCALING_CHANNELS[i * SCALING_ENVS + k]!)))));
  return sent;
}

async function runOnce(w: BenchWorld, configPath: string, multi: MultiEnv, workers: number): Promise<ScalingRun> {
  const prefix = `bench-scale-${workers}-${randomBytes(3).toString('hex')}`;
  const env = benchProcessEnv(w, configPath, prefix);
  await multi.freshHosts();
  w.slack.reset();
  w.slack.setRateLimits(false);
  let app: { bot: Bot; url: string } | undefined;
  const procs: BotProcess[] = [];
  try {
    app = await startInProcessBot(configPath, env, { role: 'app' });
    const sent = await enqueueAll(w, app, multi);
    const counts = await app.bot.producer!.counts();
    if ((counts.waiting ?? 0) + (counts.prioritized ?? 0) !== SCALING_JOBS) throw new Error(`worker-scaling: expected ${SCALING_JOBS} waiting jobs before the workers start, found ${JSON.stringify(counts)}`);

    const t0 = Date.now();
    for (let i = 0; i < workers; i++) procs.push(spawnBot('worker', env));
    const got = await waitForAnswers(w, sent, 180_000);
    const last = Math.max(...got.map((a) => a.answeredAt));
    const jobs = await Promise.all(sent.map((s) => app!.bot.producer!.getJob(s.jobId)));
    const firstPicked = Math.min(...jobs.map((j) => j?.processedOn ?? Infinity));

    await sleep(300); // a duplicate answer or a second start would show by now
    const problems: string[] = [];
    const a = answers(w);
    const dup = sent.filter((s) => (a.get(s.jobId)?.length ?? 0) !== 1);
    if (dup.length) problems.push(`${dup.length} jobs answered more than once`);
    const starts = procs.map((p) => [...p.output().matchAll(/"jobId":"([^"]+)"[^\n]*"msg":"job started"/g)].map((m) => m[1]!));
    const all = starts.flat();
    const perJob = new Map<string, number>();
    for (const id of all) perJob.set(id, (perJob.get(id) ?? 0) + 1);
    const twice = sent.filter((s) => perJob.get(s.jobId) !== 1);
    if (twice.length) problems.push(`${twice.length} jobs not started exactly once (${twice.slice(0, 3).map((s) => `${s.jobId}×${perJob.get(s.jobId) ?? 0}`).join(', ')})`);
    const perEnv = SCALING_JOBS / SCALING_ENVS;
    for (const e of multi.envs) {
      const h = hostActivity(e);
      const ps = h.docker.filter((c) => c.includes(' ps ')).length;
      const deep = h.api.filter((r) => r.startsWith('GET /v1/health/deep ')).length;
      if (ps !== perEnv || deep !== perEnv) problems.push(`${e.name}: ${ps} compose ps and ${deep} deep-health requests for ${perEnv} jobs`);
    }
    const totalMs = last - t0;
    const windowMs = last - firstPicked;
    return {
      workers,
      totalMs,
      jobsPerSec: SCALING_JOBS / (totalMs / 1000),
      windowMs,
      windowJobsPerSec: SCALING_JOBS / (windowMs / 1000),
      startupMs: firstPicked - t0,
      perWorker: starts.map((s) => s.length),
      ranOnce: problems.length === 0,
      problems,
    };
  } finally {
    await Promise.allSettled(procs.map((p) => p.stop()));
    await app?.bot.close();
  }
}

export async function runWorkerScalingBench(w: BenchWorld, opts: { rounds?: number; progress?: (line: string) => void } = {}): Promise<WorkerScalingBenchResult> {
  const rounds = opts.rounds ?? 3;
  const progress = opts.progress ?? (() => undefined);
  requireBuild(progress);
  const multi = await startMultiEnv(w, SCALING_ENVS, { dirName: 'scaling' });
  const configPath = join(w.root, 'chatops-scaling.yml');
  writeFileSync(configPath, multi.configYaml({}, { allowedChannels: SCALING_CHANNELS }));
  for (const id of SCALING_CHANNELS) w.slack.addChannel({ id, member: true });
  const runs: ScalingRun[] = [];
  const hostWork: number[] = [];
  try {
    const show = (label: string, r: ScalingRun) =>
      progress(
        `${label} ${r.workers} worker${r.workers > 1 ? 's' : ' '}: ${SCALING_JOBS} answers in ${r.totalMs} ms from start (${r.jobsPerSec.toFixed(1)} jobs/s; first job after ${r.startupMs} ms, then ${r.windowJobsPerSec.toFixed(1)} jobs/s), jobs per worker [${r.perWorker.join(', ')}]${r.ranOnce ? '' : ` PROBLEMS: ${r.problems.join('; ')}`}`,
      );
    // Warm-up: the first start of node dist/main.js reads every module from disk.
    show('warm-up     ', await runOnce(w, configPath, multi, 1));
    for (let i = 0; i < rounds; i++) {
      const order = WORKER_COUNTS.map((_, k) => WORKER_COUNTS[(k + i) % WORKER_COUNTS.length]!);
      for (const n of order) {
        const r = await runOnce(w, configPath, multi, n);
        runs.push(r);
        show(`round ${i + 1}/${rounds}`, r);
      }
      await multi.freshHosts();
      const d = await direct(w, multi.envs, { fanoutOnly: true, times: SCALING_JOBS / SCALING_ENVS });
      hostWork.push(d.fanoutMs);
      progress(`round ${i + 1}/${rounds} host work alone: ${SCALING_JOBS} jobs' probes at once, no bot: ${Math.round(d.fanoutMs)} ms (${(SCALING_JOBS / (d.fanoutMs / 1000)).toFixed(1)} jobs/s)`);
    }
  } finally {
    w.slack.setRateLimits({});
    await multi.close();
  }
  const of = (n: number) => runs.filter((r) => r.workers === n);
  return {
    environments: SCALING_ENVS,
    jobs: SCALING_JOBS,
    rounds,
    runs,
    stats: Object.fromEntries(
      WORKER_COUNTS.map((n) => [
        String(n),
        { totalMs: stats(of(n).map((r) => r.totalMs)), jobsPerSec: stats(of(n).map((r) => r.jobsPerSec)), windowJobsPerSec: stats(of(n).map((r) => r.windowJobsPerSec)), startupMs: stats(of(n).map((r) => r.startupMs)) },
      ]),
    ),
    allRanOnce: runs.every((r) => r.ranOnce),
    hostWorkMs: stats(hostWork),
    hostWorkJobsPerSec: stats(hostWork.map((ms) => SCALING_JOBS / (ms / 1000))),
  };
}
