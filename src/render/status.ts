import type { ContainerState } from '../engramia/compose.js';
import type { CurrentJobView } from './current-job.js';
import type { LockHolder } from '../jobs/store.js';
import { code, esc, mention, type Msg, type Part } from './model.js';

export interface StatusView {
  env: string;
  host: string;
  runningTag: string | undefined;
  /** What /v1/version answers, when it answers: a container re-tagged by hand can disagree. */
  apiVersion?: string;
  /** The container is `running` but the API gave no answer (e.g. "HTTP 502"): starting, or crash-looping. */
  apiSilent?: string;
  pinnedTag: string | null;
  containers: ContainerState[];
  revision: string | null | undefined;
  maintenance: { inEnvFile: boolean; active: boolean; since?: string; warnAfterMinutes: number };
  lock?: LockHolder & { ago: string; channel?: string; job?: CurrentJobView };
  requestedBy: string;
  jobId: string;
  now: Date;
}

function untilText(iso: string, now: Date): string {
  const s = Math.max(0, Math.round((Date.parse(iso) - now.getTime()) / 1000));
  return s < 120 ? `${s} s` : `${Math.round(s / 60)} min`;
}

/** The lock holder's job: what it does now and where to follow or answer it. */
function jobLine(job: CurrentJobView, now: Date): string {
  const where = job.threadUrl ? `<${job.threadUrl.replace(/[<>|\s]/g, '')}|its thread>` : `its card in <#${job.channel}>`;
  switch (job.phase) {
    case 'waiting':
      return `⏸️ *Waiting at a gate*: “${esc(job.gate?.question ?? '?')}” Answer in ${where}${job.gate ? `; without an answer it takes the safe branch in ${untilText(job.gate.expiresAt, now)}` : ''}.`;
    case 'running':
      return `▶️ *Running*${job.step ? ` step ${job.step.index} of ${job.step.of}: ${esc(job.step.title)}` : ''}. Follow it in ${where}.`;
    case 'queued':
      return `⏳ *Queued*, waiting for a worker. Follow it in ${where}.`;
    case 'ended':
      return `🏁 *Finishing*: it has ended and is releasing the lock. See ${where}.`;
  }
}

function minutes(since: string, now: Date): number {
  return Math.floor((now.getTime() - Date.parse(since)) / 60_000);
}

export function statusMsg(v: StatusView): Msg {
  const m = v.maintenance;
  let maint = m.active ? '🚧 on' : m.inEnvFile ? '⚠️ set in .env, not active' : 'off';
  const warnings: Part[] = [];
  if ((m.active || m.inEnvFile) && m.since) {
    const mins = minutes(m.since, v.now);
    maint += ` for ${mins} min`;
    if (mins >= m.warnAfterMinutes) {
      warnings.push({ type: 'section', text: `⏰ *Maintenance has been on for ${mins} min* (longer than ${m.warnAfterMinutes} min): every endpoint but /v1/health answers 503. End it with ${code(`/engramia maintenance off ${v.env}`)} when the work is done.` });
    }
  }
  const parts: Part[] = [
    { type: 'header', text: `${v.env}: status` },
    {
      type: 'fields',
      items: [
        `*Running*\n${code(v.runningTag ?? 'nothing')}${v.apiVersion && v.runningTag && v.apiVersion !== v.runningTag ? `\n⚠️ the API reports ${code(v.apiVersion)}` : ''}${v.apiSilent ? `\n⚠️ the container is up but the API does not answer (${esc(v.apiSilent)}): starting, or crash-looping` : ''}`,
        `*Pinned in .env*\n${v.pinnedTag ? code(v.pinnedTag) : '_not pinned_'}`,
        `*Maintenance*\n${maint}`,
        `*Database*\n${v.revision === undefined ? '_unknown_' : code(v.revision ?? 'base')}`,
      ],
    },
    ...warnings,
    {
      type: 'section',
      text: `*Containers* on ${code(v.host)}\n${v.containers.map((c) => `${c.state === 'running' ? '🟢' : '🔴'} ${code(c.service)} ${esc(c.state)}${c.tag ? ` · ${code(c.tag)}` : ''}`).join('\n') || '_none_'}`,
    },
    {
      type: 'section',
      text: v.lock
        ? `🔒 *Locked* by ${esc(v.lock.command)} (${mention(v.lock.user)}, ${esc(v.lock.ago)}), job ${code(v.lock.jobId)}${v.lock.job ? `.\n${jobLine(v.lock.job, v.now)}` : v.lock.channel ? `; its card is in <#${v.lock.channel}>.` : '. Its job was not found; the reaper frees a lock whose job is gone.'}`
        : '🔓 Not locked: no job is changing this environment.',
    },
    { type: 'context', items: [`requested by ${mention(v.requestedBy)} · job ${code(v.jobId)}`] },
  ];
  const waiting = v.lock?.job?.phase === 'waiting' ? ' (waiting at a gate)' : '';
  return { summary: `${v.env}: running ${v.runningTag ?? 'nothing'}${v.apiSilent ? ' (API not answering)' : ''}, maintenance ${m.active ? 'on' : 'off'}${v.lock ? `, locked by ${v.lock.command}${waiting}` : ''}`, parts };
}
