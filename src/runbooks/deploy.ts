import type { EnvironmentConfig } from '../config/schema.js';
import { EngramiaApi } from '../engramia/client.js';
import { probeHost, type HostState } from '../engramia/host.js';
import { ChatOpsError, ErrorCode } from '../errors.js';
import { gatherHealth } from '../jobs/health.js';
import { describeError } from '../render/errors.js';
import { healthMsg, overallOf } from '../render/health.js';
import { code } from '../render/model.js';
import { scrub } from '../security/scrub.js';
import type { ExecResult } from '../ssh/executor.js';
import { showCommand, type RemoteCommand } from '../ssh/quote.js';
import * as cmd from './commands.js';
import { gateStatus, openGate } from './gates.js';
import { editEnv, mustSucceed, run } from './kernel/exec.js';
import type { RunbookData, RunbookState, StepContext, StepDef } from './kernel/types.js';
export { planHash } from './plan.js';
import type { StepRecord } from './types.js';

// Real Docker's words for a tag the registry does not have: compose says "manifest unknown",
// `docker manifest inspect` "no such manifest".
const MANIFEST_UNKNOWN = /manifest unknown|no such manifest/i;

/** A pull that failed because the registry has no such tag is refused as that, in the host's words. */
export function refuseMissingImage(ctx: StepContext, rec: StepRecord, res: ExecResult): ExecResult {
  if (res.exitCode === 0 || !MANIFEST_UNKNOWN.test(`${res.stdout.toString('utf8')}\n${res.stderr}`)) return res;
  ctx.state.targetRefused = true;
  throw new ChatOpsError(ErrorCode.ImageNotFound, `${ctx.data.version} is not in the registry (${ctx.env.registry.host} answered "manifest unknown"); nothing was changed`, {
    command: res.command,
    exitCode: res.exitCode,
    outputTail: rec.outputTail,
  });
}

/** The version that runs now; what maintenance is re-created on, and the rollback target. */
export function currentTag(state: RunbookState): string {
  const tag = state.fromVersion ?? state.pinnedBefore;
  if (!tag) {
    throw new ChatOpsError(ErrorCode.RemoteCommandFailed, 'cannot tell which version runs now (no running engramia-api and no tag pinned in .env), so maintenance cannot be re-created on it', {});
  }
  return tag;
}

/** Runbooks whose alembic commands change the database, so must not go into a container that may die. */
const ALEMBIC_KINDS: ReadonlySet<RunbookData['kind']> = new Set(['rollback', 'migrate']);

/**
 * Why engramia-api cannot be trusted with an `exec` (not running, or restarted by the daemon and so
 * possibly between two crashes), or undefined when it is running and never restarted. A count that
 * cannot be read counts as unstable: a one-off container costs seconds, a killed downgrade more.
 */
async function crashLooping(ctx: StepContext, rec: StepRecord, host: HostState): Promise<string | undefined> {
  if (host.apiState !== 'running') return host.apiState ?? 'missing';
  if (!host.apiId) return 'running, with no container id to check its restarts';
  const res = await run(ctx, rec, cmd.restartCount(ctx.env, host.apiId), { timeout: 'command' });
  const count = res.exitCode === 0 ? Number(res.stdout.toString('utf8').trim()) : Number.NaN;
  rec.outputTail = undefined;
  if (!Number.isInteger(count)) return `running, but its restart count could not be read (docker inspect exited ${res.exitCode ?? res.signal ?? '?'})`;
  return count > 0 ? `crash-looping (running between restarts; the daemon restarted it ${count} times)` : undefined;
}

export const PREFLIGHT: StepDef = {
  id: 'preflight',
  title: () => 'Check the host and record the running version',
  safeToRepeat: true,
  async run(ctx, rec) {
    const host: HostState = await probeHost(ctx.ssh, ctx.env);
    ctx.state.fromVersion = host.runningTag ?? null;
    ctx.state.pinnedBefore = host.pinnedTag;
    // What the job found, before any edit of its own: a runbook that turns maintenance on puts it back to this.
    ctx.state.maintenanceBefore ??= host.maintenanceInEnvFile;
    rec.command = `docker compose -f ${ctx.env.composeFile} ps -a --format json; grep .env`;
    const what = ctx.data.kind === 'rollback' ? 'rollback' : 'deploy';
    if (host.runningTag === ctx.data.version) ctx.state.warnings.push(`${ctx.data.version} is already running; the ${what} goes ahead anyway.`);
    if (host.apiState !== 'running') ctx.state.warnings.push(`engramia-api was ${host.apiState ?? 'missing'} before the ${what}.`);
    if (host.maintenanceInEnvFile) ctx.state.warnings.push(`ENGRAMIA_MAINTENANCE was already set in .env before this ${what}.`);
    const unstable = ALEMBIC_KINDS.has(ctx.data.kind) && host.apiTag ? await crashLooping(ctx, rec, host) : undefined;
    if (unstable && host.apiTag) {
      // A crash-looping release has no container to exec into safely (an exec either is refused or
      // dies with it, exit 137, part-way), yet only its image holds the downgrade scripts of its own
      // migrations: alembic runs in one-off containers of it, for the whole job.
      ctx.state.fromVersion = host.apiTag;
      ctx.state.alembicVia = 'run';
      ctx.state.warnings.push(`engramia-api is ${unstable}: alembic runs in one-off \`docker compose run --rm\` containers of ${host.apiTag}, never by \`exec\` into a container that can die under it.`);
      return { status: 'done', note: `engramia-api ${unstable} on ${host.apiTag}${host.pinnedTag ? `, .env pins ${host.pinnedTag}` : ''}` };
    }
    return { status: 'done', note: `running ${host.runningTag ?? 'nothing'}${host.pinnedTag ? `, .env pins ${host.pinnedTag}` : ''}` };
  },
};

export const LOGIN: StepDef = {
  id: 'login',
  title: () => 'Log in to the registry',
  safeToRepeat: true,
  async run(ctx, rec) {
    // Saved before the login runs: a worker that dies during it must still leave the cleanup to its successor.
    ctx.state.registryLogin = true;
    await ctx.save();
    const res = await run(ctx, rec, cmd.registryLogin(ctx.env, ctx.data.jobId), { timeout: 'login', stdin: ctx.secrets.registryToken });
    if (res.exitCode !== 0) throw loginRefused(ctx, res);
    return { status: 'done', note: `${ctx.env.registry.username}@${ctx.env.registry.host}, in this job's own docker config` };
  },
};

/** The registry's own last words on the card: "exited with 1" alone does not tell a wrong token from an outage. */
function loginRefused(ctx: StepContext, res: ExecResult): ChatOpsError {
  const said = scrub(res.stderr, ctx.knownSecrets).trim().split('\n').filter(Boolean).at(-1);
  const where = `${ctx.env.registry.username}@${ctx.env.registry.host}`;
  return new ChatOpsError(
    ErrorCode.RemoteCommandFailed,
    `docker login ${where} exited with ${res.exitCode ?? res.signal ?? 'no status'}${said ? ` (${said})` : ''}; check the token in ${ctx.env.registry.tokenEnv} and that the registry answers`,
    { command: res.command, exitCode: res.exitCode },
  );
}

/** Removes the job's registry credential from the host; a failure is reported, never silent. */
export async function forgetRegistryLogin(ctx: Pick<StepContext, 'ssh' | 'env' | 'state'>, onlyJob?: string): Promise<string | undefined> {
  if (!ctx.state.registryLogin) return undefined;
  const res = await ctx.ssh.exec(cmd.registryLogout(ctx.env, onlyJob), { timeoutMs: ctx.env.timeouts.command * 1000 }).catch((err: unknown) => err as Error);
  if (!(res instanceof Error) && res.exitCode === 0) {
    ctx.state.registryLogin = false;
    return undefined;
  }
  return `the registry credential may still be on the host in ${onlyJob === undefined ? cmd.registryConfigRoot(ctx.env) : cmd.registryConfigDir(ctx.env, onlyJob)}: remove that folder by hand`;
}

export const REGISTRY_CLEANUP: StepDef = {
  id: 'registry-logout',
  title: () => 'Remove the registry credential from the host',
  safeToRepeat: true,
  async run(ctx, rec) {
    rec.command = showCommand(cmd.registryLogout(ctx.env));
    const problem = await forgetRegistryLogin(ctx);
    if (problem) throw new ChatOpsError(ErrorCode.RemoteCommandFailed, problem, {});
    return { status: 'done', note: `${cmd.registryConfigRoot(ctx.env)} removed` };
  },
};

export const PULL: StepDef = {
  id: 'pull',
  title: (d) => `Pull ${d.version}`,
  safeToRepeat: true,
  async run(ctx, rec) {
    // Read-only, so it goes alongside the pull instead of after it: where the database is now (the migration check's other half).
    const probe = ctx.data.kind === 'deploy' ? probeDbRevision(ctx, rec) : undefined;
    const res = await run(ctx, rec, cmd.pull(ctx.env, ctx.data.version, ctx.data.jobId), { timeout: 'pull' });
    const db = await probe;
    if (db !== undefined) ctx.state.dbRevision = db;
    mustSucceed(refuseMissingImage(ctx, rec, res), 'docker compose pull');
    return { status: 'done' };
  },
};

/**
 * `alembic current` in the running container, outside the step's own record (its remotePid is the pull's, which a
 * successor must be able to find): undefined when there is nothing to read or it did not answer, and INSPECT reads it then.
 */
async function probeDbRevision(ctx: StepContext, rec: StepRecord): Promise<string | null | undefined> {
  const tag = ctx.state.fromVersion;
  if (!tag || ctx.state.dbRevision !== undefined) return undefined;
  const { command, revision } = await quietRevision(ctx, tag, 'current');
  if (revision !== undefined) rec.command = `${rec.command ?? ''}\n${showCommand(command)} (alongside the pull)`.trim();
  return revision;
}

/**
 * `alembic current|heads` by `exec` in the running container of `tag`, outside the step's own record
 * and its remotePid (a successor must find the step's main command by that): undefined when it did not answer.
 */
async function quietRevision(ctx: StepContext, tag: string, which: 'current' | 'heads'): Promise<{ command: RemoteCommand; revision: string | null | undefined }> {
  const command = cmd.alembic(ctx.env, tag, [which]);
  const res = await ctx.ssh.exec(command, { timeoutMs: ctx.env.timeouts.command * 1000, ...(ctx.signal ? { signal: ctx.signal } : {}) }).catch(() => undefined);
  return { command, revision: res?.exitCode === 0 ? cmd.parseRevision(res.stdout.toString('utf8')) : undefined };
}

export const INSPECT: StepDef = {
  id: 'inspect',
  title: () => 'Check for database migrations',
  safeToRepeat: true,
  async run(ctx, rec) {
    // Read-only: the new image's alembic head against the revision the database is on.
    const later = headAlongsideMigration(ctx.data);
    if (!later) {
      const heads = await run(ctx, rec, cmd.imageHeads(ctx.env, ctx.data.version), { timeout: 'command' });
      ctx.state.newHead = heads.exitCode === 0 ? cmd.parseRevision(heads.stdout.toString('utf8')) : null;
    }
    let db: string | null = ctx.state.dbRevision ?? null;
    if (ctx.state.fromVersion && ctx.state.dbRevision === undefined) {
      const cur = await run(ctx, rec, cmd.alembic(ctx.env, ctx.state.fromVersion, ['current']), { timeout: 'command' });
      db = cur.exitCode === 0 ? cmd.parseRevision(cur.stdout.toString('utf8')) : null;
    }
    ctx.state.dbRevision = db;
    rec.exitCode = undefined;
    if (later) return { status: 'done', note: `database at ${db ?? 'an unknown revision'}; ${ctx.data.version}'s head is read alongside the migration` };
    if (ctx.state.newHead && db) {
      return { status: 'done', note: ctx.state.newHead === db ? `no migrations (database at ${db})` : `migrations: ${db} → ${ctx.state.newHead}` };
    }
    return { status: 'done', note: 'could not tell whether this version brings migrations' };
  },
};

/**
 * The new image's head decides nothing before the change when maintenance is already chosen by flag
 * (only the maintenance question shows it). A one-off container of the image costs seconds on a real
 * host, so the head is read instead by `exec` in the new container, alongside the migration itself.
 */
export function headAlongsideMigration(d: Pick<RunbookData, 'kind' | 'maintenance'>): boolean {
  return d.kind === 'deploy' && d.maintenance !== undefined;
}

/** The target image's head, read alongside the migration: null when it did not answer. */
async function probeNewHead(ctx: StepContext, rec: StepRecord): Promise<string | null> {
  const { command, revision } = await quietRevision(ctx, ctx.data.version, 'heads');
  // Put before the migration's own line: recovery quotes a step's last command as the one that ran.
  rec.command = `${showCommand(command)} (alongside the migration)\n${rec.command ?? ''}`.trim();
  return revision ?? null;
}

/** The target's head for a migration whose deploy did not read it before `up` (or whose worker died before saving it). */
async function newHeadNow(ctx: StepContext): Promise<string | null> {
  return (await quietRevision(ctx, ctx.data.version, 'heads')).revision ?? null;
}

export const MAINTENANCE_DECISION: StepDef = {
  id: 'maintenance-decision',
  title: () => 'Decide on maintenance mode',
  safeToRepeat: true,
  async run(ctx) {
    const { data, state } = ctx;
    if (data.maintenance !== undefined) {
      state.maintenance = { on: data.maintenance, reason: data.maintenance ? 'requested with --maintenance' : 'skipped with --no-maintenance' };
      return { status: 'done', note: state.maintenance.reason };
    }
    const gate = state.gates['maintenance'];
    if (gate) {
      const st = await gateStatus(ctx, gate);
      if (st.kind === 'pending') return { status: 'wait', until: st.until, gateId: gate.id };
      if (st.kind === 'expired') {
        // Nobody answered: the safe branch for this gate is to deploy without maintenance.
        state.maintenance = { on: false, reason: `no answer within ${Math.round(ctx.gateTimeoutMs / 60_000)} min: skipped` };
        return { status: 'done', note: state.maintenance.reason };
      }
      const on = st.decision.choice === 'go';
      state.maintenance = { on, reason: `${on ? 'enabled' : 'skipped'} by <@${st.decision.by}>` };
      return { status: 'done', note: `${on ? 'enable' : 'skip'}, decided by ${st.decision.by}` };
    }
    const migrations =
      state.newHead && state.dbRevision
        ? state.newHead === state.dbRevision
          ? `${data.version} brings no database migrations (database at ${code(state.dbRevision)}).`
          : `${data.version} brings database migrations: ${code(state.dbRevision)} → ${code(state.newHead)}. For migrations that drop columns, the runbook says to enable maintenance.`
        : 'The bot could not tell whether this version brings migrations.';
    const g = await openGate(ctx, {
      id: 'maintenance',
      kind: 'maintenance',
      go: 'maintenance.enable',
      noGo: 'maintenance.skip',
      question: `Enable maintenance mode for deploying ${data.version} to ${data.env}?`,
      plan: [state.dbRevision ?? '', state.newHead ?? ''],
      detail: [
        migrations,
        `Maintenance makes every endpoint but /v1/health answer 503 until the deploy turns it off again. With no answer, the deploy goes ahead *without* maintenance.`,
      ],
    });
    return { status: 'wait', until: Date.parse(g.expiresAt), gateId: g.id };
  },
};

/**
 * `up -d` of a crash-looping release exits 0 ("Started") and the container dies again: the note
 * must not suggest that the API now answers 503.
 */
export function recreatedCrashLoop(ctx: StepContext): string {
  return ctx.state.alembicVia === 'run' ? ' (it was crash-looping: until another version runs, the API answers nothing, not 503)' : '';
}

export const MAINTENANCE_ON: StepDef = {
  id: 'maintenance-on',
  title: () => 'Turn maintenance on',
  safeToRepeat: true,
  async run(ctx, rec) {
    if (!ctx.state.maintenance?.on) return { status: 'skipped', note: ctx.state.maintenance?.reason ?? 'not requested' };
    const tag = currentTag(ctx.state);
    try {
      await editEnv(ctx, rec, 'ENGRAMIA_MAINTENANCE', 'true');
    } catch (err) {
      // The card must not keep saying "on" for a maintenance that never started.
      ctx.state.maintenance = { on: false, reason: 'turning it on failed; traffic was never stopped' };
      throw err;
    }
    ctx.state.maintenanceOnByUs = true;
    await ctx.store.setMaintenanceSince(ctx.data.env, new Date().toISOString()).catch(() => undefined);
    // Re-created on the version running now: the new one starts only after this.
    mustSucceed(await run(ctx, rec, cmd.up(ctx.env, tag, [cmd.API]), { timeout: 'up' }), 'docker compose up -d engramia-api');
    const crashLoop = recreatedCrashLoop(ctx);
    // A crash-looping release never answers 503; waiting for it would only delay the rollback.
    const seen = crashLoop ? '' : await untilMaintenanceAnswers(ctx);
    return { status: 'done', note: `engramia-api re-created on ${tag}${crashLoop}${seen}` };
  },
};

const MAINTENANCE_POLL_MS = 200;

/**
 * A re-created container is not listening for about a second (Caddy answers 502). Without this wait the
 * next step replaced it before it ever answered, and users met Caddy's 502s, never the maintenance 503:
 * the job goes on once the API says maintenance, or after `verifySettleSeconds` with a warning.
 */
async function untilMaintenanceAnswers(ctx: StepContext): Promise<string> {
  const api = new EngramiaApi({ baseUrl: ctx.env.apiBaseUrl, apiKey: ctx.secrets.apiKey });
  const began = Date.now();
  const v = await api.untilVersion((x) => x.kind === 'maintenance', began + ctx.verifySettleMs, MAINTENANCE_POLL_MS);
  if (v.kind === 'maintenance') return `; /v1/version answers 503 (maintenance) after ${((Date.now() - began) / 1000).toFixed(1)} s`;
  const said = v.kind === 'ok' ? `${v.httpStatus} ${v.value.app_version}` : 'no answer';
  ctx.state.warnings.push(`Maintenance was turned on, but /v1/version still answered ${said} after ${Math.round(ctx.verifySettleMs / 1000)} s; the deploy went on.`);
  return `; /v1/version answers ${said}, not 503 (see warnings)`;
}

export const UP: StepDef = {
  id: 'up',
  title: (d) => `Start ${d.version} (engramia-api, caddy)`,
  safeToRepeat: true,
  changesRunningVersion: true,
  async run(ctx, rec) {
    mustSucceed(await run(ctx, rec, cmd.up(ctx.env, ctx.data.version, [cmd.API, 'caddy']), { timeout: 'up' }), 'docker compose up -d');
    return { status: 'done' };
  },
  async settle(ctx) {
    const host = await probeHost(ctx.ssh, ctx.env);
    if (host.apiState === 'running' && host.runningTag === ctx.data.version) return { status: 'done', note: `engramia-api already runs ${ctx.data.version}` };
    return { status: 'not-run', note: `engramia-api ${host.apiState === 'running' ? `runs ${host.runningTag ?? '?'}` : `is ${host.apiState ?? 'missing'}`}` };
  },
};

export const MIGRATE: StepDef = {
  id: 'migrate',
  title: () => 'Run database migrations',
  // A second `upgrade head` next to one still running, or after one that died halfway through a
  // non-transactional migration, can corrupt data: after an interruption the host is read instead.
  safeToRepeat: false,
  changesRunningVersion: true,
  orphan: 'wait',
  runsInContainer: 'alembic',
  // Verification checks deep health, whose migration check catches a database left behind.
  skippable: true,
  async run(ctx, rec) {
    // Read-only and without the database: `alembic heads` cannot race the upgrade.
    const head = ctx.state.newHead === undefined ? probeNewHead(ctx, rec) : undefined;
    const res = await run(ctx, rec, cmd.alembic(ctx.env, ctx.data.version, ['upgrade', 'head']), { timeout: 'migrate' });
    if (head) ctx.state.newHead = await head;
    mustSucceed(res, 'alembic upgrade head');
    const upgraded = /Running upgrade/.test(rec.outputTail ?? '');
    const was = ctx.state.dbRevision ? ` (was ${ctx.state.dbRevision})` : '';
    return { status: 'done', note: upgraded ? `database now at ${ctx.state.newHead ?? 'head'}${was}` : 'already at head' };
  },
  async settle(ctx) {
    const res = await ctx.ssh.exec(cmd.alembic(ctx.env, ctx.data.version, ['current']), { timeoutMs: ctx.env.timeouts.command * 1000 });
    const current = res.exitCode === 0 ? cmd.parseRevision(res.stdout.toString('utf8')) : null;
    if (ctx.state.newHead === undefined) ctx.state.newHead = await newHeadNow(ctx);
    const { newHead, dbRevision } = ctx.state;
    if (!current) return { status: 'unknown', note: `\`alembic current\` did not answer (exit ${res.exitCode ?? res.signal ?? '?'})` };
    if (newHead && current === newHead) return { status: 'done', note: `database already at ${current}, the head of ${ctx.data.version}` };
    if (dbRevision && current === dbRevision) return { status: 'not-run', note: `database still at ${current}, where it was before; no migration took effect` };
    return { status: 'unknown', note: `database at ${current}: neither where it was (${dbRevision ?? 'unknown'}) nor the head of ${ctx.data.version} (${newHead ?? 'unknown'})` };
  },
};

export const MAINTENANCE_OFF: StepDef = {
  id: 'maintenance-off',
  title: () => 'Turn maintenance off',
  safeToRepeat: true,
  changesRunningVersion: true,
  async run(ctx, rec) {
    if (!ctx.state.maintenanceOnByUs) return { status: 'skipped', note: 'maintenance was not turned on' };
    await editEnv(ctx, rec, 'ENGRAMIA_MAINTENANCE', null);
    mustSucceed(await run(ctx, rec, cmd.up(ctx.env, ctx.data.version, [cmd.API]), { timeout: 'up' }), 'docker compose up -d engramia-api');
    ctx.state.maintenanceOnByUs = false;
    // The card's Maintenance field must not keep saying "on" once it is off again.
    ctx.state.maintenance = { on: false, reason: `on during the ${ctx.data.kind}, off again` };
    await ctx.store.setMaintenanceSince(ctx.data.env, null).catch(() => undefined);
    return { status: 'done', note: `engramia-api re-created on ${ctx.data.version}` };
  },
};

export const PIN: StepDef = {
  id: 'pin',
  title: (d) => `Pin ${d.version} in .env`,
  safeToRepeat: true,
  changesRunningVersion: true,
  async run(ctx, rec) {
    await editEnv(ctx, rec, ctx.env.tagVariable, ctx.data.version);
    return { status: 'done', note: `${ctx.env.tagVariable}=${ctx.data.version}` };
  },
  async settle(ctx) {
    const host = await probeHost(ctx.ssh, ctx.env);
    return host.pinnedTag === ctx.data.version
      ? { status: 'done', note: `.env already pins ${ctx.data.version}` }
      : { status: 'not-run', note: `.env pins ${host.pinnedTag ?? 'no tag'}` };
  },
};

export const PRUNE: StepDef = {
  id: 'prune',
  title: () => 'Prune old images',
  safeToRepeat: true,
  changesRunningVersion: true,
  async run(ctx, rec) {
    const res = await run(ctx, rec, cmd.prune(ctx.env), { timeout: 'up' });
    // A failed prune leaves disk in use but the deploy intact: warn, don't fail.
    if (res.exitCode !== 0) {
      ctx.state.warnings.push(`docker image prune exited with ${res.exitCode}; old images were kept.`);
      return { status: 'done', note: 'prune failed (warning)' };
    }
    const freed = /Total reclaimed space:\s*(.+)/.exec(res.stdout.toString('utf8') + res.stderr)?.[1];
    return { status: 'done', ...(freed ? { note: `reclaimed ${freed.trim()}` } : {}) };
  },
};

const VERIFY_POLL_MS = 1000;

export const VERIFY: StepDef = {
  id: 'verify',
  title: (d) => `Verify ${d.version}: version, health, deep health`,
  safeToRepeat: true,
  changesRunningVersion: true,
  async run(ctx, rec) {
    const { data } = ctx;
    const api = new EngramiaApi({ baseUrl: ctx.env.apiBaseUrl, apiKey: ctx.secrets.apiKey });
    // A fresh container needs a moment; poll the version briefly before judging.
    const v = await api.untilVersion((x) => x.kind === 'ok' && x.value.app_version === data.version, Date.now() + ctx.verifySettleMs, VERIFY_POLL_MS);
    const seen = v.kind === 'ok' ? v.value.app_version : v.kind === 'maintenance' ? 'maintenance (503)' : describeError(v.error).title;
    const report = await gatherHealth({ kind: 'health', env: data.env, origin: data.origin, requestedAt: data.requestedAt }, { jobId: data.jobId, env: ctx.env, secrets: ctx.secrets, ssh: ctx.ssh });
    // Shown in the thread by the engine, whether the step passes or fails.
    ctx.shown.set(rec.id, [healthMsg(report)]);
    const version = report.version.kind === 'ok' ? report.version.value.app_version : undefined;
    const overall = overallOf(report);
    rec.command = `GET ${ctx.env.apiBaseUrl}/v1/version, /v1/health, /v1/health/deep`;
    if (version !== data.version) {
      throw new ChatOpsError(ErrorCode.RemoteCommandFailed, `the API reports ${version ?? seen}, not ${data.version}, after ${Math.round(ctx.verifySettleMs / 1000)} s`, {});
    }
    if (overall === 'error' || overall === 'unknown') {
      throw new ChatOpsError(ErrorCode.RemoteCommandFailed, `deep health is ${overall} after the deploy`, {});
    }
    if (overall === 'degraded') {
      const failing = report.deep?.kind === 'ok' ? Object.entries(report.deep.value.checks).filter(([, c]) => c.status === 'error').map(([n]) => n) : [];
      ctx.state.degraded = true;
      ctx.state.warnings.push(`Deep health is degraded (${failing.join(', ') || 'a check failed'}); the deploy itself succeeded.`);
      return { status: 'done', note: `version ${version}, health degraded` };
    }
    return { status: 'done', note: `version ${version}, health ok` };
  },
};

export const DEPLOY_STEPS: readonly StepDef[] = [PREFLIGHT, LOGIN, PULL, REGISTRY_CLEANUP, INSPECT, MAINTENANCE_DECISION, MAINTENANCE_ON, UP, MIGRATE, MAINTENANCE_OFF, PIN, PRUNE, VERIFY];

/** The commands a dry run shows: the plan as the host would see it, secrets masked. */
export function dryRunPlan(env: EnvironmentConfig, data: RunbookData): string[] {
  const running = '<running tag>';
  const lines: string[] = [];
  const add = (c: RemoteCommand, stdin?: string) => lines.push(showCommand(c) + (stdin ? ` <<< $${stdin}` : ''));
  add(cmd.registryLogin(env, data.jobId), env.registry.tokenEnv);
  add(cmd.pull(env, data.version, data.jobId));
  add(cmd.registryLogout(env));
  const later = headAlongsideMigration(data);
  if (!later) add(cmd.imageHeads(env, data.version));
  add(cmd.alembic(env, running, ['current']));
  if (data.maintenance !== false) {
    lines.push(data.maintenance === true ? '# maintenance on (--maintenance):' : '# if maintenance is chosen at the gate:');
    add(cmd.setEnvVar(env, 'ENGRAMIA_MAINTENANCE', 'true'));
    add(cmd.up(env, running, [cmd.API]));
  }
  add(cmd.up(env, data.version, [cmd.API, 'caddy']));
  add(cmd.alembic(env, data.version, ['upgrade', 'head']));
  if (later) {
    lines.push('# alongside it (read-only):');
    add(cmd.alembic(env, data.version, ['heads']));
  }
  if (data.maintenance !== false) {
    lines.push('# then maintenance off:');
    add(cmd.unsetEnvVar(env, 'ENGRAMIA_MAINTENANCE'));
    add(cmd.up(env, data.version, [cmd.API]));
  }
  add(cmd.setEnvVar(env, env.tagVariable, data.version));
  add(cmd.prune(env));
  lines.push(`# verify: GET ${env.apiBaseUrl}/v1/version (expect ${data.version}), /v1/health, /v1/health/deep`);
  return lines;
}


