import { fixCommandText } from '../diagnose/fixes.js';
import { ChatOpsError, ErrorCode } from '../errors.js';
import type { Origin } from '../jobs/types.js';
import { errorParts } from '../render/errors.js';
import type { Msg } from '../render/model.js';

/** Fix buttons are commands, not gates: their action ids are `fix.*`. */
export function isFixAction(actionId: string): boolean {
  return /^fix\.[a-z_]+$/.test(actionId);
}

export interface FixPress {
  actionId: string;
  value: string;
  /** The presser, where they pressed: the command runs as if they had typed it there. */
  origin: Origin;
}

/**
 * A fix button on a diagnosis is the command it names, typed by whoever pressed it: `runCommand`
 * is the slash command's own path, so parsing, the role check (on every press), the lock and the
 * audit are exactly those of the typed command.
 */
export async function handleFixPress(press: FixPress, runCommand: (text: string, origin: Origin) => Promise<Msg>): Promise<Msg> {
  const text = fixCommandText(press.actionId, press.value);
  if (text === undefined) {
    const err = new ChatOpsError(ErrorCode.CommandInvalid, 'This button is not one the bot understands (it may come from an older version). Nothing was done.', {});
    return { summary: 'Unknown button: nothing was done', parts: errorParts(err, '⚠️') };
  }
  return runCommand(text, press.origin);
}
