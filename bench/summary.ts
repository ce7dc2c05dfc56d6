// The one table `npm run bench` ends with: each of issue 8's measures, ours against its baseline, and
// whether the target is met in this run. Built only from the results of the benchmarks that ran.
import type { AckBenchResult } from './ack.js';
import type { AnsibleBenchResult } from './ansible.js';
import type { DeployBenchResult } from './deploy.js';
import { LIGHT_SERIES, LIGHT_WAIT_MS, type HealthFanoutBenchResult } from './health-fanout.js';
import type { MemoryBenchResult } from './memory.js';
import type { ProgressBenchResult } from './progress.js';
import type { RealHostBenchResult } from './real-host.js';
import type { SlackBudgetBenchResult } from './slack-budget.js';
import type { WorkerScalingBenchResult } from './worker-scaling.js';
import { ms, ms1, x } from './util.js';

export interface SummaryRow {
  measure: string;
  ours: string;
  baseline: string;
  ratio: string;
  target: string;
  /** true / false; undefined when the row has no target of its own (context for the row above). */
  met?: boolean;
}

export interface BenchResults {
  deploy?: DeployBenchResult;
  ansible?: AnsibleBenchResult;
  progress?: ProgressBenchResult;
  fanout?: HealthFanoutBenchResult;
  scaling?: WorkerScalingBenchResult;
  memory?: MemoryBenchResult;
  ack?: AckBenchResult;
  slackBudget?: SlackBudgetBenchResult;
  realHost?: RealHostBenchResult;
}


export function summaryRows(r: BenchResults): SummaryRow[] {
  const rows: SummaryRow[] = [];
  if (r.ack) {
    const { bot, bare } = r.ack.stats;
    rows.push({ measure: `ack p99, ${r.ack.requests} commands at ${r.ack.concurrency} in flight (median of ${r.ack.rounds} rounds)`, ours: ms1(bot.p99.median), baseline: `${ms1(bare.p99.median)} bare Bolt`, ratio: x(r.ack.p99Ratio), target: '≤ 1.1×', met: r.ack.p99Ratio <= 1.1 });
    rows.push({ measure: 'ack p50 (same rounds)', ours: ms1(bot.p50.median), baseline: `${ms1(bare.p50.median)} bare Bolt`, ratio: x(r.ack.p50Ratio), target: '' });
    rows.push({ measure: 'slowest ack of all rounds', ours: ms1(bot.max.max), baseline: '3000 ms Slack', ratio: x(bot.max.max / 3000), target: 'far under 3 s', met: bot.max.max < 300 });
  }
  if (r.deploy) {
    const d = r.deploy;
    rows.push({ measure: `deploy, command → final card, Slack limits on (median of ${d.rounds})`, ours: ms(d.stats.bot.median), baseline: `${ms(d.stats.baseline.median)} plain ssh`, ratio: x(d.ratio.botVsBaseline), target: '≤ 1.0×', met: d.ratio.botVsBaseline <= 1.0 });
  }
  if (r.realHost) {
    const h = r.realHost;
    rows.push({ measure: `deploy on the real host ${h.releases}, command → final card (median of ${h.rounds})`, ours: ms(h.stats.bot.median), baseline: `${ms(h.stats.baseline.median)} runbook by ssh`, ratio: x(h.ratio), target: '≤ 1.0×', met: h.ratio <= 1.0 });
  }
  if (r.ansible && !r.ansible.skipped) {
    const a = r.ansible.stats;
    const ratio = a.bot.median / a.ansible.median;
    rows.push({ measure: `deploy vs the same steps as an Ansible playbook (median of ${r.ansible.rounds})`, ours: ms(a.bot.median), baseline: `${ms(a.ansible.median)} Ansible`, ratio: x(ratio), target: 'several times faster', met: ratio <= 1 / 3 });
  } else if (r.ansible?.skipped) {
    rows.push({ measure: 'deploy vs an Ansible playbook', ours: '—', baseline: '—', ratio: '—', target: `not run: ${r.ansible.skipped}` });
  }
  if (r.progress) {
    const p = r.progress.summary.limits;
    rows.push({ measure: `progress: step ends on the host → ✅ on the card, p95 (${p.n} steps)`, ours: ms(p.p95), baseline: '', ratio: '', target: '< 1 s', met: p.p95 < 1000 });
  }
  if (r.slackBudget) {
    const s = r.slackBudget.summary;
    const within = (['single', 'paced'] as const).flatMap((n) => r.slackBudget!.series[n].flatMap((x) => x.withinBudget));
    rows.push({ measure: 'Slack Web API calls per standard deploy (alone; each of 10 at once)', ours: `${s.single.perDeployTotal.min}–${s.single.perDeployTotal.max}; ${s.paced.perDeployTotal.min}–${s.paced.perDeployTotal.max}`, baseline: '', ratio: '', target: 'the README\'s budget', met: within.length > 0 && within.every(Boolean) });
    rows.push({ measure: '429s, 10 deploys at once in 10 channels (Tier-3 fake Slack)', ours: String(s.paced.rateLimited.max), baseline: `${s.unpaced.rateLimited.median} without the pacer`, ratio: '', target: '0', met: s.paced.rateLimited.max === 0 });
  }
  if (r.fanout) {
    const f = r.fanout.stats;
    rows.push({ measure: `health ×${r.fanout.environments} at once vs the slowest single (simulated hosts, zero latency)`, ours: ms(f.c20.fanoutMs.median), baseline: `${ms(f.c20.slowestSingleMs.median)} slowest`, ratio: x(f.c20.ratio.median), target: '≤ 1.2×', met: f.c20.ratio.median <= 1.2 });
    rows.push({ measure: '  the same host work without the bot, all at once (this machine\'s floor)', ours: ms(f.direct.fanoutMs.median), baseline: `${ms(f.direct.slowestSingleMs.median)} slowest`, ratio: x(f.direct.ratio.median), target: '' });
    for (const k of LIGHT_SERIES) {
      const wait = LIGHT_WAIT_MS[k];
      if (f[k].fanoutMs.n) rows.push({ measure: `  light hosts, \`ps\` waiting ${wait} ms`, ours: ms(f[k].fanoutMs.median), baseline: `${ms(f[k].slowestSingleMs.median)} slowest`, ratio: x(f[k].ratio.median), target: '' });
    }
  }
  if (r.scaling) {
    const s = r.scaling.stats;
    const ceiling = r.scaling.hostWorkJobsPerSec.median;
    const rate = (n: string) => s[n]?.windowJobsPerSec.median ?? NaN;
    rows.push({ measure: `${r.scaling.jobs} queued health jobs, 1 / 2 / 4 workers, jobs/s once picking up`, ours: ['1', '2', '4'].map((n) => rate(n).toFixed(1)).join(' / '), baseline: `${ceiling.toFixed(1)} host alone`, ratio: x(Math.max(rate('1'), rate('2'), rate('4')) / ceiling), target: 'scales to the host\'s limit; each step once', met: r.scaling.allRanOnce ? undefined : false });
  }
  if (r.memory) {
    rows.push({ measure: 'resident memory of --role all, idle', ours: `${Math.round(r.memory.idleMb)} MB`, baseline: `${Math.round(r.memory.baselineIdleMb)} MB empty Node`, ratio: '', target: `< ${r.memory.targetIdleMb} MB`, met: r.memory.idleMb < r.memory.targetIdleMb });
    rows.push({ measure: 'resident memory during a deploy, peak (median)', ours: `${Math.round(r.memory.deployPeak.median)} MB`, baseline: '', ratio: '', target: '' });
  }
  return rows;
}

export function printSummary(rows: SummaryRow[], table: (rows: string[][]) => string): void {
  if (!rows.length) return;
  console.log('\nSummary: issue 8\'s measures in this run');
  console.log(table([['measure', 'ours', 'baseline', 'ratio', 'target', 'met'], ...rows.map((r) => [r.measure, r.ours, r.baseline, r.ratio, r.target, r.met === undefined ? '' : r.met ? 'yes' : 'NO'])]));
}
