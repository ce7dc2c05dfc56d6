import { EngramiaApi } from '../engramia/client.js';
import { probeHost } from '../engramia/host.js';
import { asChatOpsError } from '../errors.js';
import { healthMsg, overallOf, versionMsg, type HealthReport } from '../render/health.js';
import type { ReadJobData } from './types.js';
import type { ReadJobContext, ReadJobResult } from './read-context.js';

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

/** `health`: version, shallow and deep health, and the host, all at once. */
export async function health(data: ReadJobData, ctx: ReadJobContext): Promise<ReadJobResult> {
  const report = await gatherHealth(data, ctx);
  return { msg: healthMsg(report), outcome: overallOf(report) };
}

/** `version`: what the API says it runs, beside what the host runs. */
export async function version(data: ReadJobData, ctx: ReadJobContext): Promise<ReadJobResult> {
  const report = await gatherHealth(data, ctx);
  return { msg: versionMsg(report), outcome: report.version.kind };
}
