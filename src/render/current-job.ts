// The view `status` renders of the job holding an environment's lock; built by jobs/current-job.ts.

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
