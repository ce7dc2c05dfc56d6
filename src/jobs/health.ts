import type { EnvSecrets } from '../config/load.js';
import type { EnvironmentConfig } from '../config/schema.js';
import { EngramiaApi } from '../engramia/client.js';
import { probeHost } from '../engramia/host.js';
import { ChatOpsError, ErrorCode, asChatOpsError } from '../errors.js';
import { between, parseHistory } from '../engramia/alembic.js';
import { migrationsMsg } from '../render/migrations.js';
import { alembic, parseRevision } from '../runbooks/commands.js';
import { scrub } from '../security/scrub.js';
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

export async function runReadJob(data: ReadJobData, ctx: ReadJobContext): Promise<{ msg: Msg; outcome: string }> {
  if (data.kind === 'migrations') return migrations(data, ctx);
  const report = await gatherHealth(data, ctx);
  const msg = data.kind === 'health' ? healthMsg(report) : versionMsg(report);
  const outcome = data.kind === 'health' ? overallOf(report) : report.version.kind;
  return { msg, outcome };
}
