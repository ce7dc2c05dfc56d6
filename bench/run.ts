// `npm run bench`: starts the bench world, runs every benchmark, prints a table per benchmark and
// writes bench/results/latest.json. Not part of `npm test`; nothing here asserts on timings.
//
//   npm run bench                      every benchmark, each with its default rounds (deploy 7; the slow ones fewer)
//   npm run bench -- --rounds=3        that many counted rounds for every benchmark (or BENCH_ROUNDS=3)
//   npm run bench -- --only=NAME       one benchmark:
//       deploy          a deploy through the bot against one plain `ssh … bash -s` session
//       ansible         bot vs plain ssh vs the same steps as an Ansible playbook (needs ansible-playbook)
//       progress        a step ends on the host → its ✅ on the Slack card (p50/p95)
//       health-fanout   `health` for 20 environments at once vs the slowest single one
//       worker-scaling  40 queued health jobs, 1/2/4 worker processes (needs `npm run build`)
//       memory          RSS of `node dist/main.js --role all`, idle and during a deploy (needs `npm run build`)
//       slack-outage    a deploy through a 60 s Slack outage
//       crash-resume    kill -9 of the worker mid-deploy (needs `npm run build`)
//       ack             slash-command ack latency, 200 at 20 concurrent, vs a bare Bolt app (needs `npm run build`)
//       slack-budget    Slack Web API calls of a deploy, and 10 deploys at once from 10 channels: 429s, time to final cards
//       real-host       the bot's deploy vs the literal runbook in one `ssh` session on the real host (test/real/;
//                       needs root and scripts/real-host/install.sh: fails with one line when it cannot start)
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { runDeployBench, type DeployBenchResult, type Stats } from './deploy.js';
import { runSlackOutageBench, type SlackOutageBenchResult } from './slack-outage.js';
import { runCrashResumeBench, type CrashResumeBenchResult } from './crash-resume.js';
import { startBenchWorld, type BenchWorld } from './world.js';
import { preflightRealHost, runRealHostBench, type RealHostBenchResult } from './real-host.js';
import { runAnsibleBench, type AnsibleBenchResult } from './ansible.js';
import { runProgressBench, type ProgressBenchResult } from './progress.js';
import { runHealthFanoutBench, type HealthFanoutBenchResult } from './health-fanout.js';
import { runWorkerScalingBench, type WorkerScalingBenchResult } from './worker-scaling.js';
import { runMemoryBench, type MemoryBenchResult } from './memory.js';
import { printAck, runAckBench, type AckBenchResult } from './ack.js';
import { printSlackBudget, runSlackBudgetBench, type SlackBudgetBenchResult } from './slack-budget.js';
import { printAnsible, printFanout, printMemory, printProgress, printScaling, table } from './report.js';
import { printSummary, summaryRows } from './summary.js';
import { ms, ratio } from './util.js';

const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));

/** The rounds asked for, or undefined: then each benchmark runs its own default (7 for deploy, fewer for the slow ones). */
function roundsArg(): number | undefined {
  const arg = process.argv.find((a) => a.startsWith('--rounds='))?.slice('--rounds='.length) ?? process.env.BENCH_ROUNDS;
  if (arg === undefined) return undefined;
  const n = Number(arg);
  if (!Number.isInteger(n) || n < 1 || n > 100) throw new Error(`--rounds must be an integer 1-100, got "${arg}"`);
  return n;
}

const BENCHES = ['deploy', 'ansible', 'progress', 'health-fanout', 'worker-scaling', 'memory', 'slack-outage', 'crash-resume', 'ack', 'slack-budget', 'real-host'] as const;

function onlyArg(): (typeof BENCHES)[number] | undefined {
  const arg = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length);
  if (arg === undefined) return undefined;
  if (!(BENCHES as readonly string[]).includes(arg)) throw new Error(`--only must be one of ${BENCHES.join(', ')}, got "${arg}"`);
  return arg as (typeof BENCHES)[number];
}

function outageRows(o: SlackOutageBenchResult): string[][] {
  const row = (label: string, k: keyof SlackOutageBenchResult['stats']['normal']) => [label, ms(o.stats.normal[k].median), ms(o.stats.outage[k].median), ms(o.stats.outage[k].median - o.stats.normal[k].median)];
  return [
    row('deploy done on the host', 'hostDoneMs'),
    row('final card right in the channel', 'cardRightMs'),
    row('every step reply in the thread', 'threadDoneMs'),
    row('job done (final flush waits ≤ 60 s)', 'jobDoneMs'),
  ];
}

function deployRows(d: DeployBenchResult): string[][] {
  const base = d.stats.baseline;
  const rows = (name: string, s: Stats): string[][] => [
    [`${name}: median`, ms(s.median), ms(base.median), ratio(s.median, base.median)],
    [`${name}: min`, ms(s.min), ms(base.min), ratio(s.min, base.min)],
    [`${name}: max`, ms(s.max), ms(base.max), ratio(s.max, base.max)],
  ];
  return [
    ...rows('deploy, Slack rate limits on', d.stats.bot),
    ...rows('deploy, Slack rate limits off', d.stats.botNoLimits),
    ['deploy job done incl. thread, limits on: median', ms(d.slack.bot.jobDone.median), ms(base.median), ratio(d.slack.bot.jobDone.median, base.median)],
    ['deploy job done incl. thread, limits off: median', ms(d.slack.botNoLimits.jobDone.median), ms(base.median), ratio(d.slack.botNoLimits.jobDone.median, base.median)],
  ];
}

function calls(by: Record<string, number>): string {
  return Object.entries(by)
    .map(([m, n]) => `${m} ${n}`)
    .join(', ');
}

function printDeployDetail(d: DeployBenchResult): void {
  const out: string[] = [];
  out.push(`\n${d.command}: ${d.rounds} counted rounds per series (+${d.warmupRounds} warm-up), fresh host at 0.6.0 each round, verifySettleSeconds ${d.verifySettleSeconds}, baseline HTTP via ${d.httpClient}`);
  out.push(`host commands identical (bot vs baseline, as the simulated docker recorded them): ${d.identicalHostCommands ? 'yes' : `NO ${JSON.stringify(d.hostCommandDiff)}`}`);
  out.push(`Slack Web API calls per deploy (median), limits on:  ${calls(d.slack.bot.callsByMethod)}; 429s per deploy: [${d.slack.bot.rateLimitedPerDeploy.join(', ')}]`);
  out.push(`Slack Web API calls per deploy (median), limits off: ${calls(d.slack.botNoLimits.callsByMethod)}; 429s per deploy: [${d.slack.botNoLimits.rateLimitedPerDeploy.join(', ')}]`);
  out.push(`baseline ssh session setup (spawn → first command): median ${ms(d.baselineConnect.median)} (min ${ms(d.baselineConnect.min)}, max ${ms(d.baselineConnect.max)})`);
  const first = d.warmup.bot;
  if (first) out.push(`bot's first deploy after start-up (warm-up, not counted): ${ms(first.ms)}, of which SSH connect ${ms(first.sshConnectMs)} (${first.sshConnects} connect); later deploys reuse the connection`);
  out.push('\nWhere the bot\'s time goes (median over rounds, ms):');
  const keys = Object.keys(d.breakdown.bot);
  out.push(table([['segment', 'limits on', 'limits off'], ...keys.map((k) => [k, String(Math.round(d.breakdown.bot[k]!)), String(Math.round(d.breakdown.botNoLimits[k]!))])]));
  out.push('\nPer host command (median ms): bot = SSH exec round trip or API probe (limits-on rounds), baseline = in-session time between markers');
  out.push(table([['command', 'bot', 'baseline', 'diff'], ...d.perCommand.map((c) => [c.label, c.bot.toFixed(0), c.baseline.toFixed(0), (c.bot - c.baseline).toFixed(0)])]));
  console.log(out.join('\n'));
}

function printRealHost(r: RealHostBenchResult): void {
  console.log(`\nreal host (${r.releases}): \`${r.command}\` by the bot vs the literal runbook (steps 4–8 + 3 curls) in one ssh session; ${r.rounds} counted rounds (+${r.warmupRounds} warm-up), host reset before each; load average ${r.load.before.join(' ')} → ${r.load.after.join(' ')}`);
  const row = (k: 'median' | 'min' | 'max') => [k, ms(r.stats.bot[k]), ms(r.stats.baseline[k]), ratio(r.stats.bot[k], r.stats.baseline[k])];
  console.log(table([['deploy on the real host', 'bot', 'runbook by ssh', 'ratio'], row('median'), row('min'), row('max')]));
  console.log(`bot's steps (median ms): ${Object.entries(r.botSteps).map(([k, v]) => `${k} ${Math.round(v)}`).join(', ')}`);
}

async function main(): Promise<void> {
  const rounds = roundsArg();
  const cpus = os.cpus();
  const machine = { cpu: cpus[0]?.model ?? 'unknown', cores: cpus.length, node: process.version, platform: `${os.platform()} ${os.release()}`, totalMemGb: +(os.totalmem() / 2 ** 30).toFixed(1) };
  console.log(`machine: ${machine.cpu}, ${machine.cores} cores, node ${machine.node}, ${machine.platform}`);

  let world: BenchWorld | undefined;
  let closing = false;
  const stop = async (signal: string) => {
    if (closing) return;
    closing = true;
    console.error(`\n${signal}: stopping the bench world`);
    await world?.close().catch(() => undefined);
    process.exit(130);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));

  const startedAt = new Date().toISOString();
  const only = onlyArg();
  let deploy: DeployBenchResult | undefined;
  let slackOutage: SlackOutageBenchResult | undefined;
  let crashResume: CrashResumeBenchResult | undefined;
  let ack: AckBenchResult | undefined;
  let slackBudget: SlackBudgetBenchResult | undefined;
  let ansible: AnsibleBenchResult | undefined;
  let progressBench: ProgressBenchResult | undefined;
  let fanout: HealthFanoutBenchResult | undefined;
  let scaling: WorkerScalingBenchResult | undefined;
  let memory: MemoryBenchResult | undefined;
  let realHost: RealHostBenchResult | undefined;
  // Before anything else: a machine that cannot run the real tier fails here, in one line, not after the other series.
  if (!only || only === 'real-host') {
    try {
      preflightRealHost();
    } catch (err) {
      console.error(`bench: ${(err as Error).message}`);
      process.exit(1);
    }
  }
  try {
    if (only !== 'real-host') world = await startBenchWorld();
    if (!only || only === 'deploy') deploy = await runDeployBench(world!, { rounds: rounds ?? 7, progress: (l) => console.error(l) });
    if (!only || only === 'ansible') ansible = await runAnsibleBench(world!, { ...(rounds ? { rounds } : {}), progress: (l) => console.error(l) });
    if (!only || only === 'progress') progressBench = await runProgressBench(world!, { ...(rounds ? { rounds } : {}), progress: (l) => console.error(l) });
    if (!only || only === 'health-fanout') fanout = await runHealthFanoutBench(world!, { ...(rounds ? { rounds } : {}), progress: (l) => console.error(l) });
    if (!only || only === 'worker-scaling') scaling = await runWorkerScalingBench(world!, { ...(rounds ? { rounds } : {}), progress: (l) => console.error(l) });
    if (!only || only === 'memory') memory = await runMemoryBench(world!, { ...(rounds ? { rounds } : {}), progress: (l) => console.error(l) });
    if (!only || only === 'slack-outage') slackOutage = await runSlackOutageBench(world!, { progress: (l) => console.error(l) });
    if (!only || only === 'crash-resume') crashResume = await runCrashResumeBench(world!, { progress: (l) => console.error(l) });
    if (!only || only === 'ack') ack = await runAckBench(world!, { ...(rounds ? { rounds } : {}), progress: (l) => console.error(l) });
    if (!only || only === 'slack-budget') slackBudget = await runSlackBudgetBench(world!, { ...(rounds ? { rounds } : {}), progress: (l) => console.error(l) });
  } finally {
    closing = true;
    await world?.close().catch(() => undefined);
  }
  // Its own host (dockerd, registry, sshd), after the simulated world is gone so the two do not share the CPU.
  if (!only || only === 'real-host') realHost = await runRealHostBench({ ...(rounds ? { rounds } : {}), progress: (l) => console.error(l) });

  if (deploy) {
    console.log('');
    console.log(table([['measure', 'ours', 'baseline', 'ratio'], ...deployRows(deploy)]));
    printDeployDetail(deploy);
  }
  if (ansible) printAnsible(ansible);
  if (progressBench) printProgress(progressBench);
  if (fanout) printFanout(fanout);
  if (scaling) printScaling(scaling);
  if (memory) printMemory(memory);
  if (ack) printAck(ack, table);
  if (slackBudget) printSlackBudget(slackBudget);
  if (slackOutage) {
    console.log(`\n${slackOutage.command} with Slack answering 500 to every call for ${slackOutage.outageMs / 1000} s from the command (medians, ms from the command):`);
    console.log(table([['measure', 'Slack up', 'Slack down 60 s', 'added'], ...outageRows(slackOutage)]));
    console.log(`the outage added ${ms(slackOutage.addedMs)} to the final card: ${slackOutage.beyondOutageMs <= 0 ? 'no more than' : `${ms(slackOutage.beyondOutageMs)} more than`} the outage itself`);
  }

  if (crashResume) {
    console.log(`\nkill -9 of the worker during a pull, new worker started at once (job lock ${crashResume.jobLockMs / 1000} s, stalled check every ${crashResume.stalledIntervalMs / 1000} s), ms from the kill:`);
    console.log(
      table([
        ['measure', 'median', 'min', 'max'],
        ['job resumed on the new worker', ms(crashResume.stats.resumedMs.median), ms(crashResume.stats.resumedMs.min), ms(crashResume.stats.resumedMs.max)],
        ['deploy done', ms(crashResume.stats.doneMs.median), ms(crashResume.stats.doneMs.min), ms(crashResume.stats.doneMs.max)],
      ]),
    );
  }

  if (realHost) printRealHost(realHost);

  const summary = summaryRows({ deploy, ansible, progress: progressBench, fanout, scaling, memory, ack, slackBudget, realHost });
  printSummary(summary, table);

  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = `${RESULTS_DIR}${only ? `latest-${only}` : 'latest'}.json`;
  writeFileSync(file, `${JSON.stringify({ startedAt, finishedAt: new Date().toISOString(), machine, summary, benchmarks: { ...(deploy ? { deploy } : {}), ...(ansible ? { ansible } : {}), ...(progressBench ? { progress: progressBench } : {}), ...(fanout ? { healthFanout: fanout } : {}), ...(scaling ? { workerScaling: scaling } : {}), ...(memory ? { memory } : {}), ...(slackOutage ? { slackOutage } : {}), ...(crashResume ? { crashResume } : {}), ...(ack ? { ack } : {}), ...(slackBudget ? { slackBudget } : {}), ...(realHost ? { realHost } : {}) } }, null, 2)}\n`);
  console.log(`\nwrote ${file}`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
    process.exit(1);
  },
);
