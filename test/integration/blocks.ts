export type Block = Record<string, any>;

export const BOB = 'U02BOB';
export const CAROL = 'U03CAROL';

/** A message's blocks as one string, for contains/regex assertions. */
export const text = (blocks: unknown): string => JSON.stringify(blocks ?? []);

/** All visible text of a Block Kit message, for assertions that don't depend on layout. */
export function blockText(blocks: Block[] | undefined): string {
  const out: string[] = [];
  const walk = (v: unknown) => {
    if (typeof v === 'string') out.push(v);
    else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) if (k === 'text' || k === 'elements' || k === 'fields' || typeof x === 'object') walk(x);
  };
  walk(blocks ?? []);
  return out.join('\n');
}
