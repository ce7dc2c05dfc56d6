import type { Job } from 'bullmq';
import type { DeployData } from '../runbooks/deploy.js';
import type { OpsStore } from './store.js';
import type { JobData, Outbox } from './types.js';

/** What `status` says about the job holding an environment's lock. */
export interface CurrentJobView {
  channel: string;
  /**
   * `running` a step; `waiting` for someone to answer a gate (the job is parked, holding no worker);
   * `queued` for a worker; `ended` while its lock is being released.
   */
  phase: 'running' | 'waiting' | 'queued' | 'ended';
  /** Link to the job's card, whose thread holds its steps and questions. */
  threadUrl?: string;
  /** The step running now, e.g. "Pull 0.6.1", and its place in the plan. */
  step?: { title: string; index: number; of: number };
  /** The question the job waits on, when it waits at a gate. */
  gate?: { question: string; expiresAt: string };
}

/**
 * Reads a job's saved state, so `status` can say what the lock holder is doing and where to
 * answer it. A gate counts as open only while no decision is recorded: a press already made
 * lives in Redis until the job wakes up and reads it.
 */
export async function describeJob(job: Job<JobData>, deps: { outbox: Pick<Outbox, 'permalink'>; store?: Pick<OpsStore, 'readGate'> }): Promise<CurrentJobView> {
  const data = job.data as DeployData;
  const state = data.state;
  const bull = await job.getState().catch(() => 'unknown');
  let gate: CurrentJobView['gate'];
  for (const g of Object.values(state?.gates ?? {}).sort((a, b) => b.createdAt.localeCompare(a.createdAt))) {
    if (g.decision) continue;
    if (deps.store && (await deps.store.readGate(data.jobId, g.id).catch(() => undefined))) continue;
    gate = { question: g.question, expiresAt: g.expiresAt };
    break;
  }
  const ended = bull === 'completed' || bull === 'failed' || (state?.outcome !== undefined && state.outcome !== 'running' && state.outcome !== 'waiting');
  const phase: CurrentJobView['phase'] = ended ? 'ended' : gate ? 'waiting' : bull === 'active' ? 'running' : 'queued';
  const steps = state?.steps ?? [];
  const i = steps.findIndex((s) => s.status === 'running');
  const threadUrl = state?.card?.ts ? await deps.outbox.permalink(state.card).catch(() => undefined) : undefined;
  return {
    channel: data.origin.channel,
    phase,
    ...(threadUrl ? { threadUrl } : {}),
    ...(i >= 0 && phase === 'running' ? { step: { title: steps[i]!.title, index: i + 1, of: steps.length } } : {}),
    ...(gate && phase === 'waiting' ? { gate } : {}),
  };
}
