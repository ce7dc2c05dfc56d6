import type { HistoryEntry } from '../jobs/store.js';
import { code, esc, mention, type Msg } from './model.js';

const ICON: Record<string, string> = { succeeded: '✅', succeeded_with_warnings: '⚠️', failed: '❌', cancelled: '🛑' };

/** Recent deploys and rollbacks, newest first; each names its thread's channel and job. */
export function historyMsg(env: string, entries: HistoryEntry[]): Msg {
  if (entries.length === 0) return { summary: `${env}: no deploys recorded`, parts: [{ type: 'section', text: `No deploys or rollbacks of *${esc(env)}* are recorded yet.` }] };
  const lines = entries.map((e) => {
    const when = e.endedAt.replace('T', ' ').slice(0, 16);
    const what = e.kind === 'rollback' ? `rollback to ${code(e.version)}` : `deploy ${code(e.version)}`;
    return `${ICON[e.outcome] ?? '•'} ${what} (from ${code(e.fromVersion ?? '?')}) by ${mention(e.user)}, ${when} UTC · ${esc(e.outcome.replace(/_/g, ' '))} · ${e.threadUrl ? `<${e.threadUrl}|thread>` : `job ${code(e.jobId)} in <#${e.channel}>`}`;
  });
  return { summary: `${env}: last ${entries.length} deploys and rollbacks`, parts: [{ type: 'header', text: `${env}: history` }, { type: 'section', text: lines.join('\n') }] };
}
