import { once } from 'node:events';
import { Queue, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { ChatOpsError, ErrorCode } from '../errors.js';
import type { Logger } from '../logger.js';
import { liveWorkers } from './heartbeat.js';
import { OpsStore } from './store.js';
import type { JobData } from './job-data.js';

export const QUEUE_NAME = 'engramia-chatops';
export const ENQUEUE_TIMEOUT_MS = 1500;

export interface Producer {
  enqueue(data: JobData, opts?: { jobId?: string }): Promise<{ jobId: string }>;
  /** Resolves once Redis answers (a first connect may still be in progress); QUEUE_UNAVAILABLE otherwise. */
  ready(): Promise<void>;
  /** Locks, gates and history, on the same fail-fast connection. */
  store: OpsStore;
  getJob(id: string): Promise<Job<JobData> | undefined>;
  ping(timeoutMs?: number): Promise<boolean>;
  /** Workers with a live heartbeat (see heartbeat.ts), not the connections BullMQ lists. */
  workerCount(): Promise<number>;
  counts(): Promise<Record<string, number>>;
  close(): Promise<void>;
}

function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const guarded = p.finally(() => clearTimeout(timer));
  // Once the timeout has answered, a late failure of the operation is already reported; it must not surface as unhandled.
  guarded.catch(() => undefined);
  return Promise.race([
    guarded,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(onTimeout()), ms);
    }),
  ]);
}

/** ioredis's own words for "no connection right now" (fail-fast mode, or a connection lost mid-command). */
const CONNECTION_LOST = /Stream isn't writeable|Connection is closed|max retries per request|ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|Command timed out/i;

/**
 * The store on the app's fail-fast connection: a Redis that is down reads as QUEUE_UNAVAILABLE,
 * as for enqueue and getJob, so every caller (commands, gate presses) tells the person the same
 * thing instead of "unexpected error". Other errors (bugs, bad data) pass through unchanged.
 */
function failingFast(store: OpsStore, connection: Redis, unavailable: (cause?: unknown) => ChatOpsError): OpsStore {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) =>
        (value as (...a: unknown[]) => Promise<unknown>).apply(target, args).catch((err: unknown) => {
          if (err instanceof ChatOpsError) throw err;
          if (connection.status !== 'ready' || (err instanceof Error && (err.name === 'MaxRetriesPerRequestError' || CONNECTION_LOST.test(err.message)))) throw unavailable(err);
          throw err;
        });
    },
  });
}

/**
 * The app's side of the queue. It must answer Slack within 3 s even when Redis
 * is down, so its connection never queues commands offline and never waits
 * for a reconnect: a failure is reported, not retried.
 */
export function createProducer(opts: { redisUrl: string; prefix: string; log: Logger }): Producer {
  const connection = new Redis(opts.redisUrl, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    // Keep trying in the background so the app recovers by itself when Redis returns.
    retryStrategy: (times) => Math.min(200 * times, 2000),
  });
  let lastError = '';
  connection.on('error', (err: Error) => {
    if (err.message !== lastError) opts.log.warn({ err: err.message }, 'redis (producer) error');
    lastError = err.message;
  });
  connection.on('ready', () => {
    if (lastError !== '') opts.log.info('redis (producer) reconnected');
    lastError = '';
  });
  // Not skipWaitingForReady: BullMQ's first INFO would then fail for good on a connection still opening.
  const queue = new Queue<JobData>(QUEUE_NAME, { connection, prefix: opts.prefix });
  queue.on('error', () => {
    // Already logged by the connection listener; BullMQ re-emits it here.
  });
  /** Waits out a first connect in progress, but never a reconnect: those mean Redis is down now. */
  const whenReady = async (ms: number) => {
    if (connection.status === 'ready') return;
    if (!['connecting', 'connect', 'wait'].includes(connection.status)) throw unavailable(new Error(`redis connection is ${connection.status}`));
    if (connection.status === 'wait') void connection.connect().catch(() => undefined);
    await withTimeout(once(connection, 'ready'), ms, () => unavailable(new Error('redis not ready')));
  };
  const unavailable = (cause?: unknown) => new ChatOpsError(ErrorCode.QueueUnavailable, 'queue unavailable', {}, { cause });

  return {
    store: failingFast(new OpsStore(connection, opts.prefix), connection, unavailable),
    ready: () => whenReady(ENQUEUE_TIMEOUT_MS),
    async getJob(id) {
      await whenReady(ENQUEUE_TIMEOUT_MS);
      return (await withTimeout(queue.getJob(id), ENQUEUE_TIMEOUT_MS, () => unavailable(new Error('getJob timed out')))) ?? undefined;
    },
    async enqueue(data, enqueueOpts = {}) {
      try {
        await whenReady(ENQUEUE_TIMEOUT_MS);
        const job = await withTimeout(
          queue.add(data.kind, data, {
            ...(enqueueOpts.jobId ? { jobId: enqueueOpts.jobId } : {}),
            // Deploy history lives in its own list; finished jobs are kept a week so late gate presses can still be answered.
            removeOnComplete: { age: 7 * 24 * 3600, count: 1000 },
            removeOnFail: { age: 7 * 24 * 3600 },
          }),
          ENQUEUE_TIMEOUT_MS,
          () => unavailable(new Error('enqueue timed out')),
        );
        return { jobId: String(job.id) };
      } catch (err) {
        if (err instanceof ChatOpsError) throw err;
        throw unavailable(err);
      }
    },
    async ping(timeoutMs = 1000) {
      if (connection.status !== 'ready') return false;
      try {
        return (await withTimeout(connection.ping(), timeoutMs, () => new Error('ping timeout'))) === 'PONG';
      } catch {
        return false;
      }
    },
    async workerCount() {
      return liveWorkers(connection, opts.prefix);
    },
    async counts() {
      return queue.getJobCounts('waiting', 'active', 'delayed', 'failed', 'completed', 'prioritized', 'waiting-children');
    },
    async close() {
      await queue.close().catch(() => undefined);
      connection.disconnect();
    },
  };
}
