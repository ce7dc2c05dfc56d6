import type { EnvSecrets } from '../config/load.js';
import type { EnvironmentConfig } from '../config/schema.js';
import { EngramiaApi } from '../engramia/client.js';
import { probeHost } from '../engramia/host.js';
import { asChatOpsError } from '../errors.js';
import { healthMsg, overallOf, versionMsg, type HealthReport } from '../render/health.js';
import type { Msg } from '../render/model.js';
import type { SshExecutor } from '../ssh/executor.js';
import type { ReadJobData } from './types.js';

export interface ReadJobContext {
  jobId: string;
  env: EnvironmentConfig;
  secrets: EnvSecrets;
  ssh: SshExecutor;
}

/**
 * Gathers what the API and the host say, all probes at once: the slowest
 * probe, not their sum, decides how long an operator waits.
 */
export async function gatherHealth(data: ReadJobData, ctx: ReadJobContext): Promise<HealthReport> {
  const api = new EngramiaApi({ baseUrl: ctx.env.apiBaseUrl, apiKey: ctx.secrets.apiKey });
  const full = data.kind === 'health';
  const [version, shallow, deep, host] = await Promise.all([
    api.version(),
    full ? api.health() : Promise.resolve(undefined),
    full ? api.deepHealth() : Promise.resolve(undefined),
    probeHost(ctx.ssh, ctx.env).then(
      (value) => ({ kind: 'ok' as const, value, label: ctx.ssh.label }),
      (err: unknown) => ({ kind: 'failed' as const, error: asChatOpsError(err), label: ctx.ssh.label }),
    ),
  ]);
  return {
    env: ctx.env.name,
    apiBaseUrl: api.baseUrl,
    checkedAt: new Date(),
    requestedBy: data.origin.user,
    jobId: ctx.jobId,
    version,
    ...(shallow ? { shallow } : {}),
    ...(deep ? { deep } : {}),
    host,
  };
}

export async function runReadJob(data: ReadJobData, ctx: ReadJobContext): Promise<{ msg: Msg; outcome: string }> {
  const report = await gatherHealth(data, ctx);
  const msg = data.kind === 'health' ? healthMsg(report) : versionMsg(report);
  const outcome = data.kind === 'health' ? overallOf(report) : report.version.kind;
  return { msg, outcome };
}
