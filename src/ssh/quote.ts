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
  /**
   * For `sh -c SCRIPT NAME args…` with a long fixed script: what people see in its place, e.g.
   * `<.env edit script>`. Display only (`showCommand`); the host always gets the script itself.
   */
  scriptLabel?: string;
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

/** The command as people read it (cards, plans, thread replies): a long fixed script shows as its label. */
export function showCommand(cmd: RemoteCommand): string {
  if (!cmd.scriptLabel || cmd.argv[0] !== 'sh' || cmd.argv[1] !== '-c') return renderCommand(cmd);
  const marker = 'CHATOPS_SCRIPT_PLACEHOLDER';
  return renderCommand({ ...cmd, argv: ['sh', '-c', marker, ...cmd.argv.slice(3)] }).replace(marker, cmd.scriptLabel);
}
