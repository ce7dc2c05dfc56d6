import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** One registry per process, passed around rather than imported as a global. */
export interface Metrics {
  registry: Registry;
  commands: Counter<'command' | 'outcome'>;
  jobs: Counter<'name' | 'outcome'>;
  jobDuration: Histogram<'name'>;
  slackErrors: Counter<'method' | 'error'>;
  /** Every 429 Slack answered, including those the outbox waited out and retried. */
  slackRateLimited: Counter<'method'>;
  sshConnects: Counter<'outcome'>;
  /** Connections opened after an executor's first: each one is a dropped session. */
  sshReconnects: Counter<'host'>;
  /** One observation per finished runbook step (done, skipped or failed). */
  stepDuration: Histogram<'kind' | 'step' | 'status'>;
  /** From a gate's question to a person's decision; expiries are not decisions and are not observed. */
  gateWait: Histogram<'kind' | 'choice'>;
  /** Health-watch probes, by environment and the status each probe saw. */
  watchProbes: Counter<'env' | 'status'>;
  queueDepth: Gauge<'state'>;
}

export function createMetrics(opts: { defaultMetrics?: boolean; queueCounts?: () => Promise<Record<string, number>> } = {}): Metrics {
  const registry = new Registry();
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'chatops_' });
  const queueCounts = opts.queueCounts;
  return {
    registry,
    commands: new Counter({ name: 'chatops_commands_total', help: 'Slash commands received, by command and outcome', labelNames: ['command', 'outcome'], registers: [registry] }),
    jobs: new Counter({ name: 'chatops_jobs_total', help: 'Jobs finished, by name and outcome', labelNames: ['name', 'outcome'], registers: [registry] }),
    jobDuration: new Histogram({
      name: 'chatops_job_duration_seconds',
      help: 'Job run time',
      labelNames: ['name'],
      buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900],
      registers: [registry],
    }),
    slackErrors: new Counter({ name: 'chatops_slack_api_errors_total', help: 'Slack Web API errors, including 429s', labelNames: ['method', 'error'], registers: [registry] }),
    slackRateLimited: new Counter({ name: 'chatops_slack_rate_limited_total', help: 'Slack Web API answers with HTTP 429, retried or not', labelNames: ['method'], registers: [registry] }),
    sshConnects: new Counter({ name: 'chatops_ssh_connects_total', help: 'SSH connection attempts', labelNames: ['outcome'], registers: [registry] }),
    sshReconnects: new Counter({ name: 'chatops_ssh_reconnects_total', help: 'SSH connections re-opened after the first one to a host', labelNames: ['host'], registers: [registry] }),
    stepDuration: new Histogram({
      name: 'chatops_step_duration_seconds',
      help: 'Runbook step run time, including any wait at its gate',
      labelNames: ['kind', 'step', 'status'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800],
      registers: [registry],
    }),
    gateWait: new Histogram({
      name: 'chatops_gate_wait_seconds',
      help: 'Time from a gate being opened to its decision',
      labelNames: ['kind', 'choice'],
      buckets: [1, 5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600],
      registers: [registry],
    }),
    watchProbes: new Counter({ name: 'chatops_watch_probes_total', help: 'Health-watch probes, by environment and status seen', labelNames: ['env', 'status'], registers: [registry] }),
    queueDepth: new Gauge({
      name: 'chatops_queue_jobs',
      help: 'Jobs in the queue by state',
      labelNames: ['state'],
      registers: [registry],
      async collect() {
        if (!queueCounts) return;
        try {
          for (const [state, n] of Object.entries(await queueCounts())) this.set({ state }, n);
        } catch {
          // Redis down: leave the last values; /healthz reports the outage.
        }
      },
    }),
  };
}
