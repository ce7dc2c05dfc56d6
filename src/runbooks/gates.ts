import { gateMsg } from '../render/deploy.js';
import { ChatOpsError, ErrorCode } from '../errors.js';
import type { StepContext, StepDef, StepResult } from './kernel/types.js';
import { settleWithin } from '../timeout.js';
import { planHash } from './plan.js';
import type { Gate, GateDecision, GateKind, GateState } from './types.js';

/** The reporter's key for a gate's message: where it landed is looked up by it once Slack takes it. */
export function gateMessageKey(gateId: string): string {
  return `gate:${gateId}`;
}


export interface GateSpec {
  id: string;
  kind: GateKind;
  go: string;
  noGo: string;
  skip?: string;
  question: string;
  /** What the plan hash covers beyond job, environment and version. */
  plan: readonly string[];
  detail: string[];
  confirmText?: string;
}

/** Where a gate stands for the step that waits on it. */
export type GateStatus = { kind: 'decided'; decision: GateDecision } | { kind: 'expired' } | { kind: 'pending'; until: number };

/** How soon to look again when this worker's clock is past the deadline but Redis's is not yet. */
const CLOCK_SKEW_RETRY_MS = 1000;

function asStatus(gate: Gate, decision: GateDecision): GateStatus {
  gate.decision = decision;
  return decision.choice === 'expired' ? { kind: 'expired' } : { kind: 'decided', decision };
}

/**
 * Reads the decision a press recorded, or records that the gate ran out. The expiry is written with the same
 * atomic script a press uses (OpsStore.settleGate), so a press at the deadline and the expiry cannot both win:
 * the job acts on whichever Redis stored first, and the presser is told that same one.
 */
export async function gateStatus(ctx: StepContext, gate: Gate): Promise<GateStatus> {
  const known = gate.decision ?? (await ctx.store.readGate(ctx.data.jobId, gate.id));
  if (known) return asStatus(gate, known);
  const deadline = Date.parse(gate.expiresAt);
  if (Date.now() < deadline) return { kind: 'pending', until: deadline };
  const settled = await ctx.store.settleGate(ctx.data.jobId, gate.id, deadline, undefined);
  if (settled.kind === 'pending') return { kind: 'pending', until: Date.now() + CLOCK_SKEW_RETRY_MS };
  return asStatus(gate, settled.decision);
}

/** How long opening a gate waits for Slack to take its message; past that the job parks and the message follows. */
const GATE_POST_WAIT_MS = 3000;

/**
 * Saves the gate in the job first (so a press can find it), then queues its buttons as a message of its own.
 * Slack may be down: the step waits for the message only briefly, and it is delivered when Slack answers.
 * The expiry counts from now, not from delivery: it is the deadline the message shows and the job's lock is
 * renewed for, so a long outage shortens the time to answer rather than stretching the deploy.
 */
export async function openGate(ctx: StepContext, spec: GateSpec): Promise<Gate> {
  const now = Date.now();
  const gate: Gate = {
    id: spec.id,
    kind: spec.kind,
    go: spec.go,
    noGo: spec.noGo,
    ...(spec.skip ? { skip: spec.skip } : {}),
    question: spec.question,
    createdAt: new Date(now).toISOString(),
    expiresAt: new Date(now + ctx.gateTimeoutMs).toISOString(),
    planHash: planHash(ctx.data, spec.plan),
    ...(spec.confirmText ? { confirmText: spec.confirmText } : {}),
  };
  ctx.state.gates[gate.id] = gate;
  await ctx.save();
  const delivery = ctx.reporter.reply(gateMsg(gate, ctx.data.jobId, spec.detail), { own: true, key: gateMessageKey(gate.id) });
  const ref = await settleWithin(delivery, GATE_POST_WAIT_MS);
  if (ref) gate.postedTs = ref.ts;
  // Delivered later: this run's next save has it, and a resumed run learns it from the reporter (recordInto).
  else void delivery.then((late) => void (late && (gate.postedTs ??= late.ts)));
  return gate;
}

/** How a runbook names itself in an approval question, e.g. "deploy 0.6.1 to production". */
export type PlanLabel = (d: StepContext['data']) => string;

/**
 * Waits on a plan gate (`deploy.approve` / `deploy.cancel`) of the given id, opening it the first time.
 * No answer, or a no, stops the job; the caller puts the step before anything that changes the host.
 */
async function planGate(ctx: StepContext, id: string, label: PlanLabel, describe: (ctx: StepContext) => string[]): Promise<StepResult> {
  const gate = ctx.state.gates[id];
  if (gate) {
    const st = await gateStatus(ctx, gate);
    if (st.kind === 'pending') return { status: 'wait', until: st.until, gateId: gate.id };
    if (st.kind === 'expired') throw new ChatOpsError(ErrorCode.Cancelled, 'nobody approved the plan in time; nothing was changed', {});
    if (st.decision.choice === 'go') return { status: 'done', note: `approved by ${st.decision.by}` };
    throw new ChatOpsError(ErrorCode.Cancelled, `the plan was cancelled by ${st.decision.by}; nothing was changed`, { by: st.decision.by });
  }
  const g = await openGate(ctx, {
    id,
    kind: 'plan',
    go: 'deploy.approve',
    noGo: 'deploy.cancel',
    question: `Approve: ${label(ctx.data)}?`,
    plan: [ctx.data.kind],
    detail: describe(ctx),
  });
  return { status: 'wait', until: Date.parse(g.expiresAt), gateId: g.id };
}

/**
 * `requireApproval`: an approver's go on the whole plan before anything runs.
 * No answer, or a no, stops the job before it has changed anything.
 */
export function planApprovalStep(label: PlanLabel, describe: (ctx: StepContext) => string[]): StepDef {
  return {
    id: 'approval',
    title: () => 'Approve the plan',
    safeToRepeat: true,
    async run(ctx) {
      if (!ctx.env.requireApproval) return { status: 'skipped', note: 'requireApproval is off for this environment' };
      return planGate(ctx, 'approval', label, describe);
    },
  };
}

/** Questions about the change itself; a step's retry or a rollback offer does not approve a change. */
const CHANGE_GATES: ReadonlySet<GateKind> = new Set(['plan', 'maintenance', 'downgrade']);

/**
 * The decision by someone other than the requester that this job already has, if any. An expired
 * gate is nobody's decision; nor is one the requester made (possible only where four-eyes was off).
 */
export function secondPersonDecision(data: StepContext['data'], gates: Record<string, GateState>): (GateDecision & { gate: GateState }) | undefined {
  for (const gate of Object.values(gates)) {
    const d = gate.decision;
    if (!CHANGE_GATES.has(gate.kind) || !d || d.choice === 'expired' || !d.by || d.by === data.origin.user) continue;
    return { ...d, gate };
  }
  return undefined;
}

export const FOUR_EYES_STEP = 'four-eyes';

/**
 * On a `fourEyes` environment no change starts on one person's word. Placed right before a runbook's
 * first change on the host: it passes if a question about this change (the plan, maintenance, a
 * downgrade) was already decided by someone else, and otherwise asks for the plan approval itself.
 * `needed` says whether anything will change at all (an upgrade already at head changes nothing).
 */
export function fourEyesStep(label: PlanLabel, describe: (ctx: StepContext) => string[], needed?: (ctx: StepContext) => boolean): StepDef {
  return {
    id: FOUR_EYES_STEP,
    title: () => 'A second person approves (four-eyes)',
    safeToRepeat: true,
    async run(ctx) {
      if (!ctx.env.fourEyes) return { status: 'skipped', note: 'fourEyes is off for this environment' };
      if (needed && !needed(ctx)) return { status: 'skipped', note: 'nothing to change' };
      if (!ctx.state.gates[FOUR_EYES_STEP]) {
        const other = secondPersonDecision(ctx.data, ctx.state.gates);
        if (other) return { status: 'done', note: `${other.by} decided "${other.gate.question}"` };
      }
      const why = (c: StepContext) => [`👀 *Four-eyes on ${c.data.env}:* someone other than <@${c.data.origin.user}> approves before anything on the host changes. Nothing has changed yet.`, ...describe(c)];
      return planGate(ctx, FOUR_EYES_STEP, label, why);
    },
  };
}
