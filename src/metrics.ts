import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** One registry per process, passed around rather than imported as a global. */
export interface Metrics {
  registry: Registry;
  commands: Counter<'command' | 'outcome'>;
  jobs: Counter<'name' | 'outcome'>;
  jobDuration: Histogram<'name'>;
  slackErrors: Counter<'method' | 'error'>;
  sshConnects: Counter<'outcome'>;
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
    sshConnects: new Counter({ name: 'chatops_ssh_connects_total', help: 'SSH connection attempts', labelNames: ['outcome'], registers: [registry] }),
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
