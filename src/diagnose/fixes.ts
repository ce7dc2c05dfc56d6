import { ENV_NAME } from '../config/schema.js';
import type { FixAction } from './match.js';

/**
 * The fixes a diagnosis offers as buttons (an addition to the contract's action_ids). A press
 * is turned back into the command a person would type, so it goes through the same parsing,
 * role check, lock and audit as that command; the button's value is only the environment.
 */
export const FIXES: Record<FixAction, { actionId: string; command: (env: string) => string }> = {
  maintenance_off: { actionId: 'fix.maintenance_off', command: (env) => `maintenance off ${env}` },
  migrate_upgrade: { actionId: 'fix.migrate', command: (env) => `migrate upgrade ${env}` },
};

/** The command text a fix button stands for, or undefined for a button the bot does not know. */
export function fixCommandText(actionId: string, value: string): string | undefined {
  const fix = Object.values(FIXES).find((f) => f.actionId === actionId);
  // Only an environment name, as the config allows them: anything else was not put there by the bot.
  if (!fix || !ENV_NAME.test(value)) return undefined;
  return fix.command(value);
}
