import { ago } from '../commands/time.js';
import { apiSilence, EngramiaApi } from '../engramia/client.js';
import { probeHost } from '../engramia/host.js';
import { statusMsg } from '../render/status.js';
import { alembic, parseRevision } from '../runbooks/commands.js';
import type { ReadJobContext, ReadJobResult } from './read-context.js';
import type { ReadJobData } from './types.js';

/** The host's state, the lock and how long maintenance has been on. */
export async function status(data: ReadJobData, ctx: ReadJobContext): Promise<ReadJobResult> {
  const api = new EngramiaApi({ baseUrl: ctx.env.apiBaseUrl, apiKey: ctx.secrets.apiKey });
  const [host, version, lock, since] = await Promise.all([
    probeHost(ctx.ssh, ctx.env),
    api.version(),
    ctx.store?.readLock(ctx.env.name),
    ctx.store?.maintenanceSince(ctx.env.name),
  ]);
  let revision: string | null | undefined;
  if (host.runningTag) {
    const cur = await ctx.ssh.exec(alembic(ctx.env, host.runningTag, ['current']), { timeoutMs: 60_000 });
    revision = cur.exitCode === 0 ? parseRevision(cur.stdout.toString('utf8')) : undefined;
  }
  const job = lock ? await ctx.lookupJob?.(lock.jobId).catch(() => undefined) : undefined;
  const holder = lock ? { ...lock, ago: ago(lock.startedAt), ...(job ? { job, channel: job.channel } : {}) } : undefined;
  const silent = host.runningTag && version.kind === 'failed' ? apiSilence(version.error) : undefined;
  const msg = statusMsg({
    env: ctx.env.name,
    host: ctx.ssh.label,
    runningTag: host.runningTag,
    ...(version.kind === 'ok' ? { apiVersion: version.value.app_version } : {}),
    ...(silent ? { apiSilent: silent } : {}),
    pinnedTag: host.pinnedTag,
    containers: host.containers,
    revision,
    maintenance: { inEnvFile: host.maintenanceInEnvFile, active: version.kind === 'maintenance', ...(since ? { since } : {}), warnAfterMinutes: ctx.env.maintenanceWarnMinutes },
    ...(holder ? { lock: holder } : {}),
    requestedBy: data.origin.user,
    jobId: ctx.jobId,
    now: new Date(),
  });
  return { msg, outcome: 'ok' };
}
