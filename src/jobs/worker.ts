import { settleWithin } from '../timeout.js';
import { DelayedError, Job, Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type { Config, EnvSecrets } from '../config/load.js';
import { ChatOpsError, ErrorCode, asChatOpsError } from '../errors.js';
import { withLogContext, type Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { errorParts } from '../render/errors.js';
import { code } from '../render/model.js';
import { SshPool } from '../ssh/pool.js';
import type { RunbookData } from '../runbooks/kernel/types.js';
import { ReporterRegistry } from './reporter.js';
import { runRunbookJob } from './runbook-job.js';
import { postPatiently } from './deliver.js';
import { runReadJob } from './read-handlers.js';
import { describeJob } from './current-job.js';
import { DEFAULT_REAPER_INTERVAL_MS, REAPER, reap } from './reaper.js';
import { startHeartbeat } from './heartbeat.js';
import { WATCH, WATCH_ALERT, WATCH_USER, WatchStore, runWatchAlert, runWatchProbe, syncWatchSchedulers, type WatchAlertData, type WatchProbeData } from './watch.js';
import { QUEUE_NAME } from './queue.js';
import { OpsStore } from './store.js';
import type { JobData } from './job-data.js';
import { isReadJobName, type Outbox, type ReadJobData } from './types.js';

export interface WorkerDeps {
  config: Config;
  secrets: Record<string, EnvSecrets>;
  redisUrl: string;
  prefix: string;
  log: Logger;
  outbox: Outbox;
  metrics: Metrics;
  /** Values scrubbed from anything sent to Slack. */
  knownSecrets: string[];
  concurrency?: number;
  /** Lock lifetime without renewal: how long a crashed worker can keep an environment locked. */
  lockTtlMs?: number;
  minCardIntervalMs?: number;
  /**
   * BullMQ job lock: a worker that stops renewing it (killed, frozen, cut off from Redis) loses the
   * job after this long, and a live worker resumes it from its last saved step.
   */
  jobLockMs?: number;
  /** How often live workers look for jobs whose lock expired. */
  stalledIntervalMs?: number;
  /** On SIGTERM: how long the running step may take before a step that is safe to repeat is stopped. */
  shutdownGraceMs?: number;
  /** How often the reaper looks for abandoned jobs and locks. */
  reaperIntervalMs?: number;
  /** How many times a job may lose its worker before BullMQ gives up on it (then the reaper closes it). */
  maxStalledCount?: number;
  /** Heartbeat for /healthz: written this often, expiring after `heartbeatTtlMs` without a renewal. */
  heartbeatEveryMs?: number;
  heartbeatTtlMs?: number;
}

export const DEFAULT_LOCK_TTL_MS = 5 * 60_000;
export const DEFAULT_JOB_LOCK_MS = 15_000;
export const DEFAULT_STALLED_INTERVAL_MS = 5_000;
export const DEFAULT_SHUTDOWN_GRACE_MS = 120_000;
/** After the grace and an interrupt, how long close() still waits before leaving the job to the stalled check. */
const FORCE_AFTER_MS = 15_000;

/** Whether `p` ended (either way) within `ms`. */
async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  return (await settleWithin(p.then(() => true, () => true), ms)) === true;
}

/** jobId, job, env and user: what an operator filters a job's log lines by. */
function logFields(job: Job<JobData>): Record<string, unknown> {
  const d = job.data as { env?: unknown; origin?: { user?: unknown } } | undefined;
  return { jobId: job.id, job: job.name, env: d?.env, user: d?.origin?.user ?? (job.name === WATCH ? WATCH_USER : undefined) };
}

function isRunbookJob(data: JobData): data is RunbookData {
  return data.kind === 'deploy' || data.kind === 'rollback' || data.kind === 'maintenance' || data.kind === 'migrate' || data.kind === 'upgrade';
}

export interface RunningWorker {
  worker: Worker<JobData>;
  close(): Promise<void>;
}

export function startWorker(deps: WorkerDeps): RunningWorker {
  const ssh = new SshPool(deps.secrets, deps.log, (host) => ({
    onConnect(outcome, reconnect) {
      deps.metrics.sshConnects.inc({ outcome });
      if (reconnect && outcome === 'ok') deps.metrics.sshReconnects.inc({ host });
    },
  }));
  // Workers block on Redis; BullMQ requires unlimited per-request retries so an outage never kills them.
  const connection = new Redis(deps.redisUrl, { maxRetriesPerRequest: null, retryStrategy: (times) => Math.min(200 * times, 5000) });
  // Locks and gates get their own connection, so they never queue behind BullMQ's blocking reads.
  const storeConnection = new Redis(deps.redisUrl, { maxRetriesPerRequest: null, retryStrategy: (times) => Math.min(200 * times, 5000) });
  storeConnection.on('error', () => undefined);
  const store = new OpsStore(storeConnection, deps.prefix);
  let lastError = '';
  connection.on('error', (err: Error) => {
    if (err.message !== lastError) deps.log.warn({ err: err.message }, 'redis (worker) error');
    lastError = err.message;
  });

  let stopping = false;
  // Set when shutdown leaves a running step behind: whatever then fails in this process must not be reported as the job's end.
  let abandoned = false;
  // Slack deliveries outlive a job's run (parked at a gate, or Slack down when it ended): one queue per job here.
  const reporters = new ReporterRegistry({ outbox: deps.outbox, ...(deps.minCardIntervalMs !== undefined ? { minUpdateIntervalMs: deps.minCardIntervalMs } : {}) });
  const stopNow = new AbortController();
  const jobLockMs = deps.jobLockMs ?? DEFAULT_JOB_LOCK_MS;
  // Every worker upserts the same scheduler: one reaper run per interval, whichever worker takes it.
  const schedulerQueue = new Queue(QUEUE_NAME, { connection: storeConnection, prefix: deps.prefix });
  schedulerQueue
    .upsertJobScheduler(REAPER, { every: deps.reaperIntervalMs ?? DEFAULT_REAPER_INTERVAL_MS }, { name: REAPER, data: { kind: REAPER } as never, opts: { removeOnComplete: 50, removeOnFail: 50 } })
    .catch((err: unknown) => deps.log.warn({ err: (err as Error).message }, 'could not schedule the reaper'));
  syncWatchSchedulers(schedulerQueue, deps.config, deps.log).catch((err: unknown) => deps.log.warn({ err: (err as Error).message }, 'could not schedule the health watch'));
  const watchStore = new WatchStore(storeConnection, deps.prefix);
  const heartbeat = startHeartbeat(storeConnection, deps.prefix, deps.log, {
    ...(deps.heartbeatEveryMs !== undefined ? { everyMs: deps.heartbeatEveryMs } : {}),
    ...(deps.heartbeatTtlMs !== undefined ? { ttlMs: deps.heartbeatTtlMs } : {}),
  });

  const run = async (job: Job<JobData>, token?: string) => {
    if (job.name === REAPER) {
      const report = await reap({ queue: schedulerQueue, config: deps.config, store, outbox: deps.outbox, log: deps.log.child({ job: REAPER }), ssh: (env) => ssh.for(env) });
      deps.log.debug({ ...report }, 'reaper run');
      return report;
    }
    if (job.name === WATCH || job.name === WATCH_ALERT) {
      // Not user jobs: no requester to tell on failure, and BullMQ retries an alert Slack did not take.
      const wd = job.data as unknown as WatchProbeData | WatchAlertData;
      const log = deps.log.child({ jobId: job.id, job: job.name, env: wd.env, user: 'origin' in wd ? wd.origin.user : WATCH_USER });
      const watchDeps = { config: deps.config, secrets: deps.secrets, ssh: (env: Parameters<SshPool['for']>[0]) => ssh.for(env), store, watchStore, queue: schedulerQueue, outbox: deps.outbox, log, metrics: deps.metrics };
      try {
        const result = job.name === WATCH ? await runWatchProbe(job as unknown as Job<WatchProbeData>, watchDeps) : await runWatchAlert(job as unknown as Job<WatchAlertData>, watchDeps);
        deps.metrics.jobs.inc({ name: job.name, outcome: result.outcome });
        if (job.name === WATCH_ALERT) log.info({ outcome: result.outcome }, 'job finished');
        return result;
      } catch (err) {
        const error = asChatOpsError(err);
        deps.metrics.jobs.inc({ name: job.name, outcome: 'failed' });
        log.warn({ code: error.code, err: error.message, attempt: job.attemptsMade + 1 }, `${job.name} failed`);
        throw error;
      }
    }
    const data = job.data;
    const log = deps.log.child({ jobId: job.id, job: job.name, env: data.env, user: data.origin.user });
    const timer = deps.metrics.jobDuration.startTimer({ name: job.name });
    const env = deps.config.environments[data.env];
    const secrets = deps.secrets[data.env];
    log.info('job started');
    try {
      if (!env || !secrets) throw new Error(`environment ${data.env} is not configured on this worker`);
      if (isRunbookJob(data)) {
        const { outcome } = await runRunbookJob(job as Job<RunbookData>, token, {
          env,
          secrets,
          ssh: ssh.for(env),
          store,
          outbox: deps.outbox,
          log,
          knownSecrets: deps.knownSecrets,
          gateTimeoutMs: env.gateTimeoutSeconds * 1000,
          verifySettleMs: env.verifySettleSeconds * 1000,
          lockTtlMs: deps.lockTtlMs ?? DEFAULT_LOCK_TTL_MS,
          stopping: () => stopping,
          abandoned: () => abandoned,
          reporters,
          metrics: deps.metrics,
          signal: stopNow.signal,
          fence: async () => {
            // A worker that lost the job's lock (another took it over) must not start another step.
            const ok = token ? await job.extendLock(token, jobLockMs) : 1;
            if (!ok) throw new ChatOpsError(ErrorCode.JobLockLost, `job ${job.id} is owned by another worker now`, { jobId: job.id });
          },
          ...(deps.minCardIntervalMs !== undefined ? { minCardIntervalMs: deps.minCardIntervalMs } : {}),
        });
        deps.metrics.jobs.inc({ name: job.name, outcome });
        log.info({ outcome }, 'job finished');
        return { outcome };
      }
      if (!isReadJobName(data.kind)) throw new Error(`unknown job kind ${String((data as { kind: unknown }).kind)}`);
      const { msg, outcome, file } = await runReadJob(data as ReadJobData, {
        jobId: String(job.id),
        env,
        secrets,
        ssh: ssh.for(env),
        store,
        knownSecrets: deps.knownSecrets,
        lookupJob: async (id) => {
          const other = await Job.fromId<JobData>(worker, id).catch(() => undefined);
          return other ? describeJob(other, { outbox: deps.outbox, store }) : undefined;
        },
      });
      const posted = await postPatiently(deps.outbox, data.origin, msg, { log });
      if (file) {
        // The message already says where the file is; a failed upload is logged, not a failed read.
        await deps.outbox
          .upload(data.origin, { ...(posted.ts ? { threadTs: posted.ts } : {}), ...file })
          .catch((err: unknown) => log.warn({ err: (err as Error).message }, 'could not upload the output file'));
      }
      deps.metrics.jobs.inc({ name: job.name, outcome });
      log.info({ outcome }, 'job finished');
      return { outcome };
    } catch (err) {
      // Parked at a gate: not a failure, the job comes back when decided or expired.
      if (err instanceof DelayedError) {
        log.info('job parked');
        throw err;
      }
      const error = asChatOpsError(err);
      if (error.code === ErrorCode.JobLockLost) {
        log.warn('job lock lost: another worker continues this job; this one leaves it alone');
        throw error;
      }
      deps.metrics.jobs.inc({ name: job.name, outcome: 'failed' });
      if (isRunbookJob(data)) await store.releaseLock(data.env, data.jobId).catch(() => undefined);
      log.error({ code: error.code, err: error.message }, 'job failed');
      // Tell the person; if even that fails, the log line above is the record.
      await postPatiently(deps.outbox, data.origin, { summary: `${job.name} ${data.env} failed`, parts: [...errorParts(error), { type: 'context', items: [`job ${code(String(job.id))}`] }] }, { log })
        .catch((postErr: unknown) => log.error({ err: (postErr as Error).message }, 'could not report job failure'));
      throw error;
    } finally {
      timer();
    }
  };

  // Every line logged while a job runs names it, including lines from code shared by all jobs.
  const process = (job: Job<JobData>, token?: string) => withLogContext(logFields(job), () => run(job, token));

  const worker = new Worker<JobData>(QUEUE_NAME, process, {
    connection,
    prefix: deps.prefix,
    // Read jobs fan out across environments (20 health checks at once should take about as long as
    // one); runbooks are held to one per environment by its lock, and each host connection runs at
    // most ssh.maxSessions commands at once, so a high ceiling cannot overload a host.
    concurrency: deps.concurrency ?? 32,
    autorun: true,
    lockDuration: jobLockMs,
    stalledInterval: deps.stalledIntervalMs ?? DEFAULT_STALLED_INTERVAL_MS,
    // Each worker crash counts as a stall; a deploy must survive several, not fail on the second.
    maxStalledCount: deps.maxStalledCount ?? 20,
  });
  worker.on('error', (err) => deps.log.warn({ err: err.message }, 'worker error'));

  return {
    worker,
    async close() {
      // Runbook jobs checkpoint at their next step boundary; BullMQ waits for them to hand back.
      stopping = true;
      // A stopping worker takes no new jobs: /healthz stops counting it now, not when its heartbeat runs out.
      await heartbeat.stop();
      await untilReconnected(worker, deps.log);
      const closing = worker.close();
      const graceMs = deps.shutdownGraceMs ?? DEFAULT_SHUTDOWN_GRACE_MS;
      if (!(await within(closing, graceMs))) {
        deps.log.warn({ graceMs }, 'shutdown: a step is still running after the grace period; interrupting steps that are safe to repeat');
        stopNow.abort();
        if (!(await within(closing, FORCE_AFTER_MS))) {
          // What still runs is not safe to interrupt: leave it to the stalled check; the next worker settles it from the host.
          deps.log.warn('shutdown: leaving the running step to the next worker, which will settle it from the host');
          abandoned = true;
          // Not awaited: BullMQ hands back the close already pending, which waits for the very step we leave behind.
          void worker.close(true).catch(() => undefined);
        }
      }
      // What Slack has not taken yet gets a moment, then every retry stops: no timer outlives the worker.
      await reporters.close();
      await ssh.close();
      connection.disconnect();
      await schedulerQueue.close().catch(() => undefined);
      storeConnection.disconnect();
    },
  };
}

/**
 * BullMQ ends its blocking read with a disconnect that, while ioredis waits between two reconnect
 * attempts, cancels the retry and never ends the connection: worker.close() would then wait
 * forever, even once Redis is back (bullmq#4656). So a reconnect in progress is let finish first.
 * While Redis stays down this waits too (a job could not be handed back anyway); a second signal
 * still exits.
 */
async function untilReconnected(worker: Worker<JobData>, log: Logger): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  // A client that never connected at all is not waited for here.
  const client = await Promise.race([worker.backend.blockingClient, new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), 1000)))]);
  clearTimeout(timer);
  if (!client || client.status === 'ready' || client.status === 'end' || client.status === 'wait') return;
  log.info({ redis: client.status }, 'shutdown: Redis is reconnecting; the worker closes once it is back');
  while (client.status !== 'ready' && client.status !== 'end' && client.status !== 'wait') await new Promise((r) => setTimeout(r, 100));
}
