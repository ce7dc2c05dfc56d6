import type { EnvironmentConfig } from '../config/schema.js';
import type { HostState } from '../engramia/host.js';
import { code, esc, type Msg } from './model.js';

// What a failed or cancelled job says about itself and the host: pure wording, decided here and
// nowhere else. The engine (src/jobs/runbook-job.ts) gathers the facts and passes them in.

/** The report's first line: where the job stopped and why. */
export function stoppedLine(outcome: 'failed' | 'cancelled', stepTitle: string, reason: string): string {
  return `${outcome === 'cancelled' ? '🛑' : '❌'} Stopped at *${esc(stepTitle)}*: ${esc(reason)}.`;
}

/** The host as read right after the job stopped. */
export function hostNowLine(host: Pick<HostState, 'apiState' | 'runningTag' | 'pinnedTag' | 'maintenanceInEnvFile'>): string {
  const api = host.apiState === 'running' ? `runs ${code(host.runningTag ?? '?')}` : `is ${esc(host.apiState ?? 'missing')}`;
  return `*Host now:* engramia-api ${api}; .env pins ${host.pinnedTag ? code(host.pinnedTag) : 'no tag'}; maintenance ${host.maintenanceInEnvFile ? '*ON* in .env' : 'off in .env'}.`;
}

export function hostUnreadableLine(why: string): string {
  return `*Host now:* could not be read (${esc(why.replace(/[*`]/g, ''))}). Check it by hand before doing anything else.`;
}

/** The card's Maintenance field: what the host shows when the job stopped, not what was planned. */
export function maintenanceField(envOn: boolean | undefined, apiOn: boolean | undefined): { on: boolean; reason: string } {
  const file = envOn === undefined ? '.env unreadable' : `.env ${envOn ? 'asks for it' : 'does not ask for it'}`;
  const api = apiOn === undefined ? 'the API did not answer' : apiOn ? 'the API answers 503' : 'the API serves';
  return { on: apiOn ?? envOn ?? false, reason: `when the job stopped: ${file}, ${api}` };
}

export interface MaintenanceFacts {
  kind: string;
  env: Pick<EnvironmentConfig, 'tagVariable' | 'composeFile'>;
  fromVersion?: string | null | undefined;
  maintenanceOnByUs?: boolean | undefined;
}

/** The flag in .env and what the running container does can differ (it reads .env only when re-created): say which. */
export function maintenanceLines(f: MaintenanceFacts, envOn: boolean | undefined, apiOn: boolean | undefined, runningTag: string | undefined): string[] {
  const recreate = `${f.env.tagVariable}=${runningTag ?? f.fromVersion ?? '<running tag>'} docker compose -f ${f.env.composeFile} up -d engramia-api`;
  const byUs = f.maintenanceOnByUs ? ` (this ${f.kind} turned it on)` : '';
  if ((envOn ?? f.maintenanceOnByUs) && apiOn !== false) {
    return [
      `🚧 *Maintenance is still ON*${byUs}: every endpoint but /v1/health answers 503${apiOn === undefined ? ' (the API did not answer to confirm it)' : ''}. It was left on on purpose, so no traffic meets a half-finished change. To end it on the host: ${code(`sed -i '/ENGRAMIA_MAINTENANCE/d' .env && ${recreate}`)}`,
    ];
  }
  if (envOn) {
    return [`🚧 *.env asks for maintenance, but the API still serves*${byUs}: its container was not re-created since. To put maintenance on: ${code(recreate)}; to drop the flag instead: ${code(`sed -i '/ENGRAMIA_MAINTENANCE/d' .env`)}`];
  }
  if (apiOn) return [`🚧 *The API still answers 503 (maintenance)* though .env no longer asks for it: its container predates the change. To end it: ${code(recreate)}`];
  return [];
}

/** A question the stopped job left open, closed so nobody presses a dead button. */
export function closedGateMsg(question: string, outcome: 'failed' | 'cancelled'): Msg {
  return { summary: question, parts: [{ type: 'section', text: `~${esc(question)}~\nClosed: the job ${outcome === 'cancelled' ? 'was cancelled' : 'failed'} before this was decided.` }] };
}
