import { apiSilence, EngramiaApi } from '../engramia/client.js';
import { probeHost } from '../engramia/host.js';
import { ChatOpsError, ErrorCode, asChatOpsError } from '../errors.js';
import { between, parseHistory } from '../engramia/alembic.js';
import { migrationsMsg } from '../render/migrations.js';
import { statusMsg } from '../render/status.js';
import { ago } from '../commands/time.js';
import { alembic, parseRevision } from '../runbooks/commands.js';
import { scrub } from '../security/scrub.js';
import { healthMsg, overallOf, versionMsg, type HealthReport } from '../render/health.js';
import type { ReadJobData } from './types.js';
import type { Msg } from '../render/model.js';
import type { ReadJobContext, ReadJobResult } from './read-context.js';
import { logs } from './logs.js';
import { diagnose } from './diagnose.js';

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

/** `alembic current` and `history` from the running container, as the host sees them. */
async function migrations(data: ReadJobData, ctx: ReadJobContext): Promise<{ msg: Msg; outcome: string }> {
  const host = await probeHost(ctx.ssh, ctx.env);
  const tag = host.runningTag;
  if (!tag) throw new ChatOpsError(ErrorCode.RemoteCommandFailed, `engramia-api is not running on ${ctx.env.name}, so alembic cannot be asked`, {});
  const [cur, hist] = await Promise.all([
    ctx.ssh.exec(alembic(ctx.env, tag, ['current']), { timeoutMs: 60_000 }),
    ctx.ssh.exec(alembic(ctx.env, tag, ['history']), { timeoutMs: 60_000 }),
  ]);
  for (const r of [cur, hist]) {
    if (r.exitCode !== 0) throw new ChatOpsError(ErrorCode.RemoteCommandFailed, `\`${r.command}\` exited with ${r.exitCode}`, { command: r.command, exitCode: r.exitCode, outputTail: scrub(r.stderr.slice(-1500)) });
  }
  const current = parseRevision(cur.stdout.toString('utf8'));
  const history = parseHistory(hist.stdout.toString('utf8'));
  const head = history.find((h) => h.head)?.revision ?? history[0]?.revision ?? null;
  const pending = head ? between(history, current, head) : [];
  const applied = current ? between(history, null, current).reverse().slice(0, 5) : [];
  const msg = migrationsMsg({ env: ctx.env.name, runningTag: tag, current, head, pending, recent: applied, requestedBy: data.origin.user, jobId: ctx.jobId });
  return { msg, outcome: current === head ? 'at_head' : 'behind' };
}

/** The host's state, the lock and how long maintenance has been on. */
async function status(data: ReadJobData, ctx: ReadJobContext): Promise<{ msg: Msg; outcome: string }> {
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

export async function runReadJob(data: ReadJobData, ctx: ReadJobContext): Promise<ReadJobResult> {
  if (data.kind === 'migrations') return migrations(data, ctx);
  if (data.kind === 'logs') return logs(data, ctx);
  if (data.kind === 'diagnose') return diagnose(data, ctx);
  if (data.kind === 'status') return status(data, ctx);
  const report = await gatherHealth(data, ctx);
  const msg = data.kind === 'health' ? healthMsg(report) : versionMsg(report);
  const outcome = data.kind === 'health' ? overallOf(report) : report.version.kind;
  return { msg, outcome };
}
