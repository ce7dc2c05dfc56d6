// Metrics and logs: /metrics scraped after a real deploy and parsed as Prometheus text, and the
// deploy job's JSON log lines checked for the fields that let an operator follow one job.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { readEnvOptions } from '../../src/config/env.js';
import { loadConfig } from '../../src/config/load.js';
import { HEARTBEAT_EVERY_MS, HEARTBEAT_TTL_MS } from '../../src/jobs/heartbeat.js';
import { QUEUE_NAME } from '../../src/jobs/queue.js';
import { stepsFor } from '../../src/jobs/runbook-job.js';
import { createLogger } from '../../src/logger.js';
import { startBot } from '../../src/runtime.js';
import { readCommandLog } from '../world/sim/host.mjs';
import { ALICE, startWorld, type World } from './harness.js';
import { finalCard, press, privateSshd, until } from './faults.js';

const MAIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url));

const sshd = privateSshd();
let world: World | undefined;

afterEach(async (ctx) => {
  if (ctx.task.result?.state === 'fail' && world) {
    console.error(`--- bot log (last 40) ---\n${world.logs.slice(-40).join('')}`);
    console.error(`--- host commands ---\n${JSON.stringify(readCommandLog(world.deployPath).map((r: any) => [r.phase, r.exitCode, r.argv.join(' ')]))}`);
  }
  await world?.close();
  world = undefined;
});

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * The Prometheus text exposition format, as far as prom-client writes it: `# HELP` / `# TYPE`
 * comments, then `name{label="value",...} number` lines. Label values escape `\`, `"` and newlines.
 */
function parsePrometheus(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) {
      types.set(type[1]!, type[2]!);
      continue;
    }
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/.exec(line);
    if (!m) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    const body = m[2] ?? '';
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/gy;
    let lm: RegExpExecArray | null;
    let consumed = 0;
    while ((lm = re.exec(body))) {
      labels[lm[1]!] = lm[2]!.replace(/\\n/g, '\n').replace(/\\(["\\])/g, '$1');
      consumed = re.lastIndex;
    }
    if (consumed !== body.length) throw new Error(`bad labels in: ${line}`);
    const raw = m[3]!;
    // Like Prometheus (Go's ParseFloat), NaN and Inf in any case: prom-client writes `Nan`.
    const value = /^[+-]?inf$/i.test(raw) ? (raw.startsWith('-') ? -Infinity : Infinity) : /^nan$/i.test(raw) ? NaN : Number(raw);
    if (Number.isNaN(value) && !/^nan$/i.test(raw)) throw new Error(`bad value in: ${line}`);
    samples.push({ name: m[1]!, labels, value });
  }
  return { samples, types };
}

async function scrape(w: World) {
  const res = await fetch(`${w.adminUrl}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
  return parsePrometheus(await res.text());
}

const find = (s: Sample[], name: string, labels: Record<string, string> = {}) => s.filter((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
const total = (s: Sample[], name: string, labels: Record<string, string> = {}) => find(s, name, labels).reduce((a, x) => a + x.value, 0);

/** The keys of a JSON object line as written, duplicates kept (JSON.parse would silently keep the last). */
function topLevelKeys(line: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === '"') {
      let j = i + 1;
      while (line[j] !== '"') j += line[j] === '\\' ? 2 : 1;
      if (depth === 1 && line[j + 1] === ':') keys.push(line.slice(i + 1, j));
      i = j;
    } else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') depth--;
  }
  return keys;
}

describe('/metrics after a deploy', { timeout: 60_000 }, () => {
  it('counts the command, the job, every step, the gate wait, Slack 429s and SSH reconnects', async () => {
    const w = (world = await startWorld({
      slackLimits: false,
      sshd: sshd.worldSshd(),
      envExtra: { verifySettleSeconds: 5 },
    }));
    // Two 429s the outbox waits out (Retry-After 1 s fits its 3 s budget): counted, not errors.
    w.slack.injectFault({ method: 'chat.postMessage', status: 429, times: 2, retryAfterSec: 1 });
    expect((await w.slash('deploy 0.6.1')).status).toBe(200);
    await press(w, 'maintenance.skip');
    await finalCard(w, /succeeded/);

    const steps = stepsFor({ kind: 'deploy' });
    const { samples, types } = await until(async () => {
      const m = await scrape(w);
      return total(m.samples, 'chatops_jobs_total', { name: 'deploy' }) > 0 ? m : undefined;
    }, 'the deploy job counted');

    expect(total(samples, 'chatops_commands_total', { command: 'deploy', outcome: 'queued' })).toBe(1);
    expect(find(samples, 'chatops_jobs_total', { name: 'deploy' })).toEqual([{ name: 'chatops_jobs_total', labels: { name: 'deploy', outcome: 'succeeded' }, value: 1 }]);
    // Two runs: up to the maintenance question (parked), then from the answer to the end.
    expect(total(samples, 'chatops_job_duration_seconds_count', { name: 'deploy' })).toBe(2);

    // One observation per step, each step once; skipped steps (approval, maintenance on/off) included.
    expect(types.get('chatops_step_duration_seconds')).toBe('histogram');
    expect(total(samples, 'chatops_step_duration_seconds_count', { kind: 'deploy' })).toBe(steps.length);
    for (const step of steps) {
      const counts = find(samples, 'chatops_step_duration_seconds_count', { kind: 'deploy', step: step.id });
      expect(counts, step.id).toHaveLength(1);
      expect(counts[0]!.value, step.id).toBe(1);
      const inf = find(samples, 'chatops_step_duration_seconds_bucket', { kind: 'deploy', step: step.id, le: '+Inf' });
      expect(inf[0]?.value, step.id).toBe(1);
    }
    expect(find(samples, 'chatops_step_duration_seconds_count', { kind: 'deploy', step: 'maintenance-on' })[0]!.labels.status).toBe('skipped');
    expect(find(samples, 'chatops_step_duration_seconds_count', { kind: 'deploy', step: 'pull' })[0]!.labels.status).toBe('done');
    const stepSeconds = total(samples, 'chatops_step_duration_seconds_sum', { kind: 'deploy' });
    const jobSeconds = total(samples, 'chatops_job_duration_seconds_sum', { name: 'deploy' });
    expect(stepSeconds).toBeGreaterThan(0);
    // Steps run inside the job's runs (parked time at the gate counts in the step, not the job run).
    expect(stepSeconds).toBeLessThan(jobSeconds + 60);

    // The maintenance question, decided by a person: one wait, between 0 and the time the test took.
    const waited = find(samples, 'chatops_gate_wait_seconds_count', { kind: 'maintenance', choice: 'no-go' });
    expect(waited.map((s) => s.value)).toEqual([1]);
    const waitSum = total(samples, 'chatops_gate_wait_seconds_sum', { kind: 'maintenance' });
    expect(waitSum).toBeGreaterThanOrEqual(0);
    expect(waitSum).toBeLessThan(30);

    expect(total(samples, 'chatops_slack_rate_limited_total', { method: 'chat.postMessage' })).toBe(2);
    expect(total(samples, 'chatops_slack_rate_limited_total')).toBe(w.slack.rateLimited());
    expect(total(samples, 'chatops_slack_api_errors_total')).toBe(0);

    expect(total(samples, 'chatops_ssh_connects_total', { outcome: 'ok' })).toBe(1);
    expect(total(samples, 'chatops_ssh_reconnects_total')).toBe(0);
    expect(types.get('chatops_queue_jobs')).toBe('gauge');
    expect(find(samples, 'chatops_queue_jobs', { state: 'active' })).toHaveLength(1);
    expect(find(samples, 'chatops_process_cpu_user_seconds_total')).toHaveLength(1);

    // The connection drops; the next job's first command opens a new one, counted as a reconnect.
    expect(sshd.dropSessions()).toBeGreaterThan(0);
    // Let the client see the connection close, so the next command opens a new one rather than failing on the dead one.
    await new Promise((r) => setTimeout(r, 500));
    await w.slash('health');
    const after = await until(async () => {
      const m = await scrape(w);
      return total(m.samples, 'chatops_jobs_total', { name: 'health' }) > 0 ? m.samples : undefined;
    }, 'the health job counted');
    expect(find(after, 'chatops_jobs_total', { name: 'health', outcome: 'failed' })).toEqual([]);
    expect(total(after, 'chatops_ssh_connects_total', { outcome: 'ok' })).toBe(2);
    expect(find(after, 'chatops_ssh_reconnects_total').map((s) => s.value)).toEqual([1]);
  });
});

describe('JSON logs of a job', { timeout: 60_000 }, () => {
  it('every line the worker writes while it runs a deploy carries the job id, environment and user', async () => {
    // The app in one bot, the worker in another with a log of its own: what the worker wrote is then known.
    const w = (world = await startWorld({ role: 'app', slackLimits: false, envExtra: { verifySettleSeconds: 5 } }));
    const workerLines: string[] = [];
    const worker = await startBot({
      env: readEnvOptions(w.processEnv),
      config: loadConfig(w.configPath),
      role: 'worker',
      log: createLogger({ level: 'debug', destination: { write: (l: string) => void workerLines.push(l) } }),
      processEnv: w.processEnv,
    });
    try {
      await w.slash('deploy 0.6.1');
      await press(w, 'maintenance.skip');
      await finalCard(w, /succeeded/);
      const lines = () => workerLines.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, any>);
      await until(() => lines().some((l) => l.msg === 'job finished' && l.job === 'deploy'), 'the deploy job to finish');
      const all = lines();
      const first = all.findIndex((l) => l.msg === 'job started' && l.job === 'deploy');
      const last = all.findLastIndex((l) => l.msg === 'job finished' && l.job === 'deploy');
      const jobId = all[first]!.jobId as string;
      // While the deploy ran, other jobs (the reaper) may have run too: their lines name them.
      const during = all.slice(first, last + 1).filter((l) => l.jobId === jobId || !(typeof l.jobId === 'string' && l.job !== 'deploy'));
      expect(during.length).toBeGreaterThan(30);
      for (const l of during) expect({ line: l.msg, jobId: l.jobId, env: l.env, user: l.user }).toEqual({ line: l.msg, jobId, env: 'production', user: ALICE });
      // Lines from code every job shares (the SSH connection) name the job too, and no key is written twice.
      expect(during.some((l) => l.msg === 'ssh connected')).toBe(true);
      for (const raw of workerLines.join('').split('\n').filter((l) => l.includes(jobId))) {
        const keys = topLevelKeys(raw);
        expect(keys.length, raw).toBe(new Set(keys).size);
      }
      // Parked at the gate and resumed: both runs, every step's start and end.
      expect(during.filter((l) => l.msg === 'job started')).toHaveLength(2);
      expect(during.filter((l) => l.msg === 'audit: step' && l.audit.status !== 'started')).toHaveLength(stepsFor({ kind: 'deploy' }).length);
    } finally {
      await worker.close();
    }
  });
});

describe('the detailed /healthz counts workers by their heartbeat', { timeout: 90_000 }, () => {
  it('503 with no worker, 200 once one runs, 503 within the heartbeat TTL when it freezes or is killed with -9', async () => {
    const w = (world = await startWorld({ role: 'app', slackLimits: false }));
    const healthz = async () => {
      const res = await fetch(`${w.adminUrl}/healthz`);
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    const untilStatus = (status: number, what: string, timeoutMs = 20_000) =>
      until(async () => {
        const h = await healthz();
        return h.status === status ? h : undefined;
      }, what, timeoutMs);
    // Right after start, Redis and Slack's auth.test may still be answering.
    const none = await until(async () => {
      const h = await healthz();
      return h.body.redis === 'ok' && h.body.slack === 'ok' ? h : undefined;
    }, 'redis and slack checked');
    expect(none).toEqual({ status: 503, body: { status: 'error', redis: 'ok', slack: 'ok', workers: 0, version: expect.stringMatching(/^\d+\.\d+\.\d+/) } });

    // A real worker process (`npm run build` first), so it can be frozen and killed like a real one.
    const child = spawn(process.execPath, [MAIN, '--role', 'worker'], { env: { PATH: process.env.PATH, ...w.processEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    const exited = once(child, 'exit');
    const queue = new Queue(QUEUE_NAME, { connection: new Redis(w.processEnv.REDIS_URL!, { maxRetriesPerRequest: null }), prefix: w.processEnv.CHATOPS_QUEUE_PREFIX! });
    try {
      const up = await untilStatus(200, 'the worker\'s first heartbeat', 20_000).catch((err: Error) => {
        throw new Error(`${err.message}\n${out}`);
      });
      expect(up.body).toMatchObject({ status: 'ok', redis: 'ok', slack: 'ok', workers: 1 });

      // Frozen (a stalled event loop looks the same): its Redis connection stays open, so BullMQ still lists it.
      child.kill('SIGSTOP');
      const frozenAt = Date.now();
      expect((await untilStatus(503, 'healthz to notice the frozen worker')).body).toMatchObject({ workers: 0 });
      expect(Date.now() - frozenAt).toBeLessThan(HEARTBEAT_TTL_MS + 2000);
      expect((await queue.getWorkers()).length).toBe(1);
      child.kill('SIGCONT');
      expect((await untilStatus(200, 'the thawed worker to beat again', HEARTBEAT_EVERY_MS + 5000)).body).toMatchObject({ workers: 1 });

      child.kill('SIGKILL');
      await exited;
      const killedAt = Date.now();
      const down = await untilStatus(503, 'healthz to notice the killed worker');
      expect(down.body).toMatchObject({ status: 'error', redis: 'ok', slack: 'ok', workers: 0 });
      expect(Date.now() - killedAt).toBeLessThan(HEARTBEAT_TTL_MS + 2000);
    } finally {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGCONT');
        child.kill('SIGKILL');
      }
      await queue.close();
    }
  });
});
