/**
 * Every command the bot knows, declared once: its usage, what it does, whether
 * it changes the host, and whether this build runs it yet. Help, the parser's
 * error messages and the access check all read from here.
 */
export type CommandName =
  | 'help'
  | 'health'
  | 'version'
  | 'deploy'
  | 'rollback'
  | 'maintenance'
  | 'migrations'
  | 'migrate'
  | 'status'
  | 'logs'
  | 'diagnose'
  | 'history'
  | 'cancel'
  | 'unlock';

export interface CommandSpec {
  name: CommandName;
  usage: string;
  summary: string;
  example: string;
  /** Changes the host: needs a deployer (or an admin for unlock). */
  mutating: boolean;
  available: boolean;
}

export const SPECS: readonly CommandSpec[] = [
  { name: 'help', usage: 'help', summary: 'List the commands.', example: 'help', mutating: false, available: true },
  { name: 'health', usage: 'health [ENV]', summary: 'Version, shallow and deep health, and the containers on the host.', example: 'health production', mutating: false, available: true },
  { name: 'version', usage: 'version [ENV]', summary: 'The version the API reports and the image tag the host runs.', example: 'version', mutating: false, available: true },
  { name: 'deploy', usage: 'deploy VERSION [ENV] [--maintenance | --no-maintenance] [--dry-run]', summary: 'Run the standard deployment of a release tag.', example: 'deploy 0.6.1 --maintenance', mutating: true, available: true },
  { name: 'rollback', usage: 'rollback [VERSION] [ENV] [--dry-run]', summary: 'Go back to the previous (or a named) version, with a snapshot first.', example: 'rollback 0.6.0', mutating: true, available: true },
  { name: 'maintenance', usage: 'maintenance on|off [ENV]', summary: 'Turn maintenance mode on or off.', example: 'maintenance on', mutating: true, available: true },
  { name: 'migrations', usage: 'migrations [ENV]', summary: 'The current alembic revision, head and history.', example: 'migrations', mutating: false, available: true },
  { name: 'migrate', usage: 'migrate (upgrade | downgrade REV|-1|base) [ENV]', summary: '`upgrade`: apply pending migrations of the running image, after an approval. `downgrade`: go back, with a snapshot and confirmation.', example: 'migrate downgrade 031', mutating: true, available: true },
  { name: 'status', usage: 'status [ENV]', summary: 'Running version, pinned tag, maintenance, lock and current job.', example: 'status', mutating: false, available: true },
  { name: 'logs', usage: 'logs [ENV] [--tail N]', summary: 'The last lines of the engramia-api log (100 unless --tail says otherwise, at most 1000), secrets removed.', example: 'logs --tail 200', mutating: false, available: true },
  { name: 'diagnose', usage: 'diagnose [ENV]', summary: "Match the host against the runbook's troubleshooting table: each finding with its likely cause and fix.", example: 'diagnose', mutating: false, available: true },
  { name: 'history', usage: 'history [ENV]', summary: 'Recent deploys and rollbacks.', example: 'history', mutating: false, available: true },
  { name: 'cancel', usage: 'cancel [JOB]', summary: 'Stop a job at its next safe point (yours, or any for admins).', example: 'cancel deploy-mwx8a1b2c3', mutating: true, available: true },
  { name: 'unlock', usage: 'unlock ENV', summary: "Release an environment's lock (admins).", example: 'unlock production', mutating: true, available: true },
];

export function specOf(name: CommandName): CommandSpec {
  return SPECS.find((s) => s.name === name)!;
}
