import { randomBytes } from 'node:crypto';
import { Job, type Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config, EnvSecrets } from '../config/load.js';
import type { EnvironmentConfig } from '../config/schema.js';
import { audit, via } from '../audit.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { gateMsg } from '../render/deploy.js';
import { overallOf, type Overall } from '../render/health.js';
import type { Msg } from '../render/model.js';
import { watchChangeMsg, watchOfferClosedMsg, watchOfferDetail, type RollbackOffer } from '../render/watch.js';
import type { Gate } from '../runbooks/types.js';
import { planHash } from '../runbooks/plan.js';
import type { SshExecutor } from '../ssh/executor.js';
import { gatherHealth } from './health.js';
import type { OpsStore } from './store.js';
import type { Origin, Outbox, PostedRef } from './types.js';

/** Name of the scheduled probe jobs, and of the jobs that post what a probe found. */
export const WATCH = 'watch';
export const WATCH_ALERT = 'watch-alert';
/** `user` of a watch's messages and log lines when no person is behind them. */
export const WATCH_USER = 'health-watch';
const SCHEDULER_PREFIX = 'watch-';
/** A probe that dies leaves its run marker this long; a live probe never takes this long (API 5 s, SSH bounded). */
const RUN_TTL_MS = 120_000;
/** Slack may be down when a change is found: the alert job is tried again for about eight minutes. */
const ALERT_ATTEMPTS = 8;
const ALERT_BACKOFF_MS = 2000;
const KEEP_S = 7 * 24 * 3600;

export interface WatchProbeData {
  kind: typeof WATCH;
  env: string;
}

/**
 * One confirmed change, posted by its own job. It is kept a week (the scheduled probes are not)
 * because a rollback offer lives in it: a press finds the gate here the same way it finds a
 * runbook's, so roles, four-eyes (against the deploy's requester, who is `origin.user`), plan hash,
 * expiry and decide-once are the very same checks (src/commands/actions.ts).
 */
export interface WatchAlertData {
  kind: typeof WATCH_ALERT;
  jobId: string;
  env: string;
  /** The rollback target when a rollback is offered; part of the plan hash. */
  version: string;
  origin: Origin;
  requestedAt: string;
  change: { from: Overall; to: Overall };
  msg: Msg;
  offerDetail?: string[];
  /** Set once the change message is in Slack, so a retried job does not post it twice. */
  posted?: PostedRef;
  /** The shape a gate press reads: `gates`, and `fromVersion` as the rollback target. */
  state?: { gates: Record<string, Gate>; fromVersion: string; outcome: 'waiting' };
}

/** What the watch remembers between probes, per environment. */
export interface WatchState {
  /** Last status seen by two probes in a row; `ok` until anything else is confirmed, so a healthy start is quiet. */
  confirmed: Overall;
  since: string;
  /** Seen once, different from `confirmed`: announced only if the next probe sees it too. */
  candidate?: Overall;
  candidateAt?: string;
  /** Names alert jobs (`watch-ENV-EPOCH-SEQ`): a probe retried after a crash re-adds the same job, which BullMQ ignores. */
  epoch: string;
  seq: number;
  /** The alert job holding the rollback offer still open, closed when health changes again. */
  offerJobId?: string;
}

// Compare-and-delete: only the probe that set the run marker may clear it.
const END_RUN = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;

export class WatchStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  #key(env: string, ...rest: string[]): string {
    return [this.prefix, 'ops', 'watch', env, ...rest].join(':');
  }

  async read(env: string): Promise<WatchState | undefined> {
    const raw = await this.redis.get(this.#key(env));
    return raw ? (JSON.parse(raw) as WatchState) : undefined;
  }

  async write(env: string, state: WatchState): Promise<void> {
    await this.redis.set(this.#key(env), JSON.stringify(state));
  }

  /** Probes of one environment never overlap (a slow probe and the next tick, or two workers): the state is read-modify-write. */
  async begin(env: string, token: string): Promise<boolean> {
    return (await this.redis.set(this.#key(env, 'run'), token, 'PX', RUN_TTL_MS, 'NX')) === 'OK';
  }

  async end(env: string, token: string): Promise<void> {
    await this.redis.eval(END_RUN, 1, this.#key(env, 'run'), token);
  }
}

/**
 * One scheduler per watched environment, upserted by every worker like the reaper's; schedulers
 * of environments no longer watched are removed, so a config change takes effect on restart.
 */
export async function syncWatchSchedulers(queue: Queue, config: Config, log: Logger): Promise<void> {
  const watched = Object.values(config.environments).filter((e) => e.watch);
  for (const env of watched) {
    await queue.upsertJobScheduler(
      `${SCHEDULER_PREFIX}${env.name}`,
      { every: env.watch!.everyMs },
      { name: WATCH, data: { kind: WATCH, env: env.name } satisfies WatchProbeData, opts: { removeOnComplete: 50, removeOnFail: 50 } },
    );
  }
  const ids = new Set(watched.map((e) => `${SCHEDULER_PREFIX}${e.name}`));
  for (const s of await queue.getJobSchedulers(0, -1)) {
    if (s.key.startsWith(SCHEDULER_PREFIX) && !ids.has(s.key)) {
      await queue.removeJobScheduler(s.key);
      log.info({ scheduler: s.key }, 'health watch removed: its environment is no longer watched');
    }
  }
  if (watched.length > 0) log.info({ watched: watched.map((e) => `${e.name} every ${e.watch!.every}`) }, 'health watch scheduled');
}

export interface WatchDeps {
  config: Config;
  secrets: Record<string, EnvSecrets>;
  ssh: (env: EnvironmentConfig) => SshExecutor;
  store: OpsStore;
  watchStore: WatchStore;
  /** Adds alert jobs and reads them back (to close an offer). */
  queue: Queue;
  outbox: Outbox;
  /** The job's own logger (jobId, env, user). */
  log: Logger;
  metrics?: Metrics;
}

export type WatchOutcome = 'not_watched' | 'skipped_locked' | 'skipped_busy' | 'steady' | 'pending' | 'not_confirmed' | 'changed';

/** The latest deploy, when it succeeded within the window and knows what ran before it. */
async function offerFor(env: EnvironmentConfig, store: OpsStore, now: number): Promise<RollbackOffer | undefined> {
  const last = (await store.readHistory(env.name, 1))[0];
  if (!last || last.kind !== 'deploy' || !last.fromVersion || !last.outcome.startsWith('succeeded')) return undefined;
  // A failed deploy already offered its own rollback; an old one is not this error's likely cause.
  if (now - Date.parse(last.endedAt) > env.watch!.rollbackWindowMs) return undefined;
  return {
    target: last.fromVersion,
    deployJobId: last.jobId,
    deployVersion: last.version,
    deployUser: last.user,
    deployEndedAt: last.endedAt,
    ...(last.threadUrl ? { deployThreadUrl: last.threadUrl } : {}),
  };
}

/** Health changed again: the open offer is closed (decided "expired", once) and its buttons removed. */
async function closeOffer(deps: WatchDeps, jobId: string, now: Overall): Promise<void> {
  const job = (await Job.fromId(deps.queue, jobId)) as Job<WatchAlertData> | undefined;
  const gate = job?.data.state?.gates['rollback'];
  const res = await deps.store.decideGate(jobId, 'rollback', { choice: 'expired', at: new Date().toISOString() });
  if (!res.ok) return;
  deps.log.info({ offerJobId: jobId, now }, 'health watch closed its rollback offer: health changed again');
  if (gate?.postedTs && job) await deps.outbox.update({ channel: job.data.origin.channel, ts: gate.postedTs }, watchOfferClosedMsg(gate.question, now));
}

/**
 * One scheduled probe: deep health as `/engramia health` gathers it, then a change is announced
 * only once a second probe in a row sees it, so a single blip (a restart, a slow check) stays quiet.
 */
export async function runWatchProbe(job: Job<WatchProbeData>, deps: WatchDeps): Promise<{ outcome: WatchOutcome; status?: Overall }> {
  const env = deps.config.environments[job.data.env];
  const secrets = deps.secrets[job.data.env];
  if (!env?.watch || !secrets) {
    deps.log.warn('health watch for an environment this worker does not watch; ignored');
    return { outcome: 'not_watched' };
  }
  const token = randomBytes(8).toString('hex');
  if (!(await deps.watchStore.begin(env.name, token))) return { outcome: 'skipped_busy' };
  try {
    const now = new Date();
    const state: WatchState = (await deps.watchStore.read(env.name)) ?? { confirmed: 'ok', since: now.toISOString(), epoch: Date.now().toString(36), seq: 0 };
    const forgetCandidate = async () => {
      if (!state.candidate) return;
      delete state.candidate;
      delete state.candidateAt;
      await deps.watchStore.write(env.name, state);
    };
    // A runbook is changing the host and reports health itself; what was seen before it no longer counts.
    if (await deps.store.readLock(env.name)) {
      await forgetCandidate();
      return { outcome: 'skipped_locked' };
    }
    const origin: Origin = { transport: 'slack', channel: env.watch.channel, user: WATCH_USER };
    const report = await gatherHealth({ kind: 'health', env: env.name, origin, requestedAt: now.toISOString() }, { jobId: String(job.id), env, secrets, ssh: deps.ssh(env) });
    // A runbook that started while this probe ran: what it saw may be the runbook's own restart.
    if (await deps.store.readLock(env.name)) {
      await forgetCandidate();
      return { outcome: 'skipped_locked' };
    }
    const status = overallOf(report);
    deps.metrics?.watchProbes.inc({ env: env.name, status });
    deps.log.debug({ status, confirmed: state.confirmed, candidate: state.candidate }, 'health watch probe');
    // A deploy or rollback that ran entirely between two probes: the second probe looks at another version.
    const last = state.candidate ? (await deps.store.readHistory(env.name, 1))[0] : undefined;
    if (last && state.candidateAt && Date.parse(last.endedAt) > Date.parse(state.candidateAt)) await forgetCandidate();

    if (status === state.confirmed) {
      if (!state.candidate) return { outcome: 'steady', status };
      deps.log.info({ status, unconfirmed: state.candidate }, 'health watch: a change seen once was not confirmed');
      delete state.candidate;
      delete state.candidateAt;
      await deps.watchStore.write(env.name, state);
      return { outcome: 'not_confirmed', status };
    }
    if (state.candidate !== status) {
      state.candidate = status;
      state.candidateAt = now.toISOString();
      await deps.watchStore.write(env.name, state);
      return { outcome: 'pending', status };
    }

    const from = state.confirmed;
    const seq = state.seq + 1;
    const alertId = `watch-${env.name}-${state.epoch}-${seq}`;
    const offer = status === 'error' ? await offerFor(env, deps.store, now.getTime()) : undefined;
    const shown = { ...report, jobId: alertId, trigger: `health watch, every ${env.watch.every}` };
    const data: WatchAlertData = {
      kind: WATCH_ALERT,
      jobId: alertId,
      env: env.name,
      version: offer?.target ?? '',
      // Four-eyes is checked against origin.user: with an offer, that is whoever asked for the deploy.
      origin: { ...origin, user: offer?.deployUser ?? WATCH_USER },
      requestedAt: now.toISOString(),
      change: { from, to: status },
      msg: watchChangeMsg({ env: env.name, from, to: status, every: env.watch.every, report: shown, ...(offer ? { offer } : {}) }),
    };
    if (offer) {
      const gate: Gate = {
        id: 'rollback',
        kind: 'rollback',
        go: 'rollback.approve',
        noGo: 'rollback.dismiss',
        question: `Roll ${env.name} back to ${offer.target}?`,
        createdAt: now.toISOString(),
        expiresAt: new Date(now.getTime() + env.gateTimeoutSeconds * 1000).toISOString(),
        planHash: planHash(data, [offer.target, offer.deployJobId]),
      };
      data.state = { gates: { rollback: gate }, fromVersion: offer.target, outcome: 'waiting' };
      data.offerDetail = watchOfferDetail(env.name, offer, env.fourEyes);
    }
    // Added before the state moves on: a crash in between re-finds the change and re-adds this same job id (a no-op).
    await deps.queue.add(WATCH_ALERT, data, {
      jobId: alertId,
      attempts: ALERT_ATTEMPTS,
      backoff: { type: 'exponential', delay: ALERT_BACKOFF_MS },
      removeOnComplete: { age: KEEP_S },
      removeOnFail: { age: KEEP_S },
    });
    const openOffer = state.offerJobId;
    Object.assign(state, { confirmed: status, since: now.toISOString(), seq });
    delete state.candidate;
    delete state.candidateAt;
    if (offer) state.offerJobId = alertId;
    else delete state.offerJobId;
    await deps.watchStore.write(env.name, state);
    deps.log.info({ from, to: status, alertJobId: alertId, rollbackOffered: offer?.target ?? null }, 'health watch: status changed');
    void audit(deps.store, deps.log, { type: 'job', action: 'health changed', ...via(origin), env: env.name, jobId: alertId, from, to: status, ...(offer ? { rollbackOffered: offer.target, deployJobId: offer.deployJobId } : {}) });
    if (openOffer) await closeOffer(deps, openOffer, status).catch((err: unknown) => deps.log.warn({ err: (err as Error).message, offerJobId: openOffer }, 'could not close the previous rollback offer'));
    return { outcome: 'changed', status };
  } finally {
    await deps.watchStore.end(env.name, token).catch(() => undefined);
  }
}

/** Posts a confirmed change, then the rollback offer in its thread; each saved once posted, so a retry posts only what is missing. */
export async function runWatchAlert(job: Job<WatchAlertData>, deps: Pick<WatchDeps, 'outbox' | 'log'>): Promise<{ outcome: 'posted' | 'offered' }> {
  const data = job.data;
  if (!data.posted) {
    data.posted = await deps.outbox.post(data.origin, data.msg);
    await job.updateData(data);
  }
  const gate = data.state?.gates['rollback'];
  if (!gate) return { outcome: 'posted' };
  if (gate.postedTs === undefined) {
    const ref = await deps.outbox.post(data.origin, gateMsg(gate, data.jobId, data.offerDetail ?? []), data.posted.ts ? { threadTs: data.posted.ts } : {});
    gate.postedTs = ref.ts;
    await job.updateData(data);
  }
  return { outcome: 'offered' };
}
