import { isAtOrBelow, parentOf } from '../engramia/alembic.js';
import type { EnvironmentConfig } from '../config/schema.js';
import { ChatOpsError, ErrorCode } from '../errors.js';
import { renderCommand } from '../ssh/quote.js';
import * as cmd from './commands.js';
import { PREFLIGHT, currentTag, readHistory, readRevision, type DeployData, type StepDef } from './deploy.js';
import { DOWNGRADE, DOWNGRADE_DECISION, SNAPSHOT, snapshotName } from './rollback.js';

/** Turns REV, -1 or base into the exact revision to go down to, before anyone is asked. */
const RESOLVE: StepDef = {
  id: 'resolve',
  title: (d) => `Resolve "${d.version}" to an exact revision`,
  safeToRepeat: true,
  async run(ctx, rec) {
    const tag = currentTag(ctx.state);
    const current = await readRevision(ctx, rec, tag, 'current');
    const history = await readHistory(ctx, rec, tag);
    if (!current) throw new ChatOpsError(ErrorCode.RemoteCommandFailed, 'the database has no revision (it is at base already); there is nothing to downgrade', {});
    ctx.state.dbRevision = current;
    const spec = ctx.data.version;
    let target: string | undefined;
    if (spec === '-1') target = parentOf(history, current);
    else if (isAtOrBelow(history, current, spec)) target = spec;
    if (!target) {
      throw new ChatOpsError(ErrorCode.RemoteCommandFailed, `${spec} is not a revision below the current one (${current}); nothing to downgrade to`, {});
    }
    if (target === current) throw new ChatOpsError(ErrorCode.RemoteCommandFailed, `the database is already at ${current}`, {});
    ctx.state.targetHead = target;
    rec.outputTail = undefined;
    return { status: 'done', note: `${current} → ${target}${spec === '-1' ? ' (-1 resolved)' : ''}` };
  },
};

const REPORT: StepDef = {
  id: 'report',
  title: () => 'Read the revision back',
  safeToRepeat: true,
  async run(ctx, rec) {
    const now = (await readRevision(ctx, rec, currentTag(ctx.state), 'current')) ?? 'base';
    if (now !== ctx.state.targetHead) throw new ChatOpsError(ErrorCode.RemoteCommandFailed, `alembic reports ${now}, not ${ctx.state.targetHead}`, {});
    return { status: 'done', note: `database at ${now}` };
  },
};

export const MIGRATE_STEPS: readonly StepDef[] = [PREFLIGHT, SNAPSHOT, RESOLVE, DOWNGRADE_DECISION, DOWNGRADE, REPORT];

export function migrateDryRunPlan(env: EnvironmentConfig, data: DeployData): string[] {
  const running = '<running tag>';
  return [
    renderCommand(cmd.snapshot(env, `${env.backupPath ?? env.deployPath}/${snapshotName()}`)),
    '# check the snapshot: non-empty, starts with PGDMP',
    renderCommand(cmd.alembic(env, running, ['current'])),
    renderCommand(cmd.alembic(env, running, ['history'])),
    `# resolve "${data.version}" to an exact revision, then after a downgrade.confirm gate:`,
    renderCommand(cmd.alembic(env, running, ['downgrade', data.version === '-1' ? '<current - 1>' : data.version])),
  ];
}
