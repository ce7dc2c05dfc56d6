import type { Job } from 'bullmq';
import type { Config } from '../config/load.js';
import { asChatOpsError } from '../errors.js';
import type { Producer } from '../jobs/queue.js';
import type { JobData } from '../jobs/job-data.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { RunbookData } from '../runbooks/kernel/types.js';
import type { GateDecision, GateState } from '../runbooks/types.js';
import { decidedGateMsg, decodeGateValue, type GateValue } from '../render/deploy.js';
import { describeError, gatePressFailedText } from '../render/errors.js';
import { code, esc, mention, type Msg } from '../render/model.js';
import { audit, auditText, via } from '../audit.js';
import { unreadGroupsHint, type Access } from './access.js';
import { startRunbook } from './handle.js';

/** Who pressed, and through what: the console's `/as` changes `user` but not `session` or `osUser`. */
export interface Presser {
  user: string;
  channel: string;
  transport: 'slack' | 'console';
  /** Console: the running console's id (Origin.session). */
  session?: string;
  /** Console: the operating-system user running it. */
  osUser?: string;
}

export interface ActionRequest extends Presser {
  actionId: string;
  value: string;
  /** The message the button is on, so a modal can update it later. */
  messageTs?: string;
}

export interface ActionDeps {
  config: Config;
  access: Access;
  producer: Pick<Producer, 'getJob' | 'store' | 'enqueue' | 'ready'>;
  log: Logger;
  metrics?: Metrics;
}

/** A Slack modal, as the neutral layer describes it; the transport renders it. */
export interface TypedConfirmModal {
  callbackId: string;
  title: string;
  prompt: string;
  /** A word to type; absent, the modal only asks "are you sure?" (confirm or cancel). */
  expected?: string;
  confirm: string;
  deny: string;
  privateMetadata: string;
}

export interface ActionResult {
  /** Shown only to the person who pressed. */
  ephemeral?: Msg;
  /** Replaces the gate message: the decision, with the buttons gone. */
  replace?: Msg;
  /** A second confirmation where the approver types a word. */
  modal?: TypedConfirmModal;
}

export const TYPED_CONFIRM_CALLBACK = 'gate.typed_confirm';
export const TYPED_CONFIRM_BLOCK = 'typed';
export const TYPED_CONFIRM_ACTION = 'typed_value';

function say(text: string): ActionResult {
  return { ephemeral: { summary: text.replace(/[*`]/g, ''), parts: [{ type: 'section', text }] } };
}

function when(iso: string): string {
  return `${iso.replace('T', ' ').slice(0, 16)} UTC`;
}

function already(d: GateDecision): string {
  if (d.choice === 'expired') return `⌛ This question already expired at ${when(d.at)}. Nothing was done.`;
  return `☑️ Already decided (${d.choice === 'go' ? 'yes' : d.choice === 'skip' ? 'skip' : 'no'}) by ${d.by ? mention(d.by) : 'someone'} at ${when(d.at)}. Nothing more was done.`;
}

interface Checked {
  v: GateValue;
  job: Job<JobData>;
  data: RunbookData;
  gate: GateState & { planHash: string };
}

/** Buttons obey slack.allowedChannels like commands do; the health watch's channels count as allowed. */
function channelRefusal(config: Config, p: Presser): string | undefined {
  const allowed = config.slack.allowedChannels;
  if (p.transport === 'console' || allowed.length === 0 || allowed.includes(p.channel)) return undefined;
  if (Object.values(config.environments).some((e) => e.watch?.channel === p.channel)) return undefined;
  const where = allowed.map((c) => `<#${c}>`).join(', ');
  return `🚫 Buttons are not accepted ${p.channel.startsWith('D') ? 'in direct messages' : 'in this channel'}; decide in ${where}. Nothing was done.`;
}

/** Four-eyes: the requester never decides; nor does the console session that requested the job, whoever `/as` names. */
function fourEyesRefusal(data: RunbookData, p: Presser): string | undefined {
  if (p.user === data.origin.user) return `🚫 You requested this job; on ${esc(data.env)} (four-eyes) someone else must decide. Nothing was done.`;
  if (p.transport === 'console' && data.origin.transport === 'console' && data.origin.session !== undefined && p.session === data.origin.session) {
    return `🚫 This job was requested from this console session (as ${esc(data.origin.user)}); on ${esc(data.env)} (four-eyes) \`/as\` does not make a second person. Someone else must decide from their own session or Slack. Nothing was done.`;
  }
  return undefined;
}

/** Every rule a press must pass, for buttons and modal submissions alike. */
async function check(value: string, actionId: string, p: Presser, deps: ActionDeps, log: Logger): Promise<Checked | ActionResult> {
  const user = p.user;
  const channel = channelRefusal(deps.config, p);
  if (channel) {
    log.info({ channel: p.channel }, 'gate press refused: channel not allowed');
    return say(channel);
  }
  const v = decodeGateValue(value);
  if (!v) return say('⚠️ This button is not one the bot understands (it may come from an older version). Nothing was done.');
  const job = await deps.producer.getJob(v.j);
  const data = job?.data as RunbookData | undefined;
  const gate = data?.state?.gates[v.g];
  if (!job || !data || !gate) return say(`⚠️ Job ${code(v.j)} or its question no longer exists. Nothing was done.`);
  if (actionId !== gate.go && actionId !== gate.noGo && actionId !== gate.skip) return say('⚠️ That button does not belong to this question. Nothing was done.');
  const { approvers, admins } = deps.config.access;
  const role = await deps.access.check(user, [...approvers, ...admins]);
  if (!role.ok) {
    log.info({ unreadGroups: role.unreadGroups }, 'gate press refused: not an approver');
    if (role.unreadGroups.length > 0) return say(`🚫 ${unreadGroupsHint(role.unreadGroups)} Nothing was done.`);
    return say('🚫 Only approvers (access.approvers) and admins may decide this. Nothing was done.');
  }
  const env = deps.config.environments[data.env];
  const fourEyes = (env?.fourEyes ?? true) ? fourEyesRefusal(data, p) : undefined;
  if (fourEyes) {
    log.info('gate press refused: four-eyes');
    return say(fourEyes);
  }
  if (v.h !== gate.planHash) return say('⚠️ The plan changed since these buttons were posted, so this press was refused. Use the newest buttons in the thread.');
  const existing = gate.decision ?? (await deps.producer.store.readGate(v.j, v.g));
  if (existing) {
    // Recorded, but the wake-up may have been lost (Redis dropped right after): wake the job now.
    await wake(job, log);
    return say(already(existing));
  }
  // Only the rollback offer outlives its job; any other question dies with the job that asked it.
  const outcome = data.state?.outcome;
  if (gate.kind !== 'rollback' && outcome !== 'running' && outcome !== 'waiting') return say(`⚠️ Job ${code(v.j)} has ended (${esc(outcome ?? 'unknown')}); this question is closed. Nothing was done.`);
  // The deadline is judged when the decision is stored (decide), on the same clock and key as the job's expiry.
  return { v, job, data, gate };
}

/** Best effort: a job that is not woken still wakes at its gate's expiry and reads the decision then. */
async function wake(job: Job<JobData>, log: Logger): Promise<void> {
  try {
    if ((await job.getState()) === 'delayed') await job.promote();
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'could not wake the parked job; it reads the decision when its gate expires');
  }
}

/** Records the decision once, atomically, then acts on it. */
async function decide(c: Checked, choice: 'go' | 'no-go' | 'skip', user: string, deps: ActionDeps, log: Logger): Promise<ActionResult> {
  const { v, job, data, gate } = c;
  const decision: GateDecision = { choice, by: user, at: new Date().toISOString() };
  const res = await deps.producer.store.settleGate(v.j, v.g, Date.parse(gate.expiresAt), decision);
  if (res.kind === 'expired') {
    // This press stored the expiry: wake the job so it takes the safe branch now, as the presser is told.
    if (gate.kind !== 'rollback') await wake(job, log);
    return say(`⌛ This question expired at ${when(gate.expiresAt)}; the job takes the safe branch. Nothing was done.`);
  }
  if (res.kind !== 'decided') return say(already(res.kind === 'existing' ? res.decision : { choice: 'expired', at: gate.expiresAt }));
  log.info({ jobId: v.j, gate: v.g, choice }, 'gate decided');
  deps.metrics?.gateWait.observe({ kind: gate.kind, choice }, Math.max(0, Date.parse(decision.at) - Date.parse(gate.createdAt)) / 1000);

  if (gate.kind === 'rollback') {
    if (choice !== 'go') return { replace: decidedGateMsg({ ...gate, decision }, 'Dismissed: no rollback.') };
    const target = data.state?.fromVersion ?? data.state?.pinnedBefore;
    if (!target) return say('⚠️ The failed deploy recorded no previous version, so there is nothing to roll back to. Name one: `/engramia rollback VERSION`.');
    try {
      // The person who approved is the one who asked for the rollback: its own gates need someone else.
      const rollbackId = await startRunbook({ kind: 'rollback', version: target, env: data.env, dryRun: false, origin: { ...data.origin, user } }, deps.producer, deps.log);
      return { replace: decidedGateMsg({ ...gate, decision }, `Rollback to ${target} started (job ${rollbackId}); its progress is posted in the channel.`) };
    } catch (err) {
      return { replace: decidedGateMsg({ ...gate, decision }, `Approved, but the rollback could not start: ${describeError(asChatOpsError(err)).title.replace(/[*`]/g, '')}`) };
    }
  }

  // Wake the parked job now rather than at the gate's expiry.
  await wake(job, log);
  const outcome =
    gate.kind === 'maintenance'
      ? choice === 'go'
        ? 'The deploy continues with maintenance on.'
        : 'The deploy continues without maintenance.'
      : gate.kind === 'downgrade'
        ? choice === 'go'
          ? 'Downgrading now.'
          : 'Cancelled: nothing is downgraded.'
        : gate.kind === 'step'
          ? choice === 'go'
            ? 'Retrying the step.'
            : choice === 'skip'
              ? 'Skipped: the job goes on with the next step.'
              : 'Aborted: the job stops here and reports the host state.'
          : choice === 'go'
          ? 'Approved.'
          : 'Declined.';
  return { replace: decidedGateMsg({ ...gate, decision }, outcome) };
}

/**
 * Every button comes through here, whatever the transport. A press is checked
 * like a command (role, four-eyes, plan, expiry) and decided once, atomically.
 */
async function decideAction(req: ActionRequest, deps: ActionDeps): Promise<ActionResult> {
  const log = deps.log.child({ user: req.user, action: req.actionId });
  try {
    const c = await check(req.value, req.actionId, req, deps, log);
    if (!('gate' in c)) return c;
    // Asked only now, after every check: someone who may not decide is told so before any "are you sure?".
    if (c.gate.kind === 'downgrade' && req.actionId === c.gate.go) return { modal: downgradeModal(c, req) };
    return await decide(c, req.actionId === c.gate.go ? 'go' : req.actionId === c.gate.skip ? 'skip' : 'no-go', req.user, deps, log);
  } catch (err) {
    const error = asChatOpsError(err);
    log.warn({ code: error.code, err: error.message }, 'gate press failed');
    return say(gatePressFailedText(error));
  }
}

function downgradeModal(c: Checked, req: ActionRequest): TypedConfirmModal {
  const meta = JSON.stringify({ value: req.value, channel: req.channel, ts: req.messageTs ?? '' });
  const base = { callbackId: TYPED_CONFIRM_CALLBACK, title: 'Confirm the downgrade', confirm: 'Downgrade', deny: 'Keep it', privateMetadata: meta };
  if (c.gate.confirmText) return { ...base, prompt: `This drops every table on ${c.data.env}. Type ${c.gate.confirmText} to confirm.`, expected: c.gate.confirmText };
  return { ...base, prompt: `${c.gate.question} Data added by the newer revisions is dropped.` };
}

/**
 * Every button comes through here, whatever the transport; each press and its
 * outcome (refused, decided, modal) is audited.
 */
export async function handleAction(req: ActionRequest, deps: ActionDeps): Promise<ActionResult> {
  const result = await decideAction(req, deps);
  const v = decodeGateValue(req.value);
  await audit(deps.producer.store, deps.log, {
    type: 'gate',
    ...via(req),
    user: req.user,
    channel: req.channel,
    action: req.actionId,
    ...(v ? { jobId: v.j, gate: v.g } : {}),
    outcome: result.replace ? 'decided' : result.modal ? 'confirmation asked' : 'refused',
    ...(result.ephemeral ? { answer: auditText(result.ephemeral.summary) } : {}),
  });
  return result;
}

export interface TypedConfirmSubmission extends Omit<Presser, 'channel'> {
  privateMetadata: string;
  /** What was typed; empty for a plain "are you sure?" modal. */
  typed: string;
}

export interface TypedConfirmResult {
  /** Shown under the input; the modal stays open. */
  error?: string;
  /** Where the gate message is, and what it becomes. */
  replace?: { channel: string; ts: string; msg: Msg };
  ephemeral?: { channel: string; msg: Msg };
}

/** The modal's answer: the word must match exactly, then it is a "go" press with every check again. */
export async function handleTypedConfirm(sub: TypedConfirmSubmission, deps: ActionDeps): Promise<TypedConfirmResult> {
  const log = deps.log.child({ user: sub.user, action: 'typed_confirm' });
  let meta: { value: string; channel: string; ts: string };
  try {
    meta = JSON.parse(sub.privateMetadata) as typeof meta;
  } catch {
    return { error: 'This confirmation is not valid any more; press the button again.' };
  }
  try {
    const decoded = decodeGateValue(meta.value);
    const job = decoded ? await deps.producer.getJob(decoded.j) : undefined;
    const gate = decoded ? (job?.data as RunbookData | undefined)?.state?.gates[decoded.g] : undefined;
    const c = await check(meta.value, gate?.go ?? '', { ...sub, channel: meta.channel }, deps, log);
    if (!('gate' in c)) return { ...(c.ephemeral ? { ephemeral: { channel: meta.channel, msg: c.ephemeral } } : {}) };
    if (c.gate.confirmText !== undefined && sub.typed.trim() !== c.gate.confirmText) return { error: `Type ${c.gate.confirmText} exactly to confirm, or close this dialog.` };
    const r = await decide(c, 'go', sub.user, deps, log);
    await audit(deps.producer.store, deps.log, { type: 'gate', ...via(sub), user: sub.user, channel: meta.channel, action: 'typed confirmation', jobId: c.v.j, gate: c.v.g, outcome: r.replace ? 'decided' : 'refused' });
    return {
      ...(r.replace && meta.ts ? { replace: { channel: meta.channel, ts: meta.ts, msg: r.replace } } : {}),
      ...(r.ephemeral ? { ephemeral: { channel: meta.channel, msg: r.ephemeral } } : {}),
    };
  } catch (err) {
    const error = asChatOpsError(err);
    log.warn({ code: error.code, err: error.message }, 'typed confirmation failed');
    return { error: `${describeError(error).title.replace(/[*`]/g, '')} Try again.` };
  }
}
