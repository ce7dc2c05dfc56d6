export interface Revision {
  revision: string;
  /** The revision it follows; null for the first one. */
  down: string | null;
  description: string;
  head: boolean;
}

/**
 * Parses `alembic history` (short form), newest first:
 * `031 -> 032 (head), add stripe tables` / `<base> -> 001, initial`.
 */
export function parseHistory(text: string): Revision[] {
  const out: Revision[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*(<base>|[0-9A-Za-z_]+) -> ([0-9A-Za-z_]+)( \(head\))?(?: \(current\))?,?\s*(.*)$/.exec(line);
    if (!m) continue;
    out.push({ revision: m[2]!, down: m[1] === '<base>' ? null : m[1]!, description: m[4]!.trim(), head: m[3] !== undefined });
  }
  return out;
}

/** The revision one step below `current` in the chain, "base" when it is the first. */
export function parentOf(history: readonly Revision[], current: string): string | undefined {
  const r = history.find((h) => h.revision === current);
  if (!r) return undefined;
  return r.down ?? 'base';
}

/** Revisions strictly after `from` up to and including `to`, oldest first. */
export function between(history: readonly Revision[], from: string | null, to: string): Revision[] {
  const byRev = new Map(history.map((h) => [h.revision, h]));
  const chain: Revision[] = [];
  let cur = byRev.get(to);
  while (cur && cur.revision !== from) {
    chain.unshift(cur);
    cur = cur.down ? byRev.get(cur.down) : undefined;
  }
  return chain;
}

/** Whether `target` is `current` itself, `base`, or a revision `current` descends from: somewhere a downgrade can go. */
export function isAtOrBelow(history: readonly Revision[], current: string, target: string): boolean {
  return target === 'base' || between(history, null, current).some((r) => r.revision === target);
}
