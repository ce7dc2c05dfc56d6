import type { Revision } from '../engramia/alembic.js';
import { code, esc, mention, type Msg, type Part } from './model.js';

export interface MigrationsView {
  env: string;
  runningTag: string | undefined;
  current: string | null;
  head: string | null;
  /** Revisions the code has that the database does not, oldest first. */
  pending: Revision[];
  /** The newest applied revisions, newest first. */
  recent: Revision[];
  requestedBy: string;
  jobId: string;
}

export function migrationsMsg(v: MigrationsView): Msg {
  const state = v.current === null ? '⚪ empty (base)' : v.current === v.head ? '🟢 at head' : v.pending.length > 0 ? `🟡 ${v.pending.length} behind head` : '🔴 not in the image\'s history';
  const parts: Part[] = [
    { type: 'header', text: `${v.env}: database migrations` },
    {
      type: 'fields',
      items: [`*Current*\n${code(v.current ?? 'base')}`, `*Head (${esc(v.runningTag ?? '?')})*\n${code(v.head ?? '?')}`, `*State*\n${state}`],
    },
  ];
  if (v.pending.length > 0) parts.push({ type: 'section', text: `*Not applied yet:*\n${v.pending.map((r) => `• ${code(r.revision)} ${esc(r.description)}`).join('\n')}` });
  if (v.recent.length > 0) parts.push({ type: 'section', text: `*Applied (newest first):*\n${v.recent.map((r) => `• ${code(r.revision)} ${esc(r.description)}`).join('\n')}` });
  parts.push({ type: 'context', items: [`requested by ${mention(v.requestedBy)} · job ${code(v.jobId)}`] });
  return { summary: `${v.env}: database at ${v.current ?? 'base'}, head ${v.head ?? '?'}`, parts };
}
