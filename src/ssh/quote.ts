import { ChatOpsError, ErrorCode } from '../errors.js';

// No "=": a bare NAME=value word before the command would be read as an assignment.
const PLAIN = /^[A-Za-z0-9_\/.,:@%+-]+$/;
const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * The one function that turns a value into a POSIX shell word. Everything that
 * reaches a remote shell goes through here; nothing is ever spliced in raw.
 */
export function shellQuote(value: string): string {
  if (value.includes('\0')) {
    throw new ChatOpsError(ErrorCode.UnsafeArgument, 'argument contains a NUL byte', {});
  }
  // A leading "-" or "=" is fine for the shell; the remote program's own parsing is the caller's concern.
  if (value !== '' && PLAIN.test(value)) return value;
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** A command as data: argv, environment and working directory, rendered only by `renderCommand`. */
export interface RemoteCommand {
  argv: readonly string[];
  /** Variables set for this command alone, e.g. { IMAGE_TAG: '0.6.1' }; there is no shared shell between steps. */
  env?: Readonly<Record<string, string>>;
  /** Run in this directory; the command does not run at all if the `cd` fails. */
  cwd?: string;
}

export function renderCommand(cmd: RemoteCommand): string {
  if (cmd.argv.length === 0) throw new ChatOpsError(ErrorCode.UnsafeArgument, 'empty command', {});
  const parts: string[] = [];
  for (const [name, value] of Object.entries(cmd.env ?? {})) {
    if (!VAR_NAME.test(name)) throw new ChatOpsError(ErrorCode.UnsafeArgument, `invalid environment variable name "${name.replace(/[^\x20-\x7e]/g, '?').slice(0, 40)}"`, {});
    parts.push(`${name}=${shellQuote(value)}`);
  }
  parts.push(...cmd.argv.map(shellQuote));
  const line = parts.join(' ');
  // `&&`, not `;`: running compose in the wrong directory would act on the wrong project.
  return cmd.cwd === undefined ? line : `cd ${shellQuote(cmd.cwd)} && ${line}`;
}
