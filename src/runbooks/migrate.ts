import { isAtOrBelow, parentOf } from '../engramia/alembic.js';
import { EngramiaApi } from '../engramia/client.js';
import type { EnvironmentConfig } from '../config/schema.js';
import { ChatOpsError, ErrorCode } from '../errors.js';
import { showCommand } from '../ssh/quote.js';
import * as cmd from './commands.js';
import { PREFLIGHT, currentTag, recreatedCrashLoop } from './deploy.js';
import { editEnv, mustSucceed, readHistory, readRevision, run } from './kernel/exec.js';
import type { StepContext, RunbookData, StepDef } from './kernel/types.js';
import type { StepRecord } from './types.js';
import { DOWNGRADE, DOWNGRADE_DECISION, SNAPSHOT, snapshotName } from './rollback.js';
import { backupDir, databaseSize, prepareBackupDir } from './snapshot.js';

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
    if (!target && spec !== '-1' && !history.some((r) => r.revision === spec)) {
      throw new ChatOpsError(ErrorCode.RemoteCommandFailed, `${spec} is not a revision the running image (${tag}) knows; nothing was changed on the host`, {});
    }
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

/** Re-creates engramia-api on the running version so it reads the maintenance flag of `.env`. */
async function recreate(ctx: StepContext, rec: StepRecord): Promise<void> {
  mustSucceed(await run(ctx, rec, cmd.up(ctx.env, currentTag(ctx.state), [cmd.API]), { timeout: 'up' }), 'docker compose up -d engramia-api');
}

/**
 * Writes between the snapshot and the downgrade would be lost and are in neither: the API stops
 * taking them before the snapshot, as in a rollback. Maintenance already on stays as it was.
 */
const MAINTENANCE_ON: StepDef = {
  id: 'maintenance-on',
  title: () => 'Turn maintenance on (no writes after the snapshot)',
  safeToRepeat: true,
  async run(ctx, rec) {
    const { state } = ctx;
    if (state.maintenanceBefore && !state.maintenanceOnByUs) {
      state.maintenance = { on: true, reason: 'already on before this job; it stays on' };
      const v = await new EngramiaApi({ baseUrl: ctx.env.apiBaseUrl, apiKey: ctx.secrets.apiKey }).version();
      // On in .env but a container started before the flag still takes writes: re-create it.
      if (v.kind === 'maintenance') return { status: 'skipped', note: 'already on before this job' };
      await recreate(ctx, rec);
      return { status: 'done', note: `already on in .env; engramia-api re-created on ${currentTag(state)} to obey it` };
    }
    try {
      await editEnv(ctx, rec, 'ENGRAMIA_MAINTENANCE', 'true');
    } catch (err) {
      state.maintenance = { on: false, reason: 'turning it on failed; traffic was never stopped' };
      throw err;
    }
    state.maintenanceOnByUs = true;
    state.maintenance = { on: true, reason: 'for the downgrade; off again at the end' };
    await ctx.store.setMaintenanceSince(ctx.data.env, new Date().toISOString()).catch(() => undefined);
    await recreate(ctx, rec);
    return { status: 'done', note: `engramia-api re-created on ${currentTag(state)}${recreatedCrashLoop(ctx)}` };
  },
};

/**
 * Puts maintenance back as it was before the job: also run when the job stops early (failed,
 * cancelled, gate expired). Only a failure during or after the downgrade itself leaves it on:
 * the database may then be between revisions, and the failure report says so.
 */
export const MAINTENANCE_RESTORE: StepDef = {
  id: 'maintenance-restore',
  title: () => 'Put maintenance back as it was',
  safeToRepeat: true,
  async run(ctx, rec) {
    const { state } = ctx;
    if (!state.maintenanceOnByUs) return { status: 'skipped', note: state.maintenanceBefore ? 'it was on before this job: left on' : 'this job did not turn it on' };
    const halfDone = state.steps.some((s) => (s.id === 'downgrade' || s.id === 'report') && s.status === 'failed');
    if (halfDone) return { status: 'skipped', note: 'left ON: the downgrade failed and the database may be between revisions' };
    await editEnv(ctx, rec, 'ENGRAMIA_MAINTENANCE', null);
    await recreate(ctx, rec);
    state.maintenanceOnByUs = false;
    state.maintenance = { on: false, reason: 'off again, as before this job' };
    await ctx.store.setMaintenanceSince(ctx.data.env, null).catch(() => undefined);
    return { status: 'done', note: `engramia-api re-created on ${currentTag(state)} without maintenance` };
  },
};

// The target is resolved and checked before anything changes: a wrong revision dumps nothing and stops no traffic.
export const MIGRATE_STEPS: readonly StepDef[] = [PREFLIGHT, RESOLVE, MAINTENANCE_ON, SNAPSHOT, DOWNGRADE_DECISION, DOWNGRADE, REPORT, MAINTENANCE_RESTORE];

export function migrateDryRunPlan(env: EnvironmentConfig, data: RunbookData): string[] {
  const running = '<running tag>';
  return [
    `# alembic runs with exec; when engramia-api is not running or the daemon has restarted it (a crash loop: ${showCommand(cmd.restartCount(env, '<container id>'))} above 0), every alembic command below runs as ${showCommand(cmd.alembicOneOff(env, running, ['…']))} instead`,
    showCommand(cmd.alembic(env, running, ['current'])),
    showCommand(cmd.alembic(env, running, ['history'])),
    `# resolve "${data.version}" to an exact revision; stop here if it is unknown. Then, unless maintenance is already on:`,
    showCommand(cmd.setEnvVar(env, 'ENGRAMIA_MAINTENANCE', 'true')),
    showCommand(cmd.up(env, running, [cmd.API])),
    showCommand(prepareBackupDir(env, backupDir(env))),
    showCommand(databaseSize(env)),
    '# stop unless the free space holds the database size × 1.2 + 64 MiB:',
    showCommand(cmd.snapshot(env, `${backupDir(env)}/${snapshotName()}`)),
    `# check the snapshot: non-empty, starts with PGDMP; keep the newest ${env.backups.keep} pre_rollback_*.dump. Then after a downgrade.confirm gate:`,
    showCommand(cmd.alembic(env, running, ['downgrade', data.version === '-1' ? '<current - 1>' : data.version])),
    '# then (also when cancelled) maintenance back as it was:',
    showCommand(cmd.unsetEnvVar(env, 'ENGRAMIA_MAINTENANCE')),
    showCommand(cmd.up(env, running, [cmd.API])),
  ];
}
