import { esc, type Button, type Msg, type Part } from './model.js';

/** Slack's documented limits; the renderer keeps every message inside them. */
export const LIMITS = {
  blocks: 50,
  sectionText: 3000,
  headerText: 150,
  field: 2000,
  fields: 10,
  contextElements: 10,
  buttonValue: 2000,
  buttonText: 75,
  fallbackText: 3000,
} as const;

export type Block = Record<string, unknown>;

function clip(text: string, max: number, marker = '…'): string {
  return text.length <= max ? text : text.slice(0, max - marker.length) + marker;
}

/** Keeps the end of long output: for a failing command the last lines matter most. */
function clipHead(text: string, max: number, marker: string): string {
  return text.length <= max ? text : marker + text.slice(text.length - (max - marker.length));
}

function mrkdwn(text: string) {
  return { type: 'mrkdwn', text };
}

function button(b: Button): Block {
  const out: Block = {
    type: 'button',
    action_id: b.actionId,
    text: { type: 'plain_text', text: clip(b.text, LIMITS.buttonText), emoji: true },
    value: b.value.slice(0, LIMITS.buttonValue),
  };
  if (b.style) out.style = b.style;
  if (b.confirm) {
    out.confirm = {
      title: { type: 'plain_text', text: clip(b.confirm.title, 100) },
      text: mrkdwn(clip(b.confirm.text, 300)),
      confirm: { type: 'plain_text', text: clip(b.confirm.confirm, 30) },
      deny: { type: 'plain_text', text: clip(b.confirm.deny, 30) },
    };
  }
  return out;
}

function partToBlocks(part: Part): Block[] {
  switch (part.type) {
    case 'header':
      return [{ type: 'header', text: { type: 'plain_text', text: clip(part.text, LIMITS.headerText), emoji: true } }];
    case 'section':
      return part.text.trim() === '' ? [] : [{ type: 'section', text: mrkdwn(clip(part.text, LIMITS.sectionText)) }];
    case 'fields': {
      const blocks: Block[] = [];
      for (let i = 0; i < part.items.length; i += LIMITS.fields) {
        blocks.push({ type: 'section', fields: part.items.slice(i, i + LIMITS.fields).map((f) => mrkdwn(clip(f, LIMITS.field))) });
      }
      return blocks;
    }
    case 'context':
      return part.items.length === 0 ? [] : [{ type: 'context', elements: part.items.slice(0, LIMITS.contextElements).map((t) => mrkdwn(clip(t, LIMITS.field))) }];
    case 'code': {
      const fence = '```';
      const title = part.title ? `${part.title}\n` : '';
      const room = LIMITS.sectionText - title.length - fence.length * 2 - 2;
      // Host output may hold `<!channel>` or links: escape it first, then cut, then drop an entity the cut split.
      const escaped = esc(part.text.replace(/```/g, "'''"));
      const body = clipHead(escaped, room, '…(earlier lines cut)\n').replace(/^(…\(earlier lines cut\)\n)[a-z#0-9]{0,5};/, '$1');
      return [{ type: 'section', text: mrkdwn(`${title}${fence}\n${body || ' '}\n${fence}`) }];
    }
    case 'divider':
      return [{ type: 'divider' }];
    case 'actions':
      return [{ type: 'actions', elements: part.buttons.slice(0, 25).map(button) }];
  }
}

/** Pure: the same message always renders to the same blocks (golden-file tested). */
export function toBlocks(msg: Msg): Block[] {
  const blocks = msg.parts.flatMap(partToBlocks);
  if (blocks.length <= LIMITS.blocks) return blocks;
  // Keep any trailing actions: a gate whose buttons were cut off could never be decided.
  const tail = blocks[blocks.length - 1]?.type === 'actions' ? [blocks[blocks.length - 1]!] : [];
  const room = LIMITS.blocks - 1 - tail.length;
  const cut = blocks.length - tail.length - room;
  return [...blocks.slice(0, room), { type: 'context', elements: [mrkdwn(`…${cut} more block${cut === 1 ? '' : 's'} not shown (Slack allows ${LIMITS.blocks})`)] }, ...tail];
}

export function toSlackMessage(msg: Msg): { text: string; blocks: Block[] } {
  // Slack reads the fallback text as mrkdwn too, and summaries can carry values from the host.
  return { text: clip(esc(msg.summary), LIMITS.fallbackText), blocks: toBlocks(msg) };
}
