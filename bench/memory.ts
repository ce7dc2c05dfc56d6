// Benchmark: resident memory of `node dist/main.js --role all` (shipped settings, LOG_LEVEL info), read
// from /proc/PID/status:
//
//   idle         VmRSS after start-up (worker registered, Slack checked), once a settle wait (30 s) has let
//                V8 collect the start-up garbage (it does so on its own some seconds after allocation stops):
//                median of the samples in the last 3 s; the RSS right at ready is reported too, and the V8
//                heap (used / total) from the bot's own /metrics;
//   start-up     VmHWM at that point: the peak while starting;
//   deploy peak  per deploy (`deploy 0.6.1 --no-maintenance`, fresh host each), VmHWM after the peak was
//                reset (`5` into /proc/PID/clear_refs) right before the command; also the highest VmRSS
//                sampled every 20 ms, which is what is shown where clear_refs is not allowed;
//   idle after   VmRSS after the deploys and the same settle wait (growth hints at a leak).
//
// The baseline is an empty Node process of the same binary (`node -e` with a timer): the floor any
// Node bot starts from.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { QUEUE_NAME } from '../src/jobs/queue.js';
import { sendSlashCommand } from '../test/world/slack-requests.js';
import { COMMAND_TEXT, assertDeployed, benchConfig, stats, type Stats } from './deploy.js';
import { procStatusKb, requireBuild, sleep, spawnBot, until } from './util.js';
import { ALICE, OPS_CHANNEL, benchProcessEnv, type BenchWorld } from './world.js';

export interface MemoryBenchResult {
  settleMs: number;
  /** VmRSS when /healthz first answered 200. */
  readyMb: number;
  idleMb: number;
  /** V8 heap used / total at idle, from the bot's /metrics (prom-client default metrics). */
  idleHeapMb?: { used: number; total: number };
  idleAfterHeapMb?: { used: number; total: number };
  startupPeakMb: number;
  deployPeakMb: number[];
  deployPeakSampledMb: number[];
  /** Whether VmHWM could be reset per deploy; if not, deployPeakMb repeats the sampled peak. */
  hwmReset: boolean;
  idleAfterMb: number;
  deployPeak: Stats;
  baselineIdleMb: number;
  deployMs: number[];
  targetIdleMb: number;
}

const mb = (kb: number) => kb / 1024;
export const IDLE_TARGET_MB = 150;

/** Samples VmRSS every 250 ms for `ms`; the median of the last 3 s. */
async function sampleIdle(pid: number, ms: number): Promise<number> {
  const v: { at: number; kb: number }[] = [];
  const end = Date.now() + ms;
  while (Date.now() < end) {
    v.push({ at: Date.now(), kb: procStatusKb(pid, 'VmRSS') });
    await sleep(250);
  }
  return mb(stats(v.filter((x) => x.at >= end - 3000).map((x) => x.kb)).median);
}

async function heapMb(url: string): Promise<{ used: number; total: number } | undefined> {
  const text = await fetch(`${url}/metrics`).then((r) => r.text()).catch(() => '');
  const metric = (name: string) => Number(new RegExp(`^chatops_nodejs_${name} (\\S+)$`, 'm').exec(text)?.[1]);
  const used = metric('heap_size_used_bytes');
  const total = metric('heap_size_total_bytes');
  return Number.isFinite(used) && Number.isFinite(total) ? { used: used / 2 ** 20, total: total / 2 ** 20 } : undefined;
}

/** Idle RSS of an empty Node process (same binary), sampled like the bot's. */
async function baselineIdle(settleMs: number): Promise<number> {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  try {
    return await sampleIdle(child.pid!, settleMs);
  } finally {
    child.kill('SIGKILL');
  }
}

export async function runMemoryBench(w: BenchWorld, opts: { rounds?: number; settleMs?: number; progress?: (line: string) => void } = {}): Promise<MemoryBenchResult> {
  const rounds = opts.rounds ?? 3;
  const settleMs = opts.settleMs ?? 30_000;
  const progress = opts.progress ?? (() => undefined);
  requireBuild(progress);
  const configPath = join(w.root, 'chatops-memory.yml');
  writeFileSync(configPath, benchConfig(w));
  const prefix = 'bench-memory';
  const env = benchProcessEnv(w, configPath, prefix);
  const queue = new Queue(QUEUE_NAME, { connection: { url: w.redis.url }, prefix });
  const bot = spawnBot('all', env);
  try {
    const started = await until(() => /"port":(\d+),"adminPort":(\d+)[^\n]*engramia-chatops started/.exec(bot.output()) ?? (bot.child.exitCode !== null ? Promise.reject(new Error(`the bot exited:\n${bot.output().slice(-3000)}`)) : undefined), 'the bot to start', 30_000, 20);
    const url = `http://127.0.0.1:${started[1]}`;
    // /metrics is on the admin listener only (ADMIN_PORT=0 in benchProcessEnv: any free port).
    const adminUrl = `http://127.0.0.1:${started[2]}`;
    await until(async () => (await fetch(`${url}/healthz`).then((r) => r.status).catch(() => 0)) === 200, 'the bot to be ready (/healthz 200)', 30_000, 100);
    const readyMb = mb(procStatusKb(bot.pid, 'VmRSS'));
    const idleMb = await sampleIdle(bot.pid, settleMs);
    const startupPeakMb = mb(procStatusKb(bot.pid, 'VmHWM'));
    const idleHeapMb = await heapMb(adminUrl);
    progress(`memory: ${readyMb.toFixed(1)} MB when ready, idle ${idleMb.toFixed(1)} MB after a ${settleMs / 1000} s settle (start-up peak ${startupPeakMb.toFixed(1)} MB; V8 heap ${idleHeapMb ? `${idleHeapMb.used.toFixed(1)} / ${idleHeapMb.total.toFixed(1)} MB` : 'unknown'})`);

    const deployPeakMb: number[] = [];
    const deployPeakSampledMb: number[] = [];
    const deployMs: number[] = [];
    let hwmReset = true;
    for (let i = 0; i <= rounds; i++) {
      const host = await w.freshHost();
      w.slack.reset();
      try {
        writeFileSync(`/proc/${bot.pid}/clear_refs`, '5');
      } catch {
        hwmReset = false;
      }
      let sampled = procStatusKb(bot.pid, 'VmRSS');
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          sampled = Math.max(sampled, procStatusKb(bot.pid, 'VmRSS'));
          await sleep(20);
        }
      })();
      const t0 = Date.now();
      const ack = await sendSlashCommand(`${url}/slack/events`, w.signingSecret, { text: COMMAND_TEXT, user_id: ALICE, channel_id: OPS_CHANNEL, response_url: w.slack.responseUrl({ channel: OPS_CHANNEL, user: ALICE }) });
      const jobId = /\(job (deploy-[^)\s]+)\)/.exec(typeof ack.body === 'object' ? String(ack.body?.text ?? '') : ack.text)?.[1];
      if (!jobId) throw new Error(`memory: the deploy was not accepted: ${ack.text.slice(0, 300)}`);
      const finished = await until(async () => (await queue.getJob(jobId))?.finishedOn, `deploy ${jobId} to finish`, 180_000, 25);
      sampling = false;
      await sampler;
      assertDeployed(host.deployPath, 'memory');
      const peak = hwmReset ? mb(procStatusKb(bot.pid, 'VmHWM')) : mb(sampled);
      // The first deploy (not counted) opens the SSH connection and loads what start-up did not.
      const label = i === 0 ? 'warm-up  ' : `deploy ${i}/${rounds}`;
      progress(`${label} peak ${peak.toFixed(1)} MB (sampled ${mb(sampled).toFixed(1)} MB), job done in ${finished - t0} ms`);
      if (i > 0) {
        deployPeakMb.push(peak);
        deployPeakSampledMb.push(mb(sampled));
        deployMs.push(finished - t0);
      }
    }
    const idleAfterMb = await sampleIdle(bot.pid, settleMs);
    const idleAfterHeapMb = await heapMb(adminUrl);
    progress(`memory: idle after the deploys ${idleAfterMb.toFixed(1)} MB (V8 heap ${idleAfterHeapMb ? `${idleAfterHeapMb.used.toFixed(1)} / ${idleAfterHeapMb.total.toFixed(1)} MB` : 'unknown'})`);
    const baselineIdleMb = await baselineIdle(3000);
    return { settleMs, readyMb, idleMb, ...(idleHeapMb ? { idleHeapMb } : {}), ...(idleAfterHeapMb ? { idleAfterHeapMb } : {}), startupPeakMb, deployPeakMb, deployPeakSampledMb, hwmReset, idleAfterMb, deployPeak: stats(deployPeakMb), baselineIdleMb, deployMs, targetIdleMb: IDLE_TARGET_MB };
  } finally {
    await bot.stop();
    await queue.close();
  }
}
