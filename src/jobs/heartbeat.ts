import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import { ChatOpsError, ErrorCode } from '../errors.js';
import type { Logger } from '../logger.js';

/**
 * Worker liveness for /healthz. BullMQ's own worker list is Redis's CLIENT LIST: a frozen worker
 * (a stalled event loop, SIGSTOP) or one whose machine vanished keeps its connection open and stays
 * listed. A key with a TTL that only a running event loop renews says "alive" honestly. Each worker
 * also joins a set, so the app reads O(workers) keys and never SCANs the keyspace.
 */
export const HEARTBEAT_EVERY_MS = 5_000;
export const HEARTBEAT_TTL_MS = 15_000;

const setKey = (prefix: string) => `${prefix}:ops:workers`;
const beatKey = (prefix: string, id: string) => `${prefix}:ops:worker:${id}`;

export function newWorkerId(): string {
  return `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
}

export interface Heartbeat {
  id: string;
  /** Removes this worker at once, so /healthz does not count it for the rest of the TTL. */
  stop(): Promise<void>;
}

export function startHeartbeat(redis: Redis, prefix: string, log: Logger, opts: { everyMs?: number; ttlMs?: number; id?: string } = {}): Heartbeat {
  const id = opts.id ?? newWorkerId();
  const ttlMs = opts.ttlMs ?? HEARTBEAT_TTL_MS;
  const startedAt = new Date().toISOString();
  let pending = false;
  let failing = false;
  const beat = async () => {
    // Redis down: the worker's connection queues commands; one beat in flight is enough.
    if (pending) return;
    pending = true;
    try {
      await redis
        .multi()
        .set(beatKey(prefix, id), JSON.stringify({ pid: process.pid, host: hostname(), startedAt }), 'PX', ttlMs)
        .sadd(setKey(prefix), id)
        .exec();
      if (failing) log.info({ workerId: id }, 'heartbeat written again');
      failing = false;
    } catch (err) {
      if (!failing) log.warn({ workerId: id, err: (err as Error).message }, 'heartbeat not written; /healthz will stop counting this worker');
      failing = true;
    } finally {
      pending = false;
    }
  };
  void beat();
  const timer = setInterval(() => void beat(), opts.everyMs ?? HEARTBEAT_EVERY_MS);
  timer.unref();
  return {
    id,
    async stop() {
      clearInterval(timer);
      const removed = redis.multi().del(beatKey(prefix, id)).srem(setKey(prefix), id).exec().catch(() => undefined);
      // Redis down: the worker's connection would hold the command until it is back; the key expires by itself anyway.
      let t: NodeJS.Timeout | undefined;
      await Promise.race([removed, new Promise((r) => (t = setTimeout(r, 1000)))]);
      clearTimeout(t);
    },
  };
}

/** Workers whose heartbeat has not expired; ids whose key is gone are dropped from the set on the way. */
export async function liveWorkers(redis: Redis, prefix: string): Promise<number> {
  const ids = await redis.smembers(setKey(prefix));
  if (ids.length === 0) return 0;
  const pipe = redis.pipeline();
  for (const id of ids) pipe.exists(beatKey(prefix, id));
  const res = (await pipe.exec()) ?? [];
  const failed = res.find(([err]) => err)?.[0];
  if (failed || res.length !== ids.length) throw new ChatOpsError(ErrorCode.QueueUnavailable, 'worker heartbeats could not be read', {}, { cause: failed });
  const alive = res.map(([, n]) => n === 1);
  // A worker dropped here by mistake (its beat landed in between) rejoins with its next beat.
  const dead = ids.filter((_, i) => !alive[i]);
  if (dead.length > 0) await redis.srem(setKey(prefix), ...dead);
  return ids.length - dead.length;
}
