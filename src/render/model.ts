/**
 * The neutral message model. Commands and jobs describe what to say with these
 * parts; `slack.ts` and `text.ts` decide how it looks. Text fields use a small
 * subset of Slack mrkdwn (*bold*, _italic_, `code`) and must pass dynamic
 * values through `esc()` so host or user text cannot inject markup or mentions.
 */
export type Part =
  | { type: 'header'; text: string }
  | { type: 'section'; text: string }
  | { type: 'fields'; items: string[] }
  | { type: 'context'; items: string[] }
  | { type: 'code'; text: string; title?: string }
  | { type: 'divider' }
  | { type: 'actions'; buttons: Button[] };

export interface Button {
  actionId: string;
  text: string;
  value: string;
  style?: 'primary' | 'danger';
  confirm?: { title: string; text: string; confirm: string; deny: string };
}

export interface Msg {
  /** Plain-text summary: notifications, screen readers and the fallback `text` field. */
  summary: string;
  parts: Part[];
}

/** Escapes the three characters Slack mrkdwn treats as control characters. */
export function esc(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Inline code span; backticks inside would end the span early. */
export function code(value: string): string {
  return `\`${esc(value).replace(/`/g, "'")}\``;
}

export function mention(userId: string): string {
  return /^[UW][A-Z0-9]+$/.test(userId) ? `<@${userId}>` : esc(userId);
}
