import { DOT, WORD, healthMsg, type HealthReport, type Overall } from './health.js';
import { code, esc, mention, type Msg, type Part } from './model.js';

/** The deploy a watch links an `error` to, and the version a rollback would go back to. */
export interface RollbackOffer {
  target: string;
  deployJobId: string;
  deployVersion: string;
  deployUser: string;
  deployEndedAt: string;
  deployThreadUrl?: string;
}

function minutesBetween(fromIso: string, to: Date): string {
  const min = Math.max(0, Math.round((to.getTime() - Date.parse(fromIso)) / 60_000));
  return min === 0 ? 'less than a minute' : `${min} min`;
}

/** A confirmed change of an environment's health, with the same blocks as `/engramia health`. */
export function watchChangeMsg(v: { env: string; from: Overall; to: Overall; every: string; report: HealthReport; offer?: RollbackOffer }): Msg {
  const intro: Part[] = [
    {
      type: 'section',
      text: `${DOT[v.to]} *Health watch: ${esc(v.env)} is ${esc(WORD[v.to])}* (was ${DOT[v.from]} ${esc(WORD[v.from])}; seen by two probes in a row, ${esc(v.every)} apart).`,
    },
  ];
  if (v.offer) {
    const o = v.offer;
    const deploy = o.deployThreadUrl ? `<${o.deployThreadUrl}|deployed ${esc(o.deployVersion)}>` : `deployed ${code(o.deployVersion)}`;
    intro.push({
      type: 'section',
      text: `This began ${minutesBetween(o.deployEndedAt, v.report.checkedAt)} after ${mention(o.deployUser)} ${deploy} (job ${code(o.deployJobId)}). A rollback to ${code(o.target)} is offered in the thread.`,
    });
  }
  const health = healthMsg(v.report);
  return { summary: `${v.env}: health ${WORD[v.from]} → ${WORD[v.to]}`, parts: [...intro, ...health.parts] };
}

/** The question's detail lines, under the gate's own question and above its buttons. */
export function watchOfferDetail(env: string, o: RollbackOffer, fourEyes: boolean): string[] {
  return [
    `Deep health on ${esc(env)} turned *error* after the deploy of ${code(o.deployVersion)} by ${mention(o.deployUser)} (job ${code(o.deployJobId)}). ${code(o.target)} is the version that ran before it.`,
    `Rolling back runs the rollback runbook (maintenance on, a verified snapshot, any database downgrade behind its own gate).${fourEyes ? ` ${mention(o.deployUser)} requested the deploy, so someone else must decide (four-eyes).` : ''}`,
  ];
}

/** The offer's message once health has changed again: no button left to press by mistake. */
export function watchOfferClosedMsg(question: string, now: Overall): Msg {
  return {
    summary: `${question}: closed`,
    parts: [{ type: 'section', text: `~${esc(question)}~\nClosed: deep health is ${DOT[now]} ${esc(WORD[now])} now. Nothing was rolled back.` }],
  };
}
