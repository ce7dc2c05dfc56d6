import { isAtOrBelow } from '../engramia/alembic.js';
import { EngramiaApi } from '../engramia/client.js';
import { probeHost } from '../engramia/host.js';
import { ChatOpsError, ErrorCode, asChatOpsError } from '../errors.js';
import { code } from '../render/model.js';
import { showCommand, type RemoteCommand } from '../ssh/quote.js';
import type { EnvironmentConfig } from '../config/schema.js';
import * as cmd from './commands.js';
import { gateStatus, openGate } from './gates.js';
import { backupDir, checkSpace, pruneSnapshots } from './snapshot.js';
import { LOGIN, MAINTENANCE_OFF, MAINTENANCE_ON, PIN, PREFLIGHT, UP, VERIFY, currentTag, REGISTRY_CLEANUP, refuseMissingImage } from './deploy.js';
import { mustSucceed, readHistory, readRevision, run, runAlembic } from './kernel/exec.js';
import type { StepContext, RunbookData, StepDef } from './kernel/types.js';


/** `pre_rollback_YYYYmmddHHMM.dump`, as the runbook names it, in UTC. */
export function snapshotName(now = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `pre_rollback_${now.getUTCFullYear()}${p(now.getUTCMonth() + 1)}${p(now.getUTCDate())}${p(now.getUTCHours())}${p(now.getUTCMinutes())}.dump`;
}

const PREPARE: StepDef = {
  id: 'prepare',
  title: () => 'Plan the rollback: maintenance on for the whole procedure',
  safeToRepeat: true,
  async run(ctx) {
    // The runbook's first move in an incident: stop traffic before touching anything.
    ctx.state.maintenance = { on: true, reason: 'rollback procedure' };
    return { status: 'done', note: `${ctx.state.fromVersion ?? '?'} → ${ctx.data.version}` };
  },
};

/** In an incident the registry may be down too: a failed login is a warning, and only an image missing from the host needs it. */
const ROLLBACK_LOGIN: StepDef = {
  ...LOGIN,
  async run(ctx, rec) {
    try {
      return await LOGIN.run(ctx, rec);
    } catch (err) {
      const e = asChatOpsError(err);
      if (e.code !== ErrorCode.RemoteCommandFailed) throw err;
      ctx.state.warnings.push(`docker login to ${ctx.env.registry.host} failed (${e.message}); the rollback went on with the images already on the host.`);
      return { status: 'done', note: 'login failed: only images already on the host can be used' };
    }
  },
};

export const SNAPSHOT: StepDef = {
  id: 'snapshot',
  title: () => 'Snapshot the database (pg_dump)',
  safeToRepeat: true,
  async run(ctx, rec) {
    if (ctx.state.snapshot) return { status: 'done', note: `${ctx.state.snapshot.path} (${ctx.state.snapshot.bytes} bytes, taken earlier)` };
    const dir = backupDir(ctx.env);
    const space = await checkSpace(ctx, rec, dir);
    const base = snapshotName();
    let path = `${dir}/${base}`;
    // Two snapshots in the same minute must not replace each other: the second gets a suffix.
    for (let n = 2; ; n++) {
      const res = await run(ctx, rec, cmd.snapshot(ctx.env, path), { timeout: 'snapshot' });
      if (res.exitCode !== cmd.SNAPSHOT_NAME_TAKEN || n > 9) {
        mustSucceed(res, 'pg_dump');
        break;
      }
      path = `${dir}/${base.replace(/\.dump$/, `_${n}.dump`)}`;
    }
    // Trust the file, not the exit code: it must exist, be non-empty and be a custom-format dump.
    const size = await run(ctx, rec, cmd.fileSize(ctx.env, path), { timeout: 'command' });
    const bytes = size.exitCode === 0 ? Number(/^\s*(\d+)/.exec(size.stdout.toString('utf8'))?.[1] ?? 0) : 0;
    const magic = await run(ctx, rec, cmd.fileMagic(ctx.env, path), { timeout: 'command' });
    rec.outputTail = undefined;
    if (bytes === 0 || magic.exitCode !== 0 || magic.stdout.toString('latin1') !== 'PGDMP') {
      throw new ChatOpsError(ErrorCode.RemoteCommandFailed, `the snapshot ${path} is not a usable pg_dump file (${bytes} bytes${magic.exitCode === 0 ? '' : ', unreadable'}); nothing was downgraded`, {});
    }
    ctx.state.snapshot = { path, bytes };
    const pruned = await pruneSnapshots(ctx, rec, dir, path);
    rec.outputTail = undefined;
    rec.exitCode = 0;
    return { status: 'done', note: [`${path} (${bytes} bytes, starts with PGDMP)`, space, pruned].filter(Boolean).join('; ') };
  },
};

const INSPECT_TARGET: StepDef = {
  id: 'inspect-target',
  title: (d) => `Compare the database with what ${d.version} expects`,
  safeToRepeat: true,
  async run(ctx, rec) {
    // `run` pulls the target only when it is not on the host: a registry outage does not block a rollback to a local image.
    const pulled = await run(ctx, rec, cmd.imageHeads(ctx.env, ctx.data.version, ctx.data.jobId), { timeout: 'pull' });
    const heads = mustSucceed(refuseMissingImage(ctx, rec, pulled), `alembic heads of ${ctx.data.version}`);
    ctx.state.targetHead = cmd.parseRevision(heads.stdout.toString('utf8'));
    ctx.state.dbRevision = await readRevision(ctx, rec, currentTag(ctx.state), 'current');
    if (!ctx.state.targetHead || !ctx.state.dbRevision) {
      throw new ChatOpsError(ErrorCode.RemoteCommandFailed, 'could not read the alembic revisions, so the bot will not guess a downgrade', {});
    }
    if (ctx.state.targetHead === ctx.state.dbRevision && ctx.state.fromVersion === ctx.data.version && ctx.state.alembicVia !== 'run') {
      // Nothing would change but an outage: maintenance, a snapshot and a re-create of what already runs.
      ctx.state.targetRefused = true;
      throw new ChatOpsError(ErrorCode.RemoteCommandFailed, `${ctx.data.version} already runs and the database is at its revision ${ctx.state.dbRevision}: there is nothing to roll back, so nothing was changed`, {});
    }
    if (ctx.state.targetHead !== ctx.state.dbRevision) {
      // Only the running image knows the revisions above the target: its history says whether the target lies below.
      const history = await readHistory(ctx, rec, currentTag(ctx.state));
      if (!isAtOrBelow(history, ctx.state.dbRevision, ctx.state.targetHead)) {
        rec.outputTail = undefined;
        ctx.state.targetRefused = true;
        throw new ChatOpsError(
          ErrorCode.RemoteCommandFailed,
          `${ctx.data.version} expects revision ${ctx.state.targetHead}, which is not below the database's ${ctx.state.dbRevision}; a downgrade cannot get there, so nothing was changed`,
          {},
        );
      }
    }
    const via = ctx.state.alembicVia === 'run' ? ` (alembic in one-off containers of ${currentTag(ctx.state)}: engramia-api is not running)` : '';
    return {
      status: 'done',
      note:
        (ctx.state.targetHead === ctx.state.dbRevision
          ? `database at ${ctx.state.dbRevision}, as ${ctx.data.version} expects: no downgrade needed`
          : `database at ${ctx.state.dbRevision}, ${ctx.data.version} expects ${ctx.state.targetHead}`) + via,
    };
  },
};

export const DOWNGRADE_DECISION: StepDef = {
  id: 'downgrade-decision',
  title: () => 'Confirm the database downgrade',
  safeToRepeat: true,
  async run(ctx) {
    const { state, data } = ctx;
    if (state.targetHead === state.dbRevision) return { status: 'skipped', note: 'no migrations differ' };
    const gate = state.gates['downgrade'];
    if (gate) {
      const st = await gateStatus(ctx, gate);
      if (st.kind === 'pending') return { status: 'wait', until: st.until, gateId: gate.id };
      // No answer is a "no": a downgrade can drop data.
      if (st.kind === 'expired') throw new ChatOpsError(ErrorCode.Cancelled, 'nobody confirmed the downgrade in time', {});
      if (st.decision.choice === 'go') return { status: 'done', note: `confirmed by ${st.decision.by}` };
      throw new ChatOpsError(ErrorCode.Cancelled, `the downgrade was cancelled by ${st.decision.by}`, { by: st.decision.by });
    }
    const why = data.kind === 'rollback' ? `${code(data.version)} expects revision ${code(state.targetHead ?? '?')}` : `Requested: ${code(`migrate downgrade ${data.version}`)}, resolved to ${code(state.targetHead ?? '?')}`;
    const loss =
      state.targetHead === 'base'
        ? '`alembic downgrade base` drops *every* table. The approver must type the environment name to confirm.'
        : `\`alembic downgrade ${state.targetHead}\` drops what the revisions after ${code(state.targetHead ?? '?')} added; data in those columns and tables is lost.`;
    const g = await openGate(ctx, {
      id: 'downgrade',
      kind: 'downgrade',
      go: 'downgrade.confirm',
      noGo: 'downgrade.cancel',
      question: `Downgrade the ${data.env} database ${state.dbRevision} → ${state.targetHead}?`,
      plan: [state.dbRevision ?? '', state.targetHead ?? ''],
      detail: [`${why}; the database is at ${code(state.dbRevision ?? '?')}. ${loss}`, `Snapshot taken first: ${code(state.snapshot?.path ?? '?')} (${state.snapshot?.bytes ?? 0} bytes).`, downgradeHow(ctx)],
      // `base` drops every table: the approver must also type the environment's name.
      ...(state.targetHead === 'base' ? { confirmText: data.env } : {}),
    });
    return { status: 'wait', until: Date.parse(g.expiresAt), gateId: g.id };
  },
};

/** The plan says where the downgrade runs: the running container, or a one-off container of the image that has the scripts. */
function downgradeHow(ctx: StepContext): string {
  const tag = currentTag(ctx.state);
  return ctx.state.alembicVia === 'run'
    ? `Runs as ${code(`docker compose run --rm --no-deps -T engramia-api alembic downgrade ${ctx.state.targetHead ?? '?'}`)} on ${code(tag)}'s image: engramia-api has no running container to \`exec\` into safely (in a crash loop an exec dies with the container, part-way), and only ${code(tag)} holds the downgrade scripts for its migrations.`
    : `Runs as ${code(`docker compose exec -T engramia-api alembic downgrade ${ctx.state.targetHead ?? '?'}`)} in the running ${code(tag)} container, the image that holds the downgrade scripts.`;
}

export const DOWNGRADE: StepDef = {
  id: 'downgrade',
  title: () => 'Downgrade the database',
  // An exact revision, never "-1": running it again cannot go one revision too far.
  safeToRepeat: true,
  // `downgrade <exact rev>` is idempotent, but one still running must finish, never be killed halfway.
  orphan: 'wait',
  runsInContainer: 'alembic',
  changesRunningVersion: true,
  async run(ctx, rec) {
    const { state } = ctx;
    if (state.targetHead === state.dbRevision) return { status: 'skipped', note: 'no migrations differ' };
    if (!state.snapshot) throw new ChatOpsError(ErrorCode.RemoteCommandFailed, 'no verified snapshot, so nothing is downgraded', {});
    // The running (newer) image is the one that knows how to undo its own revisions.
    mustSucceed(await runAlembic(ctx, rec, currentTag(state), ['downgrade', state.targetHead!], 'migrate'), `alembic downgrade ${state.targetHead}`);
    state.downgraded = true;
    return { status: 'done', note: `database now at ${state.targetHead}` };
  },
};

const VERIFY_IN_MAINTENANCE: StepDef = {
  id: 'verify-maintenance',
  title: (d) => `Check ${d.version} runs and is healthy (still in maintenance)`,
  safeToRepeat: true,
  changesRunningVersion: true,
  async run(ctx, rec) {
    const host = await probeHost(ctx.ssh, ctx.env);
    if (host.runningTag !== ctx.data.version) {
      throw new ChatOpsError(ErrorCode.RemoteCommandFailed, `engramia-api runs ${host.runningTag ?? 'nothing'}, not ${ctx.data.version}`, {});
    }
    // /v1/health/deep answers during maintenance; /v1/version does not, so it is checked after.
    const deep = await new EngramiaApi({ baseUrl: ctx.env.apiBaseUrl, apiKey: ctx.secrets.apiKey }).deepHealth();
    rec.command = `GET ${ctx.env.apiBaseUrl}/v1/health/deep`;
    if (deep.kind !== 'ok') throw new ChatOpsError(ErrorCode.RemoteCommandFailed, 'deep health did not answer during maintenance', {});
    if (deep.value.status === 'error') throw new ChatOpsError(ErrorCode.RemoteCommandFailed, `deep health is error on ${ctx.data.version}; maintenance stays on`, {});
    return { status: 'done', note: `runs ${host.runningTag}, deep health ${deep.value.status}` };
  },
};

// Everything that can refuse the target (not in the registry, a revision a downgrade cannot reach)
// runs before maintenance goes on: a refused rollback must not have caused an outage.
export const ROLLBACK_STEPS: readonly StepDef[] = [
  PREFLIGHT,
  ROLLBACK_LOGIN,
  INSPECT_TARGET,
  REGISTRY_CLEANUP,
  PREPARE,
  MAINTENANCE_ON,
  SNAPSHOT,
  DOWNGRADE_DECISION,
  DOWNGRADE,
  PIN,
  UP,
  VERIFY_IN_MAINTENANCE,
  MAINTENANCE_OFF,
  VERIFY,
];

export function rollbackDryRunPlan(env: EnvironmentConfig, data: RunbookData): string[] {
  const running = '<running tag>';
  const lines: string[] = [];
  const add = (c: RemoteCommand, stdin?: string) => lines.push(showCommand(c) + (stdin ? ` <<< $${stdin}` : ''));
  lines.push('# first, nothing changed yet: the target must be in the registry and its revision below the database');
  add(cmd.registryLogin(env, data.jobId), env.registry.tokenEnv);
  lines.push('# pulls the target only if it is not on the host:');
  add(cmd.imageHeads(env, data.version, data.jobId));
  add(cmd.alembic(env, running, ['current']));
  add(cmd.alembic(env, running, ['history']));
  add(cmd.registryLogout(env));
  lines.push('# then maintenance on and a snapshot:');
  add(cmd.setEnvVar(env, 'ENGRAMIA_MAINTENANCE', 'true'));
  add(cmd.up(env, running, [cmd.API]));
  lines.push(`# stop unless ${backupDir(env)} has room for the database size × 1.2 + 64 MiB (df -Pk, pg_database_size); then:`);
  add(cmd.snapshot(env, `${env.backupPath ?? env.deployPath}/${snapshotName()}`));
  lines.push('# check the snapshot: non-empty, starts with PGDMP');
  lines.push('# alembic runs with `exec` in the running container; when engramia-api is not running, or the daemon has restarted it');
  lines.push(`# (${showCommand(cmd.restartCount(env, '<engramia-api container id>'))} above 0: a crash loop, where an exec dies with the container) it runs as`);
  lines.push(`# ${showCommand(cmd.alembicOneOff(env, running, ['current']))} (the same for history and downgrade)`);
  lines.push('# only if the revisions differ, after a downgrade.confirm gate:');
  add(cmd.alembic(env, running, ['downgrade', '<target head>']));
  add(cmd.setEnvVar(env, env.tagVariable, data.version));
  add(cmd.up(env, data.version, [cmd.API, 'caddy']));
  lines.push(`# check: engramia-api runs ${data.version}, deep health not error (maintenance still on)`);
  add(cmd.unsetEnvVar(env, 'ENGRAMIA_MAINTENANCE'));
  add(cmd.up(env, data.version, [cmd.API]));
  lines.push(`# verify: GET ${env.apiBaseUrl}/v1/version (expect ${data.version}), /v1/health, /v1/health/deep`);
  return lines;
}
