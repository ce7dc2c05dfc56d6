import type { Msg, Part } from './model.js';

/** Undoes Slack's mrkdwn escaping and link syntax for a terminal. */
function plain(text: string): string {
  return text
    .replace(/<@([A-Z0-9]+)>/g, '@$1')
    .replace(/<#([A-Z0-9]+)>/g, '#$1')
    .replace(/<([^|>]+)\|([^>]+)>/g, '$2 ($1)')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

function partToText(part: Part): string {
  switch (part.type) {
    case 'header':
      return `== ${part.text} ==`;
    case 'section':
      return plain(part.text);
    case 'fields':
      return part.items.map((f) => `  ${plain(f).replace(/\n/g, ' ')}`).join('\n');
    case 'context':
      return plain(part.items.join('  ·  '));
    case 'code':
      return `${part.title ? `${plain(part.title)}\n` : ''}${part.text
        .split('\n')
        .map((l) => `  | ${l}`)
        .join('\n')}`;
    case 'divider':
      return '----';
    case 'actions':
      return part.buttons.map((b, i) => `  [${i + 1}] ${b.text}`).join('\n');
  }
}

/** Pure: renders the neutral model for the local console and for logs. */
export function toText(msg: Msg): string {
  return msg.parts.map(partToText).filter((s) => s !== '').join('\n');
}
