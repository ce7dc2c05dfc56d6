import type { EnvironmentConfig } from '../config/schema.js';
import { ChatOpsError, ErrorCode } from '../errors.js';
import { code, esc } from '../render/model.js';
import { renderCommand } from '../ssh/quote.js';
import * as cmd from './commands.js';
import { PREFLIGHT, currentTag } from './deploy.js';
import { mustSucceed, readRevision, run } from './kernel/exec.js';
import type { RunbookData, StepDef } from './kernel/types.js';
import { gateStatus, openGate } from './gates.js';

/**
 * `migrate upgrade`: the runbook's "alembic upgrade head" in the running container, for a
 * database left behind (deep health's `migration: error`). No snapshot (an upgrade adds, the
 * runbook takes one only before a downgrade), but always a plan gate: it changes production data.
 */

const atHead = (d: { state?: { dbRevision?: string | null; newHead?: string | null } }) => d.state?.newHead != null && d.state.dbRevision === d.state.newHead;

const INSPECT: StepDef = {
  id: 'inspect',
  title: () => 'Compare the database with the running image',
  safeToRepeat: true,
  async run(ctx, rec) {
    const tag = currentTag(ctx.state);
    if (!ctx.state.fromVersion) throw new ChatOpsError(ErrorCode.RemoteCommandFailed, 'engramia-api is not running, so alembic cannot be run in it; start it first', {});
    const current = await readRevision(ctx, rec, tag, 'current');
    const head = await readRevision(ctx, rec, tag, 'heads');
    ctx.state.dbRevision = current;
    ctx.state.newHead = head;
    rec.outputTail = undefined;
    if (!ctx.state.newHead) throw new ChatOpsError(ErrorCode.RemoteCommandFailed, `could not read the alembic head of ${tag}, so the bot will not guess`, {});
    if (atHead({ state: ctx.state })) return { status: 'done', note: `already at head (${ctx.state.newHead}): nothing to apply` };
    return { status: 'done', note: `database at ${ctx.state.dbRevision ?? 'base'}, ${tag} expects ${ctx.state.newHead}` };
  },
};

const APPROVE: StepDef = {
  id: 'approval',
  title: () => 'Approve the migration plan',
  safeToRepeat: true,
  async run(ctx) {
    const { state, data } = ctx;
    if (atHead({ state })) return { status: 'skipped', note: 'nothing to apply' };
    const gate = state.gates['approval'];
    if (gate) {
      const st = await gateStatus(ctx, gate);
      if (st.kind === 'pending') return { status: 'wait', until: st.until, gateId: gate.id };
      // No answer is a "no": nothing has changed yet, and nothing will.
      if (st.kind === 'expired') throw new ChatOpsError(ErrorCode.Cancelled, 'nobody approved the migrations in time; nothing was changed', {});
      if (st.decision.choice === 'go') return { status: 'done', note: `approved by ${st.decision.by}` };
      throw new ChatOpsError(ErrorCode.Cancelled, `the migrations were cancelled by ${st.decision.by}; nothing was changed`, { by: st.decision.by });
    }
    const tag = currentTag(state);
    const g = await openGate(ctx, {
      id: 'approval',
      kind: 'plan',
      go: 'deploy.approve',
      noGo: 'deploy.cancel',
      question: `Apply database migrations on ${data.env}: ${state.dbRevision ?? 'base'} → ${state.newHead}?`,
      plan: [state.dbRevision ?? '', state.newHead ?? '', tag],
      detail: [
        `Requested by <@${data.origin.user}>. The database is at ${code(state.dbRevision ?? 'base')}; the running image ${code(tag)} expects ${code(state.newHead ?? '?')}. The command, in the running container:`,
        `\`\`\`\n${esc(renderCommand(cmd.alembic(ctx.env, tag, ['upgrade', 'head'])).replace(/`/g, "'"))}\n\`\`\``,
      ],
    });
    return { status: 'wait', until: Date.parse(g.expiresAt), gateId: g.id };
  },
};

const UPGRADE: StepDef = {
  id: 'upgrade',
  title: () => 'Run database migrations (alembic upgrade head)',
  // Like the deploy's migration: a second `upgrade head` beside or after a half-finished one can corrupt data.
  safeToRepeat: false,
  orphan: 'wait',
  runsInContainer: 'alembic',
  async run(ctx, rec) {
    if (atHead({ state: ctx.state })) return { status: 'skipped', note: 'nothing to apply' };
    mustSucceed(await run(ctx, rec, cmd.alembic(ctx.env, currentTag(ctx.state), ['upgrade', 'head']), { timeout: 'migrate' }), 'alembic upgrade head');
    return { status: 'done', note: `${ctx.state.dbRevision ?? 'base'} → ${ctx.state.newHead}` };
  },
  async settle(ctx) {
    const res = await ctx.ssh.exec(cmd.alembic(ctx.env, currentTag(ctx.state), ['current']), { timeoutMs: ctx.env.timeouts.command * 1000 });
    const current = res.exitCode === 0 ? cmd.parseRevision(res.stdout.toString('utf8')) : undefined;
    const { newHead, dbRevision } = ctx.state;
    if (current === undefined) return { status: 'unknown', note: `\`alembic current\` did not answer (exit ${res.exitCode ?? res.signal ?? '?'})` };
    if (current === newHead) return { status: 'done', note: `database already at ${current}, the head` };
    if (current === dbRevision) return { status: 'not-run', note: `database still at ${current ?? 'base'}; no migration took effect` };
    return { status: 'unknown', note: `database at ${current ?? 'base'}: neither where it was (${dbRevision ?? 'base'}) nor the head (${newHead ?? '?'})` };
  },
};

const REPORT: StepDef = {
  id: 'report',
  title: () => 'Read the revision back',
  safeToRepeat: true,
  async run(ctx, rec) {
    const now = await readRevision(ctx, rec, currentTag(ctx.state), 'current');
    rec.outputTail = undefined;
    if (now !== ctx.state.newHead) throw new ChatOpsError(ErrorCode.RemoteCommandFailed, `alembic reports ${now ?? 'base'}, not the head ${ctx.state.newHead}`, {});
    return { status: 'done', note: `database at ${now} (head)` };
  },
};

export const UPGRADE_STEPS: readonly StepDef[] = [PREFLIGHT, INSPECT, APPROVE, UPGRADE, REPORT];

export function upgradeDryRunPlan(env: EnvironmentConfig, _data: RunbookData): string[] {
  const running = '<running tag>';
  return [
    renderCommand(cmd.alembic(env, running, ['current'])),
    renderCommand(cmd.alembic(env, running, ['heads'])),
    '# only if the database is behind, after a deploy.approve gate:',
    renderCommand(cmd.alembic(env, running, ['upgrade', 'head'])),
  ];
}
