import { Job, type QueueBase } from 'bullmq';
import type { Config } from '../config/load.js';
import type { EnvironmentConfig } from '../config/schema.js';
import { probeHost } from '../engramia/host.js';
import { asChatOpsError } from '../errors.js';
import type { Logger } from '../logger.js';
import { audit, via } from '../audit.js';
import { deployCard } from '../render/deploy.js';
import { describeError } from '../render/errors.js';
import { code, esc, mention, type Msg } from '../render/model.js';
import { cardView } from '../runbooks/catalog.js';
import { forgetRegistryLogin } from '../runbooks/deploy.js';
import type { RunbookData } from '../runbooks/kernel/types.js';
import type { SshExecutor } from '../ssh/executor.js';
import type { OpsStore } from './store.js';
import type { Outbox } from './types.js';

/** The job scheduler's id and the job name its runs carry. */
export const REAPER = 'reaper';
export const DEFAULT_REAPER_INTERVAL_MS = 30_000;
/** A lock younger than this may belong to a job being enqueued right now: never reaped. */
const LOCK_GRACE_MS = 60_000;

export interface ReaperDeps {
  /** The worker or queue, for reading jobs. */
  queue: QueueBase & { getFailed(start?: number, end?: number): Promise<Job[]> };
  config: Config;
  store: OpsStore;
  outbox: Outbox;
  log: Logger;
  ssh: (env: EnvironmentConfig) => SshExecutor;
}

export interface ReapReport {
  locksReleased: string[];
  jobsClosed: string[];
}

function section(text: string): Msg {
  return { summary: text.replace(/[*`]/g, ''), parts: [{ type: 'section', text }] };
}

function isRunbook(data: unknown): data is RunbookData {
  const k = (data as { kind?: string } | undefined)?.kind;
  return k === 'deploy' || k === 'rollback' || k === 'maintenance' || k === 'migrate' || k === 'upgrade';
}

/**
 * Finds what crashes leave behind and fixes it, saying so where people look:
 * a runbook job BullMQ gave up on (its worker was lost too many times) while our
 * state still says "running", and an environment lock whose job is gone or over.
 */
export async function reap(deps: ReaperDeps): Promise<ReapReport> {
  const report: ReapReport = { locksReleased: [], jobsClosed: [] };
  for (const job of await deps.queue.getFailed(0, 100)) {
    if (!isRunbook(job.data)) continue;
    const outcome = job.data.state?.outcome;
    if (outcome !== 'running' && outcome !== 'waiting') continue;
    await closeAbandoned(deps, job as Job<RunbookData>);
    report.jobsClosed.push(String(job.id));
  }
  for (const envName of Object.keys(deps.config.environments)) {
    const holder = await deps.store.readLock(envName);
    if (!holder || Date.now() - Date.parse(holder.startedAt) < LOCK_GRACE_MS) continue;
    const job = await Job.fromId(deps.queue, holder.jobId);
    const state = job ? await job.getState() : 'missing';
    if (state !== 'missing' && state !== 'completed' && state !== 'failed' && state !== 'unknown') continue;
    if (!(await deps.store.releaseLock(envName, holder.jobId))) continue;
    report.locksReleased.push(envName);
    deps.log.warn({ env: envName, jobId: holder.jobId, jobState: state }, 'reaper released a lock whose job is over');
    void audit(deps.store, deps.log, { type: 'lock', action: 'reaped', ...via(holder), env: envName, jobId: holder.jobId, jobState: state });
    const text = `🧹 *${esc(envName)}* was still locked by ${esc(holder.command)} (${mention(holder.user)}, job ${code(holder.jobId)}), but that job ${state === 'missing' || state === 'unknown' ? 'no longer exists' : `has ended (${state})`}. The bot released the lock; ${esc(envName)} takes new commands again.`;
    const data = job?.data as RunbookData | undefined;
    const card = data?.state?.card;
    const channel = card?.channel ?? holder.channel;
    if (channel) {
      await deps.outbox
        .post(data?.origin ?? { transport: 'slack', channel, user: holder.user }, section(text), card?.ts ? { threadTs: card.ts } : {})
        .catch((err: unknown) => deps.log.warn({ err: (err as Error).message }, 'reaper could not report a released lock'));
    }
  }
  return report;
}

/** A job that will never run again: stop what it left on the host, tell the truth about the host, free the environment. */
async function closeAbandoned(deps: ReaperDeps, job: Job<RunbookData>): Promise<void> {
  const data = job.data;
  const state = data.state!;
  const env = deps.config.environments[data.env];
  const log = deps.log.child({ jobId: job.id, env: data.env });
  const i = state.steps.findIndex((s) => s.status === 'running');
  const stepIndex = i >= 0 ? i : Math.max(0, state.steps.findIndex((s) => s.status === 'pending'));
  const rec = state.steps[stepIndex];
  const lines = [`🧹 *This ${data.kind} was stopped by the bot's reaper*: ${esc(job.failedReason || 'its worker was lost')}. It will not continue by itself.`];
  if (rec) lines.push(`It had reached step ${stepIndex + 1}, *${esc(rec.title)}* (${rec.status}).`);
  if (env) {
    const ssh = deps.ssh(env);
    if (rec?.remotePid !== undefined) {
      try {
        if (await ssh.groupAlive(rec.remotePid)) {
          const stopped = await ssh.stopGroup(rec.remotePid);
          lines.push(stopped ? `Its command (process group ${rec.remotePid}) still ran on the host and was stopped.` : `Its command (process group ${rec.remotePid}) still runs on the host: stopping it failed.`);
        }
      } catch (err) {
        lines.push(`Whether its command still runs on the host could not be checked: ${esc(describeError(asChatOpsError(err)).title)}.`);
      }
    }
    // The lock may be someone else's by now: only this job's own folder is removed.
    const leftover = await forgetRegistryLogin({ ssh, env, state }, data.jobId);
    if (leftover) lines.push(`⚠️ ${esc(leftover)}.`);
    try {
      const host = await probeHost(ssh, env);
      lines.push(
        `*Host now:* engramia-api ${host.apiState === 'running' ? `runs ${code(host.runningTag ?? '?')}` : `is ${esc(host.apiState ?? 'missing')}`}; .env pins ${host.pinnedTag ? code(host.pinnedTag) : 'no tag'}; maintenance ${host.maintenanceInEnvFile ? '*ON* in .env' : 'off in .env'}.`,
      );
      if (host.maintenanceInEnvFile) lines.push('🚧 *Maintenance is still ON*: every endpoint but /v1/health answers 503 until it is turned off (`/engramia maintenance off`).');
    } catch (err) {
      lines.push(`*Host now:* could not be read (${esc(describeError(asChatOpsError(err)).title)}). Check it by hand before doing anything else.`);
    }
  }
  lines.push(`Next: check with ${code(`/engramia status ${data.env}`)}, then run the ${data.kind} again or roll back.`);
  if (rec && rec.status === 'running') {
    rec.status = 'failed';
    rec.note = 'abandoned: its worker was lost';
  }
  state.outcome = 'failed';
  state.summary = lines.join('\n');
  // updateData replaces the whole object: write the merged value, so the job is not closed twice.
  await job.updateData({ ...data, state });
  const released = await deps.store.releaseLock(data.env, data.jobId);
  void audit(deps.store, log, { type: 'job', action: 'reaped', ...via(data.origin), jobId: data.jobId, env: data.env, lockReleased: released, reason: job.failedReason });
  log.warn({ reason: job.failedReason, lockReleased: released }, 'reaper closed an abandoned job');
  if (state.card?.ts) {
    await deps.outbox
      .update(state.card, deployCard(cardView(data, state)))
      .catch((err: unknown) => log.warn({ err: (err as Error).message }, 'reaper could not update the card'));
  }
  await deps.outbox
    .post(data.origin, section(state.summary), state.card?.ts ? { threadTs: state.card.ts } : {})
    .catch((err: unknown) => log.warn({ err: (err as Error).message }, 'reaper could not post in the thread'));
}
