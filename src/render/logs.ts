import { code, mention, type Msg, type Part } from './model.js';

export interface LogsView {
  env: string;
  host: string;
  service: string;
  /** What --tail asked for. */
  requested: number;
  /** Already scrubbed of secrets and terminal control codes. */
  lines: string[];
  /** The command as an operator would type it on the host. */
  command: string;
  /** Set when the lines are too long for a message and go to the thread as a file. */
  file?: { filename: string };
  /** The host printed more than the bot keeps: the oldest lines were dropped. */
  truncated: boolean;
  requestedBy: string;
  jobId: string;
}

/** Lines shown in the message itself when the whole tail goes to a file. */
export const LOGS_PREVIEW_LINES = 15;

export function logsMsg(v: LogsView): Msg {
  const n = v.lines.length;
  const what = n === 0 ? `The ${code(v.service)} log on ${code(v.host)} is empty.` : `Last ${n} line${n === 1 ? '' : 's'} of ${code(v.service)} on ${code(v.host)}`;
  const short = n > 0 && n < v.requested && !v.truncated ? ` (asked for ${v.requested}; that is all the log has).` : n > 0 ? '.' : '';
  const parts: Part[] = [{ type: 'header', text: `${v.env}: ${v.service} logs` }, { type: 'section', text: `${what}${short}` }];
  if (n > 0) {
    if (v.file) {
      parts.push({ type: 'code', text: v.lines.slice(-LOGS_PREVIEW_LINES).join('\n'), title: `_The last ${Math.min(LOGS_PREVIEW_LINES, n)}:_` });
      parts.push({ type: 'section', text: `🧵 All ${n} lines are in ${code(v.file.filename)}, in this message's thread.` });
    } else {
      parts.push({ type: 'code', text: v.lines.join('\n') });
    }
  }
  if (v.truncated) parts.push({ type: 'context', items: ['⚠️ The host printed more than the bot keeps; the oldest lines were dropped.'] });
  parts.push({
    type: 'context',
    items: [`Known secrets and anything shaped like a token, key or password are shown as \`[redacted]\`. ${code(v.command)}`, `requested by ${mention(v.requestedBy)} · job ${code(v.jobId)}`],
  });
  return { summary: `${v.env}: ${n === 0 ? `${v.service} log is empty` : `last ${n} lines of the ${v.service} log`}`, parts };
}
