import { DelayedError, Job, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type { Config, EnvSecrets } from '../config/load.js';
import { asChatOpsError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { errorParts } from '../render/errors.js';
import { code } from '../render/model.js';
import { SshPool } from '../ssh/pool.js';
import type { DeployData } from '../runbooks/deploy.js';
import { runRunbookJob } from './runbook-job.js';
import { runReadJob } from './health.js';
import { QUEUE_NAME } from './queue.js';
import { OpsStore } from './store.js';
import { isReadJobName, type JobData, type Outbox, type ReadJobData } from './types.js';

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
}

export const DEFAULT_LOCK_TTL_MS = 5 * 60_000;

function isRunbookJob(data: JobData): data is DeployData {
  return data.kind === 'deploy' || data.kind === 'rollback' || data.kind === 'maintenance' || data.kind === 'migrate';
}

export interface RunningWorker {
  worker: Worker<JobData>;
  close(): Promise<void>;
}

export function startWorker(deps: WorkerDeps): RunningWorker {
  const ssh = new SshPool(deps.secrets, deps.log);
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
  const process = async (job: Job<JobData>, token?: string) => {
    const data = job.data;
    const log = deps.log.child({ jobId: job.id, job: job.name, env: data.env, user: data.origin.user });
    const timer = deps.metrics.jobDuration.startTimer({ name: job.name });
    const env = deps.config.environments[data.env];
    const secrets = deps.secrets[data.env];
    log.info('job started');
    try {
      if (!env || !secrets) throw new Error(`environment ${data.env} is not configured on this worker`);
      if (isRunbookJob(data)) {
        const { outcome } = await runRunbookJob(job as Job<DeployData>, token, {
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
          ...(deps.minCardIntervalMs !== undefined ? { minCardIntervalMs: deps.minCardIntervalMs } : {}),
        });
        deps.metrics.jobs.inc({ name: job.name, outcome });
        log.info({ outcome }, 'job finished');
        return { outcome };
      }
      if (!isReadJobName(data.kind)) throw new Error(`unknown job kind ${String((data as { kind: unknown }).kind)}`);
      const { msg, outcome } = await runReadJob(data as ReadJobData, {
        jobId: String(job.id),
        env,
        secrets,
        ssh: ssh.for(env),
        store,
        lookupJob: async (id) => {
          const other = await Job.fromId(worker, id).catch(() => undefined);
          return other ? { channel: (other.data as JobData).origin.channel } : undefined;
        },
      });
      await deps.outbox.post(data.origin, msg);
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
      deps.metrics.jobs.inc({ name: job.name, outcome: 'failed' });
      if (isRunbookJob(data)) await store.releaseLock(data.env, data.jobId).catch(() => undefined);
      log.error({ code: error.code, err: error.message }, 'job failed');
      // Tell the person; if even that fails, the log line above is the record.
      await deps.outbox
        .post(data.origin, { summary: `${job.name} ${data.env} failed`, parts: [...errorParts(error), { type: 'context', items: [`job ${code(String(job.id))}`] }] })
        .catch((postErr: unknown) => log.error({ err: (postErr as Error).message }, 'could not report job failure'));
      throw error;
    } finally {
      timer();
    }
  };

  const worker = new Worker<JobData>(QUEUE_NAME, process, {
    connection,
    prefix: deps.prefix,
    concurrency: deps.concurrency ?? 8,
    autorun: true,
  });
  worker.on('error', (err) => deps.log.warn({ err: err.message }, 'worker error'));

  return {
    worker,
    async close() {
      // Runbook jobs checkpoint at their next step boundary; BullMQ waits for them to hand back.
      stopping = true;
      await worker.close();
      await ssh.close();
      connection.disconnect();
      storeConnection.disconnect();
    },
  };
}
