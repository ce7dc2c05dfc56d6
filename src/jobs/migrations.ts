import { between, parseHistory } from '../engramia/alembic.js';
import { probeHost } from '../engramia/host.js';
import { ChatOpsError, ErrorCode } from '../errors.js';
import { migrationsMsg } from '../render/migrations.js';
import { alembic, parseRevision } from '../runbooks/commands.js';
import { scrub } from '../security/scrub.js';
import type { ReadJobContext, ReadJobResult } from './read-context.js';
import type { ReadJobData } from './types.js';

/** `alembic current` and `history` from the running container, as the host sees them. */
export async function migrations(data: ReadJobData, ctx: ReadJobContext): Promise<ReadJobResult> {
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
