import type { Redis } from 'ioredis';
import type { GateDecision } from '../runbooks/types.js';

export interface LockHolder {
  jobId: string;
  user: string;
  /** What the holder is doing, e.g. "deploy 0.6.1". */
  command: string;
  startedAt: string;
  /** Where the job reports: the reaper says there when it frees a lock whose job is gone. */
  channel?: string;
  transport?: 'slack' | 'console';
  osUser?: string;
}

export interface HistoryEntry {
  jobId: string;
  kind: 'deploy' | 'rollback';
  env: string;
  version: string;
  fromVersion: string | null;
  user: string;
  outcome: string;
  startedAt: string;
  endedAt: string;
  channel: string;
  threadTs?: string;
  /** Link to the job's card and thread in Slack. */
  threadUrl?: string;
}

// Compare-and-act scripts: only the job that holds a lock may extend or drop it.
const RENEW = `if redis.call('GET', KEYS[1]) and cjson.decode(redis.call('GET', KEYS[1])).jobId == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE = `if redis.call('GET', KEYS[1]) and cjson.decode(redis.call('GET', KEYS[1])).jobId == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;

/**
 * A gate's one decision, settled against its deadline on Redis's own clock: a decision already stored wins;
 * past the deadline the expiry is stored (and wins); before it, the press's decision (if any) is stored.
 * The job's expiry path and every press run this same script on the same key, so exactly one outcome exists.
 * Returns [how, stored JSON]: how = existing | expired | decided | pending.
 */
const SETTLE_GATE = `local cur = redis.call('GET', KEYS[1])
if cur then return {'existing', cur} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now >= tonumber(ARGV[1]) then
  local expired = cjson.encode({choice = 'expired', at = ARGV[3]})
  redis.call('SET', KEYS[1], expired, 'EX', ARGV[4])
  return {'expired', expired}
end
if ARGV[2] == '' then return {'pending', ''} end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[4])
return {'decided', ARGV[2]}`;

export type GateSettlement = { kind: 'existing' | 'expired' | 'decided'; decision: GateDecision } | { kind: 'pending' };

const HISTORY_MAX = 200;
/** The audit stream keeps about this many events (MAXLEN ~): bounded, append-only. */
export const AUDIT_MAX = 10_000;

export interface AuditEvent {
  type: 'command' | 'refusal' | 'gate' | 'step' | 'lock' | 'unlock' | 'cancel' | 'job';
  /** Where the action came from; for the console, `osUser` says who ran it (`/as` names anyone). */
  transport: 'slack' | 'console';
  osUser?: string;
  user?: string;
  env?: string;
  jobId?: string;
  [detail: string]: unknown;
}
const GATE_TTL_S = 30 * 24 * 3600;

/**
 * Locks, gate decisions and deploy history: small pieces of shared state that
 * must be right across processes, so each change is one atomic Redis command.
 */
export class OpsStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  #key(...parts: string[]): string {
    return [this.prefix, 'ops', ...parts].join(':');
  }

  async acquireLock(env: string, holder: LockHolder, ttlMs: number): Promise<{ ok: true } | { ok: false; holder: LockHolder | undefined }> {
    const res = await this.redis.set(this.#key('lock', env), JSON.stringify(holder), 'PX', ttlMs, 'NX');
    if (res === 'OK') return { ok: true };
    return { ok: false, holder: await this.readLock(env) };
  }

  async readLock(env: string): Promise<LockHolder | undefined> {
    const raw = await this.redis.get(this.#key('lock', env));
    return raw ? (JSON.parse(raw) as LockHolder) : undefined;
  }

  async renewLock(env: string, jobId: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.eval(RENEW, 1, this.#key('lock', env), jobId, String(ttlMs))) === 1;
  }

  async releaseLock(env: string, jobId: string): Promise<boolean> {
    return (await this.redis.eval(RELEASE, 1, this.#key('lock', env), jobId)) === 1;
  }

  /** Removes the lock whoever holds it (admins' unlock); returns who held it. */
  async forceUnlock(env: string): Promise<LockHolder | undefined> {
    const holder = await this.readLock(env);
    await this.redis.del(this.#key('lock', env));
    return holder;
  }

  /** True the first time a request id is seen (kept 10 minutes, longer than Slack's 5-minute signature window). */
  async firstSighting(requestId: string): Promise<boolean> {
    return (await this.redis.set(this.#key('seen', requestId), '1', 'EX', 600, 'NX')) === 'OK';
  }

  async requestCancel(jobId: string, by: string): Promise<void> {
    await this.redis.set(this.#key('cancel', jobId), JSON.stringify({ by, at: new Date().toISOString() }), 'EX', 7 * 24 * 3600, 'NX');
  }

  async cancelRequest(jobId: string): Promise<{ by: string; at: string } | undefined> {
    const raw = await this.redis.get(this.#key('cancel', jobId));
    return raw ? (JSON.parse(raw) as { by: string; at: string }) : undefined;
  }

  async locks(envs: readonly string[]): Promise<Array<LockHolder & { env: string }>> {
    const out: Array<LockHolder & { env: string }> = [];
    for (const env of envs) {
      const h = await this.readLock(env);
      if (h) out.push({ ...h, env });
    }
    return out;
  }

  /** First decision wins; a later press gets the winning one back to show who decided. */
  async decideGate(jobId: string, gateId: string, decision: GateDecision): Promise<{ ok: true } | { ok: false; existing: GateDecision }> {
    const key = this.#key('gate', jobId, gateId);
    const res = await this.redis.set(key, JSON.stringify(decision), 'EX', GATE_TTL_S, 'NX');
    if (res === 'OK') return { ok: true };
    const raw = await this.redis.get(key);
    return { ok: false, existing: raw ? (JSON.parse(raw) as GateDecision) : decision };
  }

  /**
   * Records `decision` (a press) or, with none, looks whether the gate has run out (the job): see SETTLE_GATE.
   * `expiredAt` is the time written into an expiry this call stores.
   */
  async settleGate(jobId: string, gateId: string, deadlineMs: number, decision: GateDecision | undefined, expiredAt = new Date().toISOString()): Promise<GateSettlement> {
    const [how, raw] = (await this.redis.eval(SETTLE_GATE, 1, this.#key('gate', jobId, gateId), String(deadlineMs), decision ? JSON.stringify(decision) : '', expiredAt, String(GATE_TTL_S))) as [string, string];
    if (how === 'pending') return { kind: 'pending' };
    return { kind: how as 'existing' | 'expired' | 'decided', decision: JSON.parse(raw) as GateDecision };
  }

  async readGate(jobId: string, gateId: string): Promise<GateDecision | undefined> {
    const raw = await this.redis.get(this.#key('gate', jobId, gateId));
    return raw ? (JSON.parse(raw) as GateDecision) : undefined;
  }

  /** When maintenance went on (by the bot), so operators can be told it has been on too long. */
  async setMaintenanceSince(env: string, iso: string | null): Promise<void> {
    if (iso === null) await this.redis.del(this.#key('maintenance', env));
    else await this.redis.set(this.#key('maintenance', env), iso, 'NX');
  }

  async maintenanceSince(env: string): Promise<string | undefined> {
    return (await this.redis.get(this.#key('maintenance', env))) ?? undefined;
  }

  async appendAudit(event: AuditEvent): Promise<void> {
    await this.redis.xadd(this.#key('audit'), 'MAXLEN', '~', String(AUDIT_MAX), '*', 'event', JSON.stringify({ at: new Date().toISOString(), ...event }));
  }

  async readAudit(count = 100): Promise<AuditEvent[]> {
    const rows = await this.redis.xrevrange(this.#key('audit'), '+', '-', 'COUNT', count);
    return rows.map(([, fields]) => JSON.parse(fields[1] ?? '{}') as AuditEvent).reverse();
  }

  async pushHistory(entry: HistoryEntry): Promise<void> {
    const key = this.#key('history', entry.env);
    await this.redis.multi().lpush(key, JSON.stringify(entry)).ltrim(key, 0, HISTORY_MAX - 1).exec();
  }

  async readHistory(env: string, count = 20): Promise<HistoryEntry[]> {
    return (await this.redis.lrange(this.#key('history', env), 0, count - 1)).map((r) => JSON.parse(r) as HistoryEntry);
  }
}
