import { DelayedError, type Job } from 'bullmq';
import type { EnvSecrets } from '../config/load.js';
import type { EnvironmentConfig } from '../config/schema.js';
import { EngramiaApi } from '../engramia/client.js';
import { probeHost } from '../engramia/host.js';
import { audit, via } from '../audit.js';
import { ChatOpsError, ErrorCode, asChatOpsError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { decidedGateMsg, deployCard, stepReply } from '../render/deploy.js';
import { describeError } from '../render/errors.js';
import { closedGateMsg, hostNowLine, hostUnreadableLine, maintenanceField, maintenanceLines, stoppedLine } from '../render/failure.js';
import { code, esc, type Msg } from '../render/model.js';
import { RUNBOOKS, cardView } from '../runbooks/catalog.js';
import { gateMessageKey, openGate } from '../runbooks/gates.js';
import { forgetRegistryLogin } from '../runbooks/deploy.js';
import type { StepContext, RunbookData, RunbookState, StepDef, StepResult } from '../runbooks/kernel/types.js';
import { recoverStep } from './recovery.js';
import type { StepRecord } from '../runbooks/types.js';
import type { SshExecutor } from '../ssh/executor.js';
import { JobReporter, type ReporterRegistry } from './reporter.js';
import type { LockHolder, OpsStore } from './store.js';
import type { Outbox } from './types.js';

export interface RunbookJobDeps {
  env: EnvironmentConfig;
  secrets: EnvSecrets;
  ssh: SshExecutor;
  store: OpsStore;
  outbox: Outbox;
  log: Logger;
  knownSecrets: string[];
  gateTimeoutMs: number;
  verifySettleMs: number;
  lockTtlMs: number;
  minCardIntervalMs?: number;
  /** The worker's reporters: a job resumed in this process keeps its Slack queue and what it delivered late. */
  reporters?: ReporterRegistry;
  /** True once the worker is shutting down: the job checkpoints at the next step boundary. */
  stopping?: () => boolean;
  /** Aborted when shutdown cannot wait any longer: a running step that is safe to repeat is stopped. */
  signal?: AbortSignal;
  /** Throws JOB_LOCK_LOST unless this worker still owns the job; called before every step. */
  fence?: () => Promise<void>;
  /** True once shutdown left this job's running step to the next worker: nothing here may end the job. */
  abandoned?: () => boolean;
  metrics?: Pick<Metrics, 'stepDuration'>;
}

/** Bounded: a host that stays unreachable fails the step instead of being retried forever. */
const SSH_RETRIES = 3;
const SSH_BACKOFF_MS = 1000;

function infoMsg(text: string): Msg {
  return { summary: text.replace(/[*`]/g, ''), parts: [{ type: 'section', text }] };
}

/** The declared step list of each runbook. */
export function stepsFor(data: Pick<RunbookData, 'kind'>): readonly StepDef[] {
  return RUNBOOKS[data.kind].steps;
}

function initialState(data: RunbookData): RunbookState {
  return {
    steps: stepsFor(data).map((s) => ({ id: s.id, title: s.title(data), status: 'pending' as const })),
    outcome: 'running',
    gates: {},
    warnings: [],
    startedAt: new Date().toISOString(),
  };
}

/**
 * A job saved by an older version of the bot may list other steps (a step added since, such as the four-eyes
 * check). The engine pairs steps and records by position, so a mismatch would run the wrong step or one twice:
 * records are re-paired by id, and a step new to this job is pending, or skipped where the job is already past it.
 */
export function alignSteps(state: RunbookState, steps: readonly StepDef[], data: RunbookData): void {
  if (state.steps.length === steps.length && state.steps.every((r, i) => r.id === steps[i]!.id)) return;
  const known = new Map(state.steps.map((r) => [r.id, r]));
  const out: StepRecord[] = steps.map((s) => known.get(s.id) ?? { id: s.id, title: s.title(data), status: 'pending' });
  let passed = false;
  for (let i = out.length - 1; i >= 0; i--) {
    const rec = out[i]!;
    if (known.has(rec.id)) passed ||= rec.status !== 'pending';
    else if (passed) Object.assign(rec, { status: 'skipped', note: 'not in the runbook when this job passed this point (the bot was upgraded since)' });
  }
  state.steps = out;
}

/** What one step's turn came to: on to the next step, or the job ends here with this result. */
type Turn = { kind: 'next' } | { kind: 'end'; result: { outcome: string } };
const NEXT: Turn = { kind: 'next' };

/** One run of a job by this worker: the BullMQ job, the worker's token and deps, and what the steps see. */
interface Run {
  job: Job<RunbookData>;
  token: string | undefined;
  deps: RunbookJobDeps;
  ctx: StepContext;
}

/**
 * Runs a runbook one declared step at a time, saving the state after every step so a resumed job
 * never repeats a finished one. Waiting on a gate parks the job (delayed) instead of holding a worker slot.
 */
export async function runRunbookJob(job: Job<RunbookData>, token: string | undefined, deps: RunbookJobDeps): Promise<{ outcome: string }> {
  const data = job.data;
  const state: RunbookState = data.state ?? initialState(data);
  alignSteps(state, stepsFor(data), data);
  const reporter =
    deps.reporters?.acquire(data.jobId, data.origin, deps.log) ??
    new JobReporter(data.origin, { outbox: deps.outbox, log: deps.log, ...(deps.minCardIntervalMs !== undefined ? { minUpdateIntervalMs: deps.minCardIntervalMs } : {}) });
  if (data.dryRun) return dryRun(data, state, deps, reporter);

  // Step 1 does not wait for Slack: the card is queued, step replies queue behind it in the thread lane (they
  // need its ts), and the next save records the card once posted (recordInto), so a resumed job adopts it.
  void reporter.start(deployCard(cardView(data, state)), state.card, 0);
  if (state.outcome === 'waiting') state.outcome = 'running';
  const renew = setInterval(() => {
    void deps.store.renewLock(data.env, data.jobId, deps.lockTtlMs).catch(() => undefined);
  }, Math.max(1000, Math.floor(deps.lockTtlMs / 3)));
  const run: Run = { job, token, deps, ctx: stepContext(job, deps, state, reporter) };
  try {
    announceResume(run.ctx);
    for (const [i, step] of stepsFor(data).entries()) {
      const turn = await takeTurn(run, i, step);
      if (turn.kind === 'end') return turn.result;
    }
    return await finishSucceeded(run.ctx);
  } catch (err) {
    if (err instanceof DelayedError) throw err;
    const error = asChatOpsError(err);
    // Another worker owns the job now: reporting or releasing anything here would undo its work.
    if (error.code === ErrorCode.JobLockLost) throw error;
    deps.log.error({ err: error.message, code: error.code }, 'deploy job crashed');
    const i = state.steps.findIndex((s) => s.status === 'running');
    return await finishFailed(run.ctx, Math.max(0, i), `the bot hit an unexpected error: ${error.message}`);
  } finally {
    clearInterval(renew);
  }
}

function stepContext(job: Job<RunbookData>, deps: RunbookJobDeps, state: RunbookState, reporter: JobReporter): StepContext {
  const data = job.data;
  return {
    data,
    state,
    env: deps.env,
    secrets: deps.secrets,
    ssh: deps.ssh,
    store: deps.store,
    reporter,
    outbox: deps.outbox,
    log: deps.log,
    knownSecrets: deps.knownSecrets,
    fullOutput: new Map(),
    shown: new Map(),
    // updateData replaces the whole data object: always write the full, merged value.
    save: async () => {
      // Slack may have taken the card or a gate message since the last save (it was down when they were queued).
      reporter.recordInto(state, gateMessageKey);
      await job.updateData({ ...data, state });
    },
    gateTimeoutMs: deps.gateTimeoutMs,
    verifySettleMs: deps.verifySettleMs,
  };
}

function announceResume(ctx: StepContext): void {
  if (!ctx.state.checkpointed) return;
  ctx.state.checkpointed = false;
  const next = ctx.state.steps.findIndex((s) => s.status !== 'done' && s.status !== 'skipped');
  if (next >= 0) void ctx.reporter.reply(infoMsg(`♻️ Picked up by a new worker after a restart: resuming at step ${next + 1} (${ctx.state.steps[next]!.title}). Finished steps are not run again.`));
}

/** One step: the checks before it, its run (or its recovery after an interruption), and its record after. */
async function takeTurn(run: Run, i: number, step: StepDef): Promise<Turn> {
  const { ctx } = run;
  const rec = ctx.state.steps[i]!;
  if (rec.status === 'done' || rec.status === 'skipped') return NEXT;
  const stop = await stopBefore(run, i, step, rec);
  if (stop) return stop;
  // Found "running": the worker that ran it is gone (crash, kill -9, lost lock).
  const interrupted = rec.gateId ? 'waiting for a decision' : rec.status === 'running' && !rec.parked ? `the worker running it stopped (attempt ${rec.attempts ?? 1})` : undefined;
  if (interrupted && !rec.gateId) {
    ctx.state.warnings.push(`A worker stopped during step ${i + 1} (${rec.title}); another resumed the job there.`);
    void ctx.reporter.reply(infoMsg(`♻️ Worker restarted: resuming at step ${i + 1} (${rec.title}). Checking what the host shows before doing anything.`));
  }
  const outcome = await attempt(run, i, step, rec, interrupted);
  if (outcome.kind === 'end') return outcome;
  await complete(run, step, rec, outcome.result);
  return NEXT;
}

/** The safe point before a step: a cancel, a worker shutting down, or a lost lock ends or hands back the job here. */
async function stopBefore(run: Run, i: number, step: StepDef, rec: StepRecord): Promise<Turn | undefined> {
  const { ctx, deps } = run;
  const cancel = await deps.store.cancelRequest(ctx.data.jobId);
  if (cancel) {
    ctx.log.info({ step: step.id, by: cancel.by }, 'job cancelled at a safe point');
    return end(await finishFailed(ctx, i, `cancelled by ${cancel.by} before this step`, 'cancelled'));
  }
  if (deps.stopping?.() && rec.status !== 'running') {
    // Shutting down: hand the job back between steps, lock kept, for the next worker to continue.
    ctx.log.info({ step: step.id }, 'worker stopping: job checkpointed before this step');
    return checkpoint(run);
  }
  await deps.fence?.();
  const taken = await environmentLockTaken(deps.store, ctx.data, deps.lockTtlMs);
  if (!taken) return undefined;
  ctx.log.warn({ step: step.id, holder: taken.holder?.jobId ?? null }, 'environment lock taken over: job stops before this step');
  return end(await finishFailed(ctx, i, taken.reason, 'failed', { lockLost: true }));
}

const end = (result: { outcome: string }): Turn => ({ kind: 'end', result });

type Attempt = { kind: 'ran'; result: StepResult } | { kind: 'end'; result: { outcome: string } };

/**
 * Runs the step, first settling an interruption from the host (recovery.ts). A dropped SSH connection is
 * recovered the same way, a bounded number of times; any other error fails the job at this step.
 */
async function attempt(run: Run, i: number, step: StepDef, rec: StepRecord, interruptedBy: string | undefined): Promise<Attempt> {
  const { ctx, deps } = run;
  let interrupted = interruptedBy;
  for (let dropped = 0; ; dropped += 1) {
    if (interrupted) {
      const r = await recover(run, i, step, rec, interrupted);
      if (r) return r;
    }
    await markRunning(ctx, step, rec);
    const began = Date.now();
    // Only a step that is safe to repeat may be stopped by a shutdown; a migration is never killed halfway.
    ctx.signal = step.safeToRepeat ? deps.signal : undefined;
    try {
      return { kind: 'ran', result: await step.run(ctx, rec) };
    } catch (err) {
      if (deps.abandoned?.()) throw new ChatOpsError(ErrorCode.JobLockLost, 'this worker left the job to the next one at shutdown', { jobId: ctx.data.jobId });
      const error = asChatOpsError(err);
      if (error.code === ErrorCode.Interrupted && step.safeToRepeat) {
        // Stopped on purpose at shutdown: the next worker runs this step again from the start.
        rec.status = 'pending';
        rec.remotePid = undefined;
        ctx.log.info({ step: step.id }, 'worker stopping: step interrupted and checkpointed');
        return checkpoint(run);
      }
      const connection = error.code === ErrorCode.SshDisconnected || error.code === ErrorCode.SshConnectFailed || error.code === ErrorCode.Interrupted;
      if (!connection || dropped >= SSH_RETRIES) return { kind: 'end', result: await stepFailed(run, i, step, rec, error, began) };
      interrupted = error.code === ErrorCode.Interrupted ? 'the worker stopped it while shutting down' : `the SSH connection failed (${error.message})`;
      ctx.log.warn({ step: step.id, attempt: dropped + 1, err: error.message }, 'ssh trouble during a step: recovering it');
      await new Promise((r) => setTimeout(r, SSH_BACKOFF_MS * 2 ** dropped));
    }
  }
}

/** Settles an interrupted step: parks on its question, ends the job, marks it settled, or lets it run again (undefined). */
async function recover(run: Run, i: number, step: StepDef, rec: StepRecord, interrupted: string): Promise<Attempt | undefined> {
  const { ctx } = run;
  const r = await recoverStep(ctx, step, rec, interrupted);
  if (r.kind === 'wait') {
    rec.status = 'running';
    return park(run, r.until, r.gateId);
  }
  if (r.kind === 'abort') {
    rec.status = 'failed';
    rec.note = r.reason;
    rec.endedAt = new Date().toISOString();
    await ctx.save();
    return { kind: 'end', result: await finishFailed(ctx, i, r.reason, r.cancelled ? 'cancelled' : 'failed') };
  }
  if (r.kind === 'settled') {
    ctx.log.info({ step: step.id, status: r.status, note: r.note }, 'interrupted step settled without running it again');
    return { kind: 'ran', result: { status: r.status, note: r.note } };
  }
  ctx.log.info({ step: step.id, note: r.note }, 'interrupted step runs again');
  void ctx.reporter.reply(infoMsg(`↻ *${esc(rec.title)}* runs again. ${esc(r.note)}`));
  return undefined;
}

async function markRunning(ctx: StepContext, step: StepDef, rec: StepRecord): Promise<void> {
  rec.status = 'running';
  rec.parked = undefined;
  rec.attempts = (rec.attempts ?? 0) + 1;
  rec.startedAt ??= new Date().toISOString();
  rec.command = undefined;
  rec.outputTail = undefined;
  rec.exitCode = undefined;
  await ctx.save();
  void audit(ctx.store, ctx.log, { type: 'step', ...via(ctx.data.origin), jobId: ctx.data.jobId, env: ctx.data.env, step: step.id, status: 'started', attempt: rec.attempts });
  ctx.reporter.setCard(deployCard(cardView(ctx.data, ctx.state)));
}

async function stepFailed(run: Run, i: number, step: StepDef, rec: StepRecord, error: ChatOpsError, began: number): Promise<{ outcome: string }> {
  const { ctx } = run;
  const { data } = ctx;
  rec.status = 'failed';
  rec.endedAt = new Date().toISOString();
  rec.durationMs = Date.now() - began;
  rec.note = describeError(error).title.replace(/[*`]/g, '');
  run.deps.metrics?.stepDuration.observe({ kind: data.kind, step: step.id, status: 'failed' }, rec.durationMs / 1000);
  ctx.log.warn({ step: step.id, code: error.code, err: error.message }, 'deploy step failed');
  void audit(ctx.store, ctx.log, { type: 'step', ...via(data.origin), jobId: data.jobId, env: data.env, step: step.id, status: 'failed', exitCode: rec.exitCode ?? null, code: error.code });
  await ctx.save();
  postStep(ctx, rec);
  return finishFailed(ctx, i, rec.note, error.code === ErrorCode.Cancelled ? 'cancelled' : 'failed');
}

/** Records a step's result: done or skipped (saved, replied, shown), or waiting at a gate (parked). */
async function complete(run: Run, step: StepDef, rec: StepRecord, result: StepResult): Promise<void> {
  const { ctx } = run;
  const { data } = ctx;
  if (result.status === 'wait') {
    rec.parked = true;
    return park(run, result.until, result.gateId);
  }
  rec.status = result.status;
  if (result.note !== undefined) rec.note = result.note;
  void audit(ctx.store, ctx.log, { type: 'step', ...via(data.origin), jobId: data.jobId, env: data.env, step: step.id, status: rec.status, exitCode: rec.exitCode ?? null });
  rec.endedAt = new Date().toISOString();
  rec.durationMs = Date.now() - Date.parse(rec.startedAt ?? rec.endedAt);
  run.deps.metrics?.stepDuration.observe({ kind: data.kind, step: step.id, status: rec.status }, rec.durationMs / 1000);
  await ctx.save();
  if (result.status === 'done') postStep(ctx, rec);
  ctx.reporter.setCard(deployCard(cardView(data, ctx.state)));
  // A decided gate shows its decision in place of the buttons.
  await refreshDecidedGates(ctx);
}

/** Hands the job back at a step boundary (shutdown): the lock stays; the next worker continues at once. */
async function checkpoint(run: Run): Promise<never> {
  run.ctx.state.checkpointed = true;
  return suspend(run, Date.now() + 100);
}

/** Parks the job until `until` (a gate's expiry, or sooner when someone presses it). */
async function park(run: Run, until: number, gateId: string): Promise<never> {
  const { ctx, deps } = run;
  ctx.state.outcome = 'waiting';
  await ctx.save();
  ctx.reporter.setCard(deployCard(cardView(ctx.data, ctx.state)));
  await ctx.reporter.flush(15_000);
  // The lock must outlive the wait, or another deploy could slip in while this one is parked.
  await deps.store.renewLock(ctx.data.env, ctx.data.jobId, until - Date.now() + deps.lockTtlMs);
  return suspend(run, until, gateId);
}

/**
 * The one way a job leaves the worker without ending: saved, moved to BullMQ's delayed set until `at`. For a
 * gate, a press or a cancel that landed while the job was still active could not wake it: look once more.
 */
async function suspend(run: Run, at: number, gateId?: string): Promise<never> {
  const { job, token, ctx, deps } = run;
  if (!gateId) await ctx.save();
  await job.moveToDelayed(at, token);
  if (gateId && ((await deps.store.readGate(ctx.data.jobId, gateId)) || (await deps.store.cancelRequest(ctx.data.jobId)))) await job.promote().catch(() => undefined);
  throw new DelayedError();
}

/** Above this, output goes to the thread as a file rather than a cut-down code block. */
const FILE_THRESHOLD = 2500;

function postStep(ctx: StepContext, rec: StepRecord): void {
  for (const msg of ctx.shown.get(rec.id) ?? []) void ctx.reporter.reply(msg);
  ctx.shown.delete(rec.id);
  const full = ctx.fullOutput.get(rec.id) ?? '';
  ctx.fullOutput.delete(rec.id);
  if (full.length <= FILE_THRESHOLD) {
    void ctx.reporter.reply(stepReply(rec));
    return;
  }
  void ctx.reporter.reply(stepReply(rec, { outputTail: `${rec.outputTail?.split('\n').slice(-8).join('\n') ?? ''}\n(full output in the file below)` }));
  void ctx.reporter.replyFile(`${ctx.data.jobId}-${rec.id}.log`, `${rec.title}: output`, full);
}

async function refreshDecidedGates(ctx: StepContext): Promise<void> {
  for (const gate of Object.values(ctx.state.gates)) {
    if (gate.decision && gate.postedTs && !gate.shown) {
      gate.shown = true;
      const text =
        gate.id === 'maintenance'
          ? `Maintenance: ${ctx.state.maintenance?.on ? 'on for this deploy' : 'skipped for this deploy'}.`
          : gate.decision.choice === 'go'
            ? 'Approved.'
            : 'Declined.';
      void ctx.reporter.updateReply({ channel: ctx.data.origin.channel, ts: gate.postedTs }, decidedGateMsg(gate, text));
      await ctx.save();
    }
  }
}

async function finishSucceeded(ctx: StepContext): Promise<{ outcome: string }> {
  const { data, state } = ctx;
  const leftover = await forgetRegistryLogin(ctx);
  if (leftover) state.warnings.push(`Could not remove the registry credential: ${leftover}.`);
  state.outcome = state.degraded || leftover ? 'succeeded_with_warnings' : 'succeeded';
  state.summary = RUNBOOKS[data.kind].success(ctx);
  await ctx.save();
  await record(ctx);
  // Free the environment before the final card shows: whoever reads "succeeded" may deploy again at once.
  await ctx.store.releaseLock(data.env, data.jobId);
  void audit(ctx.store, ctx.log, { type: 'lock', action: 'released', ...via(data.origin), env: data.env, jobId: data.jobId, outcome: state.outcome });
  ctx.reporter.setCard(deployCard(cardView(data, state)));
  await ctx.reporter.flush();
  return { outcome: state.outcome };
}

/** A runbook's clean-up step (maintenance back as it was) runs even when the job stops before it. */
async function runCleanup(ctx: StepContext): Promise<void> {
  const step = RUNBOOKS[ctx.data.kind].cleanup;
  const rec = step ? ctx.state.steps[stepsFor(ctx.data).indexOf(step)] : undefined;
  if (!step || rec?.status !== 'pending') return;
  rec.status = 'running';
  rec.startedAt = new Date().toISOString();
  try {
    const r = await step.run(ctx, rec);
    rec.status = r.status === 'wait' ? 'failed' : r.status;
    if (r.status !== 'wait' && r.note !== undefined) rec.note = r.note;
  } catch (err) {
    rec.status = 'failed';
    rec.note = describeError(asChatOpsError(err)).title.replace(/[*`]/g, '');
    ctx.log.warn({ step: step.id, err: asChatOpsError(err).message }, 'clean-up step failed');
  }
  rec.endedAt = new Date().toISOString();
  rec.durationMs = Date.parse(rec.endedAt) - Date.parse(rec.startedAt);
  await ctx.save();
  postStep(ctx, rec);
}

/** Whether the API answers 503 for maintenance now; undefined when it does not answer. */
async function apiInMaintenance(ctx: StepContext): Promise<boolean | undefined> {
  try {
    const v = await new EngramiaApi({ baseUrl: ctx.env.apiBaseUrl, apiKey: ctx.secrets.apiKey }).version();
    return v.kind === 'maintenance' ? true : v.kind === 'ok' ? false : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The environment lock is what keeps two jobs from changing one host at once. Renewed (not only read) before
 * each step, as the job's own BullMQ lock is: an admin's `unlock`, or a Redis outage longer than the lock,
 * leaves it to someone else, and this job must not take another step. Undefined while the lock is this job's.
 */
async function environmentLockTaken(store: OpsStore, data: RunbookData, ttlMs: number): Promise<{ reason: string; holder: LockHolder | undefined } | undefined> {
  if (await store.renewLock(data.env, data.jobId, ttlMs)) return undefined;
  const holder = await store.readLock(data.env);
  const now = holder ? `it is now held by ${holder.command} (${holder.user}, job ${holder.jobId})` : 'nobody holds it now (an admin unlocked it, or it expired while Redis was unreachable)';
  return { reason: `this job no longer holds the lock on ${data.env}: ${now}. It stopped before this step so that two jobs never change ${data.env} at once`, holder };
}

/** Says exactly what state the host is in and what to do next; maintenance is never left on silently. */
async function finishFailed(ctx: StepContext, stepIndex: number, reason: string, outcome: 'failed' | 'cancelled' = 'failed', opts: { lockLost?: boolean } = {}): Promise<{ outcome: string }> {
  const { data, state, env } = ctx;
  state.outcome = outcome;
  // Without the lock the host is someone else's to change: no clean-up step, and only this job's own credential folder.
  if (!opts.lockLost) await runCleanup(ctx);
  const failedStep = stepsFor(data)[stepIndex];
  const lines: string[] = [stoppedLine(outcome, state.steps[stepIndex]?.title ?? '?', reason)];
  // Every way out of a job removes the registry credential it may have left on the host.
  const leftover = await forgetRegistryLogin(ctx, opts.lockLost ? data.jobId : undefined);
  if (leftover) lines.push(`⚠️ ${esc(leftover)}.`);
  let runningTag: string | undefined;
  let maintenanceOn: boolean | undefined;
  const apiOn = apiInMaintenance(ctx);
  try {
    const host = await probeHost(ctx.ssh, env);
    runningTag = host.runningTag;
    maintenanceOn = host.maintenanceInEnvFile;
    lines.push(hostNowLine(host));
  } catch (err) {
    lines.push(hostUnreadableLine(describeError(asChatOpsError(err)).title));
  }
  lines.push(...RUNBOOKS[data.kind].failureDetail(ctx));
  const api = await apiOn;
  // The card's maintenance field says what the host shows now, not what was planned.
  if (maintenanceOn !== undefined || api !== undefined) state.maintenance = maintenanceField(maintenanceOn, api);
  lines.push(...maintenanceLines({ kind: data.kind, env, fromVersion: state.fromVersion, maintenanceOnByUs: state.maintenanceOnByUs }, maintenanceOn, api, runningTag));
  const changed = failedStep?.changesRunningVersion === true || (runningTag !== undefined && state.fromVersion != null && runningTag !== state.fromVersion);
  const target = state.fromVersion ?? state.pinnedBefore ?? undefined;
  lines.push(RUNBOOKS[data.kind].next(ctx, { changed, target, runningTag }));
  state.summary = lines.join('\n');
  await ctx.save();
  // Whoever holds the environment now reads the thread too: say there, not only on the card, why this job stopped.
  if (opts.lockLost) void ctx.reporter.reply(infoMsg(`🔒 ${state.summary}`));

  // Without the lock, offering a rollback would invite a change beside whoever holds it now.
  if (changed && target && RUNBOOKS[data.kind].offersRollback && outcome === 'failed' && !opts.lockLost) await offerRollback(ctx, target);
  closeOpenGates(ctx, outcome);
  await record(ctx);
  // Free the environment before the final card shows; a lock taken over is someone else's to free.
  if (!opts.lockLost) await ctx.store.releaseLock(data.env, data.jobId);
  void audit(ctx.store, ctx.log, { type: 'lock', action: opts.lockLost ? 'lost' : 'released', ...via(data.origin), env: data.env, jobId: data.jobId, outcome: state.outcome });
  ctx.reporter.setCard(deployCard(cardView(data, state)));
  await ctx.reporter.flush();
  return { outcome };
}

async function offerRollback(ctx: StepContext, target: string): Promise<void> {
  const { data } = ctx;
  await openGate(ctx, {
    id: 'rollback',
    kind: 'rollback',
    go: 'rollback.approve',
    noGo: 'rollback.dismiss',
    question: `Roll ${data.env} back to ${target}?`,
    plan: [target],
    detail: [`The deploy of ${code(data.version)} failed. ${code(target)} is the version that ran before it.`],
  });
  await ctx.save();
}

/** Questions this job left open are closed with it, so nobody presses a dead button. */
function closeOpenGates(ctx: StepContext, outcome: 'failed' | 'cancelled'): void {
  for (const gate of Object.values(ctx.state.gates)) {
    if (gate.kind !== 'rollback' && !gate.decision && gate.postedTs) {
      gate.shown = true;
      void ctx.reporter.updateReply({ channel: ctx.data.origin.channel, ts: gate.postedTs }, closedGateMsg(gate.question, outcome));
    }
  }
}

async function record(ctx: StepContext): Promise<void> {
  const { data, state } = ctx;
  // The catalog says which runbooks go into the history (rollback targets are found there); its entries are typed for those two.
  if (!RUNBOOKS[data.kind].recorded || (data.kind !== 'deploy' && data.kind !== 'rollback')) return;
  const threadUrl = state.card?.ts ? await ctx.outbox.permalink(state.card) : undefined;
  await ctx.store
    .pushHistory({
      jobId: data.jobId,
      kind: data.kind,
      env: data.env,
      version: data.version,
      fromVersion: state.fromVersion ?? state.pinnedBefore ?? null,
      user: data.origin.user,
      outcome: state.outcome,
      startedAt: state.startedAt,
      endedAt: new Date().toISOString(),
      channel: data.origin.channel,
      ...(state.card?.ts ? { threadTs: state.card.ts } : {}),
      ...(threadUrl ? { threadUrl } : {}),
    })
    .catch((err: unknown) => ctx.log.warn({ err: (err as Error).message }, 'could not record deploy history'));
}

async function dryRun(data: RunbookData, state: RunbookState, deps: RunbookJobDeps, reporter: JobReporter): Promise<{ outcome: string }> {
  state.outcome = 'succeeded';
  for (const s of state.steps) s.status = 'pending';
  state.summary = `Nothing was run. These are the exact commands the ${data.kind} would run on ${code(deps.env.ssh.host)}, in order (secrets are passed on stdin and shown as their variable):`;
  await reporter.start(deployCard(cardView(data, state)));
  const plan = RUNBOOKS[data.kind].dryRunPlan(deps.env, data);
  void reporter.reply({ summary: `Dry run plan for ${data.version}`, parts: [{ type: 'code', text: plan.join('\n') }] });
  await reporter.flush();
  return { outcome: 'dry_run' };
}


