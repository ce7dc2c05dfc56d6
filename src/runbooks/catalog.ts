import type { EnvironmentConfig } from '../config/schema.js';
import type { DeployView } from '../render/deploy.js';
import { code, esc } from '../render/model.js';
import { DEPLOY_STEPS, dryRunPlan } from './deploy.js';
import type { StepContext, RunbookData, RunbookState, StepDef } from './kernel/types.js';
import { fourEyesStep, planApprovalStep, type PlanLabel } from './gates.js';
import { MAINTENANCE_STEPS, maintenanceDryRunPlan } from './maintenance.js';
import { MAINTENANCE_RESTORE, MIGRATE_STEPS, migrateDryRunPlan } from './migrate.js';
import { ROLLBACK_STEPS, rollbackDryRunPlan } from './rollback.js';
import { UPGRADE_STEPS, upgradeDryRunPlan } from './upgrade.js';

export type RunbookKind = RunbookData['kind'];

/**
 * What differs between runbooks, declared in one place: the steps, how the
 * card names the job, and what the final summary says. The engine that runs
 * them (src/jobs/runbook-job.ts) is the same for all.
 */
export interface RunbookSpec {
  steps: readonly StepDef[];
  /** Card header, e.g. "🚀 Deploy 0.6.1 to production". */
  title(d: RunbookData): string;
  /** Plain name for summaries and history, e.g. "Deploy 0.6.1 to production". */
  label(d: RunbookData): string;
  success(ctx: StepContext): string;
  /** Extra lines for a failure report, after the host's state. */
  failureDetail(ctx: StepContext): string[];
  /** The "Next:" line of a failure report. */
  next(ctx: StepContext, f: { changed: boolean; target: string | undefined; runningTag: string | undefined }): string;
  /** A step of `steps` that also runs when the job stops early (failed, cancelled): e.g. maintenance back as it was. */
  cleanup?: StepDef;
  /** Whether a failure after the running version changed offers the rollback gate. */
  offersRollback: boolean;
  /** Recorded in the deploy history (rollback targets are found there). */
  recorded: boolean;
  dryRunPlan(env: EnvironmentConfig, d: RunbookData): string[];
}

/** The plan an approver sees: the exact commands, as a dry run shows them. */
function planText(plan: (env: EnvironmentConfig, d: RunbookData) => string[]): (ctx: StepContext) => string[] {
  return (ctx) => [`Requested by <@${ctx.data.origin.user}>. The commands, in order:`, `\`\`\`\n${esc(plan(ctx.env, ctx.data).join('\n').replace(/`/g, "'"))}\n\`\`\``];
}

/**
 * The runbook's steps with the four-eyes check put right before `firstChange`, the first step that
 * changes what runs or what is stored on the host. The steps before it only read, log in, pull, snapshot
 * or ask (test/unit/catalog.test.ts holds each runbook to that). A missing id fails at start-up, not in production.
 */
function withFourEyes(steps: readonly StepDef[], firstChange: string, guard: StepDef): StepDef[] {
  const i = steps.findIndex((s) => s.id === firstChange);
  if (i < 0) throw new Error(`runbook has no step ${firstChange} to put the four-eyes check before`);
  return [...steps.slice(0, i), guard, ...steps.slice(i)];
}

const LABEL: Record<RunbookKind, PlanLabel> = {
  deploy: (d) => `deploy ${d.version} to ${d.env}`,
  rollback: (d) => `roll ${d.env} back to ${d.version}`,
  maintenance: (d) => `maintenance ${d.maintenance ? 'on' : 'off'} for ${d.env}`,
  migrate: (d) => `downgrade the ${d.env} database (${d.version})`,
  upgrade: (d) => `database migrations on ${d.env} (alembic upgrade head)`,
};

const behindHead = (ctx: StepContext) => !(ctx.state.newHead != null && ctx.state.dbRevision === ctx.state.newHead);

/** Which step of each runbook is its first change on the host. */
export const FIRST_CHANGE: Record<RunbookKind, string> = {
  deploy: 'maintenance-on',
  rollback: 'maintenance-on',
  maintenance: 'toggle',
  // Maintenance goes on before the snapshot, so that (not the downgrade) is the first change.
  migrate: 'maintenance-on',
  upgrade: 'upgrade',
};

const was = (ctx: StepContext) => code(ctx.state.fromVersion ?? ctx.state.pinnedBefore ?? '?');

export const RUNBOOKS: Record<RunbookKind, RunbookSpec> = {
  deploy: {
    steps: [planApprovalStep(LABEL.deploy, planText(dryRunPlan)), ...withFourEyes(DEPLOY_STEPS, FIRST_CHANGE.deploy, fourEyesStep(LABEL.deploy, planText(dryRunPlan)))],
    title: (d) => `${d.dryRun ? '🧪 Dry run: deploy' : '🚀 Deploy'} ${d.version} to ${d.env}`,
    label: (d) => `Deploy ${d.version} to ${d.env}`,
    success: (ctx) => `✅ ${code(ctx.data.version)} runs on *${esc(ctx.data.env)}* (was ${was(ctx)}), pinned in .env. Maintenance is off.`,
    failureDetail: () => [],
    next: (ctx, f) =>
      ctx.state.targetRefused
        ? `*Next:* nothing changed what runs (${code(f.runningTag ?? f.target ?? '?')}). ${code(ctx.data.version)} is not published in ${esc(ctx.env.registry.host)}: check the tag, then deploy one that exists.`
        : !f.changed
        ? `*Next:* nothing changed what runs (${code(f.target ?? f.runningTag ?? '?')}). Fix the cause above and run ${code(`/engramia deploy ${ctx.data.version} ${ctx.data.env}`)} again.`
        : f.target
          ? `*Next:* roll back to ${code(f.target)} with the button in the thread, or fix forward.`
          : '*Next:* the previous version is unknown, so the bot cannot offer a rollback; name one by hand.',
    offersRollback: true,
    recorded: true,
    dryRunPlan,
  },
  rollback: {
    steps: [planApprovalStep(LABEL.rollback, planText(rollbackDryRunPlan)), ...withFourEyes(ROLLBACK_STEPS, FIRST_CHANGE.rollback, fourEyesStep(LABEL.rollback, planText(rollbackDryRunPlan)))],
    title: (d) => `${d.dryRun ? '🧪 Dry run: roll back' : '⏪ Roll back'} ${d.env} to ${d.version}`,
    label: (d) => `Rollback of ${d.env} to ${d.version}`,
    success: (ctx) => {
      const s = ctx.state;
      return `✅ Rolled back: ${code(ctx.data.version)} runs on *${esc(ctx.data.env)}* (was ${was(ctx)}), pinned in .env; database ${s.downgraded ? `downgraded to ${code(s.targetHead ?? '?')}` : `unchanged at ${code(s.dbRevision ?? '?')}`}. Snapshot: ${code(s.snapshot?.path ?? 'none')}. Maintenance is off.`;
    },
    failureDetail: (ctx) => {
      const s = ctx.state;
      return [
        `*Database:* ${s.downgraded ? `downgraded to ${code(s.targetHead ?? '?')}` : s.dbRevision ? `not downgraded, at ${code(s.dbRevision)}` : 'not touched'}. *Snapshot:* ${s.snapshot ? `${code(s.snapshot.path)} (${s.snapshot.bytes} bytes)` : 'none taken'}.`,
      ];
    },
    next: (ctx, f) =>
      ctx.state.targetRefused
        ? `*Next:* nothing changed: maintenance was never turned on and what runs is as it was. The bot will not roll back to ${code(ctx.data.version)} (see above): name another version, ${code(`/engramia rollback VERSION ${ctx.data.env}`)}.`
        : ctx.state.snapshot
        ? `*Next:* fix the cause above, then run ${code(`/engramia rollback ${ctx.data.version} ${ctx.data.env}`)} again, or restore from the snapshot by hand with ${code('pg_restore')}.`
        : `*Next:* fix the cause above and run ${code(`/engramia rollback ${ctx.data.version} ${ctx.data.env}`)} again.`,
    offersRollback: false,
    recorded: true,
    dryRunPlan: rollbackDryRunPlan,
  },
  maintenance: {
    steps: withFourEyes(MAINTENANCE_STEPS, FIRST_CHANGE.maintenance, fourEyesStep(LABEL.maintenance, planText(maintenanceDryRunPlan))),
    title: (d) => `🚧 Maintenance ${d.maintenance ? 'on' : 'off'} for ${d.env}`,
    label: (d) => `Maintenance ${d.maintenance ? 'on' : 'off'} for ${d.env}`,
    success: (ctx) => `✅ Maintenance is *${ctx.data.maintenance ? 'on' : 'off'}* on ${esc(ctx.data.env)}. ${ctx.state.summary ?? ''}`,
    failureDetail: () => [],
    next: (ctx) => `*Next:* fix the cause above and run ${code(`/engramia maintenance ${ctx.data.maintenance ? 'on' : 'off'} ${ctx.data.env}`)} again.`,
    offersRollback: false,
    recorded: false,
    dryRunPlan: maintenanceDryRunPlan,
  },
  migrate: {
    steps: withFourEyes(MIGRATE_STEPS, FIRST_CHANGE.migrate, fourEyesStep(LABEL.migrate, planText(migrateDryRunPlan))),
    title: (d) => `⬇️ Downgrade the ${d.env} database (${d.version})`,
    label: (d) => `Database downgrade (${d.version}) on ${d.env}`,
    success: (ctx) =>
      `✅ The ${esc(ctx.data.env)} database is at ${code(ctx.state.targetHead ?? '?')} (was ${code(ctx.state.dbRevision ?? '?')}). Snapshot: ${code(ctx.state.snapshot?.path ?? 'none')}. The running code is unchanged: make sure it works with this revision. ${ctx.state.maintenanceBefore ? 'Maintenance is *on*, as it was before this job.' : 'Maintenance is off again.'}`,
    failureDetail: (ctx) => [
      `*Database:* ${ctx.state.downgraded ? `downgraded to ${code(ctx.state.targetHead ?? '?')}` : ctx.state.dbRevision ? `not downgraded, at ${code(ctx.state.dbRevision)}` : 'not touched'}. *Snapshot:* ${ctx.state.snapshot ? `${code(ctx.state.snapshot.path)} (${ctx.state.snapshot.bytes} bytes)` : 'none taken'}.`,
    ],
    next: (ctx) => `*Next:* fix the cause above and run ${code(`/engramia migrate downgrade ${ctx.data.version} ${ctx.data.env}`)} again if still wanted.`,
    cleanup: MAINTENANCE_RESTORE,
    offersRollback: false,
    recorded: false,
    dryRunPlan: migrateDryRunPlan,
  },
  upgrade: {
    steps: withFourEyes(UPGRADE_STEPS, FIRST_CHANGE.upgrade, fourEyesStep(LABEL.upgrade, planText(upgradeDryRunPlan), behindHead)),
    title: (d) => `⬆️ Database migrations on ${d.env} (alembic upgrade head)`,
    label: (d) => `Database migrations on ${d.env}`,
    success: (ctx) =>
      ctx.state.dbRevision === ctx.state.newHead
        ? `✅ The ${esc(ctx.data.env)} database was already at the head ${code(ctx.state.newHead ?? '?')} of ${code(ctx.state.fromVersion ?? '?')}; nothing was applied.`
        : `✅ The ${esc(ctx.data.env)} database is at ${code(ctx.state.newHead ?? '?')} (was ${code(ctx.state.dbRevision ?? 'base')}), the head of the running ${code(ctx.state.fromVersion ?? '?')}.`,
    failureDetail: (ctx) => [`*Database:* ${ctx.state.dbRevision !== undefined ? `was at ${code(ctx.state.dbRevision ?? 'base')}, head ${code(ctx.state.newHead ?? '?')}` : 'not read'}.`],
    next: (ctx) => `*Next:* check ${code(`/engramia migrations ${ctx.data.env}`)}, fix the cause above, and run ${code(`/engramia migrate upgrade ${ctx.data.env}`)} again if still needed.`,
    offersRollback: false,
    recorded: false,
    dryRunPlan: upgradeDryRunPlan,
  },
};

/** What a runbook job's card shows, from its data and saved state: one view for the job and the reaper. */
export function cardView(data: RunbookData, state: RunbookState): DeployView {
  return {
    jobId: data.jobId,
    title: RUNBOOKS[data.kind].title(data),
    label: RUNBOOKS[data.kind].label(data),
    env: data.env,
    version: data.version,
    fromVersion: state.fromVersion ?? state.pinnedBefore,
    requestedBy: data.origin.user,
    dryRun: data.dryRun,
    steps: state.steps,
    outcome: state.outcome,
    ...(state.summary ? { summary: state.summary } : {}),
    ...(state.maintenance ? { maintenance: `${state.maintenance.on ? 'on' : 'off'} (${state.maintenance.reason.replace(/<@([A-Z0-9]+)>/g, '@$1')})` } : {}),
    warnings: state.warnings,
  };
}
