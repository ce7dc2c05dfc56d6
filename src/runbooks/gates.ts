import { gateMsg } from '../render/deploy.js';
import type { DeployContext } from './deploy.js';
import { planHash } from './plan.js';
import type { GateDecision, GateKind, GateState } from './types.js';

export type Gate = GateState & { planHash: string };

export interface GateSpec {
  id: string;
  kind: GateKind;
  go: string;
  noGo: string;
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

/** Saves the gate in the job first (so a press can find it), then posts its buttons as a message of its own. */
export async function openGate(ctx: DeployContext, spec: GateSpec): Promise<Gate> {
  const now = Date.now();
  const gate: Gate = {
    id: spec.id,
    kind: spec.kind,
    go: spec.go,
    noGo: spec.noGo,
    question: spec.question,
    createdAt: new Date(now).toISOString(),
    expiresAt: new Date(now + ctx.gateTimeoutMs).toISOString(),
    planHash: planHash(ctx.data, spec.plan),
    ...(spec.confirmText ? { confirmText: spec.confirmText } : {}),
  };
  ctx.state.gates[gate.id] = gate;
  await ctx.save();
  const ref = await ctx.reporter.reply(gateMsg(gate, ctx.data.jobId, spec.detail), { own: true });
  if (ref) gate.postedTs = ref.ts;
  return gate;
}
