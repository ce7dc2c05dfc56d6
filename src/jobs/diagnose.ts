import { EngramiaApi, probeSilence } from '../engramia/client.js';
import { probeHost } from '../engramia/host.js';
import { ChatOpsError, ErrorCode, asChatOpsError } from '../errors.js';
import { alembicInImage, envShapes, parseEnvShapes, pgSelectVersion, SHAPED_VARS } from '../diagnose/commands.js';
import type { AlembicFacts, DiagnoseFacts, Got, Ran } from '../diagnose/facts.js';
import { matchFindings } from '../diagnose/match.js';
import { diagnoseMsg } from '../render/diagnose.js';
import { alembic, apiLogs, parseRevision } from '../runbooks/commands.js';
import { scrub } from '../security/scrub.js';
import type { RemoteCommand } from '../ssh/quote.js';
import type { ReadJobContext, ReadJobResult } from './read-context.js';
import { cleanLogLines } from './logs.js';
import type { ReadJobData } from './types.js';

/** The runbook's "Inspect the last 100 log lines". */
export const DIAGNOSE_LOG_LINES = 100;
const MAX_OUTPUT_BYTES = 512 * 1024;

function settle<T>(p: Promise<T>): Promise<Got<T>> {
  return p.then(
    (value) => ({ kind: 'ok' as const, value }),
    (err: unknown) => ({ kind: 'failed' as const, error: asChatOpsError(err) }),
  );
}

/**
 * Gathers what the runbook's troubleshooting section asks an operator to look at, all read-only,
 * and each probe on its own: one that fails is itself a fact, never the end of the diagnosis.
 */
export async function gatherDiagnosis(ctx: ReadJobContext): Promise<DiagnoseFacts> {
  const { env, ssh } = ctx;
  const known = [ctx.secrets.apiKey.reveal(), ctx.secrets.registryToken.reveal(), ...(ctx.knownSecrets ?? [])];
  const timeoutMs = env.timeouts.command * 1000;
  const run = async (command: RemoteCommand): Promise<Ran & { stdout: string }> => {
    const res = await ssh.exec(command, { timeoutMs, maxOutputBytes: MAX_OUTPUT_BYTES });
    const stdout = res.stdout.toString('utf8');
    return { command: res.command, exitCode: res.exitCode, output: scrub(`${stdout}\n${res.stderr}`.trim(), known), stdout };
  };
  const api = new EngramiaApi({ baseUrl: env.apiBaseUrl, apiKey: ctx.secrets.apiKey });

  const [host, logs, envFile, version, deep] = await Promise.all([
    settle(probeHost(ssh, env)),
    settle(
      ssh.exec(apiLogs(env, DIAGNOSE_LOG_LINES), { timeoutMs, maxOutputBytes: MAX_OUTPUT_BYTES }).then((res) => {
        const text = res.stdout.toString('utf8');
        if (res.exitCode !== 0) {
          throw new ChatOpsError(ErrorCode.RemoteCommandFailed, `reading the engramia-api log exited with ${res.exitCode ?? res.signal ?? '?'}`, {
            command: res.command,
            exitCode: res.exitCode,
            outputTail: cleanLogLines(`${text}\n${res.stderr}`, known).slice(-20).join('\n'),
          });
        }
        return text.trim() === '' ? [] : cleanLogLines(text, known);
      }),
    ),
    settle(
      ssh.exec(envShapes(env, SHAPED_VARS), { timeoutMs }).then((res) => {
        if (res.exitCode !== 0) throw new ChatOpsError(ErrorCode.RemoteCommandFailed, `reading .env exited with ${res.exitCode ?? res.signal ?? '?'}`, { command: res.command, exitCode: res.exitCode, outputTail: scrub(res.stderr.slice(-500), known) });
        return parseEnvShapes(res.stdout.toString('utf8'));
      }),
    ),
    api.version(),
    api.deepHealth(),
  ]);

  const containers = host.kind === 'ok' ? host.value.containers : [];
  const apiC = containers.find((c) => c.service === 'engramia-api');
  const pg = containers.find((c) => c.service === 'pgvector');
  // alembic from the running container; from a throwaway one of its image when it crashed (that is when it matters).
  const tag = apiC?.tag ?? (host.kind === 'ok' ? (host.value.pinnedTag ?? undefined) : undefined);
  // A container `running` whose API gives no answer may be crash-looping: Docker refuses `exec` into it, so use `run`.
  const answering = probeSilence(version) === undefined || probeSilence(deep) === undefined;
  const via: 'exec' | 'run' = apiC?.state === 'running' && answering ? 'exec' : 'run';
  const alembicCmd = (args: string[]) => (via === 'exec' ? alembic(env, tag!, args) : alembicInImage(env, tag!, args));
  // alembic logs to stderr; the revision is the first word of its stdout.
  const withRevision = ({ stdout, ...r }: Ran & { stdout: string }) => ({ ...r, revision: r.exitCode === 0 ? parseRevision(stdout) : null });

  const [current, head, pgVersion] = await Promise.all([
    tag ? settle(run(alembicCmd(['current'])).then(withRevision)) : undefined,
    tag ? settle(run(alembicCmd(['heads'])).then(withRevision)) : undefined,
    host.kind !== 'ok'
      ? Promise.resolve<Got<Ran>>({ kind: 'skipped', reason: 'host not read' })
      : pg?.state === 'running'
        ? settle(run(pgSelectVersion(env)).then(({ stdout: _, ...r }) => r))
        : Promise.resolve<Got<Ran>>({ kind: 'skipped', reason: 'pgvector is not running' }),
  ]);
  const alembicFacts: AlembicFacts =
    tag && current && head
      ? { kind: 'ran', tag, via, current, head }
      : { kind: 'skipped', reason: host.kind === 'ok' ? 'no engramia-api image known (no container, nothing pinned in .env)' : 'host not read' };

  return {
    env: env.name,
    host,
    logs,
    envFile,
    version,
    deep,
    alembic: alembicFacts,
    pgVersion,
  };
}

export async function diagnose(data: ReadJobData, ctx: ReadJobContext): Promise<ReadJobResult> {
  const facts = await gatherDiagnosis(ctx);
  const findings = matchFindings(facts);
  const msg = diagnoseMsg({ facts, findings, host: ctx.ssh.label, composeFile: ctx.env.composeFile, requestedBy: data.origin.user, jobId: ctx.jobId, checkedAt: new Date() });
  return { msg, outcome: findings.length === 0 ? 'ok' : 'problems' };
}
