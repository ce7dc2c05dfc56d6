// Benchmark: how long after a kill -9 of its worker a deploy resumes, with the shipped lock settings
// (job lock 15 s, stalled check every 5 s; no CHATOPS_JOB_LOCK_MS override). The app runs in this process;
// the worker is `node dist/main.js --role worker`, killed with SIGKILL while a slowed `pull` runs, and a new
// worker is started at once (as a container restart policy would). Measured per round, from the kill:
//
//   resumed   the new worker started the job again (its "job started" log line);
//   done      the deploy finished (its history entry is written).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RunbookData } from '../src/runbooks/kernel/types.js';
import { DEFAULT_JOB_LOCK_MS, DEFAULT_STALLED_INTERVAL_MS } from '../src/jobs/worker.js';
import { sendSlashCommand } from '../test/world/slack-requests.js';
import { readCommandLog, runningApiTag, setFault } from '../test/world/sim/host.mjs';
import { TO_VERSION, benchConfig, stats, type Stats } from './deploy.js';
import { startInProcessBot } from './util.js';
import { ALICE, OPS_CHANNEL, type BenchWorld, benchProcessEnv } from './world.js';

const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));

export interface CrashResumeRound {
  resumedMs: number;
  doneMs: number;
}

export interface CrashResumeBenchResult {
  jobLockMs: number;
  stalledIntervalMs: number;
  rounds: CrashResumeRound[];
  stats: { resumedMs: Stats; doneMs: Stats };
}

function worker(env: NodeJS.ProcessEnv): { child: ChildProcess; out: () => string; exited: Promise<unknown> } {
  const child = spawn(process.execPath, [MAIN, '--role', 'worker'], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  return { child, out: () => out, exited: once(child, 'exit') };
}

async function until<T>(fn: () => Promise<T | undefined | false> | T | undefined | false, what: string, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function runCrashResumeBench(w: BenchWorld, opts: { rounds?: number; progress?: (line: string) => void } = {}): Promise<CrashResumeBenchResult> {
  const rounds = opts.rounds ?? 3;
  const progress = opts.progress ?? (() => undefined);
  const configPath = join(w.root, 'chatops-crash.yml');
  writeFileSync(configPath, benchConfig(w));
  const processEnv = benchProcessEnv(w, configPath, 'bench-crash');
  const { bot: app, url: botUrl } = await startInProcessBot(configPath, processEnv, { role: 'app' });
  const out: CrashResumeRound[] = [];
  try {
    for (let i = 0; i < rounds; i++) {
      await w.freshHost();
      w.slack.reset();
      // Long enough that the orphaned pull is still running when the new worker looks.
      setFault(w.deployPath, { match: ' pull', delayMs: 60_000, times: 1 });
      const a = worker(processEnv);
      const ack = await sendSlashCommand(`${botUrl}/slack/events`, w.signingSecret, {
        text: `deploy ${TO_VERSION} --no-maintenance`,
        user_id: ALICE,
        channel_id: OPS_CHANNEL,
        response_url: w.slack.responseUrl({ channel: OPS_CHANNEL, user: ALICE }),
      });
      const jobId = /\(job (deploy-[^)\s]+)\)/.exec(typeof ack.body === 'object' ? String(ack.body?.text ?? '') : ack.text)?.[1];
      if (!jobId) throw new Error(`bench: deploy not accepted: ${ack.text.slice(0, 200)}`);
      await until(async () => {
        const job = await app.producer!.getJob(jobId);
        const pull = (job?.data as RunbookData | undefined)?.state?.steps.find((s) => s.id === 'pull');
        return pull?.remotePid && readCommandLog(w.deployPath).some((r: { phase: string; argv: string[] }) => r.phase === 'start' && r.argv.includes('pull'));
      }, 'the pull to start');
      a.child.kill('SIGKILL');
      await a.exited;
      const killedAt = Date.now();
      const b = worker(processEnv);
      try {
        await until(() => b.out().includes(`"jobId":"${jobId}"`) && b.out().includes('"msg":"job started"'), 'the new worker to resume the job');
        const resumedMs = Date.now() - killedAt;
        await until(async () => (await app.producer!.store.readHistory('production')).some((h) => h.jobId === jobId), 'the deploy to finish');
        const doneMs = Date.now() - killedAt;
        if (runningApiTag(w.deployPath) !== TO_VERSION) throw new Error(`bench: the host runs ${runningApiTag(w.deployPath)} after the resumed deploy`);
        out.push({ resumedMs, doneMs });
        progress(`round ${i + 1}: resumed ${resumedMs} ms after the kill, deploy done ${doneMs} ms after it`);
      } finally {
        b.child.kill('SIGTERM');
        await b.exited;
      }
    }
  } finally {
    await app.close();
  }
  return {
    jobLockMs: DEFAULT_JOB_LOCK_MS,
    stalledIntervalMs: DEFAULT_STALLED_INTERVAL_MS,
    rounds: out,
    stats: { resumedMs: stats(out.map((r) => r.resumedMs)), doneMs: stats(out.map((r) => r.doneMs)) },
  };
}
