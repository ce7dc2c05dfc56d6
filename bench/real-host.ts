// Benchmark on the real host (test/real/: real dockerd, registry, Compose v2, PostgreSQL, alembic,
// Caddy): the bot's standard deploy against the literal runbook typed into one plain `ssh` session.
//
//   bot       signed `deploy 0.6.2 --no-maintenance` → Bolt → BullMQ → worker → SSH → real Docker,
//             timed until the deploy card shows the outcome (fake Slack, no rate limits, four-eyes off:
//             a second person's click is not machine time);
//   baseline  `ssh … bash -s` running /work/shared/runbook.md's steps 4–8 and its three `curl` checks
//             as written (the curls carry the bearer key the real API asks for, and are retyped until
//             they answer, as an operator would during the restart gap).
//
// Each round deploys 0.6.1 → 0.6.2 (migration 032 → 033, a real pull of 0.6.2's layers): before every
// deploy of either side the host is put back the same way, untimed: alembic downgrade to 032 in the
// 0.6.2 container, .env pinned to 0.6.1, `up -d`, 0.6.2's image removed, registry logins removed.
// Sides alternate which goes first; one uncounted warm-up of each.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RunbookData } from '../src/runbooks/kernel/types.js';
import { shellQuote } from '../src/ssh/quote.js';
import { OPS_CHANNEL } from '../test/world/config.js';
import { makeTempDir } from '../test/world/proc.js';
import { startRealBotWorld, type RealBotWorld } from '../test/real/bot-world.js';
import { API_SERVICE, COMPOSE_FILE, createDeployFolder, type DeployFolder } from '../test/real/deploy-host.js';
import { requireRealHost } from '../test/real/requirements.js';
import { bringUp, connectVm, eventually, type Vm } from '../test/real/vm.js';
import { realHostFacts, startRealHost, type RealHost } from '../test/real/world.js';
import { stats, type Stats } from './deploy.js';
import { now } from './trace.js';

export const REAL_FROM = '0.6.1';
export const REAL_TO = '0.6.2';
const FROM_HEAD = '032';
const TO_HEAD = '033';
const COMMAND = `deploy ${REAL_TO} --no-maintenance`;

export interface RealHostBenchResult {
  command: string;
  releases: string;
  rounds: number;
  warmupRounds: number;
  series: { bot: number[]; baseline: number[] };
  warmup: { bot?: number; baseline?: number };
  /** Median duration of each of the bot's steps over the counted rounds. */
  botSteps: Record<string, number>;
  stats: { bot: Stats; baseline: Stats };
  ratio: number;
  /** Load average (1 min) before and after the series: the machine is shared. */
  load: { before: number[]; after: number[] };
  hostSetupMs: number;
  script: string;
}

/** The one line the bench fails with when the real tier cannot start (not root, packages missing). */
export function preflightRealHost(): void {
  requireRealHost();
}

type HostInfo = Parameters<typeof startRealBotWorld>[0];

const hostInfo = (h: RealHost): HostInfo => realHostFacts(h);

/** The runbook's steps 4–8 and its three curl checks, as one operator session would type them. */
export function runbookScript(o: { deployPath: string; registry: HostInfo['registry']; apiUrl: string; apiKey: string }): string {
  const compose = `docker compose -f ${COMPOSE_FILE}`;
  const curl = (path: string, pipe: string) =>
    `until curl -sf -H "Authorization: Bearer $KEY" $BASE${path} | ${pipe}; do sleep 0.2; done`;
  return [
    'set -e',
    `cd ${shellQuote(o.deployPath)}`,
    `export IMAGE_TAG=${REAL_TO}`,
    // Builtins only: neither secret reaches an argv.
    `GHCR_TOKEN=${shellQuote(o.registry.password)}`,
    `KEY=${shellQuote(o.apiKey)}`,
    '# 4. Pull the new image',
    `echo "$GHCR_TOKEN" | docker login ${o.registry.address} -u ${shellQuote(o.registry.username)} --password-stdin`,
    `IMAGE_TAG=$IMAGE_TAG ${compose} pull ${API_SERVICE}`,
    '# 5. Restart with the new image',
    `IMAGE_TAG=$IMAGE_TAG ${compose} up -d ${API_SERVICE} caddy`,
    '# 6. Run database migrations',
    `IMAGE_TAG=$IMAGE_TAG ${compose} exec -T ${API_SERVICE} alembic upgrade head`,
    '# 7. Remove maintenance mode',
    "sed -i '/ENGRAMIA_MAINTENANCE/d' .env",
    `${compose} up -d ${API_SERVICE}`,
    '# 8. Prune old images',
    'docker image prune -f',
    '# Health check verification',
    `BASE=${o.apiUrl}`,
    curl('/v1/version', `python3 -c "import sys,json; d=json.load(sys.stdin); print(d['app_version'])"`),
    curl('/v1/health', 'python3 -m json.tool'),
    curl('/v1/health/deep', 'python3 -m json.tool'),
    '',
  ].join('\n');
}

function sshArgs(info: HostInfo, knownHosts: string): string[] {
  return [
    '-F', '/dev/null',
    '-i', info.sshd.privateKeyPath,
    '-p', String(info.sshd.port),
    '-o', `UserKnownHostsFile=${knownHosts}`,
    '-o', 'StrictHostKeyChecking=yes',
    '-o', 'BatchMode=yes',
    '-o', 'LogLevel=ERROR',
    `${info.sshd.username}@${info.sshd.host}`,
    'bash', '-s',
  ];
}

async function baselineRound(args: string[], script: string): Promise<number> {
  const t0 = now();
  const r = await new Promise<{ code: number | null; out: string; end: number }>((resolve, reject) => {
    const child = spawn('ssh', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (out += d.toString('utf8')));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, out, end: now() }));
    child.stdin.end(script);
  });
  if (r.code !== 0) throw new Error(`bench real-host: the runbook session exited ${r.code}:\n${r.out.slice(-3000)}`);
  return r.end - t0;
}

/** ts of the last counted card: each round looks only at cards posted after it. */
let lastTs = '0';

interface BotRound {
  ms: number;
  /** Each step's duration as the job recorded it. */
  steps: Record<string, number>;
}

async function botRound(w: RealBotWorld): Promise<BotRound> {
  const t0 = now();
  const ack = await w.slash(COMMAND);
  const jobId = /\(job (deploy-[^)\s]+)\)/.exec(typeof ack.body === 'object' ? String((ack.body as { text?: unknown } | null)?.text ?? '') : ack.text)?.[1];
  if (ack.status !== 200 || !jobId) throw new Error(`bench real-host: slash command answered ${ack.status} ${ack.text.slice(0, 300)}`);
  const card = await w.slack.waitFor(
    () => {
      const top = w.slack.messagesIn(OPS_CHANNEL).filter((m) => (!m.thread_ts || m.thread_ts === m.ts) && m.ts > lastTs);
      return top.find((m) => /Deploy 0\.6\.2/.test(JSON.stringify(m.blocks)) && /succeeded|failed|stopped/.test(JSON.stringify(m.blocks)));
    },
    { timeoutMs: 300_000, description: 'the deploy card to show the outcome' },
  );
  const ms = now() - t0;
  lastTs = card.ts;
  if (!JSON.stringify(card.blocks).includes('succeeded')) throw new Error(`bench real-host: the bot's deploy did not succeed:\n${JSON.stringify(card.blocks).slice(0, 2000)}\n${w.logs.slice(-20).join('')}`);
  // The job ends after the card; the next reset must not overlap it.
  const job = await eventually('the job to finish', async () => {
    const j = await w.bot.producer!.getJob(jobId);
    return j?.finishedOn ? j : undefined;
  }, 120_000);
  const steps = Object.fromEntries(((job.data as RunbookData).state?.steps ?? []).map((st) => [st.id, st.durationMs ?? 0]));
  return { ms, steps };
}
async function must(what: string, p: Promise<{ code: number | null; output: string }>): Promise<void> {
  const r = await p;
  if (r.code !== 0) throw new Error(`bench real-host: ${what} exited ${r.code}:\n${r.output}`);
}

/** Puts the host back at 0.6.1 (database at 032, 0.6.2's image gone, no registry login), the same for both sides. */
async function resetHost(vm: Vm, deploy: DeployFolder, info: HostInfo): Promise<void> {
  const running = await vm.compose(['ps', '--format', '{{.Image}}', API_SERVICE]);
  if (running.stdout.includes(`:${REAL_TO}`)) {
    await must('alembic downgrade', vm.compose(['exec', '-T', API_SERVICE, 'alembic', 'downgrade', FROM_HEAD]));
  }
  await must('pin .env', vm.exec({ argv: ['sed', '-i', '-e', `s/^IMAGE_TAG=.*/IMAGE_TAG=${REAL_FROM}/`, '-e', '/ENGRAMIA_MAINTENANCE/d', '.env'] }));
  await must('up -d', vm.compose(['up', '-d', API_SERVICE, 'caddy'], { env: { IMAGE_TAG: REAL_FROM }, timeoutMs: 300_000 }));
  await vm.exec({ argv: ['docker', 'image', 'rm', `${info.apiRepository}:${REAL_TO}`] });
  await must('logout', vm.exec({ argv: ['sh', '-c', `docker logout ${info.registry.address} >/dev/null; rm -rf .chatops-docker`] }));
  await eventually('0.6.1 answering at 032', async () => {
    const v = (await (await fetch(`${deploy.apiUrl}/v1/version`)).json()) as { app_version?: string };
    const cur = await vm.compose(['exec', '-T', API_SERVICE, 'alembic', 'current']);
    return v.app_version === REAL_FROM && cur.stdout.trim() === `${FROM_HEAD} (head)` ? true : undefined;
  }, 120_000);
}

/** The host's own word that a round deployed 0.6.2 with its migration. */
async function checkDeployed(vm: Vm, deploy: DeployFolder, who: string): Promise<void> {
  const cur = await vm.compose(['exec', '-T', API_SERVICE, 'alembic', 'current']);
  const v = (await (await fetch(`${deploy.apiUrl}/v1/version`)).json()) as { app_version?: string };
  if (cur.stdout.trim() !== `${TO_HEAD} (head)` || v.app_version !== REAL_TO) {
    throw new Error(`bench real-host: after the ${who}'s round the host is not at ${REAL_TO}/${TO_HEAD}: alembic says "${cur.stdout.trim()}", /v1/version ${v.app_version}`);
  }
}

const loadavg = async (): Promise<number[]> => (await import('node:os')).loadavg().map((n) => +n.toFixed(2));

export async function runRealHostBench(opts: { rounds?: number; warmup?: number; progress?: (l: string) => void } = {}): Promise<RealHostBenchResult> {
  const rounds = opts.rounds ?? 5;
  const warmupRounds = opts.warmup ?? 1;
  const say = opts.progress ?? (() => undefined);
  preflightRealHost();
  const t0 = Date.now();
  say('real-host: starting dockerd, registry, images (about a minute)');
  const host = await startRealHost();
  let vm: Vm | undefined;
  let w: RealBotWorld | undefined;
  try {
    const info = hostInfo(host);
    const deploy = await createDeployFolder({ registryAddress: info.registry.address, tag: REAL_FROM, name: 'engramia-bench' });
    vm = connectVm({ sshd: info.sshd, deploy });
    await bringUp(vm, info.registry, REAL_FROM);
    w = await startRealBotWorld(info, deploy, { verifySettleSeconds: 30 }, { fourEyes: false });
    const knownHosts = join(makeTempDir('bench-real-'), 'known_hosts');
    writeFileSync(knownHosts, `${host.sshd.knownHostsLine}\n`, { mode: 0o600 });
    const script = runbookScript({ deployPath: deploy.path, registry: info.registry, apiUrl: deploy.apiUrl, apiKey: deploy.apiKey });
    const args = sshArgs(info, knownHosts);
    const hostSetupMs = Date.now() - t0;
    const load = { before: await loadavg(), after: [] as number[] };
    const series = { bot: [] as number[], baseline: [] as number[] };
    const warmup: RealHostBenchResult['warmup'] = {};
    const stepRuns: Record<string, number>[] = [];
    for (let i = 0; i < warmupRounds + rounds; i++) {
      const order: Array<'bot' | 'baseline'> = i % 2 === 0 ? ['bot', 'baseline'] : ['baseline', 'bot'];
      for (const side of order) {
        await resetHost(vm, deploy, info);
        let ms: number;
        if (side === 'bot') {
          const r = await botRound(w);
          ms = r.ms;
          if (i >= warmupRounds) stepRuns.push(r.steps);
        } else ms = await baselineRound(args, script);
        await checkDeployed(vm, deploy, side);
        if (i < warmupRounds) warmup[side] = ms;
        else series[side].push(ms);
        say(`real-host ${i < warmupRounds ? 'warm-up' : `round ${i - warmupRounds + 1}/${rounds}`} ${side}: ${Math.round(ms)} ms`);
      }
    }
    load.after = await loadavg();
    const s = { bot: stats(series.bot), baseline: stats(series.baseline) };
    const botSteps = Object.fromEntries(Object.keys(stepRuns[0] ?? {}).map((k) => [k, stats(stepRuns.map((r) => r[k] ?? 0)).median]));
    return { botSteps, command: COMMAND, releases: `${REAL_FROM} → ${REAL_TO} (alembic ${FROM_HEAD} → ${TO_HEAD})`, rounds, warmupRounds, series, warmup, stats: s, ratio: s.bot.median / s.baseline.median, load, hostSetupMs, script: script.replace(/^(GHCR_TOKEN|KEY)=.*$/gm, '$1=…') };
  } finally {
    await w?.close().catch(() => undefined);
    await vm?.compose(['down', '-v'], { timeoutMs: 120_000 }).catch(() => undefined);
    await vm?.close().catch(() => undefined);
    await host.stop();
  }
}
