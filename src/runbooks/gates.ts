import { gateMsg } from '../render/deploy.js';
import { ChatOpsError, ErrorCode } from '../errors.js';
import type { DeployContext, StepDef } from './deploy.js';
import { gateMessageKey, settleWithin } from '../jobs/reporter.js';
import { planHash } from './plan.js';
import type { GateDecision, GateKind, GateState } from './types.js';

export type Gate = GateState & { planHash: string };

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

/** Reads the decision the action handler recorded, or notices the gate has run out. */
export async function gateStatus(ctx: DeployContext, gate: Gate): Promise<GateStatus> {
  const decision = gate.decision ?? (await ctx.store.readGate(ctx.data.jobId, gate.id));
  if (decision && decision.choice !== 'expired') {
    gate.decision = decision;
    return { kind: 'decided', decision };
  }
  if (Date.now() >= Date.parse(gate.expiresAt)) {
    gate.decision = { choice: 'expired', at: new Date().toISOString() };
    return { kind: 'expired' };
  }
  return { kind: 'pending', until: Date.parse(gate.expiresAt) };
}

/** How long opening a gate waits for Slack to take its message; past that the job parks and the message follows. */
const GATE_POST_WAIT_MS = 3000;

/**
 * Saves the gate in the job first (so a press can find it), then queues its buttons as a message of its own.
 * Slack may be down: the step waits for the message only briefly, and it is delivered when Slack answers.
 * The expiry counts from now, not from delivery: it is the deadline the message shows and the job's lock is
 * renewed for, so a long outage shortens the time to answer rather than stretching the deploy.
 */
export async function openGate(ctx: DeployContext, spec: GateSpec): Promise<Gate> {
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

/**
 * `requireApproval`: an approver's go on the whole plan before anything runs.
 * No answer, or a no, stops the job before it has changed anything.
 */
export function planApprovalStep(describe: (ctx: DeployContext) => string[]): StepDef {
  return {
    id: 'approval',
    title: () => 'Approve the plan',
    safeToRepeat: true,
    async run(ctx) {
      if (!ctx.env.requireApproval) return { status: 'skipped', note: 'requireApproval is off for this environment' };
      const gate = ctx.state.gates['approval'];
      if (gate) {
        const st = await gateStatus(ctx, gate);
        if (st.kind === 'pending') return { status: 'wait', until: st.until, gateId: gate.id };
        if (st.kind === 'expired') throw new ChatOpsError(ErrorCode.Cancelled, 'nobody approved the plan in time; nothing was changed', {});
        if (st.decision.choice === 'go') return { status: 'done', note: `approved by ${st.decision.by}` };
        throw new ChatOpsError(ErrorCode.Cancelled, `the plan was cancelled by ${st.decision.by}; nothing was changed`, { by: st.decision.by });
      }
      const label = RUNBOOK_LABEL(ctx.data);
      const g = await openGate(ctx, {
        id: 'approval',
        kind: 'plan',
        go: 'deploy.approve',
        noGo: 'deploy.cancel',
        question: `Approve: ${label}?`,
        plan: [ctx.data.kind],
        detail: describe(ctx),
      });
      return { status: 'wait', until: Date.parse(g.expiresAt), gateId: g.id };
    },
  };
}

function RUNBOOK_LABEL(d: DeployContext['data']): string {
  return d.kind === 'rollback' ? `roll ${d.env} back to ${d.version}` : `deploy ${d.version} to ${d.env}`;
}
