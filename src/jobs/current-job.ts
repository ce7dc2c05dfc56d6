import type { Job } from 'bullmq';
import type { RunbookData } from '../runbooks/kernel/types.js';
import type { OpsStore } from './store.js';
import type { JobData } from './job-data.js';
import type { Outbox } from './types.js';
import type { CurrentJobView } from '../render/current-job.js';

/**
 * Reads a job's saved state, so `status` can say what the lock holder is doing and where to
 * answer it. A gate counts as open only while no decision is recorded: a press already made
 * lives in Redis until the job wakes up and reads it.
 */
export async function describeJob(job: Job<JobData>, deps: { outbox: Pick<Outbox, 'permalink'>; store?: Pick<OpsStore, 'readGate'> }): Promise<CurrentJobView> {
  const data = job.data as RunbookData;
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
