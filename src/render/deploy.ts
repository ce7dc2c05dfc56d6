import type { GateState, Outcome, StepRecord } from '../runbooks/types.js';
import { code, esc, mention, type Button, type Msg, type Part } from './model.js';

export interface DeployView {
  jobId: string;
  /** Header, e.g. "🚀 Deploy 0.6.1 to production". */
  title: string;
  /** Plain name, e.g. "Deploy 0.6.1 to production". */
  label: string;
  env: string;
  version: string;
  fromVersion: string | null | undefined;
  requestedBy: string;
  dryRun: boolean;
  steps: StepRecord[];
  outcome: Outcome;
  /** One line under the checklist: what happened, what state the host is in, what to do. */
  summary?: string;
  maintenance?: string;
  warnings: string[];
}

const ICON: Record<StepRecord['status'], string> = { pending: '⬜', running: '⏳', done: '✅', skipped: '⏭️', failed: '❌' };
const OUTCOME: Record<Outcome, string> = {
  running: '⏳ running',
  waiting: '✋ waiting for a decision',
  succeeded: '✅ succeeded',
  succeeded_with_warnings: '⚠️ succeeded with warnings',
  failed: '❌ failed',
  cancelled: '🛑 cancelled',
};

export function seconds(ms: number | undefined): string {
  if (ms === undefined) return '';
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

function stepLine(s: StepRecord): string {
  const extra = [s.durationMs !== undefined && s.status !== 'skipped' ? seconds(s.durationMs) : '', s.note ? esc(s.note) : ''].filter(Boolean).join(' · ');
  return `${ICON[s.status]} ${esc(s.title)}${extra ? `  _${extra}_` : ''}`;
}

/** The parent message: one card per job, updated in place. */
export function deployCard(v: DeployView): Msg {
  const parts: Part[] = [
    { type: 'header', text: v.title },
    {
      type: 'fields',
      items: [
        v.version ? `*From → to*\n${code(v.fromVersion ?? '?')} → ${code(v.version)}` : `*Version*\n${code(v.fromVersion ?? '?')}`,
        `*Requested by*\n${mention(v.requestedBy)}`,
        `*Status*\n${OUTCOME[v.outcome]}`,
        `*Maintenance*\n${esc(v.maintenance ?? 'not decided yet')}`,
      ],
    },
    { type: 'section', text: v.steps.map(stepLine).join('\n') },
  ];
  if (v.summary) parts.push({ type: 'section', text: v.summary });
  for (const w of v.warnings) parts.push({ type: 'context', items: [`⚠️ ${w}`] });
  parts.push({ type: 'context', items: [`job ${code(v.jobId)} · details in the thread`] });
  return { summary: `${v.label}: ${OUTCOME[v.outcome].replace(/^\S+ /, '')}`, parts };
}

/** One thread reply per finished step: what ran, how it ended, the end of its output. */
export function stepReply(s: StepRecord, opts: { outputTail?: string } = {}): Msg {
  const head = `${ICON[s.status]} *${esc(s.title)}*${s.durationMs !== undefined ? ` · ${seconds(s.durationMs)}` : ''}${s.exitCode !== undefined && s.exitCode !== null ? ` · exit ${s.exitCode}` : ''}`;
  const parts: Part[] = [{ type: 'section', text: s.note ? `${head}\n${esc(s.note)}` : head }];
  if (s.command) parts.push({ type: 'context', items: [`\`${esc(s.command).replace(/`/g, "'")}\``] });
  const tail = opts.outputTail ?? s.outputTail;
  if (tail && tail.trim() !== '') parts.push({ type: 'code', text: tail });
  return { summary: `${s.title}: ${s.status}`, parts };
}

export interface GateValue {
  /** job id */
  j: string;
  /** gate id */
  g: string;
  /** hash of the plan the buttons were posted for */
  h: string;
}

export function encodeGateValue(v: GateValue): string {
  return JSON.stringify(v);
}

export function decodeGateValue(value: string): GateValue | undefined {
  try {
    const v = JSON.parse(value) as Partial<GateValue>;
    if (typeof v.j === 'string' && typeof v.g === 'string' && typeof v.h === 'string' && v.j.length < 100 && v.g.length < 100) return v as GateValue;
  } catch {
    // fall through
  }
  return undefined;
}

const LABELS: Record<string, string> = {
  'maintenance.enable': 'Enable maintenance',
  'maintenance.skip': 'Deploy without maintenance',
  'rollback.approve': 'Roll back',
  'rollback.dismiss': 'Dismiss',
  'deploy.approve': 'Approve',
  'deploy.cancel': 'Cancel',
  'downgrade.confirm': 'Downgrade the database',
  'downgrade.cancel': 'Cancel',
  'step.retry': 'Retry',
  'step.abort': 'Abort',
  'step.skip': 'Skip',
};

export function gateMsg(gate: GateState & { planHash: string }, jobId: string, detail: string[]): Msg {
  const value = encodeGateValue({ j: jobId, g: gate.id, h: gate.planHash });
  const buttons: Button[] = [
    {
      actionId: gate.go,
      text: LABELS[gate.go] ?? gate.go,
      value,
      style: gate.kind === 'rollback' || gate.kind === 'downgrade' ? 'danger' : 'primary',
      // No client-side `confirm` on a downgrade: Slack would ask "are you sure?" before the bot could say the
      // presser may not decide. The bot asks in a modal once the press has passed every check (commands/actions.ts).
    },
    { actionId: gate.noGo, text: LABELS[gate.noGo] ?? gate.noGo, value },
    ...(gate.skip ? [{ actionId: gate.skip, text: LABELS[gate.skip] ?? gate.skip, value }] : []),
  ];
  return {
    summary: `Decision needed: ${gate.question}`,
    parts: [
      { type: 'section', text: `✋ *${esc(gate.question)}*` },
      ...detail.map((d): Part => ({ type: 'section', text: d })),
      { type: 'actions', buttons },
      { type: 'context', items: [`Approvers decide${gate.kind === 'maintenance' ? '' : ''}; expires ${gate.expiresAt.replace('T', ' ').slice(0, 16)} UTC.`] },
    ],
  };
}

export function decidedGateMsg(gate: GateState, outcomeText: string): Msg {
  const d = gate.decision;
  const who = d?.by ? `by ${mention(d.by)} ` : '';
  const when = d ? `at ${d.at.slice(11, 16)} UTC` : '';
  const label = d?.choice === 'go' ? LABELS[gate.go] : d?.choice === 'no-go' ? LABELS[gate.noGo] : d?.choice === 'skip' && gate.skip ? LABELS[gate.skip] : 'No answer';
  return {
    summary: `${gate.question}: ${label ?? ''}`,
    parts: [
      { type: 'section', text: `${d?.choice === 'expired' ? '⌛' : '☑️'} *${esc(gate.question)}*\n${esc(label ?? '')} — ${d?.choice === 'expired' ? 'expired ' : `decided ${who}`}${when}` },
      { type: 'context', items: [outcomeText] },
    ],
  };
}
