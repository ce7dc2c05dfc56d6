// Tables for the benchmarks of issue 8 (ansible, progress, health-fanout, worker-scaling, memory):
// measure, ours, baseline, ratio; then what the rounds add.
import type { AnsibleBenchResult } from './ansible.js';
import { LIGHT_SERIES, LIGHT_WAIT_MS, type HealthFanoutBenchResult } from './health-fanout.js';
import type { MemoryBenchResult } from './memory.js';
import type { ProgressBenchResult, ProgressSeries } from './progress.js';
import type { WorkerScalingBenchResult } from './worker-scaling.js';
import { percentile, ms, x, ratio } from './util.js';

const mbs = (v: number) => (Number.isFinite(v) ? `${v.toFixed(1)} MB` : '—');
const med = (v: number[]) => percentile(v, 50);

export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r, ri) => {
      const line = r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('   ');
      return ri === 0 ? `${line}\n${widths.map((w) => '-'.repeat(w)).join('   ')}` : line;
    })
    .join('\n');
}

const HEAD = ['measure', 'ours', 'baseline', 'ratio'];

export function printAnsible(r: AnsibleBenchResult): void {
  const s = r.stats;
  console.log(`\nDeploy vs plain ssh vs Ansible (${r.command}; ${r.rounds} counted rounds per series + ${r.warmupRounds} warm-up; fresh host each round; bot with Slack rate limits on):`);
  const rows: string[][] = [HEAD];
  rows.push(['deploy, bot vs plain ssh: median', ms(s.bot.median), ms(s.ssh.median), ratio(s.bot.median, s.ssh.median)]);
  rows.push(['deploy, bot vs plain ssh: median of per-round ratios', '', '', x(med(r.roundRatios.botVsSsh))]);
  if (r.skipped) {
    rows.push(['deploy, bot vs Ansible', ms(s.bot.median), 'skipped', '—']);
  } else {
    rows.push(['deploy, bot vs Ansible playbook: median', ms(s.bot.median), ms(s.ansible.median), ratio(s.bot.median, s.ansible.median)]);
    rows.push(['deploy, bot vs Ansible: median of per-round ratios', '', '', x(med(r.roundRatios.botVsAnsible))]);
    rows.push(['deploy, plain ssh vs Ansible playbook: median', ms(s.ssh.median), ms(s.ansible.median), ratio(s.ssh.median, s.ansible.median)]);
    rows.push(['deploy, min / max: bot vs Ansible', `${ms(s.bot.min)} / ${ms(s.bot.max)}`, `${ms(s.ansible.min)} / ${ms(s.ansible.max)}`, '']);
  }
  console.log(table(rows));
  if (r.skipped) console.log(`NOTE: ${r.skipped}`);
  else {
    console.log(`${r.ansibleVersion ?? 'ansible-playbook'}; Ansible's own start-up (empty local play): median ${ms(r.ansibleStartup?.median ?? NaN)}`);
    console.log(`host commands identical (bot vs Ansible, as the simulated docker recorded them): ${r.identicalHostCommands ? 'yes' : `NO ${JSON.stringify(r.hostCommandDiff)}`}`);
    console.log(`Ansible speed-up as it is usually tuned: gather_facts false, pipelining on, ControlPersist; each Ansible round starts without a ControlMaster, as each ssh round starts without a connection, while the bot keeps its connection (as in production)`);
  }
}

const PROGRESS_LABEL: Record<ProgressSeries, string> = {
  limits: 'Slack limits on, zero-latency host',
  noLimits: 'Slack limits off, zero-latency host',
  paced: 'Slack limits on, host at production pace',
};

export function printProgress(r: ProgressBenchResult): void {
  console.log(`\nProgress latency: a step ends on the host → the card shows it ✅ (${r.command}; ${r.rounds} deploys per series + ${r.warmupRounds} warm-up; default card update interval):`);
  const rows: string[][] = [['measure', 'p50', 'p95', 'max', 'samples']];
  for (const k of Object.keys(r.summary) as ProgressSeries[]) {
    const s = r.summary[k];
    rows.push([`step → ✅, ${PROGRESS_LABEL[k]}`, ms(s.p50), ms(s.p95), ms(s.max), String(s.n)]);
  }
  console.log(table(rows));
  const ids = [...new Set(Object.values(r.summary).flatMap((s) => Object.keys(s.perStep)))];
  console.log('\nPer step, median ms:');
  console.log(table([['step', ...Object.keys(r.summary)], ...ids.map((id) => [id, ...Object.values(r.summary).map((s) => ms(s.perStep[id] ?? NaN))])]));
  const pace = r.pace.map((p) => `${Array.isArray(p.match) ? p.match.join(' + ') : p.match.trim()} ${p.delayMs} ms`).join(', ');
  console.log(`production pace: host commands slowed by ${pace}. Target: p95 < 1000 ms.`);
  const uncounted = [...new Set(Object.values(r.series).flatMap((rs) => rs.flatMap((x) => x.uncounted)))];
  if (uncounted.length) console.log(`not counted (no host action): ${uncounted.join(', ')}`);
}

export function printFanout(r: HealthFanoutBenchResult): void {
  console.log(`\nHealth fan-out: ${r.environments} environments (own simulated host, API and sshd each, zero latency), Slack limits off (the fake's and the bot's pacer); ${r.rounds} rounds + 1 warm-up; ratio = all at once / slowest single, medians of per-round ratios:`);
  const s = r.stats;
  const rows: string[][] = [HEAD];
  rows.push([`health ×${r.environments} at once, worker concurrency 8 (the old default)`, ms(s.c8.fanoutMs.median), ms(s.c8.slowestSingleMs.median), x(s.c8.ratio.median)]);
  rows.push([`health ×${r.environments} at once, worker concurrency ${r.environments}`, ms(s.c20.fanoutMs.median), ms(s.c20.slowestSingleMs.median), x(s.c20.ratio.median)]);
  for (const k of LIGHT_SERIES) {
    const wait = LIGHT_WAIT_MS[k];
    if (s[k].fanoutMs.n) rows.push([`health ×${r.environments} at once, concurrency ${r.environments}, light hosts, \`ps\` waits ${wait} ms`, ms(s[k].fanoutMs.median), ms(s[k].slowestSingleMs.median), x(s[k].ratio.median)]);
  }
  rows.push([`same host work without the bot (no SSH), ×${r.environments} at once`, ms(s.direct.fanoutMs.median), ms(s.direct.slowestSingleMs.median), x(s.direct.ratio.median)]);
  rows.push([`bot vs the host work alone, both ×${r.environments} at once (concurrency ${r.environments})`, ms(s.c20.fanoutMs.median), ms(s.direct.fanoutMs.median), ratio(s.c20.fanoutMs.median, s.direct.fanoutMs.median)]);
  rows.push(['single-env health, command → answer: median (all envs)', ms(s.c8.singleMs.median), ms(s.direct.singleMs.median), ratio(s.c8.singleMs.median, s.direct.singleMs.median)]);
  console.log(table(rows));
  const l = r.withSlackLimits;
  console.log(`with Slack's rate limits on (the fake: 1 post/s per channel, burst 4) and the bot's pacer on (shipped settings): ${l.answered}/${r.environments} answers posted (last at ${ms(l.lastAnswerMs)}), ${l.failedJobs} jobs failed, ${l.rateLimited} × 429 (waited up to ${l.waitedMs / 1000} s)`);
  console.log(`probes ran exactly once per environment and fan-out: ${r.probesRanOnce ? 'yes' : 'NO'}. Target: all at once within 1.2× of the slowest single.`);
}

export function printScaling(r: WorkerScalingBenchResult): void {
  console.log(`\nWorker scaling: ${r.jobs} queued health jobs over ${r.environments} environments, N × \`node dist/main.js --role worker\` on one Redis, Slack limits off (the fake's and the bot's pacer); ${r.rounds} rounds + 1 warm-up; medians; baseline = 1 worker:`);
  const one = r.stats['1']!;
  const rows: string[][] = [HEAD];
  for (const [n, s] of Object.entries(r.stats)) {
    rows.push([`${n} worker${n === '1' ? '' : 's'}: all ${r.jobs} answered, from process start`, ms(s.totalMs.median), ms(one.totalMs.median), ratio(s.totalMs.median, one.totalMs.median)]);
    rows.push([`${n} worker${n === '1' ? '' : 's'}: jobs/s from process start`, s.jobsPerSec.median.toFixed(1), one.jobsPerSec.median.toFixed(1), ratio(s.jobsPerSec.median, one.jobsPerSec.median)]);
    rows.push([`${n} worker${n === '1' ? '' : 's'}: jobs/s from the first job picked up`, s.windowJobsPerSec.median.toFixed(1), one.windowJobsPerSec.median.toFixed(1), ratio(s.windowJobsPerSec.median, one.windowJobsPerSec.median)]);
    rows.push([`${n} worker${n === '1' ? '' : 's'}: start → first job picked up`, ms(s.startupMs.median), ms(one.startupMs.median), '']);
  }
  rows.push([`ceiling: the ${r.jobs} jobs' host work alone (no bot, no SSH), all at once: jobs/s`, r.hostWorkJobsPerSec.median.toFixed(1), one.windowJobsPerSec.median.toFixed(1), ratio(r.hostWorkJobsPerSec.median, one.windowJobsPerSec.median)]);
  console.log(table(rows));
  const spread = r.runs.map((x) => `${x.workers}:[${x.perWorker.join(',')}]`).join(' ');
  console.log(`jobs per worker process, per run: ${spread}`);
  console.log(`each job started once, answered once, and ran its host probes once: ${r.allRanOnce ? 'yes' : `NO: ${r.runs.flatMap((x) => x.problems).join('; ')}`}`);
}

export function printMemory(r: MemoryBenchResult): void {
  console.log(`\nMemory of \`node dist/main.js --role all\` (RSS from /proc/PID/status; settle ${r.settleMs / 1000} s; ${r.deployPeakMb.length} deploys + 1 warm-up); baseline = an empty Node process:`);
  const rows: string[][] = [HEAD];
  rows.push(['RSS when ready (/healthz 200)', mbs(r.readyMb), mbs(r.baselineIdleMb), ratio(r.readyMb, r.baselineIdleMb)]);
  rows.push([`idle RSS after start-up and a ${r.settleMs / 1000} s settle`, mbs(r.idleMb), mbs(r.baselineIdleMb), ratio(r.idleMb, r.baselineIdleMb)]);
  rows.push(['start-up peak (VmHWM)', mbs(r.startupPeakMb), '', '']);
  rows.push([`deploy peak${r.hwmReset ? ' (VmHWM reset per deploy)' : ' (sampled every 20 ms)'}: median`, mbs(r.deployPeak.median), mbs(r.idleMb), ratio(r.deployPeak.median, r.idleMb)]);
  rows.push(['deploy peak: max', mbs(r.deployPeak.max), '', '']);
  rows.push(['idle RSS after the deploys', mbs(r.idleAfterMb), mbs(r.idleMb), ratio(r.idleAfterMb, r.idleMb)]);
  console.log(table(rows));
  const heap = (h?: { used: number; total: number }) => (h ? `${h.used.toFixed(1)} MB used of ${h.total.toFixed(1)} MB` : 'unknown');
  console.log(`V8 heap at idle: ${heap(r.idleHeapMb)}; after the deploys: ${heap(r.idleAfterHeapMb)}`);
  console.log(`target: idle < ${r.targetIdleMb} MB: ${r.idleMb < r.targetIdleMb ? 'met' : 'NOT met'}`);
}
